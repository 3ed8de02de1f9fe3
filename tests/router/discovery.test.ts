// Endpoint discovery in the host emulator: the filter polls Envoy's admin
// `/clusters` text (served here by an in-process cluster) and follows the
// cluster's membership and health. Real Envoy runs the same scenarios in
// tests/e2e/envoy-discovery.test.ts.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Envoy, VirtualClock } from "../../scripts/host/index.ts";
import type { Plugin } from "../../scripts/host/index.ts";
import type { CalloutReply, CalloutRequest } from "../../scripts/host/callouts.ts";
import { ROUTER_WASM, chatBody, send, text } from "./harness.ts";
import { clustersText, type AdminHost } from "./admin-clusters.ts";
import { MetricsServer, vllmPage } from "./metrics-server.ts";

const CLUSTER = "outbound|8000||vllm.models.svc.cluster.local";
const ADMIN = "prefix_router_admin_guard";
const PATH = "/clusters?filter=^outbound.8000..vllm.models.svc.cluster.local$";

/** What the admin cluster answers: the cluster's hosts, or a failure the test chooses. */
class AdminApi {
  hosts: AdminHost[] = [];
  failWith: number | null = null;
  /** The cluster the answer describes (another name: Envoy does not know ours). */
  answerFor = CLUSTER;
  requests: CalloutRequest[] = [];

  answer(request: CalloutRequest): CalloutReply {
    this.requests.push(request);
    if (this.failWith !== null) return { status: this.failWith, body: "no" };
    if (request.method !== "GET" || request.path !== PATH) return { status: 403, body: "admin guard: forbidden\n" };
    return { status: 200, headers: { "content-type": "text/plain" }, body: clustersText(this.answerFor, this.hosts) };
  }
}

interface DiscoveryGateway {
  clock: VirtualClock;
  envoy: Envoy;
  plugin: Plugin;
  admin: AdminApi;
}

const servers: MetricsServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function discoveryGateway(opts: { vms?: number; discovery?: Record<string, unknown>; config?: Record<string, unknown>; metrics?: boolean } = {}): Promise<DiscoveryGateway> {
  const clock = new VirtualClock();
  const admin = new AdminApi();
  const envoy = new Envoy({
    clock,
    clusters: { [ADMIN]: { type: "handler", handle: (r) => admin.answer(r) }, metrics: { type: "original_dst" } },
  });
  const config = {
    discovery: { cluster: CLUSTER, adminCluster: ADMIN, intervalMs: 200, ...opts.discovery },
    ...(opts.metrics ? { metrics: { cluster: "metrics", intervalMs: 200, timeoutMs: 500 } } : {}),
    ...opts.config,
  };
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router", rootId: "prefix_router", vmId: "prefix_router", wasm: ROUTER_WASM,
    configuration: JSON.stringify(config), concurrency: opts.vms ?? 1, allowOnHeadersStopIteration: true,
  });
  return { clock, envoy, plugin, admin };
}

async function run(gw: DiscoveryGateway, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    gw.clock.advance(100);
    await gw.envoy.settle();
  }
}

function counter(gw: DiscoveryGateway, name: string): number {
  return Number(gw.envoy.stats.get(`wasmcustom.prefix_router.${name}`) ?? 0);
}

const hosts = (...addresses: string[]): AdminHost[] => addresses.map((address) => ({ address }));

/** Sends `n` requests with distinct prompts; returns where each went (undefined: passed through). */
function spread(gw: DiscoveryGateway, n: number, seed = 0, vm?: number): Array<string | undefined> {
  const out: Array<string | undefined> = [];
  for (let i = 0; i < n; i++) {
    out.push(send(gw, chatBody([["user", text(seed + i, 400)]]), { complete: true, vm }).destination);
  }
  return out;
}

