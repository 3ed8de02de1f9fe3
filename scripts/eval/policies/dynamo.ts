// NVIDIA Dynamo's KV router (router mode "kv", default selector) as a
// baseline. Owns: the overlap index fed by the engines' KV events, the
// router's own active-sequence accounting (prefill tokens until first token,
// active blocks until completion) and the cost formula. Must not: read server
// metrics; Dynamo's default cost uses only its KV-event index and its own
// bookkeeping of what it sent, so it never scrapes.
//
// Source: ai-dynamo/dynamo at 07a6c9ce3bb096cfaf353fe69ee578e105c6a512
// (lib/kv-router; read through the code index, the repository being too
// large to mirror here):
// - src/scheduling/config.rs KvRouterConfig::default: overlap_score_credit 1,
//   overlap_score_credit_decay 0, prefill_load_scale 1,
//   decode_active_request_weight 0, router_temperature 0 (argmin),
//   use_kv_events true, router_track_active_blocks true,
//   router_assume_kv_reuse true, router_track_prefill_tokens true,
//   router_track_output_blocks false, router_queue_threshold none (no router
//   queue).
// - src/scheduling/selector/default.rs worker_logit and selector/mod.rs row:
//   cost(w) = prefill_load_scale · max(0, raw_prefill_blocks(w) −
//   credit · overlap_blocks(w)) + decode_blocks(w), with raw_prefill_blocks =
//   (active prefill tokens on w + this request's prompt tokens) / block size
//   and decode_blocks = the blocks active on w after adding this request's
//   (potential_decode_blocks: distinct sequence hashes, so a shared prefix
//   counts once); minimum_cost_index: lowest cost, ties broken uniformly at
//   random.
// - src/sequences (ActiveSequences): a routed request adds its blocks and its
//   uncached prompt tokens (prompt − overlap) to the chosen worker; its
//   prefill tokens leave at the first token (MarkPrefillCompleted), its blocks
//   when it finishes (Free). Without a prefill-time model the token load does
//   not decay (sequences/README.md).
// - Overlap: the radix-tree indexer's find_matches over KV events, the number
//   of leading blocks of the request each worker holds, at the engine's block
//   size (--kv-cache-block-size must match the backend: 16 here).
// Differences: events reach the index `kvEventDelayMs` after the engine
// emits them (kv-events.ts); the block keys are the engine's own (hash.ts),
// as Dynamo tokenizes in its frontend with the model's tokenizer.

import { Rng } from "../../sim/random.ts";
import { KV_EVENT_DELAY_MS } from "../kv-events.ts";
import type { Policy, PolicyContext, PolicyFactory, RouteRequest } from "../policy.ts";
import { engineBlockKeys, KvEventIndex } from "./llmd.ts";

export const DYNAMO_COMMIT = "07a6c9ce3bb096cfaf353fe69ee578e105c6a512";

export interface DynamoOptions {
  overlapScoreCredit: number;
  prefillLoadScale: number;
  /** 0: argmin; > 0: softmax sampling over normalized costs. */
  temperature: number;
  kvEventDelayMs: number;
}

export const DYNAMO_DEFAULTS: Readonly<DynamoOptions> = Object.freeze({
  overlapScoreCredit: 1,
  prefillLoadScale: 1,
  temperature: 0,
  kvEventDelayMs: KV_EVENT_DELAY_MS,
});

interface Active {
  worker: number;
  keys: Float64Array;
  prefillTokens: number;
  prefilling: boolean;
}

/** One worker's active sequences as the router counts them. */
class WorkerLoad {
  prefillTokens = 0;
  readonly blocks = new Map<number, number>();

  /** Distinct active blocks if `keys` were added. */
  potentialBlocks(keys: Float64Array): number {
    let extra = 0;
    for (const k of keys) if (!this.blocks.has(k)) extra++;
    return this.blocks.size + extra;
  }

