// `npm run eval -- [--trace FILE] [--servers 8] [--out DIR] [--time-scale F[,F…]]
//   [--workload trace|shared-prefix|multi-turn|lora-mix|bursts] [--policies a,b]
//   [--seed 1] [--limit N] [--headline F] [--no-plots] [--no-progress]`
// Owns: argument parsing and defaults. Must not: hold evaluation logic (run.ts).
//
// --time-scale multiplies every arrival time: 0.25 replays the trace four
// times faster (4× load). The default, 0.125, is where the policies differ most
// on the shared trace (scripts/eval/README.md). A list runs a sweep: report.md/report.json hold the
// load where the policies differ most (or --headline), sweep.md/sweep.json all.

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { DEFAULT_TRACE, REPO_ROOT, runEval } from "./run.ts";

const { values } = parseArgs({
  options: {
    trace: { type: "string" },
    workload: { type: "string", default: "trace" },
    servers: { type: "string", default: "8" },
    out: { type: "string", default: "out/eval" },
    "time-scale": { type: "string", default: "0.125" },
    policies: { type: "string" },
    seed: { type: "string", default: "1" },
    limit: { type: "string" },
    headline: { type: "string" },
    "no-plots": { type: "boolean", default: false },
    "no-progress": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  process.stdout.write(
    "usage: npm run eval -- [--trace FILE] [--servers 8] [--out out/eval] [--time-scale 0.125 | 1,0.5,0.25,0.125,0.1]\n" +
      "         [--workload trace|shared-prefix|multi-turn|lora-mix|bursts] [--policies random,oracle,…]\n" +
      "         [--seed 1] [--limit N] [--headline F] [--no-plots] [--no-progress]\n" +
      `default trace: ${DEFAULT_TRACE}\n`,
  );
  process.exit(0);
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return n;
}

const timeScales = values["time-scale"]!.split(",").map((s) => {
  const v = Number(s);
  if (!(v > 0)) throw new Error(`--time-scale values must be > 0, got ${s}`);
  return v;
});

await runEval({
  workload: values.workload!,
  trace: values.trace ? resolve(values.trace) : undefined,
  servers: positiveInt("servers", values.servers!),
  timeScales,
  seed: Number(values.seed),
  policies: values.policies?.split(","),
  limit: values.limit ? positiveInt("limit", values.limit) : undefined,
  out: resolve(REPO_ROOT, values.out!),
  plots: !values["no-plots"],
  headline: values.headline ? Number(values.headline) : undefined,
  progress: !values["no-progress"],
});
process.stdout.write(`report written to ${resolve(REPO_ROOT, values.out!)}/report.md\n`);
