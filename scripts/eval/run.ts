// One evaluation: a workload through every registered policy at every load
// asked for, under the evaluator's realism switches, then the same under each
// evaluator variant, and the highest load each policy sustains. Owns: workload
// selection, the switches and their variants, the policy loop, skipping absent
// policies, the sustainable-load search. Must not: parse the command line
// (cli.ts) or format output (report.ts).
//
// No headline load: every load asked for is reported alike, and report.json's
// contract fields are the first load of the list (1×, the recorded rate, by
// default), chosen before any result is seen.

import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_TOKENIZER, tokenizer, type TokenizerName } from "../sim/hash.ts";
import { simParams, type SimParams, type StepModel } from "../sim/params.ts";
import { idealReuse, pooledLruHitRate, zeroQueueTtft, type IdealReuse, type ZeroQueueBound } from "./ceiling.ts";
import { GENERATED, type GeneratedName } from "./generators.ts";
import { POLICY_NAMES, REGISTRY } from "./policies/index.ts";
import type { PolicyFactory } from "./policy.ts";
import { replicated, replicatedName } from "./replicas.ts";
import { Progress } from "./progress.ts";
import { DEFAULT_LATENCIES, NO_LATENCIES, replay, type Latencies } from "./replay.ts";
import { writeReport, writeSweep, type RunResult, type VariantResult } from "./report.ts";
import { bootstrapCis, DEFAULT_BOOTSTRAP, replaySample, summarize, ttftValues, type BootstrapOptions } from "./stats.ts";
import { DEFAULT_ARRIVALS, loadTrace, traceWorkload, type ArrivalMode } from "./trace.ts";
import { retokenize, type Workload } from "./workload.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const DEFAULT_TRACE = resolve(REPO_ROOT, "../shared/traces/mooncake_synthetic_trace.jsonl");

/** Loads of the default sweep (× the recorded arrival rate): 1× to 10× and past every policy's capacity. */
export const DEFAULT_LOADS = [1, 2, 4, 6, 8, 10, 12, 16];
/** Loads at which each evaluator variant is replayed for the ranking table. */
export const DEFAULT_VARIANT_LOADS = [1, 4, 8];
/** The TTFT objective of the sustainable-load search. */
export const SUSTAINABLE_P90_MS = 1000;

/** The evaluator's realism switches. */
export interface Realism {
  /** How the servers tokenize (hash.ts): "varying" (default) or "fixed" (4 characters per token). */
  tokenizer: TokenizerName;
  /** Trace arrivals: "spread" within their time slot (default) or "recorded". */
  arrivals: ArrivalMode;
  /** Step time: "context" (default: attention over the context) or "linear". */
  stepModel: StepModel;
  latencies: Latencies;
}

export const REALISTIC: Readonly<Realism> = Object.freeze({
  tokenizer: DEFAULT_TOKENIZER,
  arrivals: DEFAULT_ARRIVALS,
  stepModel: "context",
  latencies: DEFAULT_LATENCIES,
});

/** Evaluator variants: each flips one switch of the run's own setting; "original" flips all four (the evaluator before issue 12). */
export const VARIANTS: Readonly<Record<string, { description: string; apply: (r: Realism) => Realism }>> = Object.freeze({
  "fixed-tokenizer": { description: "4 characters per token: the router's 64-character blocks align with the servers' blocks", apply: (r: Realism) => ({ ...r, tokenizer: "fixed" as const }) },
  "linear-steps": { description: "step time linear in tokens (BLIS fit only): context length costs nothing", apply: (r: Realism) => ({ ...r, stepModel: "linear" as const }) },
  "no-latencies": { description: "no intake overhead, no callout round trip, live metrics pages", apply: (r: Realism) => ({ ...r, latencies: NO_LATENCIES }) },
  "recorded-arrivals": { description: "trace arrivals at their recorded timestamps, bursts included", apply: (r: Realism) => ({ ...r, arrivals: "recorded" as const }) },
  original: { description: "all four switches off: the evaluator as it was before issue 12", apply: () => ({ tokenizer: "fixed" as const, stepModel: "linear" as const, latencies: NO_LATENCIES, arrivals: "recorded" as const }) },
});

