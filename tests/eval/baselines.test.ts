// The anchors' baselines doing what their sources do, on small hand-made
// scenarios: SGLang's gate and threshold, AIBrix's imbalance gate and idle
// expiry, llm-d's scorers, the precise index following stored / removed
// events, Dynamo's cost, and the KV event feed's batching and delay.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KvCache } from "../../scripts/sim/kvcache.ts";
import { scrapedFromSnapshot } from "../../scripts/sim/metrics.ts";
import { simParams } from "../../scripts/sim/params.ts";
import { sharedPrefix } from "../../scripts/eval/generators.ts";
import { KvEventFeed, type KvEventBatch, type KvEventSource } from "../../scripts/eval/kv-events.ts";
import { aibrixHashes, AibrixHashTable, AIBRIX_DEFAULTS, aibrixPolicy } from "../../scripts/eval/policies/aibrix.ts";
import { dynamoPolicy } from "../../scripts/eval/policies/dynamo.ts";
import { loadAwareScores } from "../../scripts/eval/policies/gaie.ts";
import { REGISTRY } from "../../scripts/eval/policies/index.ts";
import { llmdApproxPolicy, llmdPrecisePolicy } from "../../scripts/eval/policies/llmd.ts";
import { joinedContents, llmdEstimateInput } from "../../scripts/eval/policies/request-text.ts";
import { sglangPolicy, StringTree } from "../../scripts/eval/policies/sglang.ts";
import type { PolicyContext, RouteRequest, Scrape } from "../../scripts/eval/policy.ts";
import { replay, replayEndpoints } from "../../scripts/eval/replay.ts";
import { summarize } from "../../scripts/eval/stats.ts";
import { VirtualClock } from "../../scripts/host/clock.ts";

const sim = simParams();

/** A KV event source the test drives by hand. */
class ManualEvents implements KvEventSource {
  readonly delayMs = 0;
  private readonly ls: ((b: KvEventBatch) => void)[] = [];
  subscribe(l: (b: KvEventBatch) => void): void {
    this.ls.push(l);
  }
  send(endpoint: string, type: "stored" | "removed", hashes: ArrayLike<number>): void {
    const events = Array.from(hashes, (hash) => ({ type, hash }));
    for (const l of this.ls) l({ endpoint, emittedMs: 0, events });
  }
}

function ctx(n: number, opts: { scrape?: (e: string) => Partial<Scrape>; kvEvents?: KvEventSource } = {}): PolicyContext {
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
    scraped: (e) => ({ ...idle, ...(opts.scrape?.(e) ?? {}) }),
    kvEvents: opts.kvEvents,
  };
}

let nextReq = 0;
function request(prompt: string, o: { keys?: number[]; tokens?: number; chat?: boolean } = {}): RouteRequest {
  const path = o.chat ? "/v1/chat/completions" : "/v1/completions";
  const body = o.chat
    ? JSON.stringify({ model: sim.model, messages: [{ role: "system", content: "sys" }, { role: "user", content: prompt }], max_tokens: 1 })
    : JSON.stringify({ model: sim.model, prompt, max_tokens: 1 });
  const keys = o.keys ? Float64Array.from(o.keys) : undefined;
  return {
    id: `t${nextReq++}`, arrivalMs: 0, model: sim.model, path, promptTokens: o.tokens ?? Math.ceil(prompt.length / 4), maxTokens: 1,
    body: () => body, promptText: () => prompt, promptPrefix: (n) => prompt.slice(0, n),
    engineBlockHashes: keys ? () => keys : undefined,
  };
}

test("each baseline refreshes metrics as its anchor does, and only the event-fed ones ask for KV events", () => {
  const expect: Record<string, [number, boolean]> = {
    "gaie-approx": [50, false], "llm-d-approx": [50, false], "llm-d-precise": [50, true],
    "sglang-cache-aware": [0, false], "aibrix-prefix": [0, false], "dynamo-kv": [0, true],
  };
  for (const [name, [interval, events]] of Object.entries(expect)) {
    const f = REGISTRY[name as keyof typeof REGISTRY]!;
    assert.equal(f.scrapeIntervalMs, interval, name);
    assert.equal(f.kvEventDelayMs !== undefined, events, name);
  }
});

