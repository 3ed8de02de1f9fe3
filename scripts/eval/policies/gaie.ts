// The reference picker as a baseline: the Gateway API Inference Extension's
// endpoint picker (EPP) with its published defaults, reimplemented from its
// design and source, not copied. Owns: the approximate prefix index, the
// saturation filter, the three scorers and the max-score picker. Must not:
// read server internals; like the EPP it sees the metrics pages (scraped every
// 50 ms, its default refresh) and its own index.
//
// What is followed (kubernetes-sigs/gateway-api-inference-extension, at the
// commit before the EPP moved out, a70292c1^; proposal
// docs/proposals/0602-prefix-cache-aware-routing-proposal):
// - approximateprefix/hashing.go: the user input is the completions prompt or
//   the JSON of the chat messages; it is cut into blocks of
//   blockSizeTokens × 4 = 64 characters, at most 256 blocks (the input is
//   truncated to 16,384 characters); hash(block i) = H(block i bytes,
//   hash(block i−1)), the chain seeded with the target model name; a trailing
//   partial block is hashed too. (xxHash64 there; a 53-bit hash here.)
// - approximateprefix/plugin.go matchLongestPrefix: walk the hashes in order,
//   stop at the first one no endpoint holds, and credit every endpoint holding
//   each earlier hash with one block.
// - PreRequest: after the pick, every hash is added to the chosen endpoint's
//   LRU; the LRU holds the endpoint's num_gpu_blocks entries when
//   vllm:cache_config_info reports it (autoTune, on by default), else 31,250.
// - utilization/detector.go Filter (default saturation detector): keep
//   endpoints with waiting queue < 5 and KV usage < 0.8 (headroom 0); if none
//   is left, keep them all.
// - scorer/prefix: matched blocks / total blocks; scorer/queuedepth:
//   (max − q) / (max − min) over the candidates, 1 when all equal;
//   scorer/kvcacheutilization: 1 − usage; config/loader/defaults.go weights
//   queue 2, kv-cache 2, prefix 3, summed.
// - picker/maxscore: shuffle, stable sort by score, take the first (the EPP
//   seeds its shuffle from the wall clock; ours is seeded).

import { contentHash, chainHash } from "../../sim/hash.ts";
import { Rng } from "../../sim/random.ts";
import type { Policy, PolicyContext, PolicyFactory, RouteRequest } from "../policy.ts";

export interface GaieOptions {
  blockSizeTokens: number;
  maxPrefixBlocks: number;
  /** LRU entries per endpoint when the endpoint reports no num_gpu_blocks. */
  lruCapacityPerServer: number;
  autoTune: boolean;
  queueThreshold: number;
  kvCacheThreshold: number;
  weights: { prefix: number; queue: number; kvCache: number };
  scrapeIntervalMs: number;
}

export const GAIE_DEFAULTS: Readonly<GaieOptions> = Object.freeze({
  blockSizeTokens: 16,
  maxPrefixBlocks: 256,
  lruCapacityPerServer: 31250,
  autoTune: true,
  queueThreshold: 5,
  kvCacheThreshold: 0.8,
  weights: { prefix: 3, queue: 2, kvCache: 2 },
  scrapeIntervalMs: 50,
});

const CHARS_PER_TOKEN = 4;

/** The EPP's user input for hashing: the prompt, or the chat messages as JSON. */
export function gaieUserInput(req: RouteRequest, maxChars: number): string {
  if (req.path === "/v1/chat/completions") {
    try {
      return JSON.stringify(JSON.parse(req.body()).messages ?? null).slice(0, maxChars);
    } catch {
      return "";
    }
  }
  return req.promptPrefix(maxChars);
}

export function gaieHashes(req: RouteRequest, o: Readonly<GaieOptions>): number[] {
  const blockChars = o.blockSizeTokens * CHARS_PER_TOKEN;
  const input = gaieUserInput(req, blockChars * o.maxPrefixBlocks);
  if (input.length < blockChars) return [];
  const out: number[] = [];
  let prev = contentHash(req.model, 0, req.model.length);
  let i = 0;
  for (; i + blockChars <= input.length; i += blockChars) {
    prev = chainHash(prev, contentHash(input, i, i + blockChars));
    out.push(prev);
  }
  if (i < input.length) out.push(chainHash(prev, contentHash(input, i, input.length)));
  return out;
}

/** hash → endpoints holding it, with one LRU per endpoint whose evictions clear the map. */
class ApproxIndex {
  private readonly holders = new Map<number, Set<number>>();
  private readonly lru: Map<number, true>[];
  constructor(n: number) {
    this.lru = Array.from({ length: n }, () => new Map());
  }

  /** Blocks credited per endpoint for the longest run of held hashes. */
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
      let s = this.holders.get(h);
      if (s === undefined) this.holders.set(h, (s = new Set()));
      s.add(e);
    }
  }
}

export function gaiePolicy(o: Readonly<GaieOptions> = GAIE_DEFAULTS): PolicyFactory {
  return {
    name: "gaie-approx",
    description: `Gateway API Inference Extension picker defaults: ${o.blockSizeTokens * CHARS_PER_TOKEN}-char blocks × ${o.maxPrefixBlocks}, per-server LRU, prefix ${o.weights.prefix} : queue ${o.weights.queue} : KV ${o.weights.kvCache}, saturation at queue ${o.queueThreshold} / KV ${o.kvCacheThreshold}`,
    scrapeIntervalMs: o.scrapeIntervalMs,
    create(ctx: PolicyContext): Policy {
      const n = ctx.endpoints.length;
      const rng = new Rng(ctx.seed).fork("gaie-approx");
      const index = new ApproxIndex(n);
      const order = Array.from({ length: n }, (_, i) => i);
      const score = new Float64Array(n);
      return {
        pick(req) {
          const hashes = gaieHashes(req, o);
          const matched = index.match(hashes, n);
          const m = ctx.endpoints.map((e) => ctx.scraped(e));
          // Saturation filter, failing open.
          let cand = order.filter((i) => m[i].waiting < o.queueThreshold && m[i].kvCacheUsage < o.kvCacheThreshold);
          if (cand.length === 0) cand = order.slice();
          let qMin = Infinity;
          let qMax = -Infinity;
          for (const i of cand) {
            qMin = Math.min(qMin, m[i].waiting);
            qMax = Math.max(qMax, m[i].waiting);
          }
          for (const i of cand) {
            const prefix = hashes.length === 0 ? 0 : matched[i] / hashes.length;
            const queue = qMax === qMin ? 1 : (qMax - m[i].waiting) / (qMax - qMin);
            const kv = 1 - m[i].kvCacheUsage;
            const clamp = (x: number): number => Math.min(1, Math.max(0, x));
            score[i] = o.weights.prefix * clamp(prefix) + o.weights.queue * clamp(queue) + o.weights.kvCache * clamp(kv);
          }
          rng.shuffle(cand);
          let best = cand[0];
          for (const i of cand) if (score[i] > score[best]) best = i;
          const blocks = o.autoTune && m[best].numGpuBlocks > 0 ? m[best].numGpuBlocks : o.lruCapacityPerServer;
          index.add(hashes, best, blocks);
          return ctx.endpoints[best];
        },
      };
    },
  };
}
