// A small evaluation end to end: report.json honours the contract, report.md
// and the plots exist, a sweep writes its files, replays are deterministic,
// and a prefix-router factory plugs in by name.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { sharedPrefix } from "../../scripts/eval/generators.ts";
import { POLICY_NAMES, REGISTRY } from "../../scripts/eval/policies/index.ts";
import type { PolicyFactory } from "../../scripts/eval/policy.ts";
import { replay } from "../../scripts/eval/replay.ts";
import { runEval } from "../../scripts/eval/run.ts";

const dir = mkdtempSync(join(tmpdir(), "prefix-router-eval-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const CONTRACT = ["hitRate", "ttftMeanMs", "ttftP50Ms", "ttftP90Ms", "ttftP99Ms", "throughputTokensPerS", "imbalance", "decisionsPerS"];
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test("a small eval run writes report.json with the contract fields for every policy that ran", async () => {
  const notes: string[] = [];
  const out = join(dir, "one");
  await runEval({ workload: "shared-prefix", limit: 150, servers: 3, timeScales: [1], seed: 2, out, progress: false, log: (l) => notes.push(l) });
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  assert.deepEqual(Object.keys(report), [...POLICY_NAMES]);
  for (const [name, o] of Object.entries(report) as [string, Record<string, unknown>][]) {
    assert.deepEqual(Object.keys(o).slice(0, CONTRACT.length), CONTRACT, name);
    for (const k of CONTRACT) assert.equal(typeof o[k], "number", `${name}.${k}`);
    assert.ok((o.hitRate as number) >= 0 && (o.hitRate as number) <= 1);
    assert.ok((o.ttftP50Ms as number) <= (o.ttftP90Ms as number) && (o.ttftP90Ms as number) <= (o.ttftP99Ms as number));
    assert.ok((o.imbalance as number) >= 1);
    assert.equal(o.completed, 150);
  }
  const md = readFileSync(join(out, "report.md"), "utf8");
  assert.match(md, /\| policy \| hit rate \| TTFT mean/);
  for (const png of ["hit-rate.png", "ttft-cdf.png"]) {
    assert.match(md, new RegExp(png.replace(".", "\\.")));
    assert.deepEqual(readFileSync(join(out, png)).subarray(0, 8), PNG);
  }
});

test("a sweep reports every load with intervals and reference lines, the sustainable load, and the ranking under each variant", async () => {
  const out = join(dir, "sweep");
  const fake: PolicyFactory = { ...REGISTRY["round-robin"]!, name: "prefix-router", description: "stand-in to prove the plug-in path" };
  const res = await runEval({
    workload: "shared-prefix", limit: 120, servers: 2, timeScales: [1, 0.25], seed: 3, out, progress: false, log: () => {},
    policies: ["random", "prefix-router", "oracle"], factories: { "prefix-router": fake },
    variants: ["linear-steps", "original"], variantTimeScales: [0.25], maxLoadSteps: 1, bootstrap: { resamples: 100 },
  });
  assert.equal(res.runs.length, 2);
  const sweep = JSON.parse(readFileSync(join(out, "sweep.json"), "utf8"));
  assert.deepEqual(sweep.runs.map((r: { timeScale: number }) => r.timeScale), [1, 0.25]);
  assert.deepEqual(Object.keys(sweep.runs[0].policies), ["random", "prefix-router", "oracle"]);
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  // No headline picked after the fact: the contract fields are the first load's.
  assert.equal(report.oracle.timeScale, 1);
  for (const [name, o] of Object.entries(report) as [string, Record<string, any>][]) {
    assert.deepEqual(o.byLoad.map((b: { load: number }) => b.load), [1, 4], name);
    for (const b of o.byLoad) {
      assert.ok(b.ttftMeanCi95[0] <= b.ttftMeanMs && b.ttftMeanMs <= b.ttftMeanCi95[1], `${name} mean inside its interval`);
      assert.ok(b.hitRate <= o.idealReuseHitRate + 1e-9, `${name} hit rate under the ideal reuse`);
      assert.ok(b.ttftMeanOverZeroQueue >= 1, `${name} TTFT above the zero-queue bound`);
    }
    assert.ok(o.sustainableLoad && o.sustainableLoad.objective.includes("1000"), name);
    assert.deepEqual(Object.keys(o.rankByVariant), ["as run", "linear-steps", "original"]);
    assert.ok(o.rankByVariant["original"]["4×"] >= 1);
  }
  assert.equal(res.variants.length, 3);
  const md = readFileSync(join(out, "report.md"), "utf8");
  assert.match(md, /## Ranking under each evaluator variant/);
  assert.match(md, /\| policy \| as run \| linear-steps \| original \|/);
  assert.match(md, /## Highest sustainable load/);
  assert.match(md, /zero-queue bound/);
  for (const f of ["sweep.md", "sweep-ttft-mean.png", "sweep-ttft-p90.png", "sweep-hit-rate.png"]) assert.ok(existsSync(join(out, f)), f);
});

test("replays are deterministic: same workload, policy and seed, same outcome", async () => {
  const w = sharedPrefix({ seed: 9, model: DEFAULT_SIM_PARAMS.model, requests: 200 });
  for (const name of ["random", "gaie-approx", "oracle"] as const) {
    const a = await replay(w, REGISTRY[name]!, { servers: 3, timeScale: 0.5, seed: 4 });
    const b = await replay(w, REGISTRY[name]!, { servers: 3, timeScale: 0.5, seed: 4 });
    assert.deepEqual(a.server, b.server, name);
    assert.deepEqual(a.firstTokenMs, b.firstTokenMs, name);
    assert.deepEqual(a.completeMs, b.completeMs, name);
    assert.deepEqual(a.prefixHits, b.prefixHits, name);
  }
});
