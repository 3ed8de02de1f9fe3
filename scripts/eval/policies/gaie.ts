// The reference picker as a baseline: the endpoint picker (EPP) of the Gateway
// API Inference Extension, which moved to llm-d/llm-d-router in May 2026, with
// the default configuration it loads when given none. Reimplemented from its
// source, not copied. Owns: the approximate prefix producer (estimate
// tokenizer input, chained block hashes, per-endpoint LRU index), the
// llm-d scorers (queue, KV utilization, load-aware, prefix) and the max-score
// picker, shared with llm-d.ts; and the `gaie-approx` profile. Must not: read
// server internals; like the EPP it sees the metrics pages, scraped every
// 50 ms (--refresh-metrics-interval default, pkg/epp/server/options.go), and
// its own index. No in-flight counts: the default profile has no scorer that
// uses them.
//
// Source: llm-d/llm-d-router at ebab687927f5331c1b39defcb579a07951bce56c
// (2026-08-21):
// - pkg/epp/config/loader/defaults.go loadDefaultConfig: one profile,
//   queue-scorer 2, kv-cache-utilization-scorer 2, prefix-cache-scorer 3,
//   summed (pkg/epp/scheduling/scheduler_profile.go, each score clamped to
//   [0,1]), max-score picker added by ensureSchedulingLayer. No filter: the
//   utilization saturation detector is flow control's admission gate for
//   sheddable requests, not a scheduling filter (the previous version of this
//   baseline filtered on queue < 5 and KV < 0.8, which the reference does not).
// - requestcontrol/dataproducer/approximateprefix (types.go, plugin.go): block
//   size from the endpoint's vllm:cache_config_info block_size (autoTune, on by
//   default), floored at minBlockSizeTokens = 64, so 16-token vLLM blocks give
//   64-token blocks; at most maxPrefixTokensToMatch = 131,072 tokens
//   (= 2,048 blocks of 64); matchLongestPrefix walks the hashes, stops at the
//   first one no endpoint holds and credits each holder of each earlier hash;
//   PreRequest adds every hash to the chosen endpoint's LRU, sized
//   num_gpu_blocks from cache_config_info (autoTune) else 31,250 entries (the
//   LRU counts 64-token entries against a 16-token-block count: as there).
// - dataproducer/prefixhash/hashing.go: hash(block i) = xxHash64(content hash
//   of block i, hash(i−1)), the chain seeded with the target model (cache salt
//   none here); the trailing partial block is hashed too.
// - dataproducer/tokenizer/estimate.go (the token producer the framework
//   auto-creates): 4 bytes per pseudo-token, so a 64-token block is 256
//   characters of the input (request-text.ts llmdEstimateInput).
// - scorer/prefix: matched blocks / total blocks (matchLengthWeight 0);
//   scorer/queuedepth: (max − q) / (max − min) over the candidates, 1 when all
//   equal; scorer/kvcacheutilization: 1 − usage; scorer/loadaware: 0.5 at an
//   empty queue, else 0.5·(1 − min(q, 128)/128).
// - picker/maxscore: shuffle, stable sort by score, take the first (the EPP
//   shuffles with a wall-clock seed; ours is seeded).
// Differences: a 53-bit hash instead of xxHash64; the index is updated at
// once (there, by a goroutine right after PreRequest).

import { chainHash, contentHash } from "../../sim/hash.ts";
import { Rng } from "../../sim/random.ts";
import type { Policy, PolicyContext, PolicyFactory, RouteRequest, Scrape } from "../policy.ts";
import { llmdEstimateInput } from "./request-text.ts";

/** llm-d-router source the baselines in this file and llm-d.ts follow. */
export const LLMD_ROUTER_COMMIT = "ebab687927f5331c1b39defcb579a07951bce56c";