  addBlocks(keys: Float64Array): void {
    for (const k of keys) this.blocks.set(k, (this.blocks.get(k) ?? 0) + 1);
  }

  freeBlocks(keys: Float64Array): void {
    for (const k of keys) {
      const c = (this.blocks.get(k) ?? 0) - 1;
      if (c <= 0) this.blocks.delete(k);
      else this.blocks.set(k, c);
    }
  }
}

/** Softmax over costs normalized to [0, 1] (default.rs softmax_sample_index); lower cost, higher probability. */
function softmaxSample(cost: Float64Array, temperature: number, u: number): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of cost) {
    lo = Math.min(lo, c);
    hi = Math.max(hi, c);
  }
  const p = Float64Array.from(cost, (c) => (hi === lo ? 1 : Math.exp(-(c - lo) / ((hi - lo) * temperature))));
  const sum = p.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let i = 0; i < p.length; i++) {
    acc += p[i] / sum;
    if (u <= acc) return i;
  }
  return p.length - 1;
}

export function dynamoPolicy(o: Readonly<DynamoOptions> = DYNAMO_DEFAULTS): PolicyFactory {
  return {
    name: "dynamo-kv",
    description: `Dynamo KV router (@${DYNAMO_COMMIT.slice(0, 8)}): cost = max(0, (active prefill + prompt)/block − overlap) + active blocks, argmin; KV-event overlap (${o.kvEventDelayMs} ms late), own active sequences`,
    scrapeIntervalMs: 0,
    kvEventDelayMs: o.kvEventDelayMs,
    create(ctx: PolicyContext): Policy {
      if (!ctx.kvEvents) throw new Error("dynamo-kv needs the servers' KV events (ctx.kvEvents)");
      const n = ctx.endpoints.length;
      const rng = new Rng(ctx.seed).fork("dynamo-kv");
      const index = new KvEventIndex(ctx.endpoints);
      ctx.kvEvents.subscribe((b) => index.apply(b));
      const loads = Array.from({ length: n }, () => new WorkerLoad());
      const active = new Map<string, Active>();
      const blockTokens = ctx.sim.blockSize;
      const cost = new Float64Array(n);
      const endPrefill = (a: Active): void => {
        if (!a.prefilling) return;
        a.prefilling = false;
        loads[a.worker].prefillTokens -= a.prefillTokens;
      };
      return {
        pick(req: RouteRequest) {
          const keys = engineBlockKeys(req, ctx.sim.model);
          const overlap = index.longestPrefix(keys, n);
          for (let w = 0; w < n; w++) {
            const raw = (loads[w].prefillTokens + req.promptTokens) / blockTokens;
            const prefill = o.prefillLoadScale * Math.max(0, raw - o.overlapScoreCredit * overlap[w]);
            cost[w] = prefill + loads[w].potentialBlocks(keys);
          }
          let best = 0;
          if (o.temperature > 0) best = softmaxSample(cost, o.temperature, rng.float());
          else {
            let ties = 0;
            let bestCost = Infinity;
            for (let w = 0; w < n; w++) {
              if (cost[w] < bestCost) {
                bestCost = cost[w];
                best = w;
                ties = 1;
              } else if (cost[w] === bestCost && rng.int(++ties) === 0) best = w;
            }
          }
          const prefillTokens = Math.max(0, req.promptTokens - overlap[best] * blockTokens);
          loads[best].prefillTokens += prefillTokens;
          loads[best].addBlocks(keys);
          active.set(req.id, { worker: best, keys, prefillTokens, prefilling: true });
          return ctx.endpoints[best];
        },
        onFirstToken(req) {
          const a = active.get(req.id);
          if (a) endPrefill(a);
        },
        onComplete(req) {
          const a = active.get(req.id);
          if (!a) return;
          endPrefill(a);
          loads[a.worker].freeBlocks(a.keys);
          active.delete(req.id);
        },
      };
    },
  };
}
