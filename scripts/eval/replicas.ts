// Several independent gateways in front of one fleet: `replicated(f, R)` runs
// R instances of a policy, each created by its own factory call (for
// prefix-router: its own host emulator, hence its own VMs, shared data, index,
// in-flight counts and scrapes), and sends each request to one of them at
// random, seeded, as a layer-4 load balancer in front of R Envoys would.
// Replicas share nothing but the servers; what a policy loses here against one
// gateway is what its users lose when they scale the gateway out.
//
// Owns: the wrapper and the replica choice. Must not: know any policy. The
// driver's `ctx.scraped()` refreshes at the factory's interval for all
// replicas at once, so policies that read it see the same pages at the same
// instants; replicas that scrape themselves (prefix-router) do so on their own
// timers.
import { Rng } from "../sim/random.ts";
import type { Policy, PolicyContext, PolicyFactory, RouteRequest } from "./policy.ts";

/** The name a replicated policy reports under: "name ×R". */
export function replicatedName(name: string, replicas: number): string {
  return `${name} ×${replicas}`;
}

export function replicated(f: PolicyFactory, replicas: number): PolicyFactory {
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`replicas must be a positive integer, got ${replicas}`);
  return {
    name: replicatedName(f.name, replicas),
    description: `${replicas} independent replicas of ${f.name}, each request to one at random: ${f.description}`,
    scrapeIntervalMs: f.scrapeIntervalMs,
    privileged: f.privileged,
    kvEventDelayMs: f.kvEventDelayMs,
    async create(ctx: PolicyContext): Promise<Policy> {
      const instances: Policy[] = [];
      // Each replica draws its own random choices, as separate processes would.
      for (let r = 0; r < replicas; r++) instances.push(await f.create({ ...ctx, seed: ctx.seed * 1_000 + r, replica: { index: r, of: replicas } }));
      // Requests reach pick() in arrival order, so one seeded stream fixes every assignment.
      const choice = new Rng(ctx.seed).fork("replicas");
      const owner = new Map<string, Policy>();
      const of = (req: RouteRequest): Policy | undefined => owner.get(req.id);
      return {
        pick(req) {
          const p = instances[choice.int(replicas)];
          owner.set(req.id, p);
          return p.pick(req);
        },
        async settle() {
          for (const p of instances) await p.settle?.();
        },
        onFirstToken(req, endpoint) {
          of(req)?.onFirstToken?.(req, endpoint);
        },
        onComplete(req, endpoint) {
          const p = of(req);
          owner.delete(req.id);
          p?.onComplete?.(req, endpoint);
        },
        async close() {
          for (const p of instances) await p.close?.();
        },
      };
    },
  };
}