test("routes over the members Envoy lists, and follows them as they change", async () => {
  const gw = await discoveryGateway();
  // Before the first poll there is nothing to route to: pass through, counted.
  assert.equal(send(gw, chatBody([["user", text(1, 400)]]), { complete: true }).destination, undefined);
  gw.admin.hosts = hosts("10.1.0.1:8000", "10.1.0.2:8000");
  await run(gw, 300);
  assert.equal(counter(gw, "passthrough.no_endpoint"), 1);
  assert.equal(gw.admin.requests[0].path, PATH);
  assert.equal(gw.admin.requests[0].method, "GET");
  const first = new Set(spread(gw, 40));
  assert.deepEqual([...first].sort(), ["10.1.0.1:8000", "10.1.0.2:8000"]);
  assert.equal(counter(gw, "endpoints.members"), 2);

  // Replace the cluster with three endpoints sharing one with the old set.
  gw.admin.hosts = hosts("10.1.0.2:8000", "10.1.0.3:8000", "[fd00::4]:8000");
  await run(gw, 300);
  const second = spread(gw, 60, 1000);
  assert.ok(!second.includes("10.1.0.1:8000"), "the removed endpoint still gets traffic");
  assert.deepEqual([...new Set(second)].sort(), ["10.1.0.2:8000", "10.1.0.3:8000", "[fd00::4]:8000"]);
  assert.equal(counter(gw, "discovery.endpoints_added"), 4);
  assert.equal(counter(gw, "discovery.endpoints_removed"), 1);
  assert.equal(counter(gw, "endpoints.members"), 3);
  // The removed endpoint's gauges read empty.
  assert.equal(Number(gw.envoy.stats.get("wasmcustom.prefix_router.endpoint.10.1.0.1:8000.healthy")), 0);
});

test("never picks hosts Envoy marks unhealthy or draining; degraded only when none is healthy", async () => {
  const gw = await discoveryGateway();
  gw.admin.hosts = [
    { address: "10.2.0.1:8000" },
    { address: "10.2.0.2:8000", flags: "/failed_eds_health" },
    { address: "10.2.0.3:8000", flags: "/eds_status_draining" },
    { address: "10.2.0.4:8000", flags: "/failed_active_hc/pending_active_hc" },
    { address: "10.2.0.5:8000", flags: "/failed_outlier_check" },
    { address: "10.2.0.6:8000", flags: "/degraded_eds_health" },
    { address: "10.2.0.7:8000", flags: "/pending_dynamic_removal" },
  ];
  await run(gw, 300);
  const picks = spread(gw, 30);
  assert.deepEqual([...new Set(picks)], ["10.2.0.1:8000"]);
  // Fallback hosts come from the same eligible set: none to list here.
  const one = send(gw, chatBody([["user", text(7, 400)]]), { complete: true });
  assert.deepEqual(one.fallbacks, []);
  assert.equal(counter(gw, "endpoints.members"), 7);
  assert.equal(counter(gw, "endpoints.pickable"), 1);

  // The healthy one turns unhealthy: only the degraded one is left to use.
  gw.admin.hosts[0].flags = "/failed_active_hc";
  await run(gw, 300);
  assert.deepEqual([...new Set(spread(gw, 10, 100))], ["10.2.0.6:8000"]);

  // Nothing healthy or degraded: pass everything to Envoy's own load balancing.
  gw.admin.hosts[5].flags = "/failed_eds_health/degraded_eds_health";
  await run(gw, 300);
  assert.deepEqual(spread(gw, 5, 200), [undefined, undefined, undefined, undefined, undefined]);
  await run(gw, 100);
  assert.equal(counter(gw, "passthrough.no_endpoint"), 5);
});

