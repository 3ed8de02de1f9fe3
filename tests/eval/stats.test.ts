// Honest statistics: bootstrap intervals that hold the point estimate and
// narrow with more data, a sustainable-load search that is consistent with
// the loads it tried, and reference lines that bound what routers achieve.
import assert from "node:assert/strict";
import { test } from "node:test";
import { idealReuse, zeroQueueTtft } from "../../scripts/eval/ceiling.ts";
import { sharedPrefix } from "../../scripts/eval/generators.ts";
import { REGISTRY } from "../../scripts/eval/policies/index.ts";
import { DEFAULT_LATENCIES, replay } from "../../scripts/eval/replay.ts";
import { searchSustainableLoad } from "../../scripts/eval/run.ts";
import { bootstrapCis, percentile, summarize, windowGroups, type GroupedSample } from "../../scripts/eval/stats.ts";
import { DEFAULT_SIM_PARAMS, simParams } from "../../scripts/sim/params.ts";
import { Rng } from "../../scripts/sim/random.ts";

/** n requests over `windows` windows, lognormal-ish TTFTs whose level drifts by window, hits ~30%. */
function synthetic(n: number, windows: number, seed: number): GroupedSample {
  const rng = new Rng(seed);
  const arrival = Float64Array.from({ length: n }, (_, i) => i);
  const group = windowGroups(arrival, windows);
  const ttftMs = Float64Array.from(group, (g) => 200 * Math.exp(rng.float() * 2) * (1 + 0.3 * Math.sin(g)));
  const promptTokens = Float64Array.from({ length: n }, () => 1000 + rng.int(4000));
  const hitTokens = Float64Array.from(promptTokens, (p) => (rng.float() < 0.3 ? Math.floor(p * rng.float()) : 0));
  return { group, ttftMs, hitTokens, promptTokens };
}

function point(s: GroupedSample): { mean: number; p90: number; hit: number } {
  const sorted = Float64Array.from(s.ttftMs).sort();
  return {
    mean: s.ttftMs.reduce((a, b) => a + b, 0) / s.ttftMs.length,
    p90: percentile(sorted, 0.9),
    hit: s.hitTokens.reduce((a, b) => a + b, 0) / s.promptTokens.reduce((a, b) => a + b, 0),
  };
}

const width = (c: { lo: number; hi: number }): number => c.hi - c.lo;

test("bootstrap: the 95% interval holds the point estimate, is seeded, and narrows with more data", () => {
  const opts = { windows: 40, resamples: 400, level: 0.95, seed: 3 };
  // More data = a longer trace: more windows of the same length (within-window
  // correlation is what the block bootstrap keeps, so more requests per window would not narrow it).
  const small = synthetic(400, 40, 1);
  const large = synthetic(6400, 640, 1);
  for (const s of [small, large]) {
    const ci = bootstrapCis(s, opts);
    const p = point(s);
    assert.ok(ci.ttftMeanMs.lo <= p.mean && p.mean <= ci.ttftMeanMs.hi, `mean ${p.mean} in [${ci.ttftMeanMs.lo}, ${ci.ttftMeanMs.hi}]`);
    assert.ok(ci.ttftP90Ms.lo <= p.p90 && p.p90 <= ci.ttftP90Ms.hi, `p90 ${p.p90}`);
    assert.ok(ci.hitRate.lo <= p.hit && p.hit <= ci.hitRate.hi, `hit ${p.hit}`);
    assert.ok(width(ci.ttftMeanMs) > 0 && width(ci.hitRate) > 0);
    assert.deepEqual(bootstrapCis(s, opts), ci, "same seed, same interval");
  }
  const a = bootstrapCis(small, opts);
  const b = bootstrapCis(large, opts);
  // 16× the requests: intervals about 4× narrower; ask for at least 2×.
  assert.ok(width(b.ttftMeanMs) * 2 < width(a.ttftMeanMs), `mean: ${width(b.ttftMeanMs)} vs ${width(a.ttftMeanMs)}`);
  assert.ok(width(b.ttftP90Ms) * 2 < width(a.ttftP90Ms), `p90: ${width(b.ttftP90Ms)} vs ${width(a.ttftP90Ms)}`);
  assert.ok(width(b.hitRate) * 2 < width(a.hitRate), `hit: ${width(b.hitRate)} vs ${width(a.hitRate)}`);
  // A higher level gives a wider interval.
  assert.ok(width(bootstrapCis(small, { ...opts, level: 0.99 }).ttftMeanMs) > width(a.ttftMeanMs));
});

