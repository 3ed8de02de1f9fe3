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
