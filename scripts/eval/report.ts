// Writes the evaluation report. Owns: report.json (the contract: one object
// per policy, named as in policies/index.ts, with the contract fields first and
// extra fields after), report.md (table, notes, plots) and, for a load sweep,
// sweep.json and sweep.md. Must not: run replays or compute statistics.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SimParams } from "../sim/params.ts";
import { barChart, cdfPoints, lineChart, toPng } from "./plot.ts";
import type { PolicySummary } from "./stats.ts";

export interface PolicyRun {
  name: string;
  description: string;
  summary: PolicySummary;
  /** Sorted TTFTs, ms. */
  ttft: Float64Array;
}

export interface RunResult {
  workload: string;
  workloadDescription: string;
  requests: number;
  servers: number;
  timeScale: number;
  seed: number;
  sim: SimParams;
  policies: PolicyRun[];
  skipped: { name: string; reason: string }[];
  /** Hit rate of one fleet-sized LRU cache (ceiling.ts). */
  pooledHitRate: number;
}

const CONTRACT = [
  "hitRate", "ttftMeanMs", "ttftP50Ms", "ttftP90Ms", "ttftP99Ms", "throughputTokensPerS", "imbalance", "decisionsPerS",
] as const;

function jsonNumber(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The report.json object of one run: contract fields first, then extras. */
export function reportJson(run: RunResult): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const p of run.policies) {
    const s = p.summary;
    const o: Record<string, unknown> = {};
    for (const k of CONTRACT) o[k] = jsonNumber(k === "hitRate" ? round(s[k], 6) : round(s[k], 3));
    Object.assign(o, {
      requests: s.requests,
      completed: s.completed,
      refused: s.refused,
      e2eMeanMs: jsonNumber(round(s.e2eMeanMs, 3)),
      e2eP90Ms: jsonNumber(round(s.e2eP90Ms, 3)),
      outputTokensPerS: jsonNumber(round(s.outputTokensPerS, 3)),
      preemptions: s.preemptions,
      serverShare: s.serverShare.map((v) => round(v, 4)),
      serverHitRate: s.serverHitRate.map((v) => round(v, 4)),
      workload: run.workload,
      servers: run.servers,
      timeScale: run.timeScale,
      seed: run.seed,
      pooledLruHitRate: round(run.pooledHitRate, 6),
      replayWallS: round(s.replayWallS, 3),
      description: p.description,
    });
    out[p.name] = o;
  }
  return out;
}

function ms(v: number): string {
  if (!Number.isFinite(v)) return "–";
  return v >= 10000 ? (v / 1000).toFixed(1) + " s" : v.toFixed(0);
}

function loadLabel(timeScale: number): string {
  const x = 1 / timeScale;
  return `${Number.isInteger(x) ? x : x.toFixed(2)}×`;
}

export function markdownTable(run: RunResult): string {
  const rows = [
    "| policy | hit rate | TTFT mean (ms) | p50 | p90 | p99 | throughput (tok/s) | imbalance | decisions/s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const p of run.policies) {
    const s = p.summary;
    rows.push(
      `| ${p.name} | ${(s.hitRate * 100).toFixed(1)}% | ${ms(s.ttftMeanMs)} | ${ms(s.ttftP50Ms)} | ${ms(s.ttftP90Ms)} | ${ms(s.ttftP99Ms)} | ` +
        `${s.throughputTokensPerS.toFixed(0)} | ${s.imbalance.toFixed(2)} | ${Number.isFinite(s.decisionsPerS) ? s.decisionsPerS.toPrecision(3) : "–"} |`,
    );
  }
  return rows.join("\n");
}

function runHeader(run: RunResult): string {
  const p = run.sim;
  return [
    `Workload: ${run.workloadDescription}.`,
    `${run.servers} simulated vLLM servers (${p.model} on one H100 80GB: ${p.numGpuBlocks} KV blocks of ${p.blockSize} tokens, ` +
      `step = ${p.stepBaseMs} ms + ${p.prefillMsPerToken} ms per prefill token + ${p.decodeMsPerToken} ms per decode token, ` +
      `${p.maxNumBatchedTokens} batched tokens; see scripts/sim/README.md).`,
    `Arrival times × ${run.timeScale} (load ${loadLabel(run.timeScale)} the recorded rate); seed ${run.seed}. ` +
      `A single LRU cache the size of the whole fleet would hit ${(run.pooledHitRate * 100).toFixed(1)}% of prompt tokens (reference, not a bound).`,
  ].join("\n");
}

