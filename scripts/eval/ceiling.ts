// Reference lines for the report, computed from the workload alone. Owns:
// - pooledLruHitRate: the hit rate of one LRU cache as large as the whole
//   fleet, fed the workload in arrival order. Not a bound: it ignores
//   concurrency (requests hold no blocks while others run) and queueing, so a
//   router can land on either side of it; it answers "how much reuse is there
//   to find in a fleet-sized cache?".
// - idealReuse: each request's ideal hit, the longest prefix of its blocks
//   that any earlier request had (an infinite cache shared by everyone), and
//   their share of all prompt tokens: an upper bound on any router's hit rate
//   (up to requests that arrive together and compute a prefix at once).
// - zeroQueueTtft: each request alone on an idle server holding its ideal
//   hit, plus the server's intake overhead: a lower bound on its TTFT under
//   any router (same caveat).
// Must not: run a policy.

import { BLOCK_TOKENS } from "../sim/hash.ts";
import { KvCache } from "../sim/kvcache.ts";
import { isolatedTtftMs } from "../sim/engine.ts";
import type { SimParams } from "../sim/params.ts";
import { requestOverheadMs, type Latencies } from "./replay.ts";
import type { Workload } from "./workload.ts";

export function pooledLruHitRate(workload: Workload, p: SimParams, servers: number): number {
  const cache = new KvCache((p.numGpuBlocks - 1) * servers + 1);
  let queries = 0;
  let hits = 0;
  const blocks: number[] = [];
  for (const r of workload.requests) {
    if (r.promptTokens + r.maxTokens > p.maxModelLen) continue;
    const hit = cache.longestHit(r.hashes, Math.floor((r.promptTokens - 1) / BLOCK_TOKENS));
    queries += r.promptTokens;
    hits += hit * BLOCK_TOKENS;
    blocks.length = 0;
    cache.touch(r.hashes, hit, blocks);
    cache.allocate(Math.ceil(r.promptTokens / BLOCK_TOKENS) - hit, blocks);
    for (let i = hit; i < r.hashes.length; i++) cache.cache(blocks[i], r.hashes[i]);
    cache.release(blocks);
  }
  return queries > 0 ? hits / queries : 0;
}

/** Requests every server refuses (longer than the model's context): no hit, no TTFT. */
function refused(r: { promptTokens: number; maxTokens: number }, p: SimParams): boolean {
  return r.promptTokens + r.maxTokens > p.maxModelLen;
}

export interface IdealReuse {
  /** Σ ideal hit tokens / Σ prompt tokens over requests the servers accept. */
  hitRate: number;
  /** Per request (spec id), ideal hit tokens; NaN for refused ones. */
  hitTokens: Float64Array;
}

export function idealReuse(workload: Workload, p: SimParams): IdealReuse {
  const seen = new Set<number>();
  const hitTokens = new Float64Array(workload.requests.length).fill(NaN);
  let hits = 0;
  let queries = 0;
  for (const r of workload.requests) {
    if (refused(r, p)) continue;
    const cap = Math.min(r.hashes.length, Math.floor((r.promptTokens - 1) / BLOCK_TOKENS));
    let b = 0;
    while (b < cap && seen.has(r.hashes[b])) b++;
    for (const h of r.hashes) seen.add(h);
    hitTokens[r.id] = b * BLOCK_TOKENS;
    hits += b * BLOCK_TOKENS;
    queries += r.promptTokens;
  }
  return { hitRate: queries > 0 ? hits / queries : 0, hitTokens };
}

export interface ZeroQueueBound {
  meanMs: number;
  p90Ms: number;
}

export function zeroQueueTtft(workload: Workload, p: SimParams, lat: Latencies, ideal: IdealReuse): ZeroQueueBound {
  const v: number[] = [];
  for (const r of workload.requests) {
    if (refused(r, p)) continue;
    v.push(isolatedTtftMs(p, r.promptTokens, ideal.hitTokens[r.id]) + requestOverheadMs(lat, r.promptTokens));
  }
  v.sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(0.9 * v.length));
  return { meanMs: v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN, p90Ms: v.length ? v[rank - 1] : NaN };
}
