// Differential: routing. The same sequences of chat and completions requests
// (shared and distinct prefixes, short and very long prompts, a pass-through in
// between) run through the dev gateway and real Envoy with 1, 2 and 4 worker
// VMs, and with metrics pages that steer the picks; every routed request must
// reach the same endpoint and every prefix_router_* series must end equal.
//
// Why the picks may not depend on which worker took a connection: Envoy's
// kernel spreads connections over workers (SO_REUSEPORT), the emulator
// round-robins them, so the same request lands on different VMs in the two
// runs. Each VM keeps its own index, but all of them append every decision
// and release to one journal in shared data (vm_id prefix_router) and replay
// the others' before deciding (assembly/router/router.ts decide, journal.ts).
// With requests one at a time, and the driver waiting until the serving VM
// has flushed its release (driver.ts, QUIET_TICKS), every VM decides from the
// same index and in-flight counts; rendezvous placement depends only on the
// prompt and the endpoint addresses, which both runs share.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { envoyTest } from "../e2e/real-envoy.ts";
import { vllmPage } from "../router/metrics-server.ts";
import { DEFAULT_INDEX_STRIDE } from "../e2e/scenarios.ts";
import { DEFAULT_MAX_PREFIX_BLOCKS } from "../../scripts/gateway/envoy-config.ts";
import type { Variant } from "../../scripts/gateway/envoy-config.ts";
import {
  endpointSeries, envoyWorkersUsed, runBoth, startUpstreams, statDifferences, stepDifferences, text, waitStats,
  type Allowance, type Step, type Upstream,
} from "./driver.ts";

const TICK_MS = 25;
let ups: Upstream[] = [];

before(async () => {
  ups = await startUpstreams(6);
});
after(async () => {
  await Promise.all(ups.map((u) => u.stop()));
});

/** Requests with shared and distinct prefixes; `again` marks those whose prefix an earlier step placed. */
function routingScript(seed: number): { steps: Step[]; again: Array<[number, number]> } {
  const steps: Step[] = [];
  const again: Array<[number, number]> = [];
  const systems = Array.from({ length: 6 }, (_, i) => `System ${seed}-${i}. ${text(seed * 100 + i, 2000)}`);
  systems.forEach((system, i) => steps.push({ kind: "chat", label: `chat ${i}`, system, user: "first question" }));
  systems.forEach((system, i) => {
    again.push([steps.length, i]);
    steps.push({ kind: "chat", label: `chat ${i} again`, system, user: `follow-up ${i}: ${text(seed + i, 200)}` });
  });
  const shared = text(seed * 100 + 50, 3000);
  const first = steps.length;
  steps.push({ kind: "completion", label: "completion, shared prefix", prompt: `${shared} tail 0` });
  for (let i = 1; i <= 3; i++) {
    again.push([steps.length, first]);
    steps.push({ kind: "completion", label: `completion, shared prefix ${i}`, prompt: `${shared} tail ${i} ${text(seed + 10 + i, 300)}` });
  }
  steps.push({ kind: "raw", label: "pass-through", method: "GET", path: "/v1/models" });
  for (let i = 0; i < 4; i++) steps.push({ kind: "completion", label: `completion, distinct ${i}`, prompt: text(seed * 100 + 60 + i, 1500) });
  steps.push({ kind: "completion", label: "shorter than one block", prompt: "Hi." });
  // Past maxPrefixBlocks (4096 blocks of 64 bytes by default), so only the first 256 KB is hashed.
  const long = text(seed * 100 + 70, DEFAULT_MAX_PREFIX_BLOCKS * 64 + 6_000);
  const longAt = steps.length;
  steps.push({ kind: "completion", label: "past maxPrefixBlocks", prompt: long });
  again.push([steps.length, longAt]);
  steps.push({ kind: "completion", label: "past maxPrefixBlocks, other tail", prompt: `${long} and more` });
  return { steps, again };
}

function assertSticky(r: Awaited<ReturnType<typeof runBoth>>, again: Array<[number, number]>): void {
  for (const [i, j] of again) {
    assert.equal(r.envoy.steps[i].servedBy, r.envoy.steps[j].servedBy, `"${r.envoy.steps[i].label}" left the endpoint of "${r.envoy.steps[j].label}"`);
  }
}

// The ORIGINAL_DST variant (for Envoy without override_host) must route alike
// too: there Envoy matches the route again after the filter set the header (a
// Wasm filter of ABI 0.2.1 that changes request headers clears the route
// cache), while the dev gateway plays override_host for both variants.
const RUNS: Array<{ concurrency: number; variant: Variant }> = [
  { concurrency: 1, variant: "override_host" },
  { concurrency: 2, variant: "override_host" },
  { concurrency: 4, variant: "override_host" },
  { concurrency: 2, variant: "original_dst" },
];