export function describeRealism(r: Realism): string {
  const lat = r.latencies;
  const latText = lat.requestOverheadMs + lat.requestOverheadMsPerToken + lat.decisionCalloutMs + lat.metricsAgeMs + lat.scrapeLatencyMs === 0
    ? "no latencies"
    : `intake ${lat.requestOverheadMs} ms + ${lat.requestOverheadMsPerToken * 1000} µs/token, out-of-process callout ${lat.decisionCalloutMs} ms, metrics ${lat.metricsAgeMs} ms old + ${lat.scrapeLatencyMs} ms to answer`;
  return `tokenizer ${r.tokenizer}, step model ${r.stepModel}, arrivals ${r.arrivals}, ${latText}`;
}

export interface EvalOptions {
  /** "trace" or a generated workload name. */
  workload: string;
  trace?: string;
  servers: number;
  timeScales: number[];
  seed: number;
  /** Policy names to run (default: all registered). */
  policies?: string[];
  /** Extra factories (e.g. a prefix-router adapter) by name; they take precedence over the registry. */
  factories?: Record<string, PolicyFactory>;
  limit?: number;
  /** Also run every policy as this many independent replicas (replicas.ts), named "name ×R"; 1 (default) does not. */
  replicas?: number;
  sim?: Partial<SimParams>;
  /** Realism switches (default REALISTIC; sim.stepModel, if given, wins over realism.stepModel). */
  realism?: Partial<Realism>;
  /** Evaluator variants to rank the policies under (names in VARIANTS); default none. */
  variants?: string[];
  /** Time scales at which the variants run; default those of DEFAULT_VARIANT_LOADS. */
  variantTimeScales?: number[];
  /** Bisection steps of the sustainable-load search per policy; 0 (default) skips it. */
  maxLoadSteps?: number;
  bootstrap?: Partial<BootstrapOptions>;
  out?: string;
  plots?: boolean;
  progress?: boolean;
  /** One-line notes (skipped policies, timings) go here; default stderr. */
  log?: (line: string) => void;
}

export function buildWorkload(o: EvalOptions, p: SimParams, r: Realism = REALISTIC): Workload {
  if (o.workload === "trace") {
    const records = loadTrace(o.trace ?? DEFAULT_TRACE);
    return traceWorkload(records, { model: p.model, seed: o.seed, limit: o.limit, tokenizer: r.tokenizer, arrivals: r.arrivals });
  }
  const gen = GENERATED[o.workload as GeneratedName];
  if (!gen) throw new Error(`unknown workload ${o.workload}; one of trace, ${Object.keys(GENERATED).join(", ")}`);
  // Generated workloads tokenize with the default tokenizer and have no recorded slots to spread.
  const w = gen({ seed: o.seed, model: p.model, requests: o.limit });
  return r.tokenizer === DEFAULT_TOKENIZER ? w : retokenize(w, tokenizer(r.tokenizer));
}

/** The highest load a policy sustains: p90 TTFT under the objective. */
export interface SustainableLoad {
  /** Highest load shown to pass; 0 when even the lowest load tried fails. */
  load: number;
  /** Lowest load shown to fail above it; Infinity when every load tried passes. */
  failsAt: number;
  /** p90 TTFT at `load` and at `failsAt`, ms. */
  p90AtLoad: number;
  p90AtFail: number;
}

/**
 * Search for the highest sustainable load from a sweep and `steps` more
 * probes (one replay each). The bracket starts at the first failing load of
 * the sweep and the highest passing load below it (so a load that passes only
 * above a failure is never reported: "sustains L" means every swept load up
 * to L passed); when even the lowest load fails, probes halve it until one
 * passes; then bisections in log space keep p90(load) < objective ≤
 * p90(failsAt). Monotone-consistent by construction:
 * the answer passed, the next probe above it failed, and they are within a
 * factor (fail/pass)^(1/2^steps) of each other.
 */
