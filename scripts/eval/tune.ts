// Tuning evidence for the filter's defaults: replays one workload through the
// prefix-router policy under configuration variants, at one or more loads and
// seeds, and prints a table of seed-averaged figures with the reference
// picker's on the same runs for comparison. Near saturation one seed's result
// swings with where a few long prompts land, so a choice rests on several.
// Owns: the variant list and the table. Must not: change defaults itself; the
// chosen values live in assembly/router/config.ts, with this table as evidence.
//
// Usage: node --import tsx scripts/eval/tune.ts [--time-scale 0.125,0.1] [--seeds 1,2,3]
//        [--out reports/eval/tuning.md] [--variants '{"name":{config overrides}, …}'] [--no-reference] [--wasm FILE]
//        [--part k/n]  (run n parts at once on n cores; each prints its own rows)
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runEval } from "./run.ts";
import { prefixRouterPolicy } from "./policies/prefix-router.ts";
import type { PolicyFactory } from "./policy.ts";
import type { PolicySummary } from "./stats.ts";

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
    seeds: { type: "string", default: "1,2,3" },
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

/** Seed-averaged summary of one policy at each load. */
async function measure(policy: string, factory?: PolicyFactory): Promise<PolicySummary[]> {
  const sums: PolicySummary[][] = timeScales.map(() => []);
  for (const seed of seeds) {
    const r = await runEval({
      workload: "trace", servers, timeScales, seed, policies: [policy],
      factories: factory ? { [policy]: factory } : undefined, progress: false, log: () => {},
    });
    r.runs.forEach((run, i) => sums[i].push(run.policies[0].summary));
  }
  return sums.map(average);
}

function average(runs: PolicySummary[]): PolicySummary {
  const out = { ...runs[0] };
  for (const key of Object.keys(out) as (keyof PolicySummary)[]) {
    if (typeof out[key] === "number") (out[key] as number) = runs.reduce((a, s) => a + (s[key] as number), 0) / runs.length;
  }
  return out;
}

const loadLabel = (ts: number) => `${Math.round(1 / ts)}×`;
const cells = (s: PolicySummary) => `${(s.hitRate * 100).toFixed(1)}% | ${s.ttftMeanMs.toFixed(0)} | ${s.ttftP90Ms.toFixed(0)} | ${s.imbalance.toFixed(2)}`;
const lines = [
  `Shared trace, ${servers} servers, loads ${timeScales.map(loadLabel).join(" and ")} (time scales ${timeScales.join(", ")}), ` +
    `each figure the mean over seeds ${seeds.join(", ")} (the seed sets the prompt text, hence every hash); prefix-router with one configuration change per row` +
    (!values["no-reference"] ? `, and ${REFERENCE} on the same runs.` : "."),
  "",
  `| variant | ${timeScales.map((ts) => `${loadLabel(ts)} hit | mean ms | p90 ms | imbalance`).join(" | ")} |`,
  `|---|${timeScales.map(() => "---:|---:|---:|---:").join("|")}|`,
];
process.stdout.write(lines.join("\n") + "\n");
const rows: [string, () => Promise<PolicySummary[]>][] = variants.map(([name, config]) => [name, () => measure("prefix-router", prefixRouterPolicy({ config, wasm: values.wasm }))]);
if (!values["no-reference"] && part === parts) rows.push([`*${REFERENCE} (reference)*`, () => measure(REFERENCE)]);
for (const [name, run] of rows) {
  const row = `| ${name} | ${(await run()).map(cells).join(" | ")} |`;
  lines.push(row);
  process.stdout.write(row + "\n");
}
if (values.out) writeFileSync(values.out, lines.join("\n") + "\n");
