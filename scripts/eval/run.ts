// One evaluation: a workload through every registered policy at one or more
// loads, summarized and written out. Owns: workload selection, the policy
// loop, skipping absent policies, picking the headline load. Must not: parse
// the command line (cli.ts) or format output (report.ts).

import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { simParams, type SimParams } from "../sim/params.ts";
import { pooledLruHitRate } from "./ceiling.ts";
import { GENERATED, type GeneratedName } from "./generators.ts";
import { POLICY_NAMES, REGISTRY } from "./policies/index.ts";
import type { PolicyFactory } from "./policy.ts";
import { Progress } from "./progress.ts";
import { replay } from "./replay.ts";
import { mostDifferent, writeReport, writeSweep, type RunResult } from "./report.ts";
import { summarize, ttftValues } from "./stats.ts";
import { loadTrace, traceWorkload } from "./trace.ts";
import type { Workload } from "./workload.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const DEFAULT_TRACE = resolve(REPO_ROOT, "../shared/traces/mooncake_synthetic_trace.jsonl");

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
  sim?: Partial<SimParams>;
  out?: string;
  plots?: boolean;
  /** Time scale of report.md when sweeping; default: where policies differ most. */
  headline?: number;
  progress?: boolean;
  /** One-line notes (skipped policies, timings) go here; default stderr. */
  log?: (line: string) => void;
}

export function buildWorkload(o: EvalOptions, p: SimParams): Workload {
  if (o.workload === "trace") {
    const records = loadTrace(o.trace ?? DEFAULT_TRACE);
    return traceWorkload(records, { model: p.model, seed: o.seed, limit: o.limit });
  }
  const gen = GENERATED[o.workload as GeneratedName];
  if (!gen) throw new Error(`unknown workload ${o.workload}; one of trace, ${Object.keys(GENERATED).join(", ")}`);
  return gen({ seed: o.seed, model: p.model, requests: o.limit });
}

export interface EvalResult {
  runs: RunResult[];
  headline: RunResult;
}

export async function runEval(o: EvalOptions): Promise<EvalResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const p = simParams(o.sim);
  const t0 = performance.now();
  const workload = buildWorkload(o, p);
  log(`workload ${workload.name}: ${workload.requests.length} requests, built in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  const pooled = pooledLruHitRate(workload, p, o.servers);

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

  const runs: RunResult[] = [];
  for (const ts of o.timeScales) {
    const run: RunResult = {
      workload: workload.name,
      workloadDescription: workload.description,
      requests: workload.requests.length,
      servers: o.servers,
      timeScale: ts,
      seed: o.seed,
      sim: p,
      policies: [],
      skipped,
      pooledHitRate: pooled,
    };
    for (const { name, f } of factories) {
      const bar = new Progress(`${name} @ ×${ts}`.padEnd(24), process.stderr, o.progress ?? true);
      const rec = await replay(workload, f, {
        servers: o.servers, timeScale: ts, sim: p, seed: o.seed, onProgress: (d, n) => bar.update(d, n),
      });
      const summary = summarize(rec);
      bar.finish(`hit ${(summary.hitRate * 100).toFixed(1)}%, TTFT mean ${summary.ttftMeanMs.toFixed(0)} ms`);
      run.policies.push({ name, description: f.description, summary, ttft: ttftValues(rec) });
    }
    runs.push(run);
  }
  const headline = o.headline !== undefined ? (runs.find((r) => r.timeScale === o.headline) ?? runs[0]) : mostDifferent(runs);
  if (o.out) {
    writeReport(o.out, headline, o.plots ?? true);
    if (runs.length > 1) writeSweep(o.out, runs, headline, o.plots ?? true);
  }
  log(`evaluation done in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return { runs, headline };
}