export async function searchSustainableLoad(
  swept: ReadonlyMap<number, number>,
  probe: (load: number) => Promise<number>,
  steps: number,
  objectiveMs = SUSTAINABLE_P90_MS,
): Promise<SustainableLoad> {
  const loads = [...swept.keys()].sort((a, b) => a - b);
  let pass = 0;
  let p90Pass = NaN;
  let fail = Infinity;
  let p90Fail = NaN;
  for (const l of loads) {
    const v = swept.get(l)!;
    if (v < objectiveMs) {
      pass = l;
      p90Pass = v;
    } else {
      fail = l;
      p90Fail = v;
      break;
    }
  }
  if (fail === Infinity) return { load: pass, failsAt: fail, p90AtLoad: p90Pass, p90AtFail: p90Fail };
  // Even the lowest load failed: halve it (at most `steps` times) until one passes, then bisect what is left.
  let budget = steps;
  while (pass === 0 && budget > 0) {
    budget--;
    const lower = fail / 2;
    const v = await probe(lower);
    if (v < objectiveMs) {
      pass = lower;
      p90Pass = v;
    } else {
      fail = lower;
      p90Fail = v;
    }
  }
  if (pass === 0) return { load: 0, failsAt: fail, p90AtLoad: NaN, p90AtFail: p90Fail };
  for (let i = 0; i < budget; i++) {
    const mid = Math.sqrt(pass * fail);
    const v = await probe(mid);
    if (v < objectiveMs) {
      pass = mid;
      p90Pass = v;
    } else {
      fail = mid;
      p90Fail = v;
    }
  }
  return { load: pass, failsAt: fail, p90AtLoad: p90Pass, p90AtFail: p90Fail };
}

export interface EvalResult {
  runs: RunResult[];
  variants: VariantResult[];
  /** The first run: report.json's contract fields. */
  headline: RunResult;
}

interface Prepared {
  realism: Realism;
  params: SimParams;
  workload: Workload;
  pooled: number;
  ideal: IdealReuse;
  bound: ZeroQueueBound;
}

