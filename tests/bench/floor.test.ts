// The floor module's router-host-calls mode (assembly/floor.ts) prices the host
// calls a decision makes in real Envoy (npm run bench:envoy-ab): it is only
// worth that while it makes the calls the router makes. Both run in the
// emulator, one request after another, and their calls per request are
// compared, each call into the module's malloc (one per buffer the host hands
// over) counted with them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Envoy, VirtualClock } from "../../scripts/host/index.ts";
import { HEADERS, WASM, chatBody } from "../../scripts/bench/router-workload.ts";
import { FLOOR_ROUTER_HOST_CALLS, FLOOR_WASM } from "../../scripts/bench/envoy-under-test.ts";

const ENDPOINTS = JSON.stringify({ endpoints: Array.from({ length: 8 }, (_, i) => ({ address: `10.0.0.${i + 1}:8000` })) });

/** The calls per request (by name, malloc among them) of `wasm`, counted over the last of 40 requests of 16 KB. */
async function callsPerRequest(wasm: string, configuration: string): Promise<Map<string, number>> {
  const envoy = new Envoy({ clock: new VirtualClock(), logLevel: "warn" });
  const plugin = await envoy.addHttpFilter({ name: "f", rootId: "f", vmId: "f", wasm, concurrency: 1, allowOnHeadersStopIteration: true, configuration });
  assert.equal(plugin.vms.length, 1, envoy.logs.map((l) => l.message).join("; "));
  const vm = plugin.vms[0];
  vm.profileTime = true;
  let mallocs = 0;
  vm.beforeGuestCall = (fn) => {
    if (fn === "malloc") mallocs++;
  };
  const REQUESTS = 40;
  let before = new Map<string, number>();
  let mallocsBefore = 0;
  for (let i = 0; i < REQUESTS; i++) {
    if (i === REQUESTS - 1) {
      before = new Map(vm.hostCallCounts);
      mallocsBefore = mallocs;
    }
    const s = plugin.newStream(0);
    s.sendRequestHeaders(HEADERS, false);
    s.sendRequestBody(Buffer.from(chatBody(16384, i)), true);
    s.sendResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    s.sendResponseBody(Buffer.from('{"id":"cmpl-1","choices":[]}'), true);
    s.complete();
  }
  const calls = new Map<string, number>();
  for (const [name, n] of vm.hostCallCounts) if (n > (before.get(name) ?? 0)) calls.set(name, n - (before.get(name) ?? 0));
  calls.set("malloc", mallocs - mallocsBefore);
  return calls;
}

const sorted = (m: Map<string, number>) => [...m].sort(([a], [b]) => a.localeCompare(b));

test("the floor in router-host-calls mode makes the router's host calls per request, and the plain floor fewer", async () => {
  const router = await callsPerRequest(WASM, ENDPOINTS);
  const floorCalls = await callsPerRequest(FLOOR_WASM, FLOOR_ROUTER_HOST_CALLS);
  const floor = await callsPerRequest(FLOOR_WASM, ENDPOINTS);
  assert.deepEqual(sorted(floorCalls), sorted(router));
  // The mode is what adds them: the floor alone reads no shared data, no clock, no header map.
  for (const name of ["env.proxy_get_shared_data", "env.proxy_set_shared_data", "env.proxy_get_header_map_pairs", "wasi_snapshot_preview1.clock_time_get"]) {
    assert.ok(router.has(name), `the router makes ${name}`);
    assert.ok(!floor.has(name), `the plain floor makes no ${name}`);
  }
});
