// llm-d-router's two published prefix-cache profiles as baselines. Owns:
// `llm-d-approx` (the estimate-mode sample profile) and `llm-d-precise` (the
// precise prefix-cache producer, whose index is fed by the servers' KV block
// events). Must not: read server internals beyond what a deployment hands the
// EPP: the metrics pages every 50 ms and, for the precise profile, the KV
// events stream (ctx.kvEvents). Neither counts its own in-flight requests.
//
// Source: llm-d/llm-d-router at ebab687927f5331c1b39defcb579a07951bce56c
// (2026-08-21), and llm-d/llm-d-kv-cache-manager at
// a378f5b38f62c746388997cbba1da706a237ec42 for the index and scorer the
// precise producer wraps.
//
// llm-d-approx: deploy/config/epp-estimate-prefix-cache-config.yaml: decode
// filter (no-op without P/D roles), prefix-cache-scorer 1 over the approximate
// producer (gaie.ts: 64-token blocks up to 131,072 tokens, per-endpoint LRU),
// load-aware-scorer 1 (scorer/loadaware/load_aware.go, threshold 128),
// max-score picker.
//
// llm-d-precise: deploy/config/epp-precise-prefix-cache-config.yaml:
// prefix-cache-scorer 2 over precise-prefix-cache-producer, kv-cache-
// utilization-scorer 1, queue-scorer 1, max-score picker; speculative indexing
// off (its default). The producer (requestcontrol/dataproducer/
// preciseprefixcache/producer.go) looks the request's KV block keys up in an
// index kept from the engines' BlockStored / BlockRemoved events and scores
// each endpoint with LongestPrefixScorer (llm-d-kv-cache-manager
// pkg/kvcache/kvblock_scorer.go: consecutive blocks from the first, GPU tier
// weight 1); the prefix score is that count over the request's blocks. The
// request's keys come from a vLLM token producer (real tokens), so they are the
// engine's own block hashes: here RouteRequest.engineBlockHashes, the hashes
// the simulated server computes, which is what a router holding the engine's
// tokenizer computes. Keys are at the engine's 16-token blocks, as when the EPP's blockSize equals vLLM's
// --block-size (the sample config sets both to 64).

import { blockHashes } from "../../sim/hash.ts";
import { Rng } from "../../sim/random.ts";
import { KV_EVENT_DELAY_MS, type KvEventBatch } from "../kv-events.ts";
import type { Policy, PolicyContext, PolicyFactory, RouteRequest } from "../policy.ts";
import {
  APPROX_PREFIX_DEFAULTS, ApproxPrefixProducer, kvScores, LLMD_REFRESH_MS, LLMD_ROUTER_COMMIT, loadAwareScores, maxScorePick,
  queueScores, weightedSum, type ApproxPrefixOptions,
} from "./gaie.ts";

export const LLMD_KV_CACHE_COMMIT = "a378f5b38f62c746388997cbba1da706a237ec42";

export function llmdApproxPolicy(o: Readonly<ApproxPrefixOptions> = APPROX_PREFIX_DEFAULTS): PolicyFactory {
  return {
    name: "llm-d-approx",
    description: `llm-d-router estimate profile (epp-estimate-prefix-cache-config.yaml @${LLMD_ROUTER_COMMIT.slice(0, 8)}): approximate prefix 1 : load-aware 1, max score, metrics every ${LLMD_REFRESH_MS} ms`,
    scrapeIntervalMs: LLMD_REFRESH_MS,
    create(ctx: PolicyContext): Policy {
      const n = ctx.endpoints.length;
      const rng = new Rng(ctx.seed).fork("llm-d-approx");
      const producer = new ApproxPrefixProducer(ctx, o);
      return {
        pick(req) {
          const m = ctx.endpoints.map((e) => ctx.scraped(e));
          const { score: prefix, hashes } = producer.produce(req, m);
          const best = maxScorePick(weightedSum(n, [[1, prefix], [1, loadAwareScores(m)]]), rng);
          producer.record(hashes, best, m[best]);
          return ctx.endpoints[best];
        },
      };
    },
  };
}

