// Tuning evidence for the filter's defaults: replays one workload through the
// prefix-router policy under configuration variants, at one or more loads,
// and prints a table of figures with 95% bootstrap intervals (stats.ts) and
// the reference picker's on the same runs for comparison. Seeds only change
// filler text (on the shared trace the results were bit-identical across
// seeds), so one seed with an interval replaces the old seed average; with
// several seeds the figures are averaged and each interval spans the seeds'.
// Owns: the variant list and the table. Must not: change defaults itself; the
// chosen values live in assembly/router/config.ts, with this table as evidence.
//
// Usage: node --import tsx scripts/eval/tune.ts [--time-scale 0.125,0.1] [--seeds 1]
//        [--out reports/eval/tuning.md] [--variants '{"name":{config overrides}, …}'] [--no-reference] [--wasm FILE]
//        [--part k/n]  (run n parts at once on n cores; each prints its own rows)
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runEval } from "./run.ts";
import { prefixRouterPolicy } from "./policies/prefix-router.ts";
import type { PolicyFactory } from "./policy.ts";
import type { PolicyRun } from "./report.ts";
import type { Ci, PolicySummary } from "./stats.ts";

/** What was tried when the defaults were chosen (see reports/eval/tuning.md). */
const VARIANTS: Record<string, Record<string, unknown>> = {
  "defaults": {},
  "first defaults (guard 1.25×/+8, cold band 0.2, queue weight 2, queue saturation 5, 256 blocks)": { guard: { loadFactor: 1.25, slack: 8 }, coldBand: 0.2, queueSaturation: 5, maxPrefixBlocks: 256, weights: { prefix: 3, queue: 2, kvCache: 2, inFlight: 2 } },
  "guard 1.25× / +8": { guard: { loadFactor: 1.25, slack: 8 } },
  "guard 1.25× / +4": { guard: { loadFactor: 1.25, slack: 4 } },
  "no guard": { guard: { loadFactor: 100, slack: 100000 } },
  "cold band 0 (least loaded)": { coldBand: 0 },
  "cold band 0.05": { coldBand: 0.05 },
  "cold band 0.2": { coldBand: 0.2 },
  "cold band 1 (pure rendezvous)": { coldBand: 1 },
  "queue saturation 5 (GAIE's)": { queueSaturation: 5 },
  "queue saturation 20 (the previous default)": { queueSaturation: 20 },
  "queue saturation 40": { queueSaturation: 40 },
  "saturation guard: queue 5 / KV 0.8 (GAIE's)": { queueSaturation: 5, kvSaturation: 0.8 },
  "in-flight saturation 64": { inFlightSaturation: 64 },
  "queue weight 2 (GAIE's)": { weights: { prefix: 3, queue: 2, kvCache: 2, inFlight: 2 } },
  "weights KV 4": { weights: { prefix: 3, queue: 3, kvCache: 4, inFlight: 2 } },
  "weights KV 0": { weights: { prefix: 3, queue: 3, kvCache: 0, inFlight: 2 } },
  "weights in-flight 0": { weights: { prefix: 3, queue: 3, kvCache: 2, inFlight: 0 } },
  "metrics every 50 ms, tick 50 ms": { metrics: { cluster: "metrics", intervalMs: 50, timeoutMs: 1000 }, tickMs: 50 },
  "index stride 1": { indexStride: 1 },
  "maxPrefixBlocks 256 (the reference's)": { maxPrefixBlocks: 256 },
  "maxPrefixBlocks 2048": { maxPrefixBlocks: 2048 },
};

/** The policy every variant is compared with, run on the same loads and seeds. */
const REFERENCE = "gaie-approx";