test("bootstrap windows: equal slices of the arrival span", () => {
  assert.deepEqual([...windowGroups([0, 1, 2, 3, 4, 5, 6, 7, 8, 10], 5)], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
  assert.deepEqual([...windowGroups([5, 5, 5], 4)], [0, 0, 0]);
});

/** A policy's p90 TTFT against load: flat, then a queueing blow-up at `capacity`. */
const curve = (capacity: number) => (load: number): number => 300 + 200 * load / capacity + (load > capacity ? 5000 * (load - capacity) : 0);

test("sustainable load: the answer passed, the next probe failed, within the bisection's resolution, and more capacity sustains more", async () => {
  const loads = [1, 2, 4, 6, 8, 10, 12, 16];
  const results: number[] = [];
  for (const capacity of [3.3, 5.1, 9.7]) {
    const f = curve(capacity);
    const probes: number[] = [];
    const r = await searchSustainableLoad(new Map(loads.map((l) => [l, f(l)])), async (l) => {
      probes.push(l);
      return f(l);
    }, 6);
    assert.equal(probes.length, 6);
    assert.ok(f(r.load) < 1000 && f(r.failsAt) >= 1000, `capacity ${capacity}: ${r.load} passes, ${r.failsAt} fails`);
    assert.ok(r.failsAt / r.load < 1.05, "bracket narrowed");
    // The true threshold (p90 = 1 s, just past capacity) lies in the bracket.
    const threshold = capacity + (1000 - 300 - 200) / 5000;
    assert.ok(r.load <= threshold && threshold <= r.failsAt + 1e-9, `${threshold} in [${r.load}, ${r.failsAt}]`);
    assert.equal(r.p90AtLoad, f(r.load));
    results.push(r.load);
  }
  assert.ok(results[0] < results[1] && results[1] < results[2], `${results}`);
});

test("sustainable load: a pass above a failure is not reported; every load passing or failing is said so", async () => {
  // Fails at 4×, passes again at 6× (noise): the answer stays below 4×.
  const bumpy = new Map([[1, 400], [2, 600], [4, 1200], [6, 900], [8, 3000]]);
  const r = await searchSustainableLoad(bumpy, async (l) => (l < 3 ? 800 : 1100), 3);
  assert.ok(r.load >= 2 && r.load < 4 && r.failsAt <= 4);
  const all = await searchSustainableLoad(new Map([[1, 100], [2, 200]]), async () => assert.fail("no probe needed"), 3);
  assert.equal(all.load, 2);
  assert.equal(all.failsAt, Infinity);
  // Below the lowest load tried: halve until a load passes, then bisect.
  const low = curve(0.3);
  const below = await searchSustainableLoad(new Map([[1, low(1)], [2, low(2)]]), async (l) => low(l), 6);
  assert.ok(low(below.load) < 1000 && low(below.failsAt) >= 1000 && below.load > 0.25 && below.failsAt <= 0.5, `${below.load}..${below.failsAt}`);
  const none = await searchSustainableLoad(new Map([[1, 1500], [2, 2000]]), async () => 5000, 3);
  assert.equal(none.load, 0);
  assert.equal(none.failsAt, 0.125);
});

test("reference lines: no policy beats the ideal reuse or the zero-queue bound", async () => {
  const p = simParams();
  const w = sharedPrefix({ seed: 5, model: DEFAULT_SIM_PARAMS.model, requests: 250 });
  const ideal = idealReuse(w, p);
  const bound = zeroQueueTtft(w, p, DEFAULT_LATENCIES, ideal);
  assert.ok(ideal.hitRate > 0.5 && ideal.hitRate < 1, `${ideal.hitRate}`);
  for (const name of ["random", "gaie-approx", "oracle"] as const) {
    const rec = await replay(w, REGISTRY[name]!, { servers: 3, timeScale: 1, seed: 1 });
    const s = summarize(rec);
    assert.ok(s.hitRate <= ideal.hitRate + 1e-12, `${name} hit ${s.hitRate} ≤ ${ideal.hitRate}`);
    assert.ok(s.ttftMeanMs >= bound.meanMs, `${name} mean ${s.ttftMeanMs} ≥ ${bound.meanMs}`);
    for (let i = 0; i < rec.arrivalMs.length; i++) assert.ok(rec.hitTokens[i] <= ideal.hitTokens[i], `${name} request ${i}`);
  }
});
