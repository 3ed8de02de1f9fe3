// The context-length step model: attention over the context makes prefill
// after a long cached prefix and decode over a long context dearer; macro
// steps of growing decode steps end where the step-by-step sum says.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Engine, isolatedTtftMs, prefillAttentionMs, type EngineRequest } from "../../scripts/sim/engine.ts";
import { blockHashes, tokensOf } from "../../scripts/sim/hash.ts";
import { simParams, type SimParams } from "../../scripts/sim/params.ts";

function harness(p: Partial<SimParams>) {
  const first = new Map<number, number>();
  const done = new Map<number, number>();
  const params = simParams(p);
  const e = new Engine(params, {
    onFirstToken: (r, t) => void first.set(r.id, t),
    onComplete: (r, t) => void done.set(r.id, t),
  });
  const run = (until = Infinity): void => {
    for (let t = e.nextEventMs(); t <= until && t < Infinity; t = e.nextEventMs()) e.processEvent(t);
  };
  return { e, first, done, run, p: params };
}

let nextId = 1;
function text(seed: string, tokens: number): string {
  let s = "";
  for (let i = 0; s.length < tokens * 4; i++) s += `${seed}${i} `;
  return s.slice(0, tokens * 4);
}
function req(prompt: string, maxTokens = 1): EngineRequest {
  return { id: nextId++, promptTokens: tokensOf(prompt.length), maxTokens, hashes: blockHashes(prompt, null), adapter: null };
}

test("context model: a prompt's prefill costs its attention on top of the linear step", () => {
  for (const tokens of [1000, 6000]) {
    const ttft: Record<string, number> = {};
    for (const stepModel of ["linear", "context"] as const) {
      const h = harness({ stepModel });
      const r = req(text("a", tokens));
      h.e.submit(r, 0);
      h.run();
      ttft[stepModel] = h.first.get(r.id)!;
    }
    const p = simParams();
    assert.ok(Math.abs(ttft.context - ttft.linear - prefillAttentionMs(p, tokens, 0)) < 1e-9, `${tokens} tokens`);
    assert.ok(ttft.context > ttft.linear);
  }
  // Quadratic: 6× the tokens costs more than 6× the attention.
  const p = simParams();
  assert.ok(prefillAttentionMs(p, 6000, 0) > 30 * prefillAttentionMs(p, 1000, 0));
  assert.equal(prefillAttentionMs(simParams({ stepModel: "linear" }), 6000, 0), 0);
});

test("context model: the same uncached tokens cost more after a longer cached prefix", () => {
  const ttftAfter = (cachedTokens: number): number => {
    const h = harness({ stepModel: "context" });
    const prefix = text("shared", cachedTokens);
    const warm = req(prefix + text("x", 16));
    h.e.submit(warm, 0);
    h.run();
    const r = req(prefix + text("y", 1000));
    const t0 = h.e.nextEventMs() === Infinity ? 10_000 : h.e.nextEventMs();
    h.e.submit(r, t0);
    h.run();
    return h.first.get(r.id)! - t0;
  };
  const short = ttftAfter(1024);
  const long = ttftAfter(16384);
  assert.ok(long > short * 1.2, `after 16k cached ${long} ms, after 1k ${short} ms`);
  // Under the linear model cached tokens are free, so both would be the same.
  assert.ok(Math.abs(isolatedTtftMs(simParams({ stepModel: "linear" }), 17384, 16384) - isolatedTtftMs(simParams({ stepModel: "linear" }), 2024, 1024)) < 1e-9);
  assert.ok(isolatedTtftMs(simParams(), 17384, 16384) > isolatedTtftMs(simParams(), 2024, 1024));
});

test("context model: decoding over a longer context takes longer, and a macro step ends at the sum of its growing steps", () => {
  const decodeTime = (promptTokens: number, out: number): number => {
    const h = harness({ stepModel: "context" });
    const r = req(text("d", promptTokens), out);
    h.e.submit(r, 0);
    h.run();
    const p = h.p;
    let expect = 0;
    for (let j = 1; j < out; j++) expect += p.stepBaseMs + p.decodeMsPerToken + p.attnDecodeMsPerContextToken * (promptTokens + j);
    const got = h.done.get(r.id)! - h.first.get(r.id)!;
    assert.ok(Math.abs(got - expect) < 1e-6, `${promptTokens}: ${got} vs ${expect}`);
    return got;
  };
  assert.ok(decodeTime(20000, 200) > decodeTime(500, 200) * 1.1);
});

test("context model: an arrival cuts a growing macro step at the step boundary the sum gives", () => {
  const h = harness({ stepModel: "context" });
  const p = h.p;
  const a = req(text("m", 30000), 400);
  h.e.submit(a, 0);
  h.run(0);
  // Run to a's first token, then let the decode macro step start.
  while (!h.first.has(a.id)) h.e.processEvent(h.e.nextEventMs());
  const t1 = h.first.get(a.id)!;
  const arrival = t1 + 137.3;
  const b = req(text("n", 500), 1);
  h.e.submit(b, arrival);
  h.run();
  // Boundaries of a's decode steps: step j lasts base + β2 + γd·(30000 + j).
  let boundary = t1;
  let j = 0;
  while (boundary < arrival) {
    j++;
    boundary += p.stepBaseMs + p.decodeMsPerToken + p.attnDecodeMsPerContextToken * (30000 + j);
  }
  // b's step: its whole prefill beside a's next decode.
  const step = p.stepBaseMs + 500 * p.prefillMsPerToken + p.decodeMsPerToken + prefillAttentionMs(p, 500, 0) + p.attnDecodeMsPerContextToken * (30000 + j + 1);
  assert.ok(Math.abs(h.first.get(b.id)! - (boundary + step)) < 1e-6, `${h.first.get(b.id)} vs ${boundary + step}`);
});