test("a failing admin source keeps the last membership, counts each failure and logs once", async () => {
  const gw = await discoveryGateway();
  gw.admin.hosts = hosts("10.3.0.1:8000", "10.3.0.2:8000");
  await run(gw, 300);
  gw.admin.failWith = 503;
  const before = counter(gw, "discovery.poll_failures");
  await run(gw, 1000);
  assert.ok(counter(gw, "discovery.poll_failures") - before >= 4);
  assert.equal(gw.envoy.logsMatching("endpoint discovery failed").length, 1);
  assert.deepEqual([...new Set(spread(gw, 30))].sort(), ["10.3.0.1:8000", "10.3.0.2:8000"]);
  gw.admin.failWith = null;
  await run(gw, 300);
  assert.equal(gw.envoy.logsMatching("endpoint discovery answers again").length, 1);
  // An answer that does not name the cluster is a failure too (a typo in discovery.cluster).
  gw.admin.answerFor = "outbound|8000||vllm-models.svc.cluster.local";
  gw.admin.hosts = hosts("10.3.0.9:8000");
  await run(gw, 300);
  assert.equal(gw.envoy.logsMatching("lists no cluster").length, 1);
  assert.deepEqual([...new Set(spread(gw, 20, 70))].sort(), ["10.3.0.1:8000", "10.3.0.2:8000"]);
  gw.admin.answerFor = CLUSTER;
  gw.admin.hosts = hosts("10.3.0.3:8000");
  await run(gw, 300);
  assert.deepEqual([...new Set(spread(gw, 10, 50))], ["10.3.0.3:8000"]);
});

test("an endpoint that leaves takes its index with it; back again, it starts cold", async () => {
  const gw = await discoveryGateway();
  gw.admin.hosts = hosts("10.4.0.1:8000", "10.4.0.2:8000");
  await run(gw, 300);
  const prompt = chatBody([["user", text(42, 2000)]]);
  const home = send(gw, prompt, { complete: true }).destination!;
  for (let i = 0; i < 5; i++) assert.equal(send(gw, prompt, { complete: true }).destination, home);
  await run(gw, 100);
  const indexed = Number(gw.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${home}.index_blocks`));
  assert.ok(indexed > 0);
  const matchedBefore = counter(gw, "prefix_blocks_matched");

  gw.admin.hosts = hosts(...["10.4.0.1:8000", "10.4.0.2:8000"].filter((a) => a !== home));
  await run(gw, 300);
  gw.admin.hosts = hosts("10.4.0.1:8000", "10.4.0.2:8000");
  await run(gw, 300);
  assert.equal(Number(gw.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${home}.index_blocks`)), 0);
  // Nobody holds the prompt now: the next request is a miss wherever it goes.
  send(gw, prompt, { complete: true });
  await run(gw, 100);
  assert.equal(counter(gw, "prefix_blocks_matched"), matchedBefore);
});

test("every worker VM follows the membership one VM polls", async () => {
  const gw = await discoveryGateway({ vms: 3 });
  gw.admin.hosts = hosts("10.5.0.1:8000", "10.5.0.2:8000", "10.5.0.3:8000");
  await run(gw, 1000);
  // One poll per interval for the whole proxy, not one per VM.
  assert.ok(gw.admin.requests.length <= 6, `${gw.admin.requests.length} polls in 1 s at 200 ms`);
  for (let vm = 0; vm < 3; vm++) {
    assert.deepEqual([...new Set(spread(gw, 30, vm * 100, vm))].sort(), ["10.5.0.1:8000", "10.5.0.2:8000", "10.5.0.3:8000"]);
  }
  gw.admin.hosts = hosts("10.5.0.3:8000");
  await run(gw, 300);
  for (let vm = 0; vm < 3; vm++) assert.deepEqual([...new Set(spread(gw, 10, 500 + vm * 100, vm))], ["10.5.0.3:8000"]);
});

test("a stream that outlives its endpoint does not release into the slot's next occupant", async () => {
  const gw = await discoveryGateway();
  gw.admin.hosts = hosts("10.6.0.1:8000");
  await run(gw, 300);
  const open = send(gw, chatBody([["user", text(5, 400)]]));
  assert.equal(open.destination, "10.6.0.1:8000");
  gw.admin.hosts = hosts("10.6.0.2:8000");
  await run(gw, 300);
  // The new endpoint took the freed slot; a request to it is in flight.
  const held = send(gw, chatBody([["user", text(6, 400)]]));
  assert.equal(held.destination, "10.6.0.2:8000");
  open.stream.complete();
  await run(gw, 100);
  assert.equal(Number(gw.envoy.stats.get("wasmcustom.prefix_router.endpoint.10.6.0.2:8000.in_flight")), 1);
  held.stream.complete();
});

