// Replicated policies (scripts/eval/replicas.ts): R independent instances,
// each request to one of them at random (seeded), its callbacks to the same
// one; and what it costs an index-keeping policy to be split, end to end.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { VirtualClock } from "../../scripts/host/clock.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import type { Policy, PolicyContext, PolicyFactory, RouteRequest } from "../../scripts/eval/policy.ts";
import { replicated } from "../../scripts/eval/replicas.ts";
import { runEval } from "../../scripts/eval/run.ts";

const dir = mkdtempSync(join(tmpdir(), "prefix-router-replicas-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A policy that records what reached it; every instance is kept for inspection. */
function recordingFactory(): { factory: PolicyFactory; instances: { seed: number; picked: string[]; completed: string[]; closed: boolean }[] } {
  const instances: { seed: number; picked: string[]; completed: string[]; closed: boolean }[] = [];
  const factory: PolicyFactory = {
    name: "recording",
    description: "records its calls",
    create(ctx: PolicyContext): Policy {
      const me = { seed: ctx.seed, picked: [] as string[], completed: [] as string[], closed: false };
      instances.push(me);
      return {
        pick: (req) => (me.picked.push(req.id), ctx.endpoints[0]),
        onComplete: (req) => void me.completed.push(req.id),
        close: () => void (me.closed = true),
      };
    },
  };
  return { factory, instances };
}

function context(seed: number): PolicyContext {
  const clock = new VirtualClock();
  return {
    endpoints: ["10.0.0.1:8000", "10.0.0.2:8000"], clock, startMs: clock.now(), seed, sim: DEFAULT_SIM_PARAMS,
    metricsText: () => "", scraped: () => ({ atMs: -1 }) as never,
  };
}

const request = (i: number): RouteRequest => ({
  id: `r${i}`, arrivalMs: i, model: "m", path: "/v1/completions", promptTokens: 1, maxTokens: 1,
  body: () => "{}", promptText: () => "x", promptPrefix: () => "x",
});

async function drive(seed: number, replicas: number, n: number) {
  const { factory, instances } = recordingFactory();
  const f = replicated(factory, replicas);
  const p = await f.create(context(seed));
  for (let i = 0; i < n; i++) p.pick(request(i));
  for (let i = n - 1; i >= 0; i--) p.onComplete!(request(i), "10.0.0.1:8000");
  await p.close!();
  return { f, instances };
}

test("replicated: R separate instances, each request to one at random, its completion to the same one", async () => {
  const { f, instances } = await drive(7, 4, 2000);
  assert.equal(f.name, "recording ×4");
  assert.equal(instances.length, 4);
  assert.equal(new Set(instances.map((x) => x.seed)).size, 4, "each replica draws its own random choices");
  for (const x of instances) {
    // 2000 draws over 4: each near 500 (binomial sd ≈ 19).
    assert.ok(x.picked.length > 400 && x.picked.length < 600, `${x.picked.length} picks`);
    assert.deepEqual([...x.completed].sort(), [...x.picked].sort(), "completions reach the replica that picked");
    assert.ok(x.closed);
  }
  const all = instances.flatMap((x) => x.picked);
  assert.equal(new Set(all).size, 2000, "every request reached exactly one replica");
  // Not a fixed rotation: consecutive requests often meet the same replica.
  const owner = new Map(instances.flatMap((x, k) => x.picked.map((id) => [id, k] as const)));
  const repeats = Array.from({ length: 1999 }, (_, i) => owner.get(`r${i}`) === owner.get(`r${i + 1}`)).filter(Boolean).length;
  assert.ok(repeats > 350 && repeats < 650, `${repeats} repeats, about a quarter expected`);
});

test("replicated: the assignment is fixed by the seed", async () => {
  const a = await drive(3, 3, 300);
  const b = await drive(3, 3, 300);
  const c = await drive(4, 3, 300);
  const picks = (r: typeof a) => r.instances.map((x) => x.picked.join());
  assert.deepEqual(picks(a), picks(b));
  assert.notDeepEqual(picks(a), picks(c));
  assert.throws(() => replicated(recordingFactory().factory, 0), /positive integer/);
});

test("eval --replicas: an index-keeping policy split four ways loses hit rate, a stateless one does not gain; the report says so", async () => {
  const out = join(dir, "replicas");
  const res = await runEval({
    workload: "shared-prefix", limit: 300, servers: 4, timeScales: [1], seed: 5, replicas: 4,
    policies: ["round-robin", "sglang-cache-aware"], out, progress: false, plots: false, log: () => {},
  });
  const hit = (name: string) => res.runs[0].policies.find((p) => p.name === name)!.summary.hitRate;
  assert.deepEqual(res.runs[0].policies.map((p) => p.name), ["round-robin", "sglang-cache-aware", "round-robin ×4", "sglang-cache-aware ×4"]);
  assert.ok(hit("sglang-cache-aware ×4") < hit("sglang-cache-aware"), `${hit("sglang-cache-aware ×4")} vs ${hit("sglang-cache-aware")}`);
  // Round robin keeps no index: four independent rotations hit about as often as one.
  assert.ok(Math.abs(hit("round-robin ×4") - hit("round-robin")) < 0.1, `${hit("round-robin ×4")} vs ${hit("round-robin")}`);
  const md = readFileSync(join(out, "report.md"), "utf8");
  assert.match(md, /## 4 replicas against one/);
  assert.match(md, /\| sglang-cache-aware \| [\d.]+% → [\d.]+% \(0\.\d\d\) \|/);
});
