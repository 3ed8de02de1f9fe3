// AIBrix's prefix-cache router (routing strategy "prefix-cache", KV sync off)
// as a baseline. Owns: the global prefix hash table (chained hashes of
// fixed-size byte blocks, one LRU store with idle expiry, block → model →
// pods), the load-imbalance gate and the matched-pod selection. Must not: read
// server metrics: this router uses only the gateway's own running-request
// counts (realtime_num_requests_running, kept by the gateway itself), so it
// never scrapes.
//
// Source: vllm-project/aibrix at e3e10f9e4aebe9aac5e7d992fb87d2648e01628b
// (2026-08-23):
// - pkg/plugins/gateway/algorithms/prefix_cache.go routeOriginal: character
//   tokenizer (the text's bytes); if max − min running requests over the
//   ready pods > AIBRIX_PREFIX_CACHE_POD_RUNNING_REQUEST_IMBALANCE_ABS_COUNT,
//   only the least-loaded pods stay candidates for the match; the matched
//   pods are shuffled, stably sorted by match percent (desc) then running
//   requests (asc), and the first with running ≤ mean + factor · σ (sample
//   standard deviation over all ready pods) wins; no match or nobody within
//   the bound → a uniformly random least-loaded ready pod
//   (least_request.go selectTargetPodWithLeastRequestCount). After the pick,
//   every block hash is added for (model, pod).
// - pkg/utils/prefixcacheindexer/hash.go: blocks of
//   AIBRIX_PREFIX_CACHE_BLOCK_SIZE bytes, full blocks only; hash(block i) =
//   xxHash64(seed; hash(i−1) as 8 bytes, block bytes), the first parent being
//   the seed; match walks the chain and keeps only pods holding every block so
//   far, percent = (i + 1)·100 / blocks (integer); one LRU store of
//   AIBRIX_PREFIX_CACHE_BLOCK_NUMBER entries shared by all models and pods
//   (pkg/utils/lrustore: Put refreshes an entry's age and moves it to the
//   head, Get does not), entries idle longer than 20 minutes dropped by a 1 s
//   sweep.
// - Defaults: the deployed ones, config/gateway/gateway-plugin/
//   gateway-plugin.yaml and config/overlays/release/gateway_plugins_patch.yaml
//   (also the README's table): block 128 bytes, 200,000 blocks, imbalance 16,
//   standard-deviation factor 2, character tokenizer. (hash.go and
//   prefix_cache.go compile in 4, 8 and 1 when the variables are unset.)
// - Text: pkg/plugins/gateway/util.go (request-text.ts joinedContents).
// Differences: a 53-bit hash; bytes are UTF-16 code units (equal for ASCII);
// the idle sweep is exact (entries age in LRU order, so expiry pops the tail).

import { chainHash, contentHash } from "../../sim/hash.ts";
import { Rng } from "../../sim/random.ts";
import { InFlight, type Policy, type PolicyContext, type PolicyFactory } from "../policy.ts";
import { joinedContents } from "./request-text.ts";

export const AIBRIX_COMMIT = "e3e10f9e4aebe9aac5e7d992fb87d2648e01628b";

export interface AibrixOptions {
  blockBytes: number;
  blockNumber: number;
  imbalanceAbsCount: number;
  stdDevFactor: number;
  evictionIntervalMs: number;
  evictionIdleMs: number;
}

export const AIBRIX_DEFAULTS: Readonly<AibrixOptions> = Object.freeze({
  blockBytes: 128,
  blockNumber: 200_000,
  imbalanceAbsCount: 16,
  stdDevFactor: 2,
  evictionIntervalMs: 1_000,
  evictionIdleMs: 20 * 60_000,
});

/** Chained hashes of the full `blockBytes` blocks of `text` (getPrefixHashes). */
export function aibrixHashes(text: string, blockBytes: number): number[] {
  const out: number[] = [];
  let parent = 0;
  for (let i = 0; i + blockBytes <= text.length; i += blockBytes) {
    parent = chainHash(parent, contentHash(text, i, i + blockBytes));
    out.push(parent);
  }
  return out;
}

/** The prefix hash table: block → model → pods, in one LRU store with idle expiry. */
export class AibrixHashTable {
  /** Insertion order = LRU order (oldest first); value: model → pods. */
  private readonly store = new Map<number, { at: number; models: Map<string, Set<number>> }>();
  private lastSweep = -Infinity;

