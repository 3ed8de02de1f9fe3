// The filter's load view from the model servers' Prometheus pages: scraped by
// HTTP callouts to real servers on loopback, one VM per interval, shared with
// every VM, and used for scoring, health, index sizing and LoRA affinity.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Envoy, VirtualClock, RealClock } from "../../scripts/host/index.ts";
import type { Plugin } from "../../scripts/host/index.ts";
import { ROUTER_WASM, chatBody, send, text } from "./harness.ts";
import { MetricsServer, vllmPage } from "./metrics-server.ts";
import { DEFAULT_INDEX_STRIDE } from "../e2e/scenarios.ts";

const servers: MetricsServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function startServers(pages: string[]): Promise<MetricsServer[]> {
  const started = await Promise.all(pages.map((p) => MetricsServer.start(p)));
  servers.push(...started);
  return started;
}

interface ScrapingGateway {
  clock: VirtualClock | RealClock;
  envoy: Envoy;
  plugin: Plugin;
}

/** A gateway whose endpoints are the servers' loopback addresses, scraped through an ORIGINAL_DST cluster. */
async function scrapingGateway(metrics: MetricsServer[], opts: { vms?: number; realTime?: boolean; config?: Record<string, unknown>; metricsConfig?: Record<string, unknown> } = {}): Promise<ScrapingGateway> {
  const clock = opts.realTime ? new RealClock() : new VirtualClock();
  const envoy = new Envoy({ clock, clusters: { metrics: { type: "original_dst" } } });
  const config = {
    endpoints: metrics.map((m) => ({ address: m.address })),
    metrics: { cluster: "metrics", intervalMs: 200, timeoutMs: 500, ...opts.metricsConfig },
    ...opts.config,
  };
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router", rootId: "prefix_router", vmId: "prefix_router", wasm: ROUTER_WASM,
    configuration: JSON.stringify(config), concurrency: opts.vms ?? 1, allowOnHeadersStopIteration: true,
  });
  return { clock, envoy, plugin };
}

/**
 * Runs the filter's ticks for `ms`: in virtual time, advancing 100 ms at a time
 * and letting real I/O complete between ticks; in real time, just waiting.
 */
async function run(gw: ScrapingGateway, ms: number): Promise<void> {
  if (gw.clock instanceof RealClock) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return;
  }
  for (let t = 0; t < ms; t += 100) {
    gw.clock.advance(100);
    await gw.envoy.settle();
  }
}