export function writeReport(dir: string, run: RunResult, plots = true): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "report.json"), JSON.stringify(reportJson(run), null, 2) + "\n");
  const md: string[] = [
    `# Routing evaluation: ${run.workload} at load ${loadLabel(run.timeScale)}`,
    "",
    runHeader(run),
    "",
    markdownTable(run),
    "",
    "Hit rate: server-side prefix-cache hits over prompt tokens (Σ vllm:prefix_cache_hits_total / Σ vllm:prefix_cache_queries_total). " +
      "TTFT: arrival at the router to first token, virtual time. Throughput: prompt + output tokens of completed requests per second from first arrival to last completion. " +
      "Imbalance: max over mean of per-server busy time. Decisions/s: routing decisions per wall-clock second inside the policy (machine-dependent).",
  ];
  const refused = run.policies[0]?.summary.refused ?? 0;
  if (refused > 0) md.push("", `${refused} requests exceed the model's ${run.sim.maxModelLen}-token context and are refused with HTTP 400 by every server, under every policy.`);
  for (const s of run.skipped) md.push("", `Not run: ${s.name} (${s.reason}).`);
  md.push("", "Policies:", "");
  for (const p of run.policies) md.push(`- ${p.name}: ${p.description}`);
  if (plots && run.policies.length > 0) {
    writeFileSync(
      join(dir, "hit-rate.png"),
      toPng(barChart(
        `Prefix-cache hit rate (${run.workload}, load ${loadLabel(run.timeScale)})`,
        run.policies.map((p) => ({ label: p.name, value: p.summary.hitRate * 100, note: `${(p.summary.hitRate * 100).toFixed(1)}%` })),
        { max: 100, unit: "%" },
      )),
    );
    writeFileSync(
      join(dir, "ttft-cdf.png"),
      toPng(lineChart(
        `TTFT distribution (${run.workload}, load ${loadLabel(run.timeScale)})`,
        run.policies.map((p) => ({ label: p.name, points: cdfPoints(p.ttft) })),
        { xLabel: "time to first token (ms, log scale)", yLabel: "fraction of requests", logX: true, yMin: 0, yMax: 1 },
      )),
    );
    md.push("", "![hit rate per policy](hit-rate.png)", "", "![TTFT distribution per policy](ttft-cdf.png)");
  }
  writeFileSync(join(dir, "report.md"), md.join("\n") + "\n");
}

/** The run where policies differ most: the largest ratio of worst to best mean TTFT. */
export function mostDifferent(runs: RunResult[]): RunResult {
  let best = runs[0];
  let bestRatio = -1;
  for (const r of runs) {
    const m = r.policies.map((p) => p.summary.ttftMeanMs).filter(Number.isFinite);
    if (m.length === 0) continue;
    const ratio = Math.max(...m) / Math.min(...m);
    if (ratio > bestRatio) {
      bestRatio = ratio;
      best = r;
    }
  }
  return best;
}

export function writeSweep(dir: string, runs: RunResult[], headline: RunResult, plots = true): void {
  mkdirSync(dir, { recursive: true });
  const names = [...new Set(runs.flatMap((r) => r.policies.map((p) => p.name)))];
  const json = {
    workload: runs[0].workload,
    servers: runs[0].servers,
    seed: runs[0].seed,
    headlineTimeScale: headline.timeScale,
    runs: runs.map((r) => ({ timeScale: r.timeScale, load: 1 / r.timeScale, pooledLruHitRate: r.pooledHitRate, policies: reportJson(r) })),
  };
  writeFileSync(join(dir, "sweep.json"), JSON.stringify(json, null, 2) + "\n");
  const md: string[] = [
    `# Load sweep: ${runs[0].workload}`,
    "",
    runHeader(runs[0]).split("\n").slice(0, 2).join("\n"),
    `Loads: ${runs.map((r) => loadLabel(r.timeScale)).join(", ")} the recorded arrival rate (time scales ${runs.map((r) => r.timeScale).join(", ")}). ` +
      `report.md is the ${loadLabel(headline.timeScale)} run, where the policies' mean TTFTs differ most.`,
    "",
  ];
  const metric = (title: string, f: (s: PolicySummary) => string): void => {
    md.push(`## ${title}`, "", `| policy | ${runs.map((r) => loadLabel(r.timeScale)).join(" | ")} |`, `|---|${runs.map(() => "---:").join("|")}|`);
    for (const n of names) {
      md.push(`| ${n} | ${runs.map((r) => {
        const p = r.policies.find((x) => x.name === n);
        return p ? f(p.summary) : "–";
      }).join(" | ")} |`);
    }
    md.push("");
  };
  metric("Hit rate", (s) => `${(s.hitRate * 100).toFixed(1)}%`);
  metric("TTFT mean (ms)", (s) => ms(s.ttftMeanMs));
  metric("TTFT p90 (ms)", (s) => ms(s.ttftP90Ms));
  metric("TTFT p99 (ms)", (s) => ms(s.ttftP99Ms));
  metric("Throughput (tok/s)", (s) => s.throughputTokensPerS.toFixed(0));
  metric("Imbalance", (s) => s.imbalance.toFixed(2));
  if (plots) {
    const series = (f: (s: PolicySummary) => number) =>
      names.map((n) => ({
        label: n,
        points: runs.flatMap((r) => {
          const p = r.policies.find((x) => x.name === n);
          return p ? [[1 / r.timeScale, f(p.summary)] as [number, number]] : [];
        }).sort((a, b) => a[0] - b[0]),
      }));
    writeFileSync(join(dir, "sweep-ttft-mean.png"), toPng(lineChart(`Mean TTFT vs load (${runs[0].workload})`, series((s) => s.ttftMeanMs), { xLabel: "load (× recorded arrival rate, log scale)", yLabel: "mean TTFT (ms, log scale)", logX: true, logY: true })));
    writeFileSync(join(dir, "sweep-ttft-p90.png"), toPng(lineChart(`p90 TTFT vs load (${runs[0].workload})`, series((s) => s.ttftP90Ms), { xLabel: "load (× recorded arrival rate, log scale)", yLabel: "p90 TTFT (ms, log scale)", logX: true, logY: true })));
    writeFileSync(join(dir, "sweep-hit-rate.png"), toPng(lineChart(`Prefix-cache hit rate vs load (${runs[0].workload})`, series((s) => s.hitRate * 100), { xLabel: "load (× recorded arrival rate, log scale)", yLabel: "hit rate (%)", logX: true, yMin: 0, yMax: 100 })));
    md.push("![mean TTFT vs load](sweep-ttft-mean.png)", "", "![p90 TTFT vs load](sweep-ttft-p90.png)", "", "![hit rate vs load](sweep-hit-rate.png)");
  }
  writeFileSync(join(dir, "sweep.md"), md.join("\n") + "\n");
}
