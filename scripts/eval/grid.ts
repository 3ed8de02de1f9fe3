// The defaults grid: prefix-router configurations ("candidates") against every
// baseline over workloads × fleet sizes × loads, each candidate judged by its
// worst cell against the best baseline of that cell, so no default is chosen
// on one load of one workload. Owns: the grid's cells, running them (a slice
// per process, to use more cores) and the summary. Must not: change defaults;
// they live in assembly/router/config.ts, with this summary as evidence.
//
// Usage: node --import tsx scripts/eval/grid.ts
//          [--workloads trace,shared-prefix,multi-turn,lora-mix,bursts,agent] [--servers 4,8,16] [--loads 1,4,8]
//          [--limit 1500] [--seed 1] [--candidates '{"name":{config overrides},…}'] [--baselines a,b,…]
//          [--part k/n] [--json FILE]          run the cells of slice k of n, append results to FILE
//          [--wasm FILE]                       the candidates run this build of the filter
//          [--max-load-steps N]                also find each policy's highest sustainable load (p90 TTFT
//                                              under 1 s, run.ts searchSustainableLoad), N bisection steps
//        node --import tsx scripts/eval/grid.ts --summarize FILE[,FILE…] [--out FILE.md]
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runEval } from "./run.ts";
import { prefixRouterPolicy } from "./policies/prefix-router.ts";
import type { PolicyFactory } from "./policy.ts";

const { values } = parseArgs({
  options: {
    workloads: { type: "string", default: "trace,shared-prefix,multi-turn,lora-mix,bursts,agent" },
    servers: { type: "string", default: "4,8,16" },
    loads: { type: "string", default: "1,4,8" },
    limit: { type: "string", default: "1500" },
    seed: { type: "string", default: "1" },
    candidates: { type: "string", default: '{"defaults":{}}' },
    baselines: { type: "string", default: "round-robin,least-request,gaie-approx,llm-d-approx,llm-d-precise,sglang-cache-aware,aibrix-prefix,dynamo-kv" },
    part: { type: "string", default: "1/1" },
    json: { type: "string" },
    summarize: { type: "string" },
    wasm: { type: "string" },
    out: { type: "string" },
    "max-load-steps": { type: "string", default: "0" },
  },
});

/** One policy at one load of one cell. */
interface Result {
  workload: string;
  servers: number;
  load: number;
  policy: string;
  /** True for a prefix-router configuration, false for a baseline. */
  candidate: boolean;
  hitRate: number;
  ttftMeanMs: number;
  ttftP90Ms: number;
  /** With --max-load-steps: the highest load the policy sustains in this cell (the same in each of its rows). */
  sustains?: number;
  /** …and true when every load tried passed (it sustains at least that). */
  sustainsEveryLoad?: boolean;
}

const list = (s: string) => s.split(",").map((x) => x.trim()).filter((x) => x !== "");

