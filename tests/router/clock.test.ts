// The filter's timers run on the monotonic clock (host.monotonicNanos), so a
// wall clock set back or forward by an hour (NTP after a long drift, a VM
// migration, an operator) neither stops them nor fires them early: scrapes go
// on every interval, metrics age as they should, other VMs are not presumed
// gone, and a request waiting for its body is not given up early.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Envoy, VirtualClock } from "../../scripts/host/index.ts";
import { ROUTER_WASM, chatBody, text } from "./harness.ts";
import { MetricsServer, vllmPage } from "./metrics-server.ts";

const HOUR_MS = 3600_000;
const servers: MetricsServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

test("stepping the wall clock an hour back and forward changes no timer", async () => {
  const started = await Promise.all([0, 1].map(() => MetricsServer.start(vllmPage({ waiting: 1, queries: 10, hits: 5 }))));
  servers.push(...started);
  const clock = new VirtualClock();
  const envoy = new Envoy({ clock, clusters: { metrics: { type: "original_dst" } } });
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router", rootId: "prefix_router", vmId: "prefix_router", wasm: ROUTER_WASM, concurrency: 2, allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({
      endpoints: started.map((s) => ({ address: s.address })),
      metrics: { cluster: "metrics", intervalMs: 200, timeoutMs: 500 },
      parkTimeoutMs: 1000,
    }),
  });
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      clock.advance(100);
      await envoy.settle();
    }
  };
  const stat = (name: string) => Number(envoy.stats.get(`wasmcustom.prefix_router.${name}`) ?? 0);
  const scrapes = () => started.reduce((n, s) => n + stat(`endpoint.${s.address}.scrape_successes`), 0);
  // A request held open on VM 1 keeps that VM's in-flight count alive in VM 0's view.
  const held = plugin.newStream(1);
  held.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
  held.sendRequestBody(chatBody([["user", text(1, 300)]]), true);
  await run(1000);
  const before = scrapes();
  assert.ok(before >= 8, `${before} scrapes in the first second`);

  for (const step of [-HOUR_MS, +HOUR_MS, +HOUR_MS, -HOUR_MS]) {
    clock.stepWall(step);
    // A request whose body has not come: parked for parkTimeoutMs, whatever the wall clock says.
    const parked = plugin.newStream(0);
    parked.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
    const timeoutsBefore = stat("passthrough.body_timeout");
    const scrapesBefore = scrapes();
    await run(600);
    assert.equal(stat("passthrough.body_timeout"), timeoutsBefore, `step ${step}: a parked request was given up before parkTimeoutMs`);
    assert.ok(scrapes() >= scrapesBefore + 4, `step ${step}: scraping stopped (${scrapes() - scrapesBefore} in 600 ms)`);
    await run(600);
    assert.equal(stat("passthrough.body_timeout"), timeoutsBefore + 1, `step ${step}: the parked request was not given up after parkTimeoutMs`);
    parked.complete();
    for (const s of started) assert.equal(stat(`endpoint.${s.address}.healthy`), 1, `step ${step}: ${s.address} turned unhealthy`);
    assert.equal(stat("index.stale_vms_dropped"), 0, `step ${step}: a live VM was presumed gone`);
    // The held request still counts in flight.
    const inFlight = started.reduce((n, s) => n + stat(`endpoint.${s.address}.in_flight`), 0);
    assert.equal(inFlight, 1, `step ${step}: in flight ${inFlight}`);
  }
  held.complete();
});
