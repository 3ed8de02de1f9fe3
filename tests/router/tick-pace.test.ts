// The ticks' pace (assembly/router/tick_pace.ts): every tickMs while a VM has
// work, slower once it has had none for a while, and back at once when a
// request comes or another VM appends to the journal. Envoy re-arms a timer
// whose period is set again (wasm.cc Wasm::setTimerPeriod), as the emulator does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gateway, chatBody, send, text, type Gateway } from "./harness.ts";

const TICK_MS = 25;
const IDLE_TICK_MS = 250;

function periods(gw: Gateway): number[] {
  return gw.plugin.vms.map((vm, worker) => vm.tickPeriod(gw.plugin.rootContextId(worker)));
}

function advance(gw: Gateway, ms: number): void {
  for (let t = 0; t < ms; t += TICK_MS) gw.clock.advance(TICK_MS);
}

test("idle VMs tick slowly; a request, or another VM's decision, brings the active pace back", async () => {
  const gw = await gateway({ vms: 2 });
  assert.deepEqual(periods(gw), [TICK_MS, TICK_MS]);
  advance(gw, 600);
  assert.deepEqual(periods(gw), [IDLE_TICK_MS, IDLE_TICK_MS], "no traffic for 600 ms");
  // A request on worker 0: its VM is back at tickMs before its next tick.
  const held = send(gw, chatBody([["user", text(5, 3000)]]), { vm: 0 });
  assert.ok(held.destination !== undefined);
  assert.equal(periods(gw)[0], TICK_MS);
  // Worker 1 sees worker 0's append on its next (slow) tick.
  advance(gw, IDLE_TICK_MS);
  assert.deepEqual(periods(gw), [TICK_MS, TICK_MS]);
  // A request in flight keeps its VM at the active pace.
  advance(gw, 1000);
  assert.equal(periods(gw)[0], TICK_MS);
  held.stream.complete();
  advance(gw, 1000);
  assert.deepEqual(periods(gw), [IDLE_TICK_MS, IDLE_TICK_MS]);
  // Slow ticks still do a tick's work: a stream parked without a body is continued after parkTimeoutMs.
  const parked = gw.plugin.newStream(1);
  parked.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
  assert.equal(periods(gw)[1], TICK_MS);
  advance(gw, 600);
  assert.equal(Number(gw.envoy.stats.get("wasmcustom.prefix_router.passthrough.body_timeout")), 1);
  gw.envoy.shutdown();
});

test("the idle pace keeps to half the metrics and discovery intervals", async () => {
  const gw = await gateway({ config: { tickMs: 20, metrics: { cluster: "metrics", intervalMs: 300 } } });
  advance(gw, 800);
  assert.deepEqual(periods(gw), [150]);
  gw.envoy.shutdown();
});
