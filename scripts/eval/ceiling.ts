// A reference line for the report: the prefix-cache hit rate of one LRU cache
// as large as the whole fleet, fed the workload in arrival order. Owns that
// computation. Must not: be mistaken for a policy or a bound. It ignores
// concurrency (requests hold no blocks while others run) and queueing, so a
// router can land on either side of it; it answers "how much reuse is there
// to find in a fleet-sized cache?".

import { BLOCK_TOKENS } from "../sim/hash.ts";
import { KvCache } from "../sim/kvcache.ts";
import type { SimParams } from "../sim/params.ts";
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