  constructor(private readonly o: Readonly<AibrixOptions>) {}

  get size(): number {
    return this.store.size;
  }

  /** seqSearchPrefix: pod → match percent, narrowing `ready` (as the Go code does) to pods holding every block so far. */
  match(hashes: readonly number[], model: string, ready: Set<number>): Map<number, number> {
    const out = new Map<number, number>();
    for (let i = 0; i < hashes.length; i++) {
      const pods = this.store.get(hashes[i])?.models.get(model);
      if (pods === undefined || pods.size === 0) break;
      const percent = Math.floor(((i + 1) * 100) / hashes.length);
      let any = false;
      for (const p of [...ready]) {
        if (pods.has(p)) {
          out.set(p, percent);
          any = true;
        } else ready.delete(p);
      }
      if (!any) break;
    }
    return out;
  }

  add(hashes: readonly number[], model: string, pod: number, nowMs: number): void {
    for (const h of hashes) {
      let e = this.store.get(h);
      if (e === undefined) e = { at: nowMs, models: new Map() };
      else this.store.delete(h);
      e.at = nowMs;
      let pods = e.models.get(model);
      if (pods === undefined) e.models.set(model, (pods = new Set()));
      pods.add(pod);
      this.store.set(h, e);
      if (this.store.size > this.o.blockNumber) this.store.delete(this.store.keys().next().value as number);
    }
  }

  /** The periodic idle sweep, run lazily before a lookup when an interval has passed (within one interval of the Go ticker). */
  sweep(nowMs: number): void {
    if (nowMs - this.lastSweep < this.o.evictionIntervalMs) return;
    this.lastSweep = nowMs;
    for (const [h, e] of this.store) {
      if (nowMs - e.at <= this.o.evictionIdleMs) break;
      this.store.delete(h);
    }
  }
}

export function aibrixPolicy(o: Readonly<AibrixOptions> = AIBRIX_DEFAULTS): PolicyFactory {
  return {
    name: "aibrix-prefix",
    description: `AIBrix prefix-cache router (@${AIBRIX_COMMIT.slice(0, 8)}): ${o.blockBytes}-byte chained blocks, global LRU of ${o.blockNumber}, own running counts, imbalance > ${o.imbalanceAbsCount} → least loaded, matched pod within mean + ${o.stdDevFactor}σ`,
    scrapeIntervalMs: 0,
    create(ctx: PolicyContext): Policy {
      const n = ctx.endpoints.length;
      const rng = new Rng(ctx.seed).fork("aibrix-prefix");
      const inflight = new InFlight(ctx.endpoints);
      const table = new AibrixHashTable(o);
      const all = Array.from({ length: n }, (_, i) => i);
      const leastLoaded = (): number => {
        let min = Infinity;
        for (const c of inflight.counts) min = Math.min(min, c);
        const ties = all.filter((i) => inflight.counts[i] === min);
        return ties[rng.int(ties.length)];
      };
      return {
        pick(req) {
          const now = ctx.clock.now() - ctx.startMs;
          table.sweep(now);
          const counts = inflight.counts;
          let lo = Infinity;
          let hi = -Infinity;
          for (const c of counts) {
            lo = Math.min(lo, c);
            hi = Math.max(hi, c);
          }
          const ready = new Set(hi - lo > o.imbalanceAbsCount ? all.filter((i) => counts[i] === lo) : all);
          const hashes = aibrixHashes(joinedContents(req), o.blockBytes);
          const matched = table.match(hashes, req.model, ready);
          let chosen = -1;
          if (matched.size > 0) {
            let mean = 0;
            for (const c of counts) mean += c;
            mean /= n;
            let ss = 0;
            for (const c of counts) ss += (c - mean) ** 2;
            const sd = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
            const pods = rng.shuffle([...matched.keys()]);
            pods.sort((a, b) => matched.get(b)! - matched.get(a)! || counts[a] - counts[b]);
            chosen = pods.find((p) => counts[p] <= mean + o.stdDevFactor * sd) ?? -1;
          }
          if (chosen < 0) chosen = leastLoaded();
          if (hashes.length > 0) table.add(hashes, req.model, chosen, now);
          inflight.add(chosen);
          return ctx.endpoints[chosen];
        },
        onComplete: (_req, endpoint) => inflight.done(endpoint),
      };
    },
  };
}