test("memory stays flat while members come and go", async () => {
  const gw = await discoveryGateway({ discovery: { intervalMs: 100 } });
  const pool = Array.from({ length: 48 }, (_, i) => `10.7.${i >> 4}.${(i & 15) + 1}:8000`);
  let seed = 0;
  const churn = async (changes: number) => {
    for (let c = 0; c < changes; c++) {
      // Each change swaps a few members: 8 to 24 of the pool, each with some traffic.
      const n = 8 + (c * 7) % 17;
      const start = (c * 5) % pool.length;
      gw.admin.hosts = hosts(...Array.from({ length: n }, (_, i) => pool[(start + i) % pool.length]));
      gw.clock.advance(100);
      await gw.envoy.settle();
      spread(gw, 2, seed);
      seed += 2;
    }
  };
  await churn(200);
  const vm = gw.plugin.vms[0];
  const warm = vm.memoryBytes();
  const indexWarm = Number(gw.envoy.stats.get("wasmcustom.prefix_router.index.memory_bytes"));
  await churn(800);
  assert.equal(vm.memoryBytes(), warm, "linear memory grew over 800 membership changes");
  assert.ok(Number(gw.envoy.stats.get("wasmcustom.prefix_router.index.memory_bytes")) <= indexWarm * 1.5 + 65536);
  assert.ok(counter(gw, "discovery.endpoints_removed") > 500);
});

test("a server that restarts has its index entries dropped, and a counter says so", async () => {
  const server = await MetricsServer.start(vllmPage({ queries: 1000, hits: 500, startTime: 1.7e9 }));
  servers.push(server);
  const gw = await discoveryGateway({ metrics: true });
  gw.admin.hosts = hosts(server.address);
  await run(gw, 600);
  const prompt = chatBody([["user", text(9, 2000)]]);
  for (let i = 0; i < 3; i++) send(gw, prompt, { complete: true });
  await run(gw, 400);
  const indexed = () => Number(gw.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${server.address}.index_blocks`));
  assert.ok(indexed() > 0);
  assert.equal(counter(gw, "server_restarts"), 0);
  // A new process: its start time moves (vLLM, trtllm-serve).
  server.page = vllmPage({ queries: 1200, hits: 600, startTime: 1.7e9 + 3600 });
  await run(gw, 600);
  assert.equal(counter(gw, "server_restarts"), 1);
  assert.equal(indexed(), 0);
  for (let i = 0; i < 3; i++) send(gw, prompt, { complete: true });
  await run(gw, 400);
  assert.ok(indexed() > 0);
  // No start time (SGLang's multiprocess registry): its counters going back say it.
  server.page = vllmPage({ queries: 10, hits: 0 });
  await run(gw, 600);
  assert.equal(counter(gw, "server_restarts"), 2);
  assert.equal(Number(gw.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${server.address}.server_restarts`)), 2);
  assert.equal(indexed(), 0);
});

test("a cluster larger than maxEndpoints: the first members are routed to, the rest counted", async () => {
  const gw = await discoveryGateway({ discovery: { maxEndpoints: 2 } });
  gw.admin.hosts = hosts("10.8.0.1:8000", "10.8.0.2:8000", "10.8.0.3:8000");
  await run(gw, 300);
  assert.deepEqual([...new Set(spread(gw, 30))].sort(), ["10.8.0.1:8000", "10.8.0.2:8000"]);
  await run(gw, 100);
  assert.equal(counter(gw, "discovery.endpoints_over_limit"), 1);
  assert.equal(gw.envoy.logsMatching("are not routed to: discovery.maxEndpoints is 2").length, 1);
});
