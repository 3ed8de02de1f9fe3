// Tuning evidence for the filter's defaults: replays one workload through the
// prefix-router policy under configuration variants and prints a table.
// Owns: the variant list and the table. Must not: change defaults itself; the
// chosen values live in assembly/router/config.ts, with this table as evidence.
//
// Usage: node --import tsx scripts/eval/tune.ts [--time-scale 0.125] [--out reports/eval/tuning.md]
//        [--variants '{"name":{config overrides}, …}']
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runEval } from "./run.ts";
import { prefixRouterPolicy } from "./policies/prefix-router.ts";

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
  "saturation guard: queue 5 / KV 0.8 (GAIE's)": { queueSaturation: 5, kvSaturation: 0.8 },
  "in-flight saturation 64": { inFlightSaturation: 64 },
  "queue weight 2 (GAIE's)": { weights: { prefix: 3, queue: 2, kvCache: 2, inFlight: 2 } },
  "weights KV 4": { weights: { prefix: 3, queue: 3, kvCache: 4, inFlight: 2 } },
  "weights in-flight 0": { weights: { prefix: 3, queue: 3, kvCache: 2, inFlight: 0 } },
  "metrics every 50 ms, tick 50 ms": { metrics: { cluster: "metrics", intervalMs: 50, timeoutMs: 1000 }, tickMs: 50 },
  "index stride 1": { indexStride: 1 },
  "maxPrefixBlocks 256 (the reference's)": { maxPrefixBlocks: 256 },
  "maxPrefixBlocks 2048": { maxPrefixBlocks: 2048 },
};

const { values } = parseArgs({
  options: {
    "time-scale": { type: "string", default: "0.125" },
    servers: { type: "string", default: "8" },
    out: { type: "string" },
    variants: { type: "string" },
  },
});
const variants = values.variants ? (JSON.parse(values.variants) as Record<string, Record<string, unknown>>) : VARIANTS;
const timeScale = Number(values["time-scale"]);
const lines = [
  `Shared trace, ${values.servers} servers, time scale ${timeScale} (${(1 / timeScale).toFixed(0)}× load), seed 1; prefix-router only, one configuration change per row.`,
  "",
  "| variant | hit rate | TTFT mean ms | p50 | p90 | p99 | imbalance |",
  "|---|---|---|---|---|---|---|",
];
process.stdout.write(lines.join("\n") + "\n");
for (const [name, config] of Object.entries(variants)) {
  const r = await runEval({
    workload: "trace", servers: Number(values.servers), timeScales: [timeScale], seed: 1, policies: ["prefix-router"],
    factories: { "prefix-router": prefixRouterPolicy({ config }) }, progress: false, log: () => {},
  });
  const s = r.headline.policies[0].summary;
  const row = `| ${name} | ${(s.hitRate * 100).toFixed(1)}% | ${s.ttftMeanMs.toFixed(0)} | ${s.ttftP50Ms.toFixed(0)} | ${s.ttftP90Ms.toFixed(0)} | ${s.ttftP99Ms.toFixed(0)} | ${s.imbalance.toFixed(2)} |`;
  lines.push(row);
  process.stdout.write(row + "\n");
}
if (values.out) writeFileSync(values.out, lines.join("\n") + "\n");