test("request text: SGLang and AIBrix join message contents with spaces; llm-d's estimate input interleaves roles", () => {
  const r = request("hello", { chat: true });
  assert.equal(joinedContents(r), "sys hello");
  assert.equal(llmdEstimateInput(r), "systemsysuserhello");
  assert.equal(joinedContents(request("plain")), "plain");
});

test("SGLang's string tree matches characters into an edge and resolves to the node's first tenant", () => {
  const t = new StringTree(3);
  t.matchAndInsert("hello world", () => 1);
  t.matchAndInsert("hello there", () => 2);
  const r = t.matchAndInsert("hello wonder", () => -1);
  assert.equal(r.matchedChars, 8, "'hello wo' matches, ending inside the 'world' edge");
  assert.equal(r.inputChars, 12);
  assert.equal(r.tenant, 1, "the edge was created for worker 1");
  const s = t.matchAndInsert("hello ", () => -1);
  assert.equal(s.tenant, 1, "the split node keeps its creator as last tenant");
  assert.equal(t.charCount[1], "hello world".length);
  assert.equal(t.charCount[2], "hello there".length);
});

test("SGLang's eviction drops a worker's oldest leaves until it fits, and never another worker's", () => {
  const t = new StringTree(2);
  t.matchAndInsert("apple pie recipe", () => 0);
  t.matchAndInsert("banana bread", () => 0);
  t.matchAndInsert("apple pie recipe", () => 1);
  // The bound is per worker: worker 0 holds 28 characters, worker 1 exactly 16.
  t.evictBySize(16);
  assert.equal(t.charCount[0], "banana bread".length, "the older text went");
  assert.equal(t.charCount[1], 16);
  assert.equal(t.matchAndInsert("banana bread", () => -1).tenant, 0);
  const apple = t.matchAndInsert("apple pie recipe", () => -1);
  assert.equal(apple.matchedChars, 16, "worker 1 still holds the evicted text");
  assert.equal(apple.tenant, 1);
});

test("sglang-cache-aware keeps a matched prefix on its worker until max − min load exceeds 64, then goes to the least loaded", async () => {
  const c = ctx(4);
  const p = await sglangPolicy().create(c);
  const shared = "You are a helpful assistant. ".repeat(20);
  const picks = Array.from({ length: 70 }, (_, i) => p.pick(request(shared + `question ${i}`)));
  const home = picks[0];
  assert.equal(home, c.endpoints[0], "cold text goes to the least loaded, lowest index first");
  // Pick i sees loads (i, 0, 0, 0): balanced while i − 0 ≤ 64.
  for (let i = 0; i <= 64; i++) assert.equal(picks[i], home, `pick ${i}`);
  assert.notEqual(picks[65], home, "past the gate: shortest queue");
  // Completions bring the loads back together and the match wins again.
  for (let i = 0; i < 70; i++) p.onComplete!(request("x"), picks[i]);
  assert.equal(p.pick(request(shared + "again")), home);
});

test("sglang-cache-aware sends a text matching ≤ 30% to the least-loaded worker", async () => {
  const c = ctx(3);
  const p = await sglangPolicy().create(c);
  const a = p.pick(request("abcdefghij" + "0123456789"));
  assert.equal(a, c.endpoints[0]);
  // 10 of 30 characters match (33% > 30%): stays.
  assert.equal(p.pick(request("abcdefghij" + "x".repeat(20))), a);
  // 10 of 40 (25%): least loaded, which is no longer endpoint 0.
  assert.notEqual(p.pick(request("abcdefghij" + "y".repeat(30))), a);
});

test("AIBrix hashes full 128-byte blocks only", () => {
  assert.equal(aibrixHashes("a".repeat(127), 128).length, 0);
  assert.equal(aibrixHashes("a".repeat(128 * 3 + 100), 128).length, 3);
  const x = aibrixHashes("a".repeat(256) + "b".repeat(128), 128);
  const y = aibrixHashes("a".repeat(256) + "c".repeat(128), 128);
  assert.deepEqual(x.slice(0, 2), y.slice(0, 2));
  assert.notEqual(x[2], y[2]);
});