/** approximateprefix defaults (types.go, plugin.go) and the estimate tokenizer's bytes per token. */
export interface ApproxPrefixOptions {
  /** Configured block size in tokens, used when autoTune finds no block_size. */
  blockSizeTokens: number;
  /** Floor on the block size (plugin.go minBlockSizeTokens). */
  minBlockSizeTokens: number;
  maxPrefixTokensToMatch: number;
  /** LRU entries per endpoint when the endpoint reports no num_gpu_blocks. */
  lruCapacityPerServer: number;
  autoTune: boolean;
  /** estimate.go bytesPerToken. */
  charsPerToken: number;
}

export const APPROX_PREFIX_DEFAULTS: Readonly<ApproxPrefixOptions> = Object.freeze({
  blockSizeTokens: 16,
  minBlockSizeTokens: 64,
  maxPrefixTokensToMatch: 131072,
  lruCapacityPerServer: 31250,
  autoTune: true,
  charsPerToken: 4,
});

/** EPP metrics refresh (--refresh-metrics-interval default). */
export const LLMD_REFRESH_MS = 50;

/** GetBlockSize: the first endpoint's reported block size under autoTune, floored at the minimum. */
export function approxBlockTokens(o: Readonly<ApproxPrefixOptions>, reported: number): number {
  const b = o.autoTune && reported > 0 ? reported : o.blockSizeTokens;
  return Math.max(b, o.minBlockSizeTokens);
}

/** Chained hashes of the request's estimate-tokenizer input: full blocks, then the partial tail, at most maxPrefixTokens/blockTokens. */
export function approxHashes(req: RouteRequest, o: Readonly<ApproxPrefixOptions>, blockTokens: number): number[] {
  const blockChars = blockTokens * o.charsPerToken;
  const maxBlocks = Math.floor(o.maxPrefixTokensToMatch / blockTokens);
  const input = llmdEstimateInput(req);
  const end = Math.min(input.length, maxBlocks * blockChars);
  const out: number[] = [];
  let prev = contentHash(req.model, 0, req.model.length);
  for (let i = 0; i < end; i += blockChars) {
    prev = chainHash(prev, contentHash(input, i, Math.min(i + blockChars, end)));
    out.push(prev);
  }
  return out;
}

/** hash → endpoints holding it, with one LRU per endpoint whose evictions clear the map (approximateprefix/indexer.go). */
export class ApproxIndex {
  private readonly holders = new Map<number, Set<number>>();
  private readonly lru: Map<number, true>[];
  constructor(n: number) {
    this.lru = Array.from({ length: n }, () => new Map());
  }

  /** matchLongestPrefix: blocks credited per endpoint for the run of hashes some endpoint holds. */
  match(hashes: readonly number[], n: number): Int32Array {
    const res = new Int32Array(n);
    for (const h of hashes) {
      const s = this.holders.get(h);
      if (s === undefined || s.size === 0) break;
      for (const e of s) res[e]++;
    }
    return res;
  }

  add(hashes: readonly number[], e: number, capacity: number): void {
    const lru = this.lru[e];
    for (const h of hashes) {
      if (lru.has(h)) lru.delete(h);
      lru.set(h, true);
      if (lru.size > capacity) {
        const oldest = lru.keys().next().value as number;
        lru.delete(oldest);
        const s = this.holders.get(oldest);
        if (s) {
          s.delete(e);
          if (s.size === 0) this.holders.delete(oldest);
        }
      }
    }
    for (const h of hashes) {
      if (!lru.has(h)) continue; // evicted again within this request (capacity below its length)
      let s = this.holders.get(h);
      if (s === undefined) this.holders.set(h, (s = new Set()));
      s.add(e);
    }
  }
}

/** The approximate prefix producer: hash, match, and record the pick (Produce + PreRequest). */
export class ApproxPrefixProducer {
  private readonly index: ApproxIndex;
  constructor(private readonly ctx: PolicyContext, private readonly o: Readonly<ApproxPrefixOptions> = APPROX_PREFIX_DEFAULTS) {
    this.index = new ApproxIndex(ctx.endpoints.length);
  }

