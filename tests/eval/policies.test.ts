// Each baseline's defining behaviour, and the oracle against them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { simParams } from "../../scripts/sim/params.ts";
import { scrapedFromSnapshot } from "../../scripts/sim/metrics.ts";
import { sharedPrefix } from "../../scripts/eval/generators.ts";
import { chwblPolicy, CHWBL_DEFAULTS, leastRequest, random, roundRobin } from "../../scripts/eval/policies/baselines.ts";
import { APPROX_PREFIX_DEFAULTS, approxBlockTokens, approxHashes, gaiePolicy } from "../../scripts/eval/policies/gaie.ts";
import { POLICY_NAMES, REGISTRY } from "../../scripts/eval/policies/index.ts";
import type { PolicyContext, RouteRequest, Scrape } from "../../scripts/eval/policy.ts";
import { VirtualClock } from "../../scripts/host/clock.ts";
import { replay, replayEndpoints } from "../../scripts/eval/replay.ts";
import { summarize } from "../../scripts/eval/stats.ts";

const sim = simParams();

function ctx(n: number, scrape?: (e: string) => Partial<Scrape>): PolicyContext {
  const endpoints = replayEndpoints(n);
  const clock = new VirtualClock();
  const idle: Scrape = {
    ...scrapedFromSnapshot({
      numRequestsRunning: 0, numRequestsWaiting: 0, kvCacheUsagePerc: 0, prefixCacheQueries: 0, prefixCacheHits: 0,
      promptTokens: 0, generationTokens: 0, numPreemptions: 0, requestSuccess: 0, runningLoraAdapters: [], waitingLoraAdapters: [],
    }, sim),
    atMs: 0,
  };
  return {
    endpoints, clock, startMs: clock.now(), seed: 1, sim,
    metricsText: () => "",
    scraped: (e) => ({ ...idle, ...(scrape?.(e) ?? {}) }),
  };
}

let nextReq = 0;
function request(prompt: string, path = "/v1/completions", model = sim.model): RouteRequest {
  const body = path === "/v1/completions"
    ? JSON.stringify({ model, prompt, max_tokens: 1 })
    : JSON.stringify({ model, messages: [{ role: "system", content: "sys" }, { role: "user", content: prompt }], max_tokens: 1 });
  return {
    id: `t${nextReq++}`, arrivalMs: 0, model, path, promptTokens: Math.ceil(prompt.length / 4), maxTokens: 1,
    body: () => body, promptText: () => prompt, promptPrefix: (n) => prompt.slice(0, n),
  };
}

test("the registry lists the report's policies in order, each under its own name", async () => {
  assert.deepEqual([...POLICY_NAMES], [
    "random", "round-robin", "least-request", "chwbl",
    "gaie-approx", "llm-d-approx", "llm-d-precise", "sglang-cache-aware", "aibrix-prefix", "dynamo-kv",
    "prefix-router", "oracle",
  ]);
  for (const n of POLICY_NAMES) assert.equal(REGISTRY[n]!.name, n);
});

test("round-robin cycles through the endpoints", async () => {
  const c = ctx(3);
  const p = await roundRobin.create(c);
  const picks = Array.from({ length: 7 }, () => p.pick(request("x")));
  assert.deepEqual(picks, [0, 1, 2, 0, 1, 2, 0].map((i) => c.endpoints[i]));
});

test("random is seeded and uniform-ish", async () => {
  const a = await random.create(ctx(4));
  const b = await random.create(ctx(4));
  const pa = Array.from({ length: 400 }, () => a.pick(request("x")));
  const pb = Array.from({ length: 400 }, () => b.pick(request("x")));
  assert.deepEqual(pa, pb);
  for (const e of ctx(4).endpoints) {
    const k = pa.filter((x) => x === e).length;
    assert.ok(k > 60 && k < 140, `${e}: ${k}`);
  }
});

test("least-request (two choices) avoids an endpoint with many requests in flight", async () => {
  const c = ctx(4);
  const p = await leastRequest.create(c);
  // Load every endpoint but one, then never complete anything: picks drift to the idle one.
  const counts = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const e = p.pick(request("x"));
    counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  const v = [...counts.values()];
  assert.ok(Math.max(...v) - Math.min(...v) <= 10, `balanced in-flight counts: ${v}`);
  // Completions free an endpoint; it wins whenever it is one of the two drawn
  // (7 in 16), well above its uniform share (1 in 4), until it catches up.
  for (let i = 0; i < 40; i++) p.onComplete!(request("x"), c.endpoints[2]);
  const next = Array.from({ length: 60 }, () => p.pick(request("x")));
  const k = next.filter((e) => e === c.endpoints[2]).length;
  assert.ok(k >= 20, `the freed endpoint took ${k} of 60`);
});