async function runCells(): Promise<void> {
  const candidates = Object.entries(JSON.parse(values.candidates) as Record<string, Record<string, unknown>>);
  const baselines = list(values.baselines);
  const loads = list(values.loads).map(Number);
  const cells = list(values.workloads).flatMap((workload) => list(values.servers).map((s) => ({ workload, servers: Number(s) })));
  const [part, parts] = values.part.split("/").map(Number);
  const factories: Record<string, PolicyFactory> = {};
  for (const [name, config] of candidates) factories[`candidate:${name}`] = prefixRouterPolicy({ config, wasm: values.wasm });
  for (let i = part - 1; i < cells.length; i += parts) {
    const cell = cells[i];
    const t0 = performance.now();
    const r = await runEval({
      workload: cell.workload, servers: cell.servers, timeScales: loads.map((l) => 1 / l), seed: Number(values.seed),
      limit: Number(values.limit), policies: [...baselines, ...Object.keys(factories)], factories, progress: false, log: () => {},
      maxLoadSteps: Number(values["max-load-steps"]),
    });
    const rows: Result[] = r.runs.flatMap((run, k) => run.policies.map((p) => ({
      workload: cell.workload, servers: cell.servers, load: loads[k],
      policy: p.name.replace(/^candidate:/, ""), candidate: p.name.startsWith("candidate:"),
      hitRate: p.summary.hitRate, ttftMeanMs: p.summary.ttftMeanMs, ttftP90Ms: p.summary.ttftP90Ms,
      ...(p.sustainable === undefined ? {} : { sustains: p.sustainable.load, sustainsEveryLoad: p.sustainable.failsAt === Infinity }),
    })));
    const text = rows.map((x) => JSON.stringify(x)).join("\n") + "\n";
    if (values.json) appendFileSync(values.json, text);
    else process.stdout.write(text);
    process.stderr.write(`${cell.workload} × ${cell.servers} servers: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  }
}

/** Markdown: per candidate, its worst ratio to the best baseline of each cell, and every cell. */
function summarize(files: string[]): string {
  const results: Result[] = files.flatMap((f) => readFileSync(f, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Result));
  const key = (r: Result) => `${r.workload}|${r.servers}|${r.load}`;
  const cells = new Map<string, Result[]>();
  for (const r of results) cells.set(key(r), [...(cells.get(key(r)) ?? []), r]);
  const names = [...new Set(results.filter((r) => r.candidate).map((r) => r.policy))];
  const out: string[] = [];
  const fmt = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x.toFixed(0));
  out.push("| candidate | cells | ahead on mean | ahead on p90 | worst mean ratio (cell) | worst p90 ratio (cell) | geometric mean of mean ratios |", "|---|---:|---:|---:|---|---|---:|");
  for (const name of names) {
    let ahead = 0, aheadP90 = 0, n = 0, logSum = 0;
    let worst = { ratio: 0, cell: "" }, worstP90 = { ratio: 0, cell: "" };
    for (const [k, rs] of cells) {
      const c = rs.find((r) => r.candidate && r.policy === name);
      const base = rs.filter((r) => !r.candidate);
      if (!c || base.length === 0) continue;
      const bestMean = Math.min(...base.map((b) => b.ttftMeanMs));
      const bestP90 = Math.min(...base.map((b) => b.ttftP90Ms));
      const ratio = c.ttftMeanMs / bestMean, ratioP90 = c.ttftP90Ms / bestP90;
      n++;
      logSum += Math.log(ratio);
      if (ratio < 1) ahead++;
      if (ratioP90 < 1) aheadP90++;
      const label = k.replace(/\|/g, " · ").replace(/ · (\d+)$/, " · $1×");
      if (ratio > worst.ratio) worst = { ratio, cell: label };
      if (ratioP90 > worstP90.ratio) worstP90 = { ratio: ratioP90, cell: label };
    }
    out.push(`| ${name} | ${n} | ${ahead} | ${aheadP90} | ${worst.ratio.toFixed(2)} (${worst.cell}) | ${worstP90.ratio.toFixed(2)} (${worstP90.cell}) | ${Math.exp(logSum / Math.max(n, 1)).toFixed(3)} |`);
  }
  out.push("", "Every cell: TTFT mean / p90 in ms (hit rate); the best baseline of the cell by mean.", "");
  out.push(`| workload | servers | load | best baseline | ${names.join(" | ")} |`, `|---|---:|---:|---|${names.map(() => "---|").join("")}`);
  const sorted = [...cells.entries()].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }));
  for (const [, rs] of sorted) {
    const base = rs.filter((r) => !r.candidate).sort((a, b) => a.ttftMeanMs - b.ttftMeanMs);
    if (base.length === 0) continue;
    const b = base[0];
    const cell = (r?: Result) => (r ? `${fmt(r.ttftMeanMs)} / ${fmt(r.ttftP90Ms)} (${(r.hitRate * 100).toFixed(0)}%)` : "–");
    out.push(`| ${b.workload} | ${b.servers} | ${b.load}× | ${b.policy} ${cell(b)} | ${names.map((n) => cell(rs.find((r) => r.candidate && r.policy === n))).join(" | ")} |`);
  }
  out.push(...sustainableLoads(results, names));
  return out.join("\n") + "\n";
}

/**
 * With --max-load-steps: per cell (workload · servers), each candidate's
 * highest sustainable load against the best baseline's. A load every policy
 * passed up to the top of the sweep is written "≥ L" and ties with another
 * "≥ L".
 */
function sustainableLoads(results: Result[], names: string[]): string[] {
  const measured = results.filter((r) => r.sustains !== undefined);
  if (measured.length === 0) return [];
  const cells = new Map<string, Map<string, Result>>();
  for (const r of measured) {
    const k = `${r.workload} · ${r.servers}`;
    if (!cells.has(k)) cells.set(k, new Map());
    cells.get(k)!.set(`${r.candidate ? "c" : "b"}:${r.policy}`, r);
  }
  const text = (r: Result) => `${r.sustainsEveryLoad ? "≥ " : ""}${r.sustains!.toFixed(2)}×`;
  const out = ["", "Highest sustainable load (p90 TTFT under 1 s) per workload · servers; ratio = candidate over the best baseline (above 1: it sustains more).", ""];
  out.push(`| workload · servers | best baseline | ${names.join(" | ")} |`, `|---|---|${names.map(() => "---|").join("")}`);
  const worst = new Map<string, { ratio: number; cell: string; atLeast: number }>(names.map((n) => [n, { ratio: Infinity, cell: "", atLeast: 0 }]));
  for (const [cell, rs] of [...cells.entries()].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))) {
    const base = [...rs.entries()].filter(([k]) => k.startsWith("b:")).map(([, r]) => r).sort((a, b) => b.sustains! - a.sustains!);
    if (base.length === 0) continue;
    const b = base[0];
    const row = names.map((n) => {
      const c = rs.get(`c:${n}`);
      if (c === undefined) return "–";
      const ratio = b.sustains! > 0 ? c.sustains! / b.sustains! : Infinity;
      const w = worst.get(n)!;
      if (ratio >= 1 || (c.sustainsEveryLoad && b.sustainsEveryLoad)) w.atLeast++;
      if (ratio < w.ratio) worst.set(n, { ...w, ratio, cell });
      return `${text(c)} (${Number.isFinite(ratio) ? ratio.toFixed(2) : "∞"})`;
    });
    out.push(`| ${cell} | ${b.policy} ${text(b)} | ${row.join(" | ")} |`);
  }
  out.push("", "| candidate | cells at or above the best baseline | lowest ratio (cell) |", "|---|---:|---|");
  for (const n of names) {
    const w = worst.get(n)!;
    out.push(`| ${n} | ${w.atLeast} of ${cells.size} | ${w.ratio.toFixed(2)} (${w.cell}) |`);
  }
  return out;
}

if (values.summarize) {
  const md = summarize(list(values.summarize));
  if (values.out) writeFileSync(values.out, md);
  process.stdout.write(md);
} else {
  await runCells();
}