  /** Per-endpoint prefix score (matched / total blocks) and the hashes to record after the pick. */
  produce(req: RouteRequest, m: readonly Scrape[]): { score: Float64Array; hashes: number[] } {
    const n = this.ctx.endpoints.length;
    const hashes = approxHashes(req, this.o, approxBlockTokens(this.o, m[0].blockSize));
    const matched = this.index.match(hashes, n);
    const score = new Float64Array(n);
    if (hashes.length > 0) for (let i = 0; i < n; i++) score[i] = matched[i] / hashes.length;
    return { score, hashes };
  }

  record(hashes: readonly number[], e: number, m: Scrape): void {
    const capacity = this.o.autoTune && m.numGpuBlocks > 0 ? m.numGpuBlocks : this.o.lruCapacityPerServer;
    this.index.add(hashes, e, capacity);
  }
}

/** scorer/queuedepth. */
export function queueScores(m: readonly Scrape[]): Float64Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of m) {
    lo = Math.min(lo, s.waiting);
    hi = Math.max(hi, s.waiting);
  }
  return Float64Array.from(m, (s) => (hi === lo ? 1 : (hi - s.waiting) / (hi - lo)));
}

/** scorer/kvcacheutilization. */
export function kvScores(m: readonly Scrape[]): Float64Array {
  return Float64Array.from(m, (s) => 1 - s.kvCacheUsage);
}

/** scorer/loadaware with its default threshold of 128 waiting requests. */
export function loadAwareScores(m: readonly Scrape[], threshold = 128): Float64Array {
  return Float64Array.from(m, (s) => (s.waiting === 0 ? 0.5 : 0.5 * (1 - Math.min(s.waiting, threshold) / threshold)));
}

/** Σ weight · clamp(score) (scheduler_profile.go runScorerPlugins). */
export function weightedSum(n: number, parts: readonly [number, Float64Array][]): Float64Array {
  const total = new Float64Array(n);
  for (const [w, s] of parts) for (let i = 0; i < n; i++) total[i] += w * Math.min(1, Math.max(0, s[i]));
  return total;
}

/** picker/maxscore: a seeded shuffle, then the first of the highest scores. */
export function maxScorePick(score: Float64Array, rng: Rng): number {
  const order = Array.from({ length: score.length }, (_, i) => i);
  rng.shuffle(order);
  let best = order[0];
  for (const i of order) if (score[i] > score[best]) best = i;
  return best;
}

export interface GaieWeights {
  prefix: number;
  queue: number;
  kvCache: number;
}

/** defaults.go weights. */
export const GAIE_WEIGHTS: Readonly<GaieWeights> = Object.freeze({ prefix: 3, queue: 2, kvCache: 2 });

export function gaiePolicy(weights: Readonly<GaieWeights> = GAIE_WEIGHTS, o: Readonly<ApproxPrefixOptions> = APPROX_PREFIX_DEFAULTS): PolicyFactory {
  return {
    name: "gaie-approx",
    description: `reference picker's default profile (llm-d-router defaults.go @${LLMD_ROUTER_COMMIT.slice(0, 8)}): approximate prefix index, ${o.minBlockSizeTokens}-token blocks up to ${o.maxPrefixTokensToMatch} tokens, prefix ${weights.prefix} : queue ${weights.queue} : KV ${weights.kvCache}, max score, no filter, metrics every ${LLMD_REFRESH_MS} ms`,
    scrapeIntervalMs: LLMD_REFRESH_MS,
    create(ctx: PolicyContext): Policy {
      const n = ctx.endpoints.length;
      const rng = new Rng(ctx.seed).fork("gaie-approx");
      const producer = new ApproxPrefixProducer(ctx, o);
      return {
        pick(req) {
          const m = ctx.endpoints.map((e) => ctx.scraped(e));
          const { score: prefix, hashes } = producer.produce(req, m);
          const total = weightedSum(n, [[weights.prefix, prefix], [weights.queue, queueScores(m)], [weights.kvCache, kvScores(m)]]);
          const best = maxScorePick(total, rng);
          producer.record(hashes, best, m[best]);
          return ctx.endpoints[best];
        },
      };
    },
  };
}