const { values } = parseArgs({
  options: {
    "time-scale": { type: "string", default: "0.125,0.1" },
    seeds: { type: "string", default: "1" },
    servers: { type: "string", default: "8" },
    out: { type: "string" },
    variants: { type: "string" },
    "no-reference": { type: "boolean", default: false },
    /** "k/n": run only the k-th of n equal slices of the variants (the reference with the last), to use more cores. */
    part: { type: "string", default: "1/1" },
    /** Another build of the filter, to compare code changes under the same variants. */
    wasm: { type: "string" },
  },
});
const [part, parts] = values.part.split("/").map(Number);
const allVariants = Object.entries(values.variants ? (JSON.parse(values.variants) as Record<string, Record<string, unknown>>) : VARIANTS);
const sliceSize = Math.ceil(allVariants.length / parts);
const variants = allVariants.slice((part - 1) * sliceSize, part * sliceSize);
const timeScales = values["time-scale"].split(",").map(Number);
const seeds = values.seeds.split(",").map(Number);
const servers = Number(values.servers);

/** A policy's summary at each load (averaged over seeds) and its intervals (the union over seeds). */
interface Measured {
  s: PolicySummary;
  mean: Ci;
  p90: Ci;
}

async function measure(policy: string, factory?: PolicyFactory): Promise<Measured[]> {
  const runs: PolicyRun[][] = timeScales.map(() => []);
  for (const seed of seeds) {
    const r = await runEval({
      workload: "trace", servers, timeScales, seed, policies: [policy],
      factories: factory ? { [policy]: factory } : undefined, progress: false, log: () => {},
    });
    r.runs.forEach((run, i) => runs[i].push(run.policies[0]));
  }
  const union = (cs: (Ci | undefined)[]): Ci => ({ lo: Math.min(...cs.map((c) => c?.lo ?? NaN)), hi: Math.max(...cs.map((c) => c?.hi ?? NaN)) });
  return runs.map((rs) => ({ s: average(rs.map((p) => p.summary)), mean: union(rs.map((p) => p.ci?.ttftMeanMs)), p90: union(rs.map((p) => p.ci?.ttftP90Ms)) }));
}

function average(runs: PolicySummary[]): PolicySummary {
  const out = { ...runs[0] };
  for (const key of Object.keys(out) as (keyof PolicySummary)[]) {
    if (typeof out[key] === "number") (out[key] as number) = runs.reduce((a, s) => a + (s[key] as number), 0) / runs.length;
  }
  return out;
}

const loadLabel = (ts: number) => `${Math.round(1 / ts)}×`;
const cells = (m: Measured) =>
  `${(m.s.hitRate * 100).toFixed(1)}% | ${m.s.ttftMeanMs.toFixed(0)} [${m.mean.lo.toFixed(0)}, ${m.mean.hi.toFixed(0)}] | ${m.s.ttftP90Ms.toFixed(0)} [${m.p90.lo.toFixed(0)}, ${m.p90.hi.toFixed(0)}] | ${m.s.imbalance.toFixed(2)}`;
const lines = [
  `Shared trace, ${servers} servers, loads ${timeScales.map(loadLabel).join(" and ")} (time scales ${timeScales.join(", ")}), ` +
    `seed${seeds.length > 1 ? "s" : ""} ${seeds.join(", ")}, TTFT with its 95% bootstrap interval; prefix-router with one configuration change per row` +
    (!values["no-reference"] ? `, and ${REFERENCE} on the same runs.` : "."),
  "",
  `| variant | ${timeScales.map((ts) => `${loadLabel(ts)} hit | mean ms [95% CI] | p90 ms [95% CI] | imbalance`).join(" | ")} |`,
  `|---|${timeScales.map(() => "---:|---:|---:|---:").join("|")}|`,
];
process.stdout.write(lines.join("\n") + "\n");
const rows: [string, () => Promise<Measured[]>][] = variants.map(([name, config]) => [name, () => measure("prefix-router", prefixRouterPolicy({ config, wasm: values.wasm }))]);
if (!values["no-reference"] && part === parts) rows.push([`*${REFERENCE} (reference)*`, () => measure(REFERENCE)]);
for (const [name, run] of rows) {
  const row = `| ${name} | ${(await run()).map(cells).join(" | ")} |`;
  lines.push(row);
  process.stdout.write(row + "\n");
}
if (values.out) writeFileSync(values.out, lines.join("\n") + "\n");
