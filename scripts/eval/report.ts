// Writes the evaluation report. Owns: report.json (the contract: one object
// per policy, named as in policies/index.ts, with the contract fields first and
// extra fields after), report.md (every load with confidence intervals, the
// reference lines, sustainable loads, the ranking under each evaluator
// variant, plots) and, for a load sweep, sweep.json and sweep.md. Must not:
// run replays or compute statistics.
//
// report.json's contract fields are those of the first load run (1× by
// default); `byLoad` holds every load, so no load is singled out after the
// fact.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SimParams } from "../sim/params.ts";
import type { ZeroQueueBound } from "./ceiling.ts";
import { barChart, cdfPoints, lineChart, toPng } from "./plot.ts";
import type { SustainableLoad } from "./run.ts";
import type { BootstrapCis, Ci, PolicySummary } from "./stats.ts";

export interface PolicyRun {
  name: string;
  description: string;
  summary: PolicySummary;
  /** Bootstrap confidence intervals (stats.ts). */
  ci?: BootstrapCis;
  /** Sorted TTFTs, ms. */
  ttft: Float64Array;
  /** The highest load with p90 TTFT under the objective (run.ts), when searched. */
  sustainable?: SustainableLoad;
}

export interface RunResult {
  workload: string;
  workloadDescription: string;
  requests: number;
  servers: number;
  timeScale: number;
  seed: number;
  sim: SimParams;
  /** The evaluator switches in force, in words. */
  realism?: string;
  policies: PolicyRun[];
  skipped: { name: string; reason: string }[];
  /** Hit rate of one fleet-sized LRU cache (ceiling.ts). */
  pooledHitRate: number;
  /** Share of prompt tokens that repeat an earlier request's prefix (an infinite cache; ceiling.ts). */
  idealReuseHitRate?: number;
  /** TTFT of each request alone on an idle server with its ideal hit (ceiling.ts). */
  zeroQueueTtft?: ZeroQueueBound;
}

