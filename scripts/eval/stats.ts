// Summary figures of one replay. Owns: the report contract's per-policy fields
// and the extra ones. Must not: run anything or format output.
//
// Contract fields (report.json, one object per policy):
// - hitRate: Σ prefix-cache hit tokens / Σ prompt tokens looked up, over all
//   servers: the sum of vllm:prefix_cache_hits_total over the sum of
//   vllm:prefix_cache_queries_total.
// - ttftMeanMs, ttftP50Ms, ttftP90Ms, ttftP99Ms: time to first token of the
//   requests that produced one, from arrival at the router (virtual ms).
// - throughputTokensPerS: prompt + output tokens of completed requests over
//   the span from the first arrival to the last completion (virtual s).
// - imbalance: max over mean of the servers' busy time (time spent in steps).
// - decisionsPerS: routing decisions per wall-clock second spent inside
//   pick(), i.e. the router's own speed; the only non-deterministic field.

import { labelSeed, Rng } from "../sim/random.ts";
import type { ReplayRecord } from "./replay.ts";

export interface PolicySummary {
  hitRate: number;
  ttftMeanMs: number;
  ttftP50Ms: number;
  ttftP90Ms: number;
  ttftP99Ms: number;
  throughputTokensPerS: number;
  imbalance: number;
  decisionsPerS: number;
  // ---- extra ----
  requests: number;
  completed: number;
  refused: number;
  e2eMeanMs: number;
  e2eP90Ms: number;
  outputTokensPerS: number;
  preemptions: number;
  /** Share of requests each server received. */
  serverShare: number[];
  /** Per-server hit rate. */
  serverHitRate: number[];
  timeScale: number;
  servers: number;
  replayWallS: number;
}

/** Nearest-rank percentile of a sorted array (q in 0..1). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

export function ttftValues(rec: ReplayRecord): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < rec.arrivalMs.length; i++) {
    const f = rec.firstTokenMs[i];
    if (f === f) out.push(f - rec.arrivalMs[i]);
  }
  return Float64Array.from(out).sort();
}

export function summarize(rec: ReplayRecord): PolicySummary {
  const n = rec.arrivalMs.length;
  const ttft = ttftValues(rec);
  let ttftSum = 0;
  for (const v of ttft) ttftSum += v;
  const e2e: number[] = [];
  let tokens = 0;
  let outTokens = 0;
  let completed = 0;
  let refused = 0;
  let first = Infinity;
  let last = -Infinity;
  const perServer = new Array<number>(rec.endpoints.length).fill(0);
  for (let i = 0; i < n; i++) {
    first = Math.min(first, rec.arrivalMs[i]);
    if (rec.server[i] >= 0) perServer[rec.server[i]]++;
    if (rec.refused[i]) {
      refused++;
      continue;
    }
    const c = rec.completeMs[i];
    if (c === c) {
      completed++;
      last = Math.max(last, c);
      tokens += rec.promptTokens[i] + rec.outputTokens[i];
      outTokens += rec.outputTokens[i];
      e2e.push(c - rec.arrivalMs[i]);
    }
  }
  e2e.sort((a, b) => a - b);
  const q = rec.prefixQueries.reduce((a, b) => a + b, 0);
  const h = rec.prefixHits.reduce((a, b) => a + b, 0);
  const busyMean = rec.busyMs.reduce((a, b) => a + b, 0) / rec.busyMs.length;
  const spanS = last > first ? (last - first) / 1000 : NaN;
  return {
    hitRate: q > 0 ? h / q : 0,
    ttftMeanMs: ttft.length ? ttftSum / ttft.length : NaN,
    ttftP50Ms: percentile(ttft, 0.5),
    ttftP90Ms: percentile(ttft, 0.9),
    ttftP99Ms: percentile(ttft, 0.99),
    throughputTokensPerS: tokens / spanS,
    imbalance: busyMean > 0 ? Math.max(...rec.busyMs) / busyMean : 1,
    decisionsPerS: rec.decisionWallMs > 0 ? rec.decisions / (rec.decisionWallMs / 1000) : Infinity,
    requests: n,
    completed,
    refused,
    e2eMeanMs: e2e.length ? e2e.reduce((a, b) => a + b, 0) / e2e.length : NaN,
    e2eP90Ms: percentile(e2e, 0.9),
    outputTokensPerS: outTokens / spanS,
    preemptions: rec.preemptions.reduce((a, b) => a + b, 0),
    serverShare: perServer.map((c) => c / Math.max(1, n)),
    serverHitRate: rec.prefixQueries.map((qq, i) => (qq > 0 ? rec.prefixHits[i] / qq : 0)),
    timeScale: rec.timeScale,
    servers: rec.endpoints.length,
    replayWallS: rec.wallMs / 1000,
  };
}

// ---- bootstrap confidence intervals ----
//
// Why: one replay is one draw of a workload; averaging seeds that only change
// filler text is not an interval (on the shared trace they were bit-identical).
// We resample the requests themselves, in blocks: the arrival span is cut into
// equal time windows (in trace time, so the same windows at every load), and
// a resample draws as many windows with replacement, keeping every request of
// a drawn window together (a block bootstrap: requests close in time share
// queues and caches, so resampling them one by one would understate the
// spread). The 95% interval is the 2.5th–97.5th percentile of the resampled
// statistic. Seeded, so reports repeat.

/** A closed interval [lo, hi]. */
export interface Ci {
  lo: number;
  hi: number;
}