export async function runEval(o: EvalOptions): Promise<EvalResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const t0 = performance.now();
  const base: Realism = { ...REALISTIC, ...o.realism, ...(o.sim?.stepModel ? { stepModel: o.sim.stepModel } : {}) };
  const boot: BootstrapOptions = { ...DEFAULT_BOOTSTRAP, seed: o.seed, ...o.bootstrap };
  const workloads = new Map<string, Workload>();
  const prepare = (r: Realism): Prepared => {
    const params = simParams({ ...o.sim, stepModel: r.stepModel });
    const key = `${r.tokenizer}/${r.arrivals}`;
    let workload = workloads.get(key);
    if (!workload) {
      const w0 = performance.now();
      workload = buildWorkload(o, params, r);
      workloads.set(key, workload);
      log(`workload ${workload.name} (${key}): ${workload.requests.length} requests, built in ${((performance.now() - w0) / 1000).toFixed(1)}s`);
    }
    const ideal = idealReuse(workload, params);
    return { realism: r, params, workload, pooled: pooledLruHitRate(workload, params, o.servers), ideal, bound: zeroQueueTtft(workload, params, r.latencies, ideal) };
  };

  const wanted = o.policies ?? [...POLICY_NAMES];
  const factories: { name: string; f: PolicyFactory }[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const name of wanted) {
    const f = o.factories?.[name] ?? REGISTRY[name as keyof typeof REGISTRY];
    if (f) factories.push({ name, f });
    else if (name in REGISTRY) {
      const reason = name === "prefix-router" ? "its adapter over the built .wasm is not registered yet" : "no factory registered";
      skipped.push({ name, reason });
      log(`skipping ${name}: ${reason}`);
    } else throw new Error(`unknown policy ${name}; one of ${POLICY_NAMES.join(", ")}`);
  }
  const replicas = o.replicas ?? 1;
  if (replicas > 1) {
    for (const { name, f } of [...factories]) factories.push({ name: replicatedName(name, replicas), f: replicated(f, replicas) });
  }

  const runAt = async (prep: Prepared, ts: number, label: string): Promise<RunResult> => {
    const run: RunResult = {
      workload: prep.workload.name,
      workloadDescription: prep.workload.description,
      requests: prep.workload.requests.length,
      servers: o.servers,
      timeScale: ts,
      seed: o.seed,
      sim: prep.params,
      realism: describeRealism(prep.realism),
      policies: [],
      skipped,
      pooledHitRate: prep.pooled,
      idealReuseHitRate: prep.ideal.hitRate,
      zeroQueueTtft: prep.bound,
    };
    for (const { name, f } of factories) {
      const bar = new Progress(`${label}${name} @ ×${ts}`.padEnd(28), process.stderr, o.progress ?? true);
      const rec = await replay(prep.workload, f, {
        servers: o.servers, timeScale: ts, sim: prep.params, seed: o.seed, latencies: prep.realism.latencies, onProgress: (d, n) => bar.update(d, n),
      });
      const summary = summarize(rec);
      const ci = bootstrapCis(replaySample(rec, boot.windows), boot);
      bar.finish(`hit ${(summary.hitRate * 100).toFixed(1)}%, TTFT mean ${summary.ttftMeanMs.toFixed(0)} ms`);
      run.policies.push({ name, description: f.description, summary, ci, ttft: ttftValues(rec) });
    }
    return run;
  };

  const main = prepare(base);
  const runs: RunResult[] = [];
  for (const ts of o.timeScales) runs.push(await runAt(main, ts, ""));

  // The highest sustainable load per policy: the sweep brackets it, bisection narrows it.
  const steps = o.maxLoadSteps ?? 0;
  if (steps > 0 || o.timeScales.length > 1) {
    for (const { name, f } of factories) {
      const swept = new Map(runs.map((r) => [1 / r.timeScale, r.policies.find((p) => p.name === name)!.summary.ttftP90Ms]));
      const found = await searchSustainableLoad(swept, async (load) => {
        const rec = await replay(main.workload, f, { servers: o.servers, timeScale: 1 / load, sim: main.params, seed: o.seed, latencies: main.realism.latencies });
        const p90 = summarize(rec).ttftP90Ms;
        log(`  ${name}: p90 TTFT ${p90.toFixed(0)} ms at ${load.toFixed(2)}×`);
        return p90;
      }, steps);
      for (const r of runs) r.policies.find((p) => p.name === name)!.sustainable = found;
    }
  }

  const variants: VariantResult[] = [];
  const vScales = o.variantTimeScales ?? DEFAULT_VARIANT_LOADS.map((l) => 1 / l);
  if ((o.variants ?? []).length > 0) {
    // The run's own setting first, at the variant loads (reusing the sweep's runs where they match).
    const asRun: VariantResult = { name: "as run", description: describeRealism(base), runs: [] };
    for (const ts of vScales) asRun.runs.push(runs.find((r) => r.timeScale === ts) ?? (await runAt(main, ts, "as run: ")));
    variants.push(asRun);
    for (const v of o.variants ?? []) {
      const def = VARIANTS[v];
      if (!def) throw new Error(`unknown evaluator variant ${v}; one of ${Object.keys(VARIANTS).join(", ")}`);
      const prep = prepare(def.apply(base));
      const vr: VariantResult = { name: v, description: def.description, runs: [] };
      for (const ts of vScales) vr.runs.push(await runAt(prep, ts, `${v}: `));
      variants.push(vr);
    }
  }

  const headline = runs[0];
  if (o.out) {
    writeReport(o.out, runs, variants, o.plots ?? true);
    if (runs.length > 1) writeSweep(o.out, runs, o.plots ?? true);
  }
  log(`evaluation done in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return { runs, variants, headline };
}