test("aibrix-prefix follows its match until max − min running requests exceeds 16", async () => {
  const c = ctx(4);
  const p = await aibrixPolicy().create(c);
  const shared = "s".repeat(128 * 4);
  const picks = Array.from({ length: 20 }, (_, i) => p.pick(request(shared + `tail ${i}`.padEnd(128, "."))));
  const home = picks[0];
  // Pick i sees (i, 0, 0, 0); the loaded pod stays within mean + 2σ (σ is sample σ), so only the gate moves it.
  for (let i = 0; i <= 16; i++) assert.equal(picks[i], home, `pick ${i}`);
  assert.notEqual(picks[17], home);
});

test("AIBrix's table is model-aware, bounded, and forgets blocks idle for 20 minutes", () => {
  const t = new AibrixHashTable({ ...AIBRIX_DEFAULTS, blockNumber: 3 });
  const h = aibrixHashes("q".repeat(128 * 2), 128);
  t.add(h, "m", 1, 0);
  assert.deepEqual([...t.match(h, "m", new Set([0, 1, 2]))], [[1, 100]]);
  assert.equal(t.match(h, "other-model", new Set([0, 1, 2])).size, 0);
  t.add(aibrixHashes("r".repeat(128 * 2), 128), "m", 2, 1000);
  assert.equal(t.size, 3, "LRU bound");
  assert.equal(t.match(h, "m", new Set([0, 1, 2])).size, 0, "the oldest block went first, and the chain breaks there");
  t.sweep(20 * 60_000 + 1000);
  assert.equal(t.size, 2, "not idle long enough");
  t.sweep(20 * 60_000 + 2001);
  assert.equal(t.size, 0);
});

test("llm-d's load-aware scorer: 0.5 at an empty queue, falling to 0 at 128 waiting", () => {
  const s = (q: number): Scrape => ({ waiting: q }) as Scrape;
  assert.deepEqual([...loadAwareScores([s(0), s(64), s(128), s(500)])], [0.5, 0.25, 0, 0]);
});

test("llm-d-approx: a full prefix match outweighs the largest load-aware difference (1 against 0.5)", async () => {
  let home = "";
  const c = ctx(4, { scrape: (e) => (e === home ? { waiting: 200 } : {}) });
  const p = await llmdApproxPolicy().create(c);
  const shared = "z".repeat(256 * 8);
  home = p.pick(request(shared + "a"));
  assert.equal(p.pick(request(shared + "b")), home, "1 + 0 (queue past 128) beats 0 + 0.5");
});

test("llm-d-precise follows blocks stored and removed, crediting only a run from the first block", async () => {
  const ev = new ManualEvents();
  const c = ctx(4, { kvEvents: ev });
  const p = await llmdPrecisePolicy().create(c);
  const keys = [11, 12, 13, 14];
  const r = (): RouteRequest => request("p".repeat(256), { keys });
  ev.send(c.endpoints[2], "stored", [11, 12, 13]);
  ev.send(c.endpoints[3], "stored", [12, 13, 14]);
  for (let i = 0; i < 5; i++) assert.equal(p.pick(r()), c.endpoints[2], "3 of 4 leading blocks");
  ev.send(c.endpoints[2], "removed", [11]);
  ev.send(c.endpoints[1], "stored", [11, 12]);
  for (let i = 0; i < 5; i++) assert.equal(p.pick(r()), c.endpoints[1], "endpoint 2 lost block 0; endpoint 3 never had it");
});

test("the KV event feed batches one server's events of one instant and delivers them after the delay", () => {
  const clock = new VirtualClock();
  const cache = new KvCache(4);
  const feed = new KvEventFeed([cache], ["s:1"], clock, clock.now(), 7);
  const got: { at: number; b: KvEventBatch }[] = [];
  feed.subscribe((b) => got.push({ at: clock.now(), b }));
  const blocks: number[] = [];
  cache.allocate(3, blocks);
  cache.cache(blocks[0], 101);
  cache.cache(blocks[1], 102);
  assert.equal(got.length, 0, "nothing before the delay");
  clock.advance(6);
  assert.equal(got.length, 0);
  clock.advance(1);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].b.events, [{ type: "stored", hash: 101 }, { type: "stored", hash: 102 }]);
  assert.equal(got[0].b.emittedMs, 0);
  // Freed blocks keep their hashes until reused: eviction is what emits "removed".
  cache.release(blocks);
  const more: number[] = [];
  cache.allocate(3, more);
  clock.advance(7);
  assert.deepEqual(got[1].b.events.map((e) => e.type), ["removed", "removed"]);
  assert.equal(got[1].b.emittedMs, 7);
});