export interface BootstrapOptions {
  /** Number of windows the arrival span is cut into. */
  windows: number;
  resamples: number;
  /** Two-sided level, e.g. 0.95. */
  level: number;
  seed: number;
}

export const DEFAULT_BOOTSTRAP: Readonly<BootstrapOptions> = Object.freeze({ windows: 40, resamples: 500, level: 0.95, seed: 1 });

/** Per-request figures to resample, grouped (group ∈ [0, groups)). Requests without a TTFT are left out. */
export interface GroupedSample {
  group: Int32Array;
  ttftMs: Float64Array;
  hitTokens: Float64Array;
  promptTokens: Float64Array;
}

export interface BootstrapCis {
  ttftMeanMs: Ci;
  ttftP90Ms: Ci;
  hitRate: Ci;
}

/** Equal windows over [min, max] of arrival: the group of each request. */
export function windowGroups(arrivalMs: ArrayLike<number>, windows: number): Int32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < arrivalMs.length; i++) {
    lo = Math.min(lo, arrivalMs[i]);
    hi = Math.max(hi, arrivalMs[i]);
  }
  const width = (hi - lo) / windows;
  const out = new Int32Array(arrivalMs.length);
  for (let i = 0; i < arrivalMs.length; i++) out[i] = width > 0 ? Math.min(windows - 1, Math.floor((arrivalMs[i] - lo) / width)) : 0;
  return out;
}

/** The requests of a replay that produced a token, grouped by arrival window. */
export function replaySample(rec: ReplayRecord, windows: number): GroupedSample {
  const keep: number[] = [];
  for (let i = 0; i < rec.arrivalMs.length; i++) if (rec.firstTokenMs[i] === rec.firstTokenMs[i]) keep.push(i);
  const groups = windowGroups(keep.map((i) => rec.arrivalMs[i]), windows);
  return {
    group: groups,
    ttftMs: Float64Array.from(keep, (i) => rec.firstTokenMs[i] - rec.arrivalMs[i]),
    hitTokens: Float64Array.from(keep, (i) => rec.hitTokens[i]),
    promptTokens: Float64Array.from(keep, (i) => rec.promptTokens[i]),
  };
}

export function bootstrapCis(sample: GroupedSample, o: BootstrapOptions = DEFAULT_BOOTSTRAP): BootstrapCis {
  let groups = 0;
  for (const g of sample.group) groups = Math.max(groups, g + 1);
  // Members of each group, so a resample is a concatenation of index lists.
  const members: number[][] = Array.from({ length: groups }, () => []);
  sample.group.forEach((g, i) => members[g].push(i));
  const present = members.filter((m) => m.length > 0);
  const rng = new Rng((o.seed ^ labelSeed("bootstrap")) >>> 0);
  const means = new Float64Array(o.resamples);
  const p90s = new Float64Array(o.resamples);
  const hits = new Float64Array(o.resamples);
  const buf = new Float64Array(sample.ttftMs.length * 2 + 16);
  for (let b = 0; b < o.resamples; b++) {
    let n = 0;
    let sum = 0;
    let hit = 0;
    let prompt = 0;
    let scratch = buf;
    for (let k = 0; k < present.length; k++) {
      const m = present[rng.int(present.length)];
      if (n + m.length > scratch.length) {
        const grown = new Float64Array((n + m.length) * 2);
        grown.set(scratch.subarray(0, n));
        scratch = grown;
      }
      for (const i of m) {
        const t = sample.ttftMs[i];
        scratch[n++] = t;
        sum += t;
        hit += sample.hitTokens[i];
        prompt += sample.promptTokens[i];
      }
    }
    const drawn = scratch.subarray(0, n).sort();
    means[b] = n > 0 ? sum / n : NaN;
    p90s[b] = percentile(drawn, 0.9);
    hits[b] = prompt > 0 ? hit / prompt : 0;
  }
  const ci = (v: Float64Array): Ci => {
    v.sort();
    const a = (1 - o.level) / 2;
    return { lo: percentile(v, a), hi: percentile(v, 1 - a) };
  };
  return { ttftMeanMs: ci(means), ttftP90Ms: ci(p90s), hitRate: ci(hits) };
}
