// `npm run eval -- [--trace FILE] [--servers 8] [--out DIR] [--loads 1,2,4,…] [--time-scale F[,F…]]
//   [--workload trace|shared-prefix|multi-turn|lora-mix|bursts|agent] [--policies a,b] [--seed 1] [--limit N] [--replicas R]
//   [--tokenizer varying|fixed] [--step-model context|linear] [--arrivals spread|recorded] [--latencies on|off]
//   [--variants all|none|a,b] [--variant-loads 1,4,8] [--max-load-steps 4] [--resamples 500]
//   [--router-config JSON] [--wasm FILE] [--no-plots] [--no-progress]`
// Owns: argument parsing and defaults. Must not: hold evaluation logic (run.ts).
//
// Loads are multiples of the recorded arrival rate (--loads 4 = --time-scale
// 0.25). The default sweep, 1× to 16×, reaches past every policy's capacity;
// every load is reported, none singled out.

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import type { TokenizerName } from "../sim/hash.ts";
import type { StepModel } from "../sim/params.ts";
import { DEFAULT_LATENCIES, NO_LATENCIES } from "./replay.ts";
import { DEFAULT_LOADS, DEFAULT_TRACE, DEFAULT_VARIANT_LOADS, REALISTIC, REPO_ROOT, runEval, VARIANTS } from "./run.ts";
import type { ArrivalMode } from "./trace.ts";
import { prefixRouterPolicy, prefixRouterPeersPolicy } from "./policies/prefix-router.ts";
import { filterFieldsFromJson } from "../gateway/envoy-config.ts";

const { values } = parseArgs({
  options: {
    trace: { type: "string" },
    workload: { type: "string", default: "trace" },
    servers: { type: "string", default: "8" },
    out: { type: "string", default: "out/eval" },
    loads: { type: "string" },
    "time-scale": { type: "string" },
    policies: { type: "string" },
    seed: { type: "string", default: "1" },
    limit: { type: "string" },
    replicas: { type: "string", default: "1" },
    tokenizer: { type: "string", default: REALISTIC.tokenizer },
    "step-model": { type: "string", default: REALISTIC.stepModel },
    arrivals: { type: "string", default: REALISTIC.arrivals },
    latencies: { type: "string", default: "on" },
    variants: { type: "string", default: "all" },
    "variant-loads": { type: "string", default: DEFAULT_VARIANT_LOADS.join(",") },
    "max-load-steps": { type: "string", default: "4" },
    resamples: { type: "string", default: "500" },
    "router-config": { type: "string" },
    wasm: { type: "string" },
    "no-plots": { type: "boolean", default: false },
    "no-progress": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  process.stdout.write(
    "usage: npm run eval -- [--trace FILE] [--servers 8] [--out out/eval] [--loads 1,2,4,6,8,10,12,16 | --time-scale 1,0.25,…]\n" +
      "         [--workload trace|shared-prefix|multi-turn|lora-mix|bursts|agent] [--policies random,oracle,…] [--seed 1] [--limit N] [--replicas R]\n" +
      "         [--tokenizer varying|fixed] [--step-model context|linear] [--arrivals spread|recorded] [--latencies on|off]\n" +
      `         [--variants all|none|${Object.keys(VARIANTS).join(",")}] [--variant-loads 1,4,8] [--max-load-steps 4] [--resamples 500]\n` +
      "         [--router-config JSON (prefix-router's configuration overrides)] [--wasm FILE (prefix-router's build; default build/prefix_router.wasm)]\n" +
      "         [--no-plots] [--no-progress]\n" +
      `default trace: ${DEFAULT_TRACE}\n`,
  );
  process.exit(0);
}

function positiveInt(name: string, v: string, allowZero = false): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`--${name} must be a ${allowZero ? "non-negative" : "positive"} integer, got ${v}`);
  return n;
}

function positives(name: string, v: string): number[] {
  return v.split(",").map((s) => {
    const x = Number(s);
    if (!(x > 0)) throw new Error(`--${name} values must be > 0, got ${s}`);
    return x;
  });
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) throw new Error(`--${name} must be one of ${allowed.join(", ")}, got ${v}`);
  return v as T;
}

const timeScales = values["time-scale"] !== undefined
  ? positives("time-scale", values["time-scale"])
  : positives("loads", values.loads ?? DEFAULT_LOADS.join(",")).map((l) => 1 / l);
const overrides = values["router-config"] !== undefined ? filterFieldsFromJson("--router-config", values["router-config"]) : undefined;
const wasmPath = values.wasm !== undefined ? resolve(values.wasm) : undefined;

const variants = values.variants === "none" ? [] : values.variants === "all" ? Object.keys(VARIANTS) : values.variants!.split(",");

await runEval({
  workload: values.workload!,
  trace: values.trace ? resolve(values.trace) : undefined,
  servers: positiveInt("servers", values.servers!),
  timeScales,
  seed: Number(values.seed),
  policies: values.policies?.split(","),
  // The registered adapter with these fields merged into the filter's configuration, or run on another build.
  factories: overrides || values.wasm
    ? { "prefix-router": prefixRouterPolicy({ config: overrides, wasm: wasmPath }), "prefix-router-peers": prefixRouterPeersPolicy({ config: overrides, wasm: wasmPath }) }
    : undefined,
  limit: values.limit ? positiveInt("limit", values.limit) : undefined,
  replicas: positiveInt("replicas", values.replicas!),
  realism: {
    tokenizer: oneOf<TokenizerName>("tokenizer", values.tokenizer!, ["varying", "fixed"]),
    stepModel: oneOf<StepModel>("step-model", values["step-model"]!, ["context", "linear"]),
    arrivals: oneOf<ArrivalMode>("arrivals", values.arrivals!, ["spread", "recorded"]),
    latencies: oneOf("latencies", values.latencies!, ["on", "off"]) === "on" ? DEFAULT_LATENCIES : NO_LATENCIES,
  },
  variants,
  variantTimeScales: positives("variant-loads", values["variant-loads"]!).map((l) => 1 / l),
  maxLoadSteps: positiveInt("max-load-steps", values["max-load-steps"]!, true),
  bootstrap: { resamples: positiveInt("resamples", values.resamples!) },
  out: resolve(REPO_ROOT, values.out!),
  plots: !values["no-plots"],
  progress: !values["no-progress"],
});
process.stdout.write(`report written to ${resolve(REPO_ROOT, values.out!)}/report.md\n`);
