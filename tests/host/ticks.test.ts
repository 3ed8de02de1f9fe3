// §7: ticks per root context per VM, driven by the clock; the first tick after
// one period; set from a stream context it is its root's; 0 disables. And the
// clocks themselves: VirtualClock fires timers in time order only in advance().
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Envoy, RealClock, VirtualClock, WasmResult } from "../../scripts/host/index.ts";
import { guestCalls, probeEnvoy, probePath, request } from "./helpers.ts";

const ticks = (logs: Parameters<typeof guestCalls>[0], vm?: number) => guestCalls(logs, vm).filter((c) => c.startsWith("proxy_on_tick"));

describe("ticks", () => {
  test("every VM ticks its own root context; the first tick comes one period after configure", async () => {
    const { clock, envoy } = await probeEnvoy({ configuration: "tick=100", concurrency: 2 }, { logLevel: "trace" });
    clock.advance(99);
    assert.deepEqual(ticks(envoy.logs), []);
    clock.advance(1);
    assert.deepEqual(
      envoy.logs.filter((l) => l.message === "[host->vm] proxy_on_tick(1)").map((l) => l.vm),
      [-1, 0, 1],
      "main thread and both workers; the canary's timer died with it",
    );
    clock.advance(250);
    assert.equal(ticks(envoy.logs, 0).length, 3);
    envoy.shutdown();
    clock.advance(1000);
    assert.equal(ticks(envoy.logs, 0).length, 3, "no ticks after shutdown");
  });

  test("a period set from a stream context re-arms its root's timer; 0 disables it", async () => {
    const { clock, envoy, plugin } = await probeEnvoy({ configuration: "tick=100" }, { logLevel: "trace" });
    const vm = plugin.vms[0];
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/"), false);
    clock.advance(60);
    assert.equal(vm.hostCall("proxy_set_tick_period_milliseconds", [30], 2), WasmResult.Ok);
    assert.equal(vm.tickPeriod(1), 30);
    clock.advance(29);
    assert.equal(ticks(envoy.logs, 0).length, 0, "re-armed from now, not from the old start");
    clock.advance(1);
    clock.advance(30);
    assert.equal(ticks(envoy.logs, 0).length, 2);
    vm.hostCall("proxy_set_tick_period_milliseconds", [0], 1);
    clock.advance(1000);
    assert.equal(ticks(envoy.logs, 0).length, 2);
    envoy.shutdown();
  });

  test("with the real clock, ticks follow real time", async () => {
    const envoy = new Envoy({ clock: new RealClock(), logLevel: "trace" });
    const started = Date.now();
    await envoy.addHttpFilter({ name: "p", rootId: "r", wasm: probePath(), configuration: "tick=20" });
    assert.equal(ticks(envoy.logs, 0).length, 0, "nothing before a period has passed");
    while (ticks(envoy.logs, 0).length < 3 && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 5));
    envoy.shutdown();
    assert.ok(ticks(envoy.logs, 0).length >= 3, "three ticks within two seconds");
    assert.ok(Date.now() - started >= 60, "not before three periods of 20 ms");
  });
});

describe("clocks", () => {
  test("VirtualClock fires due timers in time order, ties in creation order, only inside advance()", () => {
    const clock = new VirtualClock(1000);
    const fired: string[] = [];
    clock.setTimer(20, () => fired.push(`b@${clock.now()}`));
    clock.setTimer(10, () => {
      fired.push(`a@${clock.now()}`);
      clock.setTimer(5, () => fired.push(`c@${clock.now()}`));
    });
    clock.setTimer(20, () => fired.push(`d@${clock.now()}`));
    clock.setTimer(30, () => fired.push("never")).cancel();
    assert.deepEqual(fired, []);
    clock.advance(25);
    assert.deepEqual(fired, ["a@1010", "c@1015", "b@1020", "d@1020"]);
    assert.equal(clock.now(), 1025);
    assert.equal(clock.monotonicNs(), 25_000_000n);
    clock.advance(100);
    assert.equal(fired.length, 4);
    assert.equal(clock.pendingTimers(), 0);
  });
});