function gauge(gw: ScrapingGateway, address: string, name: string): number {
  return Number(gw.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${address}.${name}`) ?? NaN);
}

function counter(gw: ScrapingGateway, name: string): number {
  return Number(gw.envoy.stats.get(`wasmcustom.prefix_router.${name}`) ?? 0);
}

const fixture = (name: string) => readFileSync(new URL(`../fixtures/metrics/${name}`, import.meta.url), "utf8");

/** Index capacity for `blocks` 64-character blocks: rounded down to whole index entries of DEFAULT_INDEX_STRIDE blocks. */
const wholeEntries = (blocks: number) => Math.floor(blocks / DEFAULT_INDEX_STRIDE) * DEFAULT_INDEX_STRIDE;

test("reads vLLM V1 (two engines), older vLLM, SGLang and TensorRT-LLM pages", async () => {
  const cases = [
    // Blocks from the cache geometry, rounded down to whole index entries of 16
    // (indexStride): 62500 → 62496, 27114 → 27104; 42720 and 24064 are whole.
    { page: fixture("vllm-v1-dp2.prom"), dialect: "vllm", queue: 3, running: 12, kv: 354, capacity: wholeEntries(62500) },
    { page: fixture("vllm-v1-legacy.prom"), dialect: "vllm", queue: 2, running: 4, kv: 632, capacity: wholeEntries(27114) },
    { page: fixture("sglang.prom"), dialect: "sglang", queue: 6, kv: 445, capacity: wholeEntries(42720) },
    { page: fixture("trtllm.prom"), dialect: "trtllm", queue: 6, kv: 713, capacity: wholeEntries(24064) },
  ];
  for (const c of cases) {
    const [server] = await startServers([c.page]);
    const gw = await scrapingGateway([server], { metricsConfig: { dialect: c.dialect } });
    await run(gw, 400);
    const a = server.address;
    assert.equal(gauge(gw, a, "healthy"), 1, c.dialect);
    assert.equal(gauge(gw, a, "queue"), c.queue, `${c.dialect} queue`);
    if (c.running !== undefined) assert.equal(gauge(gw, a, "running"), c.running, `${c.dialect} running`);
    assert.equal(gauge(gw, a, "kv_cache_usage_permille"), c.kv, `${c.dialect} kv`);
    // Index sized from the server's cache geometry: blocks × tokens per block × 4 chars / 64, in whole entries.
    assert.equal(gauge(gw, a, "index_capacity_blocks"), c.capacity, `${c.dialect} capacity`);
    assert.equal(counter(gw, `endpoint.${a}.scrape_failures`), 0);
    gw.envoy.shutdown();
  }
});

test("four worker VMs make one scrape per endpoint per interval", async () => {
  const metrics = await startServers([vllmPage({}), vllmPage({}), vllmPage({})]);
  const gw = await scrapingGateway(metrics, { vms: 4 });
  await run(gw, 2000); // 10 intervals of 200 ms
  for (const m of metrics) assert.ok(m.hits >= 9 && m.hits <= 11, `${m.address}: ${m.hits} scrapes in 10 intervals`);
  // Every VM sees the same snapshot.
  assert.equal(gauge(gw, metrics[0].address, "healthy"), 1);
  gw.envoy.shutdown();
});

test("a server reporting a deep queue loses new traffic to idle ones, even for a prefix it holds", async () => {
  const metrics = await startServers([vllmPage({}), vllmPage({}), vllmPage({})]);
  const gw = await scrapingGateway(metrics);
  await run(gw, 400);
  const body = chatBody([["system", text(9, 3000)], ["user", "question"]]);
  const home = send(gw, body, { complete: true }).destination!;
  assert.equal(send(gw, body, { complete: true }).destination, home, "sticky while idle");
  const busy = metrics.find((m) => m.address === home)!;
  busy.page = vllmPage({ waiting: 40, running: 64, kv: 0.97 });
  await run(gw, 400);
  const moved = send(gw, body, { complete: true }).destination;
  assert.notEqual(moved, home, "the prefix moved off the saturated server");
  busy.page = vllmPage({});
  await run(gw, 400);
  assert.equal(send(gw, body, { complete: true }).destination, home, "and comes back when it drains");
  gw.envoy.shutdown();
});

test("between scrapes the queue estimate counts requests sent and requests that ended", async () => {
  const metrics = await startServers([vllmPage({}), vllmPage({})]);
  // A queue 2 longer than the shortest is saturated (weighted scoring: work
  // scoring has no queue cut-off); no scrape runs below
  // (the virtual clock stands still), so only the filter's own counts move.
  const gw = await scrapingGateway(metrics, { config: { scoring: "weights", queueSaturation: 2 } });
  await run(gw, 400);
  const body = chatBody([["system", text(31, 3000)], ["user", "question"]]);
  const home = send(gw, body, { complete: true }).destination!;
  const open = [send(gw, body), send(gw, body)];
  assert.deepEqual(open.map((s) => s.destination), [home, home]);
  const diverted = send(gw, body);
  assert.notEqual(diverted.destination, home, "two sent since the report: saturated against the idle one");
  for (const s of [...open, diverted]) s.stream.complete();
  assert.equal(send(gw, body, { complete: true }).destination, home, "they ended: the prefix goes home again");
  gw.envoy.shutdown();
});

// Real time: a slow server has to be slow on the wall clock for Envoy's (and the
// emulator's) callout timeout to fire.
test("stale metrics are ignored: the endpoint counts as loaded as the average", async () => {
  const metrics = await startServers([vllmPage({}), vllmPage({})]);
  const gw = await scrapingGateway(metrics, { metricsConfig: { staleAfterIntervals: 2, unhealthyAfter: 1000 } });
  await run(gw, 400);
  const body = chatBody([["system", text(21, 3000)], ["user", "question"]]);
  const home = send(gw, body, { complete: true }).destination!;
  const server = metrics.find((m) => m.address === home)!;
  server.page = vllmPage({ waiting: 40, running: 64, kv: 0.97 });
  await run(gw, 400);
  assert.notEqual(send(gw, body, { complete: true }).destination, home, "avoided while the deep queue is fresh");
  // Scrapes now fail (but not enough to mark it unhealthy): the last page ages out.
  server.behaviour = "error500";
  await run(gw, 800);
  assert.equal(gauge(gw, home, "healthy"), 1);
  assert.equal(send(gw, body, { complete: true }).destination, home, "the stale queue no longer counts; the prefix wins");
  gw.envoy.shutdown();
});

test("failed scrapes of every kind mark a server unhealthy; one good scrape brings it back", async () => {
  for (const behaviour of ["error500", "garbage", "slow", "reset", "dead"] as const) {
    const metrics = await startServers([vllmPage({}), vllmPage({})]);
    const gw = await scrapingGateway(metrics, { realTime: true, metricsConfig: { unhealthyAfter: 3, timeoutMs: 150 } });
    await run(gw, 400);
    const [bad, good] = metrics;
    if (behaviour === "dead") await bad.stop();
    else bad.behaviour = behaviour;
    await run(gw, 1200); // 6 intervals: at least 3 failures in a row
    assert.equal(gauge(gw, bad.address, "healthy"), 0, behaviour);
    assert.ok(counter(gw, `endpoint.${bad.address}.scrape_failures`) >= 3, behaviour);
    assert.equal(gauge(gw, good.address, "healthy"), 1, behaviour);
    // Every request avoids the unhealthy endpoint.
    for (let i = 0; i < 20; i++) assert.equal(send(gw, chatBody([["user", text(300 + i, 200)]]), { complete: true }).destination, good.address, behaviour);
    assert.ok(gw.plugin.vms.every((vm) => !vm.failed));
    if (behaviour !== "dead") {
      bad.behaviour = "ok";
      await run(gw, 600);
      assert.equal(gauge(gw, bad.address, "healthy"), 1, `${behaviour}: recovered`);
    }
    gw.envoy.shutdown();
  }
});

test("learns from the pages what share of the servers' requests it has in flight (the replica count behind the bands)", async () => {
  const metrics = await startServers([vllmPage({}), vllmPage({})]);
  const gw = await scrapingGateway(metrics);
  await run(gw, 400);
  const share = () => Number(gw.envoy.stats.get("wasmcustom.prefix_router.visible_share_permille") ?? NaN);
  // Four requests held open, and each server's page reports just the ones it holds: alone.
  const held = [0, 1, 2, 3].map((i) => send(gw, chatBody([["user", text(500 + i, 2000)]])));
  const perServer = (a: string) => held.filter((h) => h.destination === a).length;
  for (const m of metrics) m.page = vllmPage({ running: perServer(m.address) });
  await run(gw, 2000);
  assert.ok(share() >= 900, `alone: ${share()}‰`);
  // The pages now report four times as many: three other proxies send as much.
  for (const m of metrics) m.page = vllmPage({ running: 4 * perServer(m.address) });
  await run(gw, 4000);
  assert.ok(share() > 230 && share() < 300, `one of four: ${share()}‰`);
  // This proxy's own picks made one server busier; new prefixes still spread over both.
  // (The bands' widths for R replicas are pinned by tests/unit/work.spec.ts: this busy
  // server is not far enough behind to tell them apart.)
  const load = [0, 1, 2, 3, 4, 5, 6, 7].map(() => send(gw, chatBody([["user", text(600, 2000)]])));
  const busy = load[0].destination!;
  assert.ok(load.every((h) => h.destination === busy), "one prefix, one server");
  const picks = new Map<string, number>();
  for (let i = 0; i < 16; i++) {
    const body = chatBody([["system", text(700 + i, 3000)], ["user", "question"]]);
    const first = send(gw, body, { complete: true }).destination!;
    picks.set(first, (picks.get(first) ?? 0) + 1);
  }
  assert.equal(picks.size, 2, `new prefixes spread by their keys over both servers: ${[...picks]}`);
  for (const h of [...held, ...load]) h.stream.complete();
  gw.envoy.shutdown();
});

test("gauges are written to Envoy when they change, not on every tick", async () => {
  const metrics = await startServers([vllmPage({ waiting: 2 }), vllmPage({})]);
  const gw = await scrapingGateway(metrics, { vms: 2 });
  await run(gw, 600);
  const recordMetric = () => gw.plugin.vms.reduce((n, vm) => n + (vm.hostCallCounts.get("env.proxy_record_metric") ?? 0), 0);
  for (const vm of gw.plugin.vms) vm.profileTime = true; // counts host calls
  // Nothing changes: the same pages, no requests. Ten ticks per VM write no gauge.
  await run(gw, 1000);
  assert.equal(recordMetric(), 0, "gauges rewritten with the values they had");
  // A change is written by the next tick: the queue the page reports, and a request in flight.
  metrics[0].page = vllmPage({ waiting: 5 });
  const held = send(gw, chatBody([["user", text(77, 300)]]));
  await run(gw, 400);
  assert.ok(gauge(gw, metrics[0].address, "queue") >= 5, "the new queue was not written");
  assert.equal(gauge(gw, held.destination!, "in_flight"), 1);
  assert.ok(recordMetric() > 0);
  gw.envoy.shutdown();
});

test("a worker that starts routing after a restart does not replay the entries the restart voided", async () => {
  const metrics = await startServers([vllmPage({ startTime: 1.7e9 }), vllmPage({ startTime: 1.7e9 })]);
  const gw = await scrapingGateway(metrics, { vms: 2 });
  await run(gw, 600);
  const prompt = chatBody([["system", text(41, 3000)], ["user", "go"]]);
  // Worker 0 routes the prompt; worker 1 has decided nothing yet, so it keeps no index.
  const home = send(gw, prompt, { vm: 0, complete: true }).destination!;
  for (let i = 0; i < 2; i++) assert.equal(send(gw, prompt, { vm: 0, complete: true }).destination, home);
  await run(gw, 400);
  const server = metrics.find((m) => m.address === home)!;
  server.page = vllmPage({ startTime: 1.7e9 + 3600 });
  await run(gw, 600);
  assert.equal(counter(gw, "server_restarts"), 1);
  // Worker 1's first decision replays the ring into its new index: not the placements the restart voided.
  const matched = counter(gw, "prefix_blocks_matched");
  send(gw, prompt, { vm: 1, complete: true });
  await run(gw, 100);
  assert.equal(counter(gw, "prefix_blocks_matched"), matched, "a hit was predicted on a cache the restart emptied");
  gw.envoy.shutdown();
});

test("all endpoints unhealthy: traffic still flows to them", async () => {
  const metrics = await startServers([vllmPage({}), vllmPage({})]);
  const gw = await scrapingGateway(metrics, { metricsConfig: { unhealthyAfter: 1 } });
  for (const m of metrics) m.behaviour = "error500";
  await run(gw, 600);
  const d = send(gw, chatBody([["user", "anyone?"]]), { complete: true }).destination;
  assert.ok(metrics.some((m) => m.address === d));
  gw.envoy.shutdown();
});

test("cache geometry resizes the index unless lruCapacityPerServer is set", async () => {
  // 25 index entries: 25 × 16 (indexStride) = 400 server blocks × 16 tokens × 4 chars / 64-char blocks = 400 blocks.
  const capacity = 25 * DEFAULT_INDEX_STRIDE;
  const [server] = await startServers([vllmPage({ blockSize: 16, gpuBlocks: capacity })]);
  const gw = await scrapingGateway([server]);
  await run(gw, 400);
  assert.equal(gauge(gw, server.address, "index_capacity_blocks"), capacity);
  // 10 prompts of 10 entries each: four times the capacity.
  for (let i = 0; i < 10; i++) send(gw, chatBody([["user", text(40 + i, 64 * 10 * DEFAULT_INDEX_STRIDE)]]), { complete: true });
  await run(gw, 200);
  assert.ok(gauge(gw, server.address, "index_blocks") <= capacity);
  gw.envoy.shutdown();
  // An explicit capacity wins over the geometry (a whole number of entries: 320 × 16).
  const pinned = await scrapingGateway([server], { config: { lruCapacityPerServer: 5120 } });
  await run(pinned, 400);
  assert.equal(gauge(pinned, server.address, "index_capacity_blocks"), 5120);
  pinned.envoy.shutdown();
});

test("LoRA: an adapter goes where it runs, else where there is room to load it", async () => {
  const metrics = await startServers([
    vllmPage({ lora: { running: ["sql-lora"], max: 4 } }),
    vllmPage({ lora: { running: [], max: 4 } }),
    vllmPage({ lora: { running: ["finance-lora"], max: 1 } }),
  ]);
  const [runsIt, hasRoom, full] = metrics;
  const gw = await scrapingGateway(metrics);
  await run(gw, 400);
  for (let i = 0; i < 12; i++) {
    assert.equal(send(gw, chatBody([["user", text(70 + i, 300)]], "sql-lora"), { complete: true }).destination, runsIt.address);
  }
  runsIt.page = vllmPage({ lora: { running: [], max: 4 } });
  await run(gw, 400);
  for (let i = 0; i < 12; i++) {
    const d = send(gw, chatBody([["user", text(90 + i, 300)]], "sql-lora"), { complete: true }).destination;
    assert.notEqual(d, full.address, "never where max_lora is reached");
    assert.ok(d === runsIt.address || d === hasRoom.address);
  }
  gw.envoy.shutdown();
});

test("LoRA: a prompt stays where it is cached while that server has room for its adapter", async () => {
  const metrics = await startServers([vllmPage({ lora: { running: [], max: 4 } }), vllmPage({ lora: { running: [], max: 4 } })]);
  const gw = await scrapingGateway(metrics);
  await run(gw, 400);
  const system = text(120, 4000);
  const cachedOn = send(gw, chatBody([["system", system], ["user", "first"]], "sql-lora"), { complete: true }).destination;
  const other = metrics.find((m) => m.address !== cachedOn)!;
  // Now only the other server runs the adapter: it would take a new prompt, but not this one.
  other.page = vllmPage({ lora: { running: ["sql-lora"], max: 4 } });
  await run(gw, 400);
  for (let i = 0; i < 6; i++) {
    assert.equal(send(gw, chatBody([["system", system], ["user", `again ${i}`]], "sql-lora"), { complete: true }).destination, cachedOn);
    assert.equal(send(gw, chatBody([["user", text(130 + i, 300)]], "sql-lora"), { complete: true }).destination, other.address);
  }
  // Without room for the adapter the cache does not hold it there.
  metrics.find((m) => m.address === cachedOn)!.page = vllmPage({ lora: { running: ["a", "b", "c", "d"], max: 4 } });
  await run(gw, 400);
  assert.equal(send(gw, chatBody([["system", system], ["user", "full"]], "sql-lora"), { complete: true }).destination, other.address);
  gw.envoy.shutdown();
});

test("the servers' prefix-cache hit rate is exported beside the predicted one", async () => {
  const [server] = await startServers([vllmPage({ queries: 1000, hits: 600 })]);
  const gw = await scrapingGateway([server]);
  await run(gw, 400);
  const body = chatBody([["system", text(5, 2000)], ["user", "hi"]]);
  send(gw, body, { complete: true });
  send(gw, body, { complete: true });
  server.page = vllmPage({ queries: 3000, hits: 2500 });
  await run(gw, 400);
  assert.equal(counter(gw, "server_prefix_cache_queries"), 2000);
  assert.equal(counter(gw, "server_prefix_cache_hits"), 1900);
  assert.equal(counter(gw, `endpoint.${server.address}.server_prefix_cache_hits`), 1900);
  assert.ok(counter(gw, "prefix_blocks_matched") > 0);
  assert.ok(counter(gw, `endpoint.${server.address}.prefix_blocks_total`) >= counter(gw, `endpoint.${server.address}.prefix_blocks_matched`));
  // A server restart (counters back near zero) is not a negative delta.
  server.page = vllmPage({ queries: 10, hits: 5 });
  await run(gw, 400);
  assert.equal(counter(gw, "server_prefix_cache_queries"), 2010);
  gw.envoy.shutdown();
});

test("metrics configuration errors are rejected", async () => {
  for (const [metrics, message] of [
    [{ path: "/metrics" }, "metrics.cluster: required"],
    [{ cluster: "m", dialect: "tgi" }, "metrics.dialect"],
    [{ cluster: "m", intervalMs: 0 }, "metrics.intervalMs"],
    [{ cluster: "m", dialect: { queue: "" , bogus: "x" } }, "metrics.dialect.bogus: unknown field"],
  ] as const) {
    const envoy = new Envoy({ clock: new VirtualClock() });
    await assert.rejects(envoy.addHttpFilter({
      name: "r", rootId: "r", vmId: "r", wasm: ROUTER_WASM, concurrency: 1,
      configuration: JSON.stringify({ endpoints: [{ address: "10.0.0.1:80" }], metrics }),
    }));
    assert.ok(envoy.logs.some((l) => l.level === "error" && l.message.includes(message)), `${message}: ${JSON.stringify(envoy.logs.map((l) => l.message))}`);
  }
});
