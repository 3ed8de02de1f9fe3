// The load-balancing baselines a deployment gets without a prefix-aware
// router. Owns: random, round-robin, least-request (power of two choices) and
// KubeAI's consistent hashing with bounded loads. Must not: read server
// internals; besides the request, each sees only its own in-flight counts.

import { contentHash } from "../../sim/hash.ts";
import { Rng } from "../../sim/random.ts";
import { InFlight, type Policy, type PolicyContext, type PolicyFactory, type RouteRequest } from "../policy.ts";

export const random: PolicyFactory = {
  name: "random",
  description: "uniform random endpoint (seeded)",
  scrapeIntervalMs: 0,
  create(ctx) {
    const rng = new Rng(ctx.seed).fork("random");
    return { pick: () => ctx.endpoints[rng.int(ctx.endpoints.length)] };
  },
};

export const roundRobin: PolicyFactory = {
  name: "round-robin",
  description: "endpoints in turn",
  scrapeIntervalMs: 0,
  create(ctx) {
    let next = 0;
    return {
      pick: () => {
        const e = ctx.endpoints[next];
        next = (next + 1) % ctx.endpoints.length;
        return e;
      },
    };
  },
};

/**
 * Envoy's LEAST_REQUEST with its default choice_count of 2: draw two endpoints
 * at random (with replacement) and keep the one with fewer of this router's
 * active requests; on a tie the first drawn wins.
 */
export const leastRequest: PolicyFactory = {
  name: "least-request",
  description: "power of two choices on the router's own in-flight counts (Envoy LEAST_REQUEST, choice_count 2)",
  scrapeIntervalMs: 0,
  create(ctx) {
    const rng = new Rng(ctx.seed).fork("least-request");
    const inflight = new InFlight(ctx.endpoints);
    const n = ctx.endpoints.length;
    return {
      pick: () => {
        const a = rng.int(n);
        const b = rng.int(n);
        const i = inflight.counts[b] < inflight.counts[a] ? b : a;
        inflight.add(i);
        return ctx.endpoints[i];
      },
      onComplete: (_req, endpoint) => inflight.done(endpoint),
    };
  },
};

/** KubeAI's prefix: the first n characters of the prompt, or of the first user message of a chat. */
export function kubeaiPrefix(req: RouteRequest, n: number): string {
  if (req.path !== "/v1/chat/completions") return req.promptPrefix(n);
  try {
    const msgs = JSON.parse(req.body()).messages;
    if (!Array.isArray(msgs)) return "";
    for (const m of msgs) {
      if (m && m.role === "user") return typeof m.content === "string" ? m.content.slice(0, n) : "";
    }
  } catch {
    // An unparsable body hashes as the empty prefix, as KubeAI's would.
  }
  return "";
}

export interface ChwblOptions {
  /** Virtual nodes per endpoint (KubeAI CRD default 256). */
  replication: number;
  /** Bound on an endpoint's load relative to the mean (KubeAI meanLoadPercentage default 125). */
  loadFactor: number;
  /** Characters of prompt hashed (KubeAI prefixCharLength default 100). */
  prefixChars: number;
}

export const CHWBL_DEFAULTS: Readonly<ChwblOptions> = Object.freeze({ replication: 256, loadFactor: 1.25, prefixChars: 100 });

/**
 * Consistent hashing with bounded loads as KubeAI implements it
 * (substratusai/kubeai internal/loadbalancer/balance_chwbl.go): hash
 * adapter + prefix onto a ring of `replication` points per endpoint, walk
 * clockwise from the key and take the first endpoint whose load passes
 * (load + 1) ≤ (total + 1) / n × loadFactor; if none passes, the first one
 * walked. Loads are the router's own in-flight counts.
 */
export function chwblPolicy(opts: Readonly<ChwblOptions> = CHWBL_DEFAULTS): PolicyFactory {
  return {
    name: "chwbl",
    description: `KubeAI consistent hashing with bounded loads: first ${opts.prefixChars} chars, load factor ${opts.loadFactor}, ${opts.replication} replicas`,
    scrapeIntervalMs: 0,
    create(ctx: PolicyContext): Policy {
      const inflight = new InFlight(ctx.endpoints);
      const n = ctx.endpoints.length;
      const points: { h: number; e: number }[] = [];
      ctx.endpoints.forEach((addr, e) => {
        for (let r = 0; r < opts.replication; r++) {
          const key = `${addr}${r}`;
          points.push({ h: contentHash(key, 0, key.length), e });
        }
      });
      points.sort((a, b) => a.h - b.h || a.e - b.e);
      const ring = Float64Array.from(points, (p) => p.h);
      const owner = Int32Array.from(points, (p) => p.e);
      const loadOk = (i: number): boolean => {
        if (inflight.total === 0) return true;
        return inflight.counts[i] + 1 <= ((inflight.total + 1) / n) * opts.loadFactor;
      };
      return {
        pick(req) {
          const adapter = req.model === ctx.sim.model ? "" : req.model;
          const key = adapter + kubeaiPrefix(req, opts.prefixChars);
          const h = contentHash(key, 0, key.length);
          let lo = 0;
          let hi = ring.length;
          while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            if (ring[mid] < h) lo = mid + 1;
            else hi = mid;
          }
          const start = lo === ring.length ? 0 : lo;
          let chosen = owner[start];
          for (let k = 0; k < ring.length; k++) {
            const e = owner[(start + k) % ring.length];
            if (loadOk(e)) {
              chosen = e;
              break;
            }
          }
          inflight.add(chosen);
          return ctx.endpoints[chosen];
        },
        onComplete: (_req, endpoint) => inflight.done(endpoint),
      };
    },
  };
}
