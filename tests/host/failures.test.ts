// §11: a trap fails the whole VM. The stream that trapped gets a 503
// "wasm_fail_stream" local reply (or continues untouched with the deprecated
// fail_open); streams already on that VM fail at their next callback; ticks and
// the end-of-stream calls stop. New streams follow the failure policy:
// FAIL_CLOSED 503, FAIL_OPEN no filter, FAIL_RELOAD a fresh VM after the
// backoff (in-VM state lost, shared data kept).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigRejectedError, Envoy, VirtualClock } from "../../scripts/host/index.ts";
import { guestCalls, pluginMessages, probeEnvoy, probePath, request } from "./helpers.ts";

const TRAP = request("/", { "x-probe-trap": "1" });

describe("traps", () => {
  test("the trapping stream gets 503 wasm_fail_stream; the VM is failed; no on_log/on_done/on_delete; ticks stop", async () => {
    const { clock, envoy, plugin } = await probeEnvoy({ configuration: "tick=100" }, { logLevel: "trace" });
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(TRAP, true), "StopAllIterationAndWatermark");
    assert.equal(plugin.vms[0].failed, true);
    assert.equal(plugin.vms[0].failState, "RuntimeError");
    assert.deepEqual(s.localResponse, { status: 503, details: "wasm_fail_stream", body: "", bodyBytes: new Uint8Array(0), headers: [[":status", "503"]] });
    assert.equal(s.downstreamResponse?.status, 503);
    assert.equal(s.upstreamRequest, null);
    assert.equal(s.ended, true);
    assert.ok(envoy.logs.some((l) => l.level === "error" && /^Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable/.test(l.message)));
    const calls = guestCalls(envoy.logs, 0);
    assert.deepEqual(calls.filter((c) => /^proxy_on_(response_headers|log|done|delete)\(2/.test(c)), [], "the failed VM is not called again for this stream");
    clock.advance(500);
    assert.equal(guestCalls(envoy.logs, 0).filter((c) => c.startsWith("proxy_on_tick")).length, 0);
    assert.equal(guestCalls(envoy.logs, -1).filter((c) => c.startsWith("proxy_on_tick")).length, 5, "other VMs are unaffected");
    envoy.shutdown();
  });

  test("a stream already on the crashed VM fails at its next callback: 503 directly if response headers are being processed", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const a = plugin.newStream(0);
    a.sendRequestHeaders(request("/"), true);
    assert.ok(a.upstreamRequest !== null);
    plugin.newStream(0).sendRequestHeaders(TRAP, true);
    assert.equal(a.sendResponseHeaders({ ":status": "200" }, false), "StopAllIterationAndWatermark");
    assert.equal(a.downstreamResponse?.status, 503);
    assert.equal(a.localResponse?.details, "wasm_fail_stream");
    assert.deepEqual(guestCalls(envoy.logs, 0).filter((c) => c.startsWith("proxy_on_response_headers")), []);
    envoy.shutdown();
  });

  test("legacy fail_open: the trapping stream and later ones pass through without the filter", async () => {
    const { envoy, plugin } = await probeEnvoy({ failOpenLegacy: true });
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(TRAP, true), "Continue");
    assert.ok(s.upstreamRequest !== null);
    assert.equal(s.localResponse, null);
    const later = plugin.newStream(0);
    later.sendRequestHeaders(request("/"), true);
    assert.equal(new Map(later.upstreamRequest!.headers).get("x-probe-seen"), undefined, "the filter is not in the chain");
    envoy.shutdown();
  });

  test("fail_open and failure_policy together are rejected", async () => {
    await assert.rejects(
      new Envoy({ clock: new VirtualClock() }).addHttpFilter({ name: "p", wasm: probePath(), failOpenLegacy: true, failurePolicy: "FAIL_OPEN" }),
      (e: unknown) => e instanceof ConfigRejectedError && e.reason === "only one of fail_open or failure_policy can be set",
    );
  });
});

