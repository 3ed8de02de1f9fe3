// Every API the filter reads, routed by prefix in real Envoy 1.40: OpenAI
// completions (text and token ids), chat completions and Responses, and
// Anthropic Messages. A prompt sent again goes where it went; different
// prompts spread. And what changes a match: a different cache_salt means no
// match at all; different tools or a different image after the same system
// text match only up to them. The predicted match is read from the filter's
// own counters (prefix_blocks_matched / prefix_blocks_total, flushed each
// tick), the destination from the upstream that answered.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { envoyTest, startEnvoyGateway, type EnvoyGateway } from "./real-envoy.ts";
import { startRecordingUpstream, type RecordingUpstream } from "./recording-upstream.ts";
import { DEFAULT_INDEX_STRIDE, http, text } from "./scenarios.ts";
import { stat, waitFor } from "./live-traffic.ts";

interface Call {
  path: string;
  body: unknown;
}

async function post(gw: EnvoyGateway, call: Call): Promise<string> {
  const r = await http(`${gw.url}${call.path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(call.body) });
  assert.equal(r.status, 200, `${call.path}: ${r.status} ${r.body}`);
  return r.servedBy;
}

const filterStat = (gw: EnvoyGateway, name: string) => stat(gw.adminUrl, `wasmcustom.prefix_router.${name}`);

/** Sends `call`; returns where it went and the blocks the filter predicted as matched there, of those it hashed. */
async function routed(gw: EnvoyGateway, call: Call): Promise<{ servedBy: string; matched: number; total: number }> {
  const [routedBefore, matchedBefore, totalBefore] = await Promise.all(["routed", "prefix_blocks_matched", "prefix_blocks_total"].map((n) => filterStat(gw, n)));
  const servedBy = await post(gw, call);
  await waitFor("the request to be counted as routed", 5_000, async () => (await filterStat(gw, "routed")) === routedBefore + 1);
  const [matched, total] = await Promise.all(["prefix_blocks_matched", "prefix_blocks_total"].map((n) => filterStat(gw, n)));
  return { servedBy, matched: matched - matchedBefore, total: total - totalBefore };
}

const MODEL = "llama";
/**
 * 4,200 characters: 65 full 64-character blocks, 4 index entries of 16
 * (indexStride). A match is predicted in whole entries, so a prompt sent again
 * matches all its blocks but the tail past the last entry, less than
 * DEFAULT_INDEX_STRIDE blocks.
 */
const long = (seed: number) => text(seed, 4200);

/** One request of each API for prompt `seed`. */
function calls(seed: number): Record<string, Call> {
  return {
    completions: { path: "/v1/completions", body: { model: MODEL, prompt: long(seed), max_tokens: 1 } },
    // 1,100 token ids of 4 bytes: 68 full blocks, 4 index entries.
    "completions token ids": { path: "/v1/completions", body: { model: MODEL, prompt: Array.from({ length: 1100 }, (_, i) => (seed * 7919 + i * 31) % 128000), max_tokens: 1 } },
    chat: { path: "/v1/chat/completions", body: { model: MODEL, messages: [{ role: "system", content: long(seed) }, { role: "user", content: "go" }] } },
    responses: { path: "/v1/responses", body: { model: MODEL, instructions: long(seed), input: "go" } },
    "responses items": { path: "/v1/responses", body: { model: MODEL, input: [{ role: "user", content: [{ type: "input_text", text: long(seed) }] }, { type: "function_call", call_id: "c", name: "f", arguments: "{}" }] } },
    messages: { path: "/v1/messages", body: { model: MODEL, max_tokens: 8, system: long(seed), messages: [{ role: "user", content: "go" }] } },
  };
}

async function withUpstreams(n: number, fn: (ups: RecordingUpstream[]) => Promise<void>): Promise<void> {
  const ups = await Promise.all(Array.from({ length: n }, () => startRecordingUpstream()));
  try {
    await fn(ups);
  } finally {
    await Promise.all(ups.map((u) => u.stop()));
  }
}

envoyTest("each API is routed by prefix: a prompt sticks, different prompts spread", { timeout: 120_000 }, async (t: TestContext) => {
  await withUpstreams(4, async (ups) => {
    const gw = await startEnvoyGateway({ endpoints: ups.map((u) => u.address), metrics: false }, { concurrency: 2 });
    t.after(() => gw.stop());
    for (const api of Object.keys(calls(0))) {
      const homes = new Set<string>();
      for (let seed = 1; seed <= 12; seed++) {
        const call = calls(seed * 100 + api.length)[api];
        const first = await routed(gw, call);
        assert.equal(first.matched, 0, `${api}: a new prompt was predicted to match`);
        const again = await routed(gw, call);
        assert.equal(again.servedBy, first.servedBy, `${api}: the same prompt went elsewhere`);
        assert.ok(again.total > 0 && again.matched >= again.total - DEFAULT_INDEX_STRIDE, `${api}: matched ${again.matched} of ${again.total} blocks the second time`);
        homes.add(first.servedBy);
      }
      assert.ok(homes.size >= 2, `${api}: 12 prompts all went to ${[...homes].join(",")}`);
    }
    assert.equal(await filterStat(gw, "passthrough.token_prompt"), 0);
  });
});

envoyTest("what changes a match: cache_salt separates caches, tools and images match only up to them", { timeout: 120_000 }, async (t: TestContext) => {
  await withUpstreams(3, async (ups) => {
    const gw = await startEnvoyGateway({ endpoints: ups.map((u) => u.address), metrics: false }, { concurrency: 2 });
    t.after(() => gw.stop());
    const system = long(7);
    const chat = (extra: Record<string, unknown>, user: unknown = "go") => ({
      path: "/v1/chat/completions",
      body: { model: MODEL, messages: [{ role: "system", content: system }, { role: "user", content: user }], ...extra },
    });

    // Salts: the same prompt under another salt matches nothing; under the same salt, everything.
    const a = await routed(gw, chat({ cache_salt: "tenant-a" }));
    assert.equal(a.matched, 0);
    assert.ok((await routed(gw, chat({ cache_salt: "tenant-a" }))).matched >= a.total - DEFAULT_INDEX_STRIDE);
    assert.equal((await routed(gw, chat({ cache_salt: "tenant-b" }))).matched, 0, "another tenant's salt matched");
    assert.equal((await routed(gw, chat({}))).matched, 0, "no salt matched a salted prompt");

    // Tools come after the system message: other tools match the system text only
    // (its 4 entries), the same tools their 3,000-character description too (3 more).
    const tools = (name: string) => [{ type: "function", function: { name, description: text(name.length, 3000), parameters: { type: "object" } } }];
    const withTools = await routed(gw, chat({ tools: tools("lookup"), cache_salt: "tools" }));
    const sameTools = await routed(gw, chat({ tools: tools("lookup"), cache_salt: "tools" }));
    const otherTools = await routed(gw, chat({ tools: tools("search_web"), cache_salt: "tools" }));
    assert.ok(sameTools.matched >= withTools.total - DEFAULT_INDEX_STRIDE, `same tools: ${sameTools.matched} of ${sameTools.total}`);
    assert.ok(otherTools.matched > 0 && otherTools.matched < sameTools.matched - DEFAULT_INDEX_STRIDE,
      `other tools matched ${otherTools.matched} blocks (the system text only), same tools ${sameTools.matched}`);

    // Images: the same text after another image matches only up to the image
    // (the system text's 4 entries), the same image its 3,000 characters of text too (3 more).
    const image = (url: string) => [{ type: "image_url", image_url: { url } }, { type: "text", text: text(99, 3000) }];
    const first = await routed(gw, chat({ cache_salt: "images" }, image("https://example.test/cat.png")));
    const same = await routed(gw, chat({ cache_salt: "images" }, image("https://example.test/cat.png")));
    const other = await routed(gw, chat({ cache_salt: "images" }, image("https://example.test/dog.png")));
    assert.ok(same.matched >= first.total - DEFAULT_INDEX_STRIDE, `same image: ${same.matched} of ${same.total}`);
    assert.ok(other.matched < same.matched - 2 * DEFAULT_INDEX_STRIDE, `another image matched ${other.matched} blocks, the same image ${same.matched}`);
  });
});