for (const { concurrency, variant } of RUNS) {
  const name = `${concurrency} worker VM${concurrency > 1 ? "s" : ""}${variant === "original_dst" ? ", ORIGINAL_DST variant" : ""}`;
  envoyTest(`differential: same picks, pass-throughs and stats with ${name}`, { timeout: 60_000 }, async () => {
    const endpoints = ups.slice(0, 4).map((u) => u.address);
    const { steps, again } = routingScript(concurrency + (variant === "original_dst" ? 10 : 0));
    let workers = 0;
    const r = await runBoth({ endpoints, variant, metrics: false, filter: { tickMs: TICK_MS } }, { concurrency }, steps, { tickMs: TICK_MS }, {
      inspect: async (gw) => {
        if (gw.kind === "envoy") workers = await envoyWorkersUsed(gw);
      },
    });
    assert.deepEqual(stepDifferences(r.dev.steps, r.envoy.steps, endpoints), []);
    assert.deepEqual(statDifferences(r.dev.final, r.envoy.final, []), []);
    // The admin's /stats, text and JSON, name the same wasmcustom.* stats with the same values.
    assert.match(r.envoy.statsText, /^wasmcustom\.prefix_router\.routed: [1-9]/m);
    assert.equal(r.dev.statsText, r.envoy.statsText);
    assert.deepEqual(r.dev.statsJson, r.envoy.statsJson);
    // The filter's own log: one "configured" line per VM (the canary, the main
    // thread's and each worker's), nothing else at info level.
    assert.deepEqual([...r.dev.lines].sort(), [...r.envoy.lines].sort());
    assert.equal(r.envoy.lines.filter((l) => l.includes("prefix-router: configured 4 endpoints")).length, concurrency + 2);
    assertSticky(r, again);
    const routed = r.envoy.steps.filter((s) => s.label !== "pass-through").map((s) => s.servedBy);
    assert.ok(routed.every((e) => endpoints.includes(e)), JSON.stringify(routed));
    assert.ok(new Set(routed).size >= 2, `every request went to ${routed[0]}`);
    assert.equal(r.envoy.final.get("prefix_router_routed{}"), steps.length - 1);
    if (concurrency > 1) assert.ok(workers >= 2, `Envoy's kernel gave every connection to one worker (${workers}); the script did not cross VMs`);
  });
}

/**
 * Series that may differ with metrics on, each for a reason of timing: the
 * number of scrapes is the number of metrics intervals that passed, which is
 * wall time (both runs check their own floor below).
 */