test("chwbl: a prefix sticks to one endpoint; a pick breaks the 1.25 bound only when every endpoint would", async () => {
  const c = ctx(8);
  const p = await chwblPolicy().create(c);
  const inflight = new Map<string, number>();
  let total = 0;
  const hot = "the same first hundred characters ".repeat(4);
  let first = "";
  for (let i = 0; i < 300; i++) {
    const e = p.pick(request(hot + i));
    if (i === 0) first = e;
    const load = inflight.get(e) ?? 0;
    // KubeAI's check, as seen before this pick was counted: (load + 1) ≤ (total + 1) / n × factor.
    const ok = (l: number): boolean => total === 0 || l + 1 <= ((total + 1) / 8) * CHWBL_DEFAULTS.loadFactor;
    const someoneUnder = c.endpoints.some((x) => ok(inflight.get(x) ?? 0));
    assert.ok(ok(load) || !someoneUnder, `pick ${i} to ${e} at load ${load}/${total}`);
    if (!someoneUnder) assert.equal(e, first, "with no endpoint under the bound, the key's own endpoint takes it");
    inflight.set(e, load + 1);
    total++;
    if (i < 3) assert.equal(e, first, "the same prefix maps to the same endpoint while load allows");
  }
  assert.ok(inflight.size > 1, "overflow spread the hot prefix");
  // Different prefixes spread over the ring.
  const q = await chwblPolicy().create(ctx(8));
  const spread = new Set<string>();
  for (let i = 0; i < 64; i++) {
    const e = q.pick(request(`prefix number ${i} `.repeat(10)));
    spread.add(e);
    q.onComplete!(request(""), e);
  }
  assert.ok(spread.size >= 6);
  // Chat: the first user message is the key, not the system prompt.
  const r = await chwblPolicy().create(ctx(8));
  const s = await chwblPolicy().create(ctx(8));
  assert.equal(r.pick(request("hello there", "/v1/chat/completions")), s.pick(request("hello there")));
});

test("gaie-approx hashes 64-token (256-char) blocks up to 131,072 tokens, seeded with the model, partial tail included", async () => {
  // vLLM reports 16-token blocks; the reference floors the block size at 64 tokens.
  const bt = approxBlockTokens(APPROX_PREFIX_DEFAULTS, 16);
  assert.equal(bt, 64);
  const h = approxHashes(request("a".repeat(256 * 3 + 10)), APPROX_PREFIX_DEFAULTS, bt);
  assert.equal(h.length, 4);
  assert.equal(approxHashes(request("b".repeat(255)), APPROX_PREFIX_DEFAULTS, bt).length, 1, "a lone partial block is hashed");
  assert.equal(approxHashes(request("c".repeat(256 * 2100)), APPROX_PREFIX_DEFAULTS, bt).length, 2048);
  const other = approxHashes(request("a".repeat(256 * 3 + 10), "/v1/completions", "lora-x"), APPROX_PREFIX_DEFAULTS, bt);
  assert.notEqual(other[0], h[0], "the model seeds the chain");
});

test("gaie-approx follows its index, and a long queue lowers the favoured endpoint's score without filtering it", async () => {
  const long = "a shared system prompt of some length ".repeat(40);
  const c = ctx(4);
  const p = await gaiePolicy().create(c);
  const first = p.pick(request(long + "q1"));
  assert.equal(p.pick(request(long + "q2")), first, "prefix match wins among idle endpoints");
  assert.equal(p.pick(request(long + "q3")), first);
  // The favoured endpoint reports a queue of 9 and KV 0.9: prefix 3·1 + queue 0 +
  // KV 2·0.1 = 3.2 against 0 + 2 + 2 = 4 for an idle one, so it loses on score.
  let busy = "";
  const c2 = ctx(4, (e) => (e === busy ? { waiting: 9, kvCacheUsage: 0.9 } : {}));
  const p2 = await gaiePolicy().create(c2);
  busy = p2.pick(request(long + "q1"));
  assert.notEqual(p2.pick(request(long + "q2")), busy, "the busy endpoint loses on score");
  // A modest queue (the old filter's threshold, 5 waiting) does not outweigh a full prefix match:
  // 3 + 0 + 2 = 5 against 0 + 2 + 2 = 4.
  const c3 = ctx(4, (e) => (e === busy ? { waiting: 5 } : {}));
  const p3 = await gaiePolicy().create(c3);
  busy = p3.pick(request(long + "q1"));
  assert.equal(p3.pick(request(long + "q2")), busy, "no saturation filter at queue 5");
});

test("on a shared-prefix workload the oracle's hit rate is at least every baseline's", async () => {
  const w = sharedPrefix({ seed: 5, model: sim.model, requests: 500, systemPrompts: 40, systemTokens: 4000, ratePerS: 40 });
  const hit = new Map<string, number>();
  for (const n of POLICY_NAMES) {
    const f = REGISTRY[n];
    if (!f) continue;
    hit.set(n, summarize(await replay(w, f, { servers: 4, sim: { numGpuBlocks: 6000 } })).hitRate);
  }
  const o = hit.get("oracle")!;
  for (const [n, h] of hit) assert.ok(o >= h - 1e-9, `oracle ${o.toFixed(3)} vs ${n} ${h.toFixed(3)}`);
  assert.ok(o > hit.get("random")! + 0.1, "and clearly above prefix-blind routing");
});
