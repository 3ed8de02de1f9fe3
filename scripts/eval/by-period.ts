// TTFT by arrival period: where in a workload a policy's requests wait, for
// reading a percentile that the whole run's summary hides (the bursts
// workload's p90 falls inside its first burst: README "How well it routes").
// Owns: one replay per policy and the per-period table. Must not: judge
// policies (run.ts, grid.ts do).
//
// Usage: node --import tsx scripts/eval/by-period.ts [--workload bursts] [--servers 8] [--load 1]
//          [--limit 1500] [--seed 1] [--period-ms 10000] [--periods 4]
//          [--policies prefix-router,sglang-cache-aware,llm-d-approx]
import { parseArgs } from "node:util";
import { buildWorkload, REALISTIC } from "./run.ts";
import { replay } from "./replay.ts";
import { simParams } from "../sim/params.ts";
import { REGISTRY } from "./policies/index.ts";
import { prefixRouterPolicy } from "./policies/prefix-router.ts";
import type { PolicyFactory } from "./policy.ts";

const { values } = parseArgs({
  options: {
    workload: { type: "string", default: "bursts" },
    servers: { type: "string", default: "8" },
    load: { type: "string", default: "1" },
    limit: { type: "string", default: "1500" },
    seed: { type: "string", default: "1" },
    "period-ms": { type: "string", default: "10000" },
    periods: { type: "string", default: "4" },
    policies: { type: "string", default: "prefix-router,sglang-cache-aware,llm-d-approx" },
  },
});
const servers = Number(values.servers);
const load = Number(values.load);
const periodMs = Number(values["period-ms"]);
const periods = Number(values.periods);
const seed = Number(values.seed);
const params = simParams({ stepModel: REALISTIC.stepModel });
const workload = buildWorkload({ workload: values.workload!, servers, timeScales: [1 / load], seed, limit: Number(values.limit) }, params, REALISTIC);

/** The p-quantile of xs (nearest rank), as the summaries take it. */
function quantile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** A period's row: its requests' TTFTs, and how many of them missed (the cache held under half the prompt). */
const row = (label: string, xs: number[], misses: number) =>
  `| ${label} | ${xs.length} | ${misses} | ${mean(xs).toFixed(0)} | ${[0.5, 0.7, 0.9, 0.99].map((p) => quantile(xs, p).toFixed(0)).join(" | ")} |`;

console.log(`${workload.name}: ${workload.description}; ${servers} servers, ${load}× load, seed ${seed}; TTFT in ms by arrival period of ${periodMs / load} ms (${periodMs} ms of the workload's own time)\n`);
console.log("| policy, period | requests | misses | mean | p50 | p70 | p90 | p99 |");
console.log("|---|---|---|---|---|---|---|---|");
for (const name of values.policies!.split(",")) {
  const factory: PolicyFactory | undefined = name === "prefix-router" ? prefixRouterPolicy({}) : REGISTRY[name as keyof typeof REGISTRY];
  if (factory === undefined) throw new Error(`unknown policy ${name}`);
  const r = await replay(workload, factory, { servers, timeScale: 1 / load, sim: params, seed, latencies: REALISTIC.latencies });
  const all: number[] = [];
  let allMisses = 0;
  const byPeriod: number[][] = Array.from({ length: periods }, () => []);
  const missesByPeriod = new Array<number>(periods).fill(0);
  for (let i = 0; i < r.arrivalMs.length; i++) {
    const ttft = r.firstTokenMs[i] - r.arrivalMs[i];
    if (Number.isNaN(ttft)) continue; // refused: the summaries count these apart
    const missed = r.hitTokens[i] < 0.5 * r.promptTokens[i] ? 1 : 0;
    all.push(ttft);
    allMisses += missed;
    const p = Math.floor((r.arrivalMs[i] * load) / periodMs);
    if (p < periods) {
      byPeriod[p].push(ttft);
      missesByPeriod[p] += missed;
    }
  }
  console.log(row(`${name}, all`, all, allMisses));
  byPeriod.forEach((xs, p) => { if (xs.length > 0) console.log(row(`${name}, period ${p + 1}`, xs, missesByPeriod[p])); });
}