describe("failure policy for new streams", () => {
  test("FAIL_CLOSED (the default): every new stream on the failed VM gets 503; other workers are fine", async () => {
    const { envoy, plugin } = await probeEnvoy({ concurrency: 2 });
    plugin.newStream(0).sendRequestHeaders(TRAP, true);
    const later = plugin.newStream(0);
    later.sendRequestHeaders(request("/"), true);
    assert.equal(later.localResponse?.details, "wasm_fail_stream");
    assert.equal(later.downstreamResponse?.status, 503);
    const other = plugin.newStream(1);
    other.sendRequestHeaders(request("/"), true);
    assert.equal(new Map(other.upstreamRequest!.headers).get("x-probe-seen"), "1");
    envoy.shutdown();
  });

  test("FAIL_OPEN: the trapping stream still gets 503; later streams skip the filter", async () => {
    const { envoy, plugin } = await probeEnvoy({ failurePolicy: "FAIL_OPEN" });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(TRAP, true);
    assert.equal(s.localResponse?.status, 503);
    const later = plugin.newStream(0);
    assert.equal(later.sendRequestHeaders(request("/"), true), "Continue");
    assert.equal(later.localResponse, null);
    assert.equal(new Map(later.upstreamRequest!.headers).get("x-probe-seen"), undefined);
    envoy.shutdown();
  });

  test("FAIL_RELOAD: 503 inside the backoff, then a fresh clone; in-VM state is lost, shared data is kept", async () => {
    const { clock, envoy, plugin } = await probeEnvoy({ failurePolicy: "FAIL_RELOAD", allowOnHeadersStopIteration: true, reloadBackoffMs: 1000 });
    const counted = () => {
      const s = plugin.newStream(0);
      s.sendRequestHeaders(request("/stop"), false);
      s.sendRequestBody("x", true);
      return new Map(s.upstreamRequest?.headers ?? []).get("x-probe-count");
    };
    assert.equal(counted(), "1");
    const crashed = plugin.vms[0];
    plugin.newStream(0).sendRequestHeaders(TRAP, true);

    clock.advance(10); // 10 ms after the VM was loaded: inside the [1000, 1500) ms backoff
    const during = plugin.newStream(0);
    during.sendRequestHeaders(request("/"), true);
    assert.equal(during.localResponse?.details, "wasm_fail_stream");
    assert.equal(envoy.stats.get("wasm.probe_plugin.vm_reload_backoff"), 1);
    assert.equal(plugin.vms[0], crashed);

    clock.advance(1500);
    const inits = envoy.logs.filter((l) => l.message === "probe: initialize" && l.vm === 0).length;
    assert.equal(counted(), "2", "shared data survived the reload");
    assert.notEqual(plugin.vms[0], crashed);
    assert.equal(crashed.isDisposed, true);
    assert.equal(envoy.stats.get("wasm.probe_plugin.vm_reload_success"), 1);
    assert.equal(envoy.logs.filter((l) => l.message === "probe: initialize" && l.vm === 0).length, inits + 1, "a new instance ran _initialize");
    assert.ok(pluginMessages(envoy.logs, 0).filter((m) => m.startsWith("probe: configured")).length === 2, "on_configure again");
    assert.deepEqual(plugin.vms[0].liveContexts(), [1, 2], "context ids restart in the new VM (the counted stream awaits its response)");
    assert.ok(envoy.logs.some((l) => l.vm === 0 && l.context === 2 && l.message.startsWith("probe: body complete id=2")));
    envoy.shutdown();
  });

  test("FAIL_RELOAD measures the backoff from the last load: a VM that ran long enough reloads at once", async () => {
    const { clock, envoy, plugin } = await probeEnvoy({ failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 1000 });
    clock.advance(5000);
    plugin.newStream(0).sendRequestHeaders(TRAP, true);
    const next = plugin.newStream(0);
    next.sendRequestHeaders(request("/"), true);
    assert.equal(next.localResponse, null);
    assert.equal(new Map(next.upstreamRequest!.headers).get("x-probe-seen"), "1");
    assert.equal(envoy.stats.get("wasm.probe_plugin.vm_reload_backoff"), undefined);
    envoy.shutdown();
  });
});