/** The same policies at a few loads under one evaluator variant. */
export interface VariantResult {
  name: string;
  description: string;
  runs: RunResult[];
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

function ciJson(c: Ci | undefined, digits: number): [number | null, number | null] | null {
  return c ? [jsonNumber(round(c.lo, digits)), jsonNumber(round(c.hi, digits))] : null;
}

function oracleOf(run: RunResult): PolicySummary | undefined {
  return run.policies.find((p) => p.name === "oracle")?.summary;
}

/** Figures of one policy at one load that every report line shares. */
function loadFigures(run: RunResult, p: PolicyRun): Record<string, unknown> {
  const s = p.summary;
  const o = oracleOf(run);
  return {
    load: round(1 / run.timeScale, 4),
    timeScale: run.timeScale,
    hitRate: jsonNumber(round(s.hitRate, 6)),
    hitRateCi95: ciJson(p.ci?.hitRate, 6),
    hitRateOfIdeal: run.idealReuseHitRate ? jsonNumber(round(s.hitRate / run.idealReuseHitRate, 4)) : null,
    ttftMeanMs: jsonNumber(round(s.ttftMeanMs, 3)),
    ttftMeanCi95: ciJson(p.ci?.ttftMeanMs, 3),
    ttftP50Ms: jsonNumber(round(s.ttftP50Ms, 3)),
    ttftP90Ms: jsonNumber(round(s.ttftP90Ms, 3)),
    ttftP90Ci95: ciJson(p.ci?.ttftP90Ms, 3),
    ttftP99Ms: jsonNumber(round(s.ttftP99Ms, 3)),
    ttftMeanOverZeroQueue: run.zeroQueueTtft ? jsonNumber(round(s.ttftMeanMs / run.zeroQueueTtft.meanMs, 4)) : null,
    ttftMeanOverOracle: o ? jsonNumber(round(s.ttftMeanMs / o.ttftMeanMs, 4)) : null,
    throughputTokensPerS: jsonNumber(round(s.throughputTokensPerS, 3)),
    imbalance: jsonNumber(round(s.imbalance, 4)),
    preemptions: s.preemptions,
  };
}

/** The report.json object: per policy, the first run's contract fields, then extras (every load, variants). */
export function reportJson(runs: RunResult | RunResult[], variants: VariantResult[] = []): Record<string, Record<string, unknown>> {
  const all = Array.isArray(runs) ? runs : [runs];
  const run = all[0];
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
      evaluator: run.realism ?? null,
      pooledLruHitRate: round(run.pooledHitRate, 6),
      idealReuseHitRate: run.idealReuseHitRate !== undefined ? round(run.idealReuseHitRate, 6) : null,
      zeroQueueTtftMeanMs: run.zeroQueueTtft ? jsonNumber(round(run.zeroQueueTtft.meanMs, 3)) : null,
      zeroQueueTtftP90Ms: run.zeroQueueTtft ? jsonNumber(round(run.zeroQueueTtft.p90Ms, 3)) : null,
      hitRateCi95: ciJson(p.ci?.hitRate, 6),
      ttftMeanCi95: ciJson(p.ci?.ttftMeanMs, 3),
      ttftP90Ci95: ciJson(p.ci?.ttftP90Ms, 3),
      byLoad: all.map((r) => {
        const q = r.policies.find((x) => x.name === p.name);
        return q ? loadFigures(r, q) : null;
      }),
      sustainableLoad: p.sustainable
        ? { objective: "p90 TTFT < 1000 ms", load: round(p.sustainable.load, 3), failsAt: jsonNumber(round(p.sustainable.failsAt, 3)), p90AtLoadMs: jsonNumber(round(p.sustainable.p90AtLoad, 1)), p90AtFailMs: jsonNumber(round(p.sustainable.p90AtFail, 1)) }
        : null,
      rankByVariant: Object.fromEntries(variants.map((v) => [v.name, Object.fromEntries(v.runs.map((r) => [loadLabel(r.timeScale), rankOf(r, p.name)]))])),
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

function pct(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : "–";
}

export function loadLabel(timeScale: number): string {
  const x = 1 / timeScale;
  return `${Number.isInteger(x) ? x : Number(x.toFixed(2))}×`;
}

/** 1 + the number of policies with a lower mean TTFT in that run. */
function rankOf(run: RunResult, name: string): number | null {
  const me = run.policies.find((p) => p.name === name);
  if (!me) return null;
  return 1 + run.policies.filter((p) => p.summary.ttftMeanMs < me.summary.ttftMeanMs).length;
}

export function markdownTable(run: RunResult): string {
  const rows = [
    "| policy | hit rate | TTFT mean (ms) | p50 | p90 | p99 | throughput (tok/s) | imbalance | decisions/s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const p of run.policies) {
    const s = p.summary;
    rows.push(
      `| ${p.name} | ${pct(s.hitRate)} | ${ms(s.ttftMeanMs)} | ${ms(s.ttftP50Ms)} | ${ms(s.ttftP90Ms)} | ${ms(s.ttftP99Ms)} | ` +
        `${s.throughputTokensPerS.toFixed(0)} | ${s.imbalance.toFixed(2)} | ${Number.isFinite(s.decisionsPerS) ? s.decisionsPerS.toPrecision(3) : "–"} |`,
    );
  }
  return rows.join("\n");
}

function withCi(v: string, c: Ci | undefined, f: (x: number) => string): string {
  return c ? `${v} [${f(c.lo)}, ${f(c.hi)}]` : v;
}

/** Tables over every load: hit rate and TTFT with 95% intervals, and against the reference lines. */
function everyLoadTables(runs: RunResult[]): string[] {
  const names = [...new Set(runs.flatMap((r) => r.policies.map((p) => p.name)))];
  const head = `| policy | ${runs.map((r) => loadLabel(r.timeScale)).join(" | ")} |`;
  const rule = `|---|${runs.map(() => "---:").join("|")}|`;
  const table = (title: string, note: string, cell: (r: RunResult, p: PolicyRun) => string, reference?: { label: string; cell: (r: RunResult) => string }): string[] => {
    const md = [`### ${title}`, "", ...(note ? [note, ""] : []), head, rule];
    for (const n of names) {
      md.push(`| ${n} | ${runs.map((r) => {
        const p = r.policies.find((x) => x.name === n);
        return p ? cell(r, p) : "–";
      }).join(" | ")} |`);
    }
    if (reference) md.push(`| *${reference.label}* | ${runs.map(reference.cell).join(" | ")} |`);
    md.push("");
    return md;
  };
  return [
    ...table("Hit rate [95% CI] (share of the ideal reuse)", "Server-side prefix-cache hits over prompt tokens; in parentheses, over the trace's ideal reuse (every repeat of an earlier prefix hit: an infinite shared cache).",
      (r, p) => `${withCi(pct(p.summary.hitRate), p.ci?.hitRate, pct)} (${r.idealReuseHitRate ? (100 * p.summary.hitRate / r.idealReuseHitRate).toFixed(0) + "%" : "–"})`,
      { label: "ideal reuse", cell: (r) => (r.idealReuseHitRate !== undefined ? pct(r.idealReuseHitRate) : "–") }),
    ...table("TTFT mean, ms [95% CI] (× zero-queue bound, × oracle)", "The zero-queue bound: each request alone on an idle server holding its ideal hit, plus the server's intake overhead.",
      (r, p) => {
        const o = oracleOf(r);
        const zq = r.zeroQueueTtft ? (p.summary.ttftMeanMs / r.zeroQueueTtft.meanMs).toFixed(2) : "–";
        const or = o ? (p.summary.ttftMeanMs / o.ttftMeanMs).toFixed(2) : "–";
        return `${withCi(ms(p.summary.ttftMeanMs), p.ci?.ttftMeanMs, ms)} (${zq}, ${or})`;
      },
      { label: "zero-queue bound", cell: (r) => (r.zeroQueueTtft ? ms(r.zeroQueueTtft.meanMs) : "–") }),
    ...table("TTFT p90, ms [95% CI]", "", (_r, p) => withCi(ms(p.summary.ttftP90Ms), p.ci?.ttftP90Ms, ms),
      { label: "zero-queue bound", cell: (r) => (r.zeroQueueTtft ? ms(r.zeroQueueTtft.p90Ms) : "–") }),
  ];
}

/** Each policy run as replicas beside itself as one gateway (run.ts `replicas`): hit rate and TTFT mean at every load. */
function replicaTable(runs: RunResult[]): string[] {
  const names = runs[0].policies.map((p) => p.name);
  const pairs = names.flatMap((n) => {
    const m = /^(.*) ×(\d+)$/.exec(n);
    return m && names.includes(m[1]) ? [{ one: m[1], many: n, replicas: Number(m[2]) }] : [];
  });
  if (pairs.length === 0) return [];
  const md = [
    `## ${pairs[0].replicas} replicas against one`,
    "",
    "Each request goes to one of the independent replicas at random (seeded); replicas share nothing but the servers (replicas.ts). " +
      "Cells: one gateway → replicas (replicas over one).",
    "",
  ];
  const cell = (r: RunResult, one: string, many: string, f: (s: PolicySummary) => number, fmt: (x: number) => string): string => {
    const a = r.policies.find((p) => p.name === one)?.summary;
    const b = r.policies.find((p) => p.name === many)?.summary;
    return a && b ? `${fmt(f(a))} → ${fmt(f(b))} (${(f(b) / f(a)).toFixed(2)})` : "–";
  };
  for (const [title, f, fmt] of [["Hit rate", (s: PolicySummary) => s.hitRate, pct], ["TTFT mean, ms", (s: PolicySummary) => s.ttftMeanMs, ms]] as const) {
    md.push(`### ${title}`, "", `| policy | ${runs.map((r) => loadLabel(r.timeScale)).join(" | ")} |`, `|---|${runs.map(() => "---:").join("|")}|`);
    for (const { one, many } of pairs) md.push(`| ${one} | ${runs.map((r) => cell(r, one, many, f, fmt)).join(" | ")} |`);
    md.push("");
  }
  return md;
}

function sustainableTable(run: RunResult): string[] {
  const rows = run.policies.filter((p) => p.sustainable);
  if (rows.length === 0) return [];
  const md = [
    "## Highest sustainable load (p90 TTFT < 1 s)",
    "",
    "The sweep brackets it (the highest load that passed below the first that failed), bisection in log space narrows it; " +
      "\"≥ L\" means every load tried passed, \"< L\" that the lowest already failed.",
    "",
    "| policy | sustains | first failing load tried | p90 there (ms) |",
    "|---|---:|---:|---:|",
  ];
  const sorted = [...rows].sort((a, b) => b.sustainable!.load - a.sustainable!.load);
  for (const p of sorted) {
    const s = p.sustainable!;
    const load = s.failsAt === Infinity ? `≥ ${s.load.toFixed(2)}×` : s.load === 0 ? `< ${s.failsAt.toFixed(2)}×` : `${s.load.toFixed(2)}×`;
    md.push(`| ${p.name} | ${load} | ${Number.isFinite(s.failsAt) ? s.failsAt.toFixed(2) + "×" : "–"} | ${ms(s.p90AtFail)} |`);
  }
  md.push("");
  return md;
}

/** One table per load: rows are policies, columns variants, cells "rank · mean / p90". */
export function variantTables(variants: VariantResult[]): string[] {
  if (variants.length === 0) return [];
  const md = [
    "## Ranking under each evaluator variant",
    "",
    "Each variant flips one realism switch of the run's own setting (\"original\" flips all four: the evaluator before issue 12). " +
      "Cells: rank by mean TTFT · mean / p90 TTFT in ms.",
    "",
    ...variants.map((v) => `- **${v.name}**: ${v.description}`),
    "",
  ];
  const scales = [...new Set(variants.flatMap((v) => v.runs.map((r) => r.timeScale)))];
  const names = [...new Set(variants.flatMap((v) => v.runs.flatMap((r) => r.policies.map((p) => p.name))))];
  for (const ts of scales) {
    md.push(`### Load ${loadLabel(ts)}`, "", `| policy | ${variants.map((v) => v.name).join(" | ")} |`, `|---|${variants.map(() => "---:").join("|")}|`);
    const order = variants[0].runs.find((r) => r.timeScale === ts);
    const rowNames = order ? [...names].sort((a, b) => (rankOf(order, a) ?? 99) - (rankOf(order, b) ?? 99)) : names;
    for (const n of rowNames) {
      md.push(`| ${n} | ${variants.map((v) => {
        const r = v.runs.find((x) => x.timeScale === ts);
        const p = r?.policies.find((x) => x.name === n);
        return r && p ? `${rankOf(r, n)} · ${ms(p.summary.ttftMeanMs)} / ${ms(p.summary.ttftP90Ms)}` : "–";
      }).join(" | ")} |`);
    }
    md.push("");
  }
  return md;
}

function runHeader(run: RunResult): string {
  const p = run.sim;
  const attention = p.stepModel === "context"
    ? ` + attention (${p.attnPrefillMsPerPair.toExponential(3)} ms per prefill query-key pair, ${p.attnDecodeMsPerContextToken.toExponential(3)} ms per decode context token)`
    : "";
  return [
    `Workload: ${run.workloadDescription}.`,
    `${run.servers} simulated vLLM servers (${p.model} on one H100 80GB: ${p.numGpuBlocks} KV blocks of ${p.blockSize} tokens, ` +
      `step = ${p.stepBaseMs} ms + ${p.prefillMsPerToken} ms per prefill token + ${p.decodeMsPerToken} ms per decode token${attention}, ` +
      `${p.maxNumBatchedTokens} batched tokens; see scripts/sim/README.md).`,
    run.realism ? `Evaluator: ${run.realism} (scripts/eval/README.md).` : "",
    `Seed ${run.seed}. A single LRU cache the size of the whole fleet would hit ${pct(run.pooledHitRate)} of prompt tokens (reference, not a bound)` +
      (run.idealReuseHitRate !== undefined ? `; the ideal reuse (an infinite shared cache) is ${pct(run.idealReuseHitRate)}.` : "."),
  ].filter((l) => l !== "").join("\n");
}

export function writeReport(dir: string, runs: RunResult | RunResult[], variants: VariantResult[] = [], plots = true): void {
  const all = Array.isArray(runs) ? runs : [runs];
  const run = all[0];
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "report.json"), JSON.stringify(reportJson(all, variants), null, 2) + "\n");
  const md: string[] = [
    `# Routing evaluation: ${run.workload}, loads ${all.map((r) => loadLabel(r.timeScale)).join(", ")}`,
    "",
    runHeader(run),
    "",
    "## Every load",
    "",
    "95% intervals: block bootstrap over equal arrival windows (stats.ts), seeded.",
    "",
    ...everyLoadTables(all),
    ...replicaTable(all),
    ...sustainableTable(run),
    ...variantTables(variants),
    `## Detail at ${loadLabel(run.timeScale)} (report.json's contract fields)`,
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
        run.policies.map((p) => ({ label: p.name, value: p.summary.hitRate * 100, note: pct(p.summary.hitRate) })),
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
    if (all.length > 1) md.push("", "Every load: sweep.md and its plots.");
  }
  writeFileSync(join(dir, "report.md"), md.join("\n") + "\n");
}

export function writeSweep(dir: string, runs: RunResult[], plots = true): void {
  mkdirSync(dir, { recursive: true });
  const names = [...new Set(runs.flatMap((r) => r.policies.map((p) => p.name)))];
  const json = {
    workload: runs[0].workload,
    servers: runs[0].servers,
    seed: runs[0].seed,
    evaluator: runs[0].realism ?? null,
    runs: runs.map((r) => ({
      timeScale: r.timeScale, load: 1 / r.timeScale, pooledLruHitRate: r.pooledHitRate,
      idealReuseHitRate: r.idealReuseHitRate ?? null, zeroQueueTtft: r.zeroQueueTtft ?? null, policies: reportJson(r),
    })),
  };
  writeFileSync(join(dir, "sweep.json"), JSON.stringify(json, null, 2) + "\n");
  const md: string[] = [
    `# Load sweep: ${runs[0].workload}`,
    "",
    runHeader(runs[0]),
    `Loads: ${runs.map((r) => loadLabel(r.timeScale)).join(", ")} the recorded arrival rate (time scales ${runs.map((r) => r.timeScale).join(", ")}).`,
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
  metric("Hit rate", (s) => pct(s.hitRate));
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