test("a block pool without a listener emits nothing and behaves as before", () => {
  const cache = new KvCache(4);
  const b: number[] = [];
  cache.allocate(2, b);
  cache.cache(b[0], 5);
  assert.ok(cache.isCached(5));
  assert.equal(cache.onKvEvent, null);
});

test("dynamo-kv: overlap pulls a request to its cache; repeats stay (shared blocks count once); a cold request avoids the loaded worker", async () => {
  const ev = new ManualEvents();
  const c = ctx(3, { kvEvents: ev });
  const p = await dynamoPolicy().create(c);
  const hot = Array.from({ length: 64 }, (_, i) => 1000 + i);
  ev.send(c.endpoints[1], "stored", hot);
  // Worker 1: max(0, 1024/16 − 64) + 64 = 64; others: 64 + 64 = 128.
  for (let i = 0; i < 4; i++) assert.equal(p.pick(request("h".repeat(4096), { keys: hot, tokens: 1024 })), c.endpoints[1]);
  // A cold 32-block request: worker 1 costs 32 + (64 + 32) = 128, an idle worker 32 + 32 = 64.
  const cold = Array.from({ length: 32 }, (_, i) => 5000 + i);
  assert.notEqual(p.pick(request("c".repeat(2048), { keys: cold, tokens: 512 })), c.endpoints[1]);
});

test("dynamo-kv counts prefill until the first token and blocks until completion", async () => {
  const c = ctx(2, { kvEvents: new ManualEvents() });
  const p = await dynamoPolicy().create(c);
  const keys = (base: number): number[] => Array.from({ length: 32 }, (_, i) => base + i);
  const r1 = request("a".repeat(2048), { keys: keys(100), tokens: 512 });
  const e1 = p.pick(r1);
  const r2 = request("b".repeat(2048), { keys: keys(200), tokens: 512 });
  const e2 = p.pick(r2);
  assert.notEqual(e2, e1, "the first worker carries 512 prefill tokens and 32 blocks");
  // r1 reaches its first token: its prefill leaves, its blocks stay. Both workers now cost
  // the same except r2's prefill on e2, so a cold request goes to e1.
  p.onFirstToken!(r1, e1);
  assert.equal(p.pick(request("c".repeat(2048), { keys: keys(300), tokens: 512 })), e1);
});

test("in a replay on shared prefixes, every prefix-aware baseline out-hits round-robin, and llm-d-precise's event-fed index matches the oracle's hit rate", async () => {
  const w = sharedPrefix({ seed: 3, model: sim.model, requests: 300, systemPrompts: 20, systemTokens: 3000, ratePerS: 30 });
  const hit = async (name: string): Promise<number> => summarize(await replay(w, REGISTRY[name as keyof typeof REGISTRY]!, { servers: 4, seed: 1 })).hitRate;
  const rr = await hit("round-robin");
  for (const name of ["llm-d-precise", "sglang-cache-aware", "aibrix-prefix", "llm-d-approx", "gaie-approx"]) {
    const h = await hit(name);
    assert.ok(h > rr + 0.1, `${name}: ${h.toFixed(3)} vs round-robin ${rr.toFixed(3)}`);
  }
  // Dynamo charges a worker's active blocks against its overlap, so it spreads more and hits less.
  const dynamo = await hit("dynamo-kv");
  assert.ok(dynamo > rr + 0.05, `dynamo-kv: ${dynamo.toFixed(3)} vs round-robin ${rr.toFixed(3)}`);
  const oracle = await hit("oracle");
  assert.ok(Math.abs((await hit("llm-d-precise")) - oracle) < 0.02, "the precise index sees what the oracle sees, 5 ms late");
});
