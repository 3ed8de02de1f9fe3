// The simulated engine: TTFT from uncached tokens and queueing, chunked
// prefill, the KV concurrency limit, LoRA slots, refusals, macro steps.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Engine, type EngineRequest } from "../../scripts/sim/engine.ts";
import { BLOCK_CHARS, blockHashes, tokensOf } from "../../scripts/sim/hash.ts";
import { simParams, type SimParams } from "../../scripts/sim/params.ts";

interface Done {
  first: Map<number, number>;
  done: Map<number, number>;
  hit: Map<number, number>;
}

function harness(p: Partial<SimParams> = {}): { e: Engine; d: Done; run: (until?: number) => void; params: SimParams } {
  const d: Done = { first: new Map(), done: new Map(), hit: new Map() };
  // Exact step arithmetic is checked under the linear model; step-model.test.ts covers the context model.
  const params = simParams({ stepModel: "linear", ...p });
  const e = new Engine(params, {
    onFirstToken: (r, t) => void d.first.set(r.id, t),
    onComplete: (r, t, o) => {
      d.done.set(r.id, t);
      d.hit.set(r.id, o.hitTokens);
    },
  });
  const run = (until = Infinity): void => {
    for (let t = e.nextEventMs(); t <= until && t < Infinity; t = e.nextEventMs()) e.processEvent(t);
  };
  return { e, d, run, params };
}

let nextId = 1;
function req(prompt: string, maxTokens = 1, adapter: string | null = null): EngineRequest {
  return { id: nextId++, promptTokens: tokensOf(prompt.length), maxTokens, hashes: blockHashes(prompt, adapter), adapter };
}

function text(seed: string, tokens: number): string {
  let s = "";
  for (let i = 0; s.length < tokens * 4; i++) s += `${seed}${i} `;
  return s.slice(0, tokens * 4);
}

test("TTFT is one step: base + uncached prompt tokens × per-token cost", () => {
  const { e, d, run, params: p } = harness();
  const r = req(text("a", 4000));
  e.submit(r, 0);
  run();
  assert.ok(Math.abs(d.first.get(r.id)! - (p.stepBaseMs + 4000 * p.prefillMsPerToken)) < 1e-9);
});

test("TTFT grows with uncached tokens; a repeated prompt is served from the cache", () => {
  const { e, d, run, params: p } = harness();
  const prompt = text("shared", 3000);
  const a = req(prompt);
  e.submit(a, 0);
  run();
  const b = req(prompt + text("tail", 200));
  e.submit(b, 1000);
  run();
  const ttftA = d.first.get(a.id)!;
  const ttftB = d.first.get(b.id)! - 1000;
  assert.equal(d.hit.get(b.id), Math.floor(3000 / 16) * 16);
  assert.ok(ttftB < ttftA / 5, `cached prefix: ${ttftB} vs ${ttftA}`);
  // Uncached: 3200 − 2992 = 208 tokens.
  assert.ok(Math.abs(ttftB - (p.stepBaseMs + 208 * p.prefillMsPerToken)) < 1e-9);
  const s = e.snapshot();
  assert.equal(s.prefixCacheQueries, 6200);
  assert.equal(s.prefixCacheHits, 2992);
});

test("queueing: the second of two simultaneous long prompts waits for the first", () => {
  const { e, d, run } = harness();
  const a = req(text("a", 8000));
  const b = req(text("b", 8000));
  e.submit(a, 0);
  e.submit(b, 0);
  run();
  assert.ok(d.first.get(b.id)! > d.first.get(a.id)! * 1.8, "b queued behind a's prefill");
});

test("a long prompt is prefilled in chunks of max_num_batched_tokens", () => {
  const { e, d, run, params: p } = harness();
  const r = req(text("long", 20000));
  e.submit(r, 0);
  run();
  // 8192 + 8192 + 3616 tokens: three steps.
  assert.ok(Math.abs(d.first.get(r.id)! - (3 * p.stepBaseMs + 20000 * p.prefillMsPerToken)) < 1e-6);
  assert.equal(e.steps, 3);
});

test("KV capacity limits concurrency: requests wait for blocks, never exceed the pool", () => {
  // 1 null + 100 blocks; each request needs 32 prompt blocks + decode room.
  const { e, d, run } = harness({ numGpuBlocks: 101 });
  const ids: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = req(text(`r${i}`, 500), 40);
    ids.push(r.id);
    assert.equal(e.submit(r, 0), null);
  }
  let maxRunning = 0;
  let sawWaiting = false;
  for (let t = e.nextEventMs(); t < Infinity; t = e.nextEventMs()) {
    e.processEvent(t);
    maxRunning = Math.max(maxRunning, e.numRunning);
    if (e.numRunning > 0 && e.numWaiting > 0) sawWaiting = true;
    assert.ok(e.cache.numUsed <= 100);
  }
  run();
  assert.ok(maxRunning <= 3, `at most 3 × 32+ blocks fit in 100, ran ${maxRunning}`);
  assert.ok(sawWaiting);
  for (const id of ids) assert.ok(d.done.has(id), `request ${id} completed`);
});

test("decode steps are cut at the next step boundary when a request arrives", () => {
  const { e, d, run, params: p } = harness();
  const long = req(text("decoder", 100), 1000);
  e.submit(long, 0);
  run(50); // prefill done, now in a long macro step of decodes
  const arrival = 1234.5;
  const r = req(text("new", 1000));
  e.submit(r, arrival);
  run();
  const ttft = d.first.get(r.id)! - arrival;
  const decodeStep = p.stepBaseMs + p.decodeMsPerToken;
  const ownStep = p.stepBaseMs + 1000 * p.prefillMsPerToken + p.decodeMsPerToken;
  assert.ok(ttft <= decodeStep + ownStep + 1e-6, `waited at most one decode step, TTFT ${ttft}`);
  assert.ok(ttft >= ownStep - 1e-6);
  // The decoder still produced all its tokens, one per step.
  assert.ok(d.done.get(long.id)! > 1000 * decodeStep);
});

test("LoRA: with one slot, a second adapter waits until the first leaves the batch", () => {
  const { e, d, run, params: p } = harness({ maxLoras: 1, loraLoadMs: 7 });
  const a = req(text("a", 100), 20, "lora-a");
  const b = req(text("b", 100), 20, "lora-b");
  e.submit(a, 0);
  e.submit(b, 0);
  run();
  assert.ok(d.first.get(b.id)! >= d.done.get(a.id)!, "b starts after a finished");
  assert.ok(d.first.get(a.id)! >= p.loraLoadMs, "loading the adapter costs time");
});

test("requests beyond the context length are refused", () => {
  const { e } = harness({ maxModelLen: 1000 });
  assert.match(e.submit(req(text("x", 990), 20), 0) ?? "", /maximum context length is 1000/);
  assert.equal(e.submit(req(text("y", 900), 20), 0), null);
});

test("the hash chain of a 64-char block matches across prompts regardless of what follows", () => {
  const p1 = text("s", 64) + "A".repeat(BLOCK_CHARS);
  const p2 = text("s", 64) + "B".repeat(BLOCK_CHARS);
  const h1 = blockHashes(p1, null);
  const h2 = blockHashes(p2, null);
  assert.deepEqual(h1.slice(0, 4), h2.slice(0, 4));
  assert.notEqual(h1[4], h2[4]);
});