/** Block key → endpoints whose engine holds it, from stored / removed events (kvblock in-memory index). */
export class KvEventIndex {
  private readonly holders = new Map<number, Set<number>>();
  private readonly byAddr: Map<string, number>;
  constructor(endpoints: readonly string[]) {
    this.byAddr = new Map(endpoints.map((e, i) => [e, i]));
  }

  apply(batch: KvEventBatch): void {
    const e = this.byAddr.get(batch.endpoint);
    if (e === undefined) return;
    for (const ev of batch.events) {
      let s = this.holders.get(ev.hash);
      if (ev.type === "stored") {
        if (s === undefined) this.holders.set(ev.hash, (s = new Set()));
        s.add(e);
      } else if (s !== undefined) {
        s.delete(e);
        if (s.size === 0) this.holders.delete(ev.hash);
      }
    }
  }

  /** Per endpoint, how many leading keys it holds consecutively (LongestPrefixScorer). */
  longestPrefix(keys: ArrayLike<number>, n: number): Int32Array {
    const res = new Int32Array(n);
    if (keys.length === 0) return res;
    const first = this.holders.get(keys[0]);
    if (first === undefined) return res;
    let active = [...first];
    for (const e of active) res[e] = 1;
    for (let i = 1; i < keys.length && active.length > 0; i++) {
      const s = this.holders.get(keys[i]);
      active = s === undefined ? [] : active.filter((e) => s.has(e));
      for (const e of active) res[e]++;
    }
    return res;
  }
}

/**
 * The prompt's block keys as the engine computes them (its tokens, its block
 * size, the adapter in the chain): what the real tokenizer gives these
 * routers. Hand-made requests without engineBlockHashes fall back to the
 * simulator's fixed 4-characters-per-token hashing.
 */
export function engineBlockKeys(req: RouteRequest, baseModel: string): Float64Array {
  return req.engineBlockHashes?.() ?? blockHashes(req.promptText(), req.model === baseModel ? null : req.model);
}

export interface LlmdPreciseOptions {
  weights: { prefix: number; kvCache: number; queue: number };
  kvEventDelayMs: number;
}

export const LLMD_PRECISE_DEFAULTS: Readonly<LlmdPreciseOptions> = Object.freeze({
  weights: { prefix: 2, kvCache: 1, queue: 1 },
  kvEventDelayMs: KV_EVENT_DELAY_MS,
});

export function llmdPrecisePolicy(o: Readonly<LlmdPreciseOptions> = LLMD_PRECISE_DEFAULTS): PolicyFactory {
  return {
    name: "llm-d-precise",
    description: `llm-d-router precise profile (epp-precise-prefix-cache-config.yaml @${LLMD_ROUTER_COMMIT.slice(0, 8)}): KV-event index (events ${o.kvEventDelayMs} ms late), prefix ${o.weights.prefix} : KV ${o.weights.kvCache} : queue ${o.weights.queue}, max score, metrics every ${LLMD_REFRESH_MS} ms`,
    scrapeIntervalMs: LLMD_REFRESH_MS,
    kvEventDelayMs: o.kvEventDelayMs,
    create(ctx: PolicyContext): Policy {
      if (!ctx.kvEvents) throw new Error("llm-d-precise needs the servers' KV events (ctx.kvEvents)");
      const n = ctx.endpoints.length;
      const rng = new Rng(ctx.seed).fork("llm-d-precise");
      const index = new KvEventIndex(ctx.endpoints);
      ctx.kvEvents.subscribe((b) => index.apply(b));
      return {
        pick(req) {
          const m = ctx.endpoints.map((e) => ctx.scraped(e));
          const keys = engineBlockKeys(req, ctx.sim.model);
          const matched = index.longestPrefix(keys, n);
          const prefix = Float64Array.from(matched, (k) => (keys.length === 0 ? 0 : k / keys.length));
          const total = weightedSum(n, [[o.weights.prefix, prefix], [o.weights.kvCache, kvScores(m)], [o.weights.queue, queueScores(m)]]);
          return ctx.endpoints[maxScorePick(total, rng)];
        },
      };
    },
  };
}
