// The simulated servers over real HTTP on loopback: completions, chat, SSE,
// /metrics, errors. Servers listen on free ports and are stopped at the end.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { VARYING_TOKENIZER } from "../../scripts/sim/hash.ts";
import { readVllmPage } from "../../scripts/sim/metrics.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { startServers, type SimServer } from "../../scripts/sim/server.ts";

let servers: SimServer[] = [];
const model = DEFAULT_SIM_PARAMS.model;

before(async () => {
  // 20× real time keeps each request to a few ms of wall time.
  servers = await startServers({ count: 2, portBase: 0, speedup: 20 });
});
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function post(addr: string, path: string, body: unknown): Promise<Response> {
  return fetch(`http://${addr}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

const prompt = "You are a careful assistant. ".repeat(40);

test("two servers listen on distinct loopback ports", () => {
  assert.equal(servers.length, 2);
  assert.match(servers[0].address, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(servers[0].address, servers[1].address);
});

test("completions: answers with usage, and a repeated prompt reports cached tokens", async () => {
  const a = servers[0].address;
  const r1 = await post(a, "/v1/completions", { model, prompt, max_tokens: 4 });
  assert.equal(r1.status, 200);
  assert.equal(r1.headers.get("x-served-by"), a);
  const j1 = await r1.json();
  assert.equal(j1.object, "text_completion");
  // The servers tokenize with the default (varying) tokenizer, not characters / 4.
  const tokens = VARYING_TOKENIZER.count(prompt);
  assert.equal(j1.usage.prompt_tokens, tokens);
  assert.equal(j1.usage.completion_tokens, 4);
  assert.equal(j1.usage.prompt_tokens_details.cached_tokens, 0);
  const j2 = await (await post(a, "/v1/completions", { model, prompt, max_tokens: 4 })).json();
  assert.equal(j2.usage.prompt_tokens_details.cached_tokens, Math.floor((tokens - 1) / 16) * 16);
  const m = readVllmPage(await (await fetch(`http://${a}/metrics`)).text());
  assert.equal(m.prefixCacheQueries, 2 * j1.usage.prompt_tokens);
  assert.equal(m.prefixCacheHits, j2.usage.prompt_tokens_details.cached_tokens);
  assert.equal(m.running + m.waiting, 0);
});

test("chat completions, plain and streamed as server-sent events", async () => {
  const a = servers[1].address;
  const messages = [{ role: "system", content: prompt }, { role: "user", content: "hello" }];
  const j = await (await post(a, "/v1/chat/completions", { model, messages, max_tokens: 3 })).json();
  assert.equal(j.object, "chat.completion");
  assert.equal(j.choices[0].message.role, "assistant");
  const r = await post(a, "/v1/chat/completions", { model, messages, max_tokens: 3, stream: true });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /text\/event-stream/);
  const events = (await r.text()).split("\n\n").filter((e) => e.startsWith("data: "));
  assert.equal(events[events.length - 1], "data: [DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  assert.ok(chunks.length >= 2);
  assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, "length");
  assert.equal(chunks.map((c) => c.choices[0].delta.content).join(""), "tok tok tok ");
});

test("/metrics is Prometheus text with vLLM names; bad requests get 400, unknown paths 404", async () => {
  const a = servers[0].address;
  const res = await fetch(`http://${a}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
  const body = await res.text();
  assert.match(body, /^vllm:num_requests_waiting\{engine="0",model_name="[^"]+"\} \d/m);
  assert.match(body, /^vllm:cache_config_info\{.*block_size="16".*\} 1\.0$/m);
  assert.equal((await post(a, "/v1/completions", "{not json")).status, 400);
  assert.equal((await post(a, "/v1/completions", { model, prompt: "x ".repeat(300000), max_tokens: 1 })).status, 400);
  assert.equal((await fetch(`http://${a}/nope`)).status, 404);
});