const SCRAPE_COUNTS: Allowance[] = [
  { pattern: /^prefix_router_endpoint_scrape_(successes|failures)\{/, why: "one scrape per metrics interval: a count of elapsed intervals" },
  { pattern: /^prefix_router_visible_share_permille\{/, why: "an average over rounds of scrapes, each a step towards the pages' share: it depends on how many rounds ran" },
];

envoyTest("differential: metrics pages steer the picks alike (a long queue, a full KV cache, a failing page)", { timeout: 60_000 }, async () => {
  const [ok1, queued, full, failing, ok2] = ups;
  ok1.metrics = { page: vllmPage({ waiting: 0, running: 3, kv: 0.2 }) };
  queued.metrics = { page: vllmPage({ waiting: 40, running: 8, kv: 0.2 }) };
  full.metrics = { page: vllmPage({ waiting: 0, running: 5, kv: 0.95 }) };
  failing.metrics = { status: 500 };
  // 1024 server blocks of 16 tokens: 1024 index blocks, a whole number of entries (64 of 16).
  ok2.metrics = { page: vllmPage({ waiting: 0, running: 3, kv: 0.2, blockSize: 16, gpuBlocks: 64 * DEFAULT_INDEX_STRIDE }) };
  const endpoints = ups.slice(0, 5).map((u) => u.address);
  const steps: Step[] = [];
  // 3 index entries of 16 blocks (indexStride) of 64 characters and a bit: what the warm prompts match.
  const promptLength = 3 * DEFAULT_INDEX_STRIDE * 64 + 100;
  for (let i = 0; i < 8; i++) steps.push({ kind: "completion", label: `cold ${i}`, prompt: text(500 + i, promptLength) });
  for (let i = 0; i < 4; i++) steps.push({ kind: "completion", label: `warm ${i}`, prompt: `${text(500 + i, promptLength)} again` });
  const ready = (s: Map<string, number>) =>
    [ok1, queued, full, ok2].every((u) => (s.get(endpointSeries("scrape_successes", u.address)) ?? 0) >= 2) &&
    s.get(endpointSeries("healthy", failing.address)) === 0;
  const scrapes: Record<string, unknown> = {};
  const rates: Record<string, number[]> = {};
  const r = await runBoth(
    // 100 ms scrapes: metrics go stale after 5 intervals, and stale metrics would change the
    // picks, so a loaded machine must not stall either gateway for half a second.
    // The pages report requests this gateway did not send: told it is alone (replicas 1), it does not
    // take itself for one of several replicas, whose bands would depend on how many scrapes ran.
    { endpoints, metrics: { intervalMs: 100 }, filter: { tickMs: TICK_MS, kvSaturation: 0.9, replicas: 1 } },
    { concurrency: 2 },
    steps,
    { tickMs: TICK_MS },
    {
      prepare: async (gw) => {
        // Every endpoint scraped, the failing one marked unhealthy, and each VM's tick has applied it.
        assert.ok((await waitStats(gw, ready, 10_000)).ok, `${gw.kind}: metrics never settled`);
        await new Promise((res) => setTimeout(res, 4 * TICK_MS));
        scrapes[gw.kind] = ok1.lastScrape;
        // Scrapes in one second: one VM holds the lease, so one per endpoint per interval (10),
        // however many VMs tick; two VMs scraping would double it.
        const before = ups.map((u) => u.metricsHits);
        await new Promise((res) => setTimeout(res, 1000));
        rates[gw.kind] = ups.slice(0, 5).map((u, i) => u.metricsHits - before[i]);
      },
    },
  );
  assert.deepEqual(stepDifferences(r.dev.steps, r.envoy.steps, endpoints), []);
  assert.deepEqual(statDifferences(r.dev.final, r.envoy.final, SCRAPE_COUNTS), []);
  for (const kind of ["dev", "envoy"] as const) {
    assert.ok(rates[kind].every((n) => n >= 3 && n <= 12), `${kind}: scrapes per endpoint in 1 s: ${rates[kind].join(", ")}`);
  }
  // A scrape as the model server receives it, headers and all.
  assert.deepEqual(scrapes.dev, scrapes.envoy);
  assert.equal((scrapes.envoy as Record<string, string>)["x-envoy-original-dst-host"], ok1.address);
  assert.deepEqual([...r.dev.lines].sort(), [...r.envoy.lines].sort());
  for (const kind of ["dev", "envoy"] as const) {
    assert.ok(ready(r[kind].final), `${kind}: scrape counts below their floor`);
    assert.ok((r[kind].final.get(endpointSeries("scrape_failures", failing.address)) ?? 0) >= 3);
  }
  // Only the two idle, healthy endpoints take requests (without metrics, 8 cold prompts all
  // missing 3 of 5 endpoints is a 1-in-1500 chance), and warm prompts stay put. Both of the
  // two need not be used: with fresh ports each run, rendezvous puts all 8 on one of them 1 run in 128.
  const served = r.envoy.steps.map((s) => s.servedBy);
  assert.ok(served.every((a) => a === ok1.address || a === ok2.address), JSON.stringify(served));
  for (let i = 0; i < 4; i++) assert.equal(served[8 + i], served[i]);
  // The gauges follow the pages: queue, KV usage in thousandths, capacity from the cache geometry.
  const f = r.envoy.final;
  assert.equal(f.get(endpointSeries("queue", queued.address)), 40);
  assert.equal(f.get(endpointSeries("kv_cache_usage_permille", full.address)), 950);
  assert.equal(f.get(endpointSeries("index_capacity_blocks", ok2.address)), 64 * DEFAULT_INDEX_STRIDE); // 16 × 1024 tokens × 4 chars / 64
  // Each warm prompt matched its cold twin's 3 entries where it went.
  assert.equal(f.get("prefix_router_prefix_blocks_matched{}"), 4 * 3 * DEFAULT_INDEX_STRIDE);
});

envoyTest("differential: metrics pages that never answer, reset, hold garbage or refuse connections mark endpoints unhealthy alike", { timeout: 60_000 }, async () => {
  const [ok1, hangs, resets, garbage, ok2, refused] = ups;
  const page = vllmPage({ waiting: 0, running: 2, kv: 0.3, queries: 5000, hits: 1200 });
  // ok1's page moves on once its first scrape is in: the servers' prefix-cache counters are
  // counted as deltas between scrapes, whose sum is exactly the change however many scrapes ran.
  const later = vllmPage({ waiting: 0, running: 2, kv: 0.3, queries: 6000, hits: 1500 });
  ok1.metrics = { page };
  hangs.metrics = { hang: true };
  resets.metrics = { reset: true };
  garbage.metrics = { page: "\u0000{not a prometheus page\n" };
  ok2.metrics = { page };
  // Nothing listens on port 1 of loopback: the scrape's connection is refused.
  const endpoints = [ok1, hangs, resets, garbage, ok2].map((u) => ({ address: u.address })).concat({ address: refused.address, metricsAddress: "127.0.0.1:1" } as never);
  const addresses = endpoints.map((e) => e.address);
  const bad = [hangs, resets, garbage, refused].map((u) => u.address);
  const settled = (s: Map<string, number>) =>
    bad.every((a) => s.get(endpointSeries("healthy", a)) === 0) && [ok1, ok2].every((u) => s.get(endpointSeries("healthy", u.address)) === 1);
  const steps: Step[] = Array.from({ length: 8 }, (_, i) => ({ kind: "completion" as const, label: `request ${i}`, prompt: text(700 + i, 900) }));
  const r = await runBoth(
    // A 200 ms callout timeout, so the page that never answers fails within the test.
    { endpoints, metrics: { intervalMs: 100, timeoutMs: 200 }, filter: { tickMs: TICK_MS, replicas: 1 } },
    { concurrency: 2 },
    steps,
    { tickMs: TICK_MS },
    {
      prepare: async (gw) => {
        assert.ok((await waitStats(gw, settled, 10_000)).ok, `${gw.kind}: endpoints never settled`);
        ok1.metrics = { page: later };
        await new Promise((res) => setTimeout(res, 4 * TICK_MS));
      },
      // The next gateway starts from the first page again.
      inspect: async () => {
        ok1.metrics = { page };
      },
    },
  );
  assert.deepEqual(stepDifferences(r.dev.steps, r.envoy.steps, addresses), []);
  assert.deepEqual(statDifferences(r.dev.final, r.envoy.final, SCRAPE_COUNTS), []);
  for (const kind of ["dev", "envoy"] as const) {
    assert.ok(settled(r[kind].final), `${kind}: health changed during the script`);
    for (const a of bad) assert.ok((r[kind].final.get(endpointSeries("scrape_failures", a)) ?? 0) >= 3, `${kind}: ${a}`);
  }
  // Only the two endpoints with answering pages take requests (either may take all 8).
  assert.ok(r.envoy.steps.every((s) => s.servedBy === ok1.address || s.servedBy === ok2.address), JSON.stringify(r.envoy.steps.map((s) => s.servedBy)));
  assert.deepEqual(
    ["prefix_router_server_prefix_cache_queries{}", "prefix_router_server_prefix_cache_hits{}", endpointSeries("server_prefix_cache_queries", ok1.address)].map((k) => r.envoy.final.get(k)),
    [1000, 300, 1000],
  );
});

envoyTest("differential: requests held in flight on several VMs steer the bounded-load guard alike", { timeout: 60_000 }, async () => {
  // Each pick is appended to the shared journal as it is made, so a VM deciding
  // next sees the other VMs' in-flight requests at once, whichever worker it is.
  // With the guard at loadFactor 1 and slack 1, a second copy of a prompt whose
  // home already has one in flight is diverted, and so is a third.
  const endpoints = ups.slice(0, 4).map((u) => u.address);
  const prompt = text(900, 2000);
  const steps: Step[] = [
    { kind: "hold", label: "held 1", prompt },
    { kind: "hold", label: "held 2 (diverted)", prompt: `${prompt} b` },
    { kind: "hold", label: "held 3 (diverted)", prompt: `${prompt} c` },
    { kind: "completion", label: "cold while three are held", prompt: text(901, 2000) },
    { kind: "abortMidResponse", label: "client gone while three are held", prompt: text(902, 2000), by: "client" },
    { kind: "releaseHeld", label: "release the three" },
    { kind: "completion", label: "the prompt again, nothing in flight", prompt: `${prompt} d` },
  ];
  const r = await runBoth({ endpoints, metrics: false, filter: { tickMs: TICK_MS, guard: { loadFactor: 1, slack: 1 } } }, { concurrency: 4 }, steps, { tickMs: TICK_MS });
  assert.deepEqual(stepDifferences(r.dev.steps, r.envoy.steps, endpoints), []);
  assert.deepEqual(statDifferences(r.dev.final, r.envoy.final, []), []);
  const [h1, h2, h3, , gone, released, again] = r.envoy.steps;
  assert.deepEqual([h1, h2, h3].map((s) => s.inFlightDuring), [1, 2, 3]);
  assert.equal(new Set([h1, h2, h3].map((s) => s.servedBy)).size, 3, "the guard did not spread the held copies");
  assert.equal(r.envoy.final.get("prefix_router_guard_diversions{}"), 2);
  assert.deepEqual([gone.inFlightDuring, gone.inFlightAfter, released.inFlightAfter], [4, 3, 0]);
  // Every endpoint that served a copy now matches it; the tie goes to the same one in both.
  assert.ok([h1, h2, h3].some((s) => s.servedBy === again.servedBy));
});
