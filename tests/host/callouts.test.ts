// §6: proxy_http_call. Argument rules (unknown cluster, missing :path/:method/
// :authority, negative timeout), tokens 4, 8, 12 per VM, the callback on the
// root context, timeout 0 = none, real HTTP over loopback for static and
// original_dst clusters, and Envoy's outcomes: 504 "upstream request timeout",
// 503 on connect failure, (0,0,0) + status 11 on a reset after headers,
// InternalFailure without callback when no host can be picked. The response
// maps and body exist only during the callback.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Envoy, MapType, BufferType, RealClock, WasmResult, type CalloutReply } from "../../scripts/host/index.ts";
import { guestCalls, pluginMessages, probeEnvoy, probePath, put, putPairs, request, slots, text, u32At } from "./helpers.ts";

let server: Server;
let port = 0;
const seen: { method?: string; url?: string; host?: string; body: string }[] = [];
/** Every request's headers, as the server got them. */
const seenHeaders: Record<string, string | string[] | undefined>[] = [];

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, host: req.headers.host, body });
      seenHeaders.push(req.headers);
      if (req.url === "/slow") setTimeout(() => res.end("late"), 1000).unref();
      else if (req.url === "/reset") {
        res.writeHead(200, { "content-length": "100" });
        res.write("partial");
        setTimeout(() => res.destroy(), 10).unref();
      } else if (req.url === "/close") req.socket.destroy();
      else res.end("vllm:num_requests_waiting 3\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

/** Issues proxy_http_call from `context` as the module would; returns [result, token]. */
function httpCall(vm: import("../../scripts/host/index.ts").Vm, context: number, cluster: string, headers: [string, string][], timeoutMs: number, body = ""): [number, number] {
  const token = vm.alloc(4);
  const [b, bl] = body === "" ? [0, 0] : put(vm, body);
  const result = vm.hostCall("proxy_http_call", [...put(vm, cluster), ...putPairs(vm, headers), b, bl, 0, 0, timeoutMs, token], context);
  return [result, u32At(vm, token)];
}

const GET = (path = "/metrics", extra: [string, string][] = []): [string, string][] => [[":method", "GET"], [":path", path], [":authority", "model-0"], ...extra];

describe("proxy_http_call arguments", () => {
  test("unknown cluster, a missing :path/:method/:authority, or a timeout >= 2^31 is BadArgument; the token stays 0", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { clusters: { sim: { type: "handler", handle: () => ({ status: 200 }) } } });
    const vm = plugin.vms[0];
    assert.deepEqual(httpCall(vm, 1, "nope", GET(), 100), [WasmResult.BadArgument, 0]);
    for (const drop of [":path", ":method", ":authority"]) {
      assert.deepEqual(httpCall(vm, 1, "sim", GET().filter(([k]) => k !== drop), 100), [WasmResult.BadArgument, 0], drop);
    }
    assert.deepEqual(httpCall(vm, 1, "sim", GET(), 0x80000000), [WasmResult.BadArgument, 0]);
    assert.deepEqual(httpCall(vm, 1, "sim", GET(), 100), [WasmResult.Ok, 4]);
    envoy.shutdown();
  });

  test("tokens are 4, 8, 12 … per VM; every VM ticks and calls; responses reach proxy_on_http_call_response on the root", async () => {
    const { clock, envoy, plugin } = await probeEnvoy(
      { configuration: "tick=10;cluster=sim", concurrency: 2 },
      { logLevel: "trace", clusters: { sim: { type: "handler", handle: () => ({ status: 200, headers: { "content-type": "text/plain" }, body: "ok" }) } } },
    );
    clock.advance(10);
    assert.deepEqual(envoy.pendingCallouts().map((c) => [c.vm, c.token]), [[-1, 4], [0, 4], [1, 4]]);
    await envoy.settle();
    clock.advance(10);
    clock.advance(10);
    await envoy.settle();
    for (const vm of [-1, 0, 1]) {
      assert.deepEqual(
        guestCalls(envoy.logs, vm).filter((c) => c.startsWith("proxy_on_http_call_response")),
        ["proxy_on_http_call_response(1, 4, 2, 2, 0)", "proxy_on_http_call_response(1, 8, 2, 2, 0)", "proxy_on_http_call_response(1, 12, 2, 2, 0)"],
      );
    }
    assert.equal(plugin.vms.length, 2);
    envoy.shutdown();
  });

  test("a call made from a stream context belongs to the root: the callback goes to the root, even after the stream ended", async () => {
    let release!: (r: CalloutReply) => void;
    const { envoy, plugin } = await probeEnvoy({}, {
      logLevel: "trace",
      clusters: { sim: { type: "handler", handle: () => new Promise((res) => (release = res)) } },
    });
    const vm = plugin.vms[0];
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/"), true);
    assert.deepEqual(httpCall(vm, 2, "sim", GET("/load"), 1000, "payload"), [WasmResult.Ok, 4]);
    const [pending] = envoy.pendingCallouts();
    assert.deepEqual([pending.vm, pending.token, pending.request.method, pending.request.path, pending.request.authority], [0, 4, "GET", "/load", "model-0"]);
    assert.equal(new Map(pending.request.headers).get("content-length"), "7", "a body sets content-length");
    assert.equal(pending.request.timeoutMs, 1000);
    s.complete();
    await envoy.settle();
    release({ status: 200, body: "late but delivered" });
    await envoy.settle();
    assert.ok(guestCalls(envoy.logs).includes("proxy_on_http_call_response(1, 4, 1, 18, 0)"));
    envoy.shutdown();
  });
});

describe("callout outcomes", () => {
  test("timeout 0 means none; a timeout gives Envoy's 504 'upstream request timeout' response", async () => {
    const { clock, envoy, plugin } = await probeEnvoy({}, { clusters: { never: { type: "handler", handle: () => new Promise<CalloutReply>(() => {}) } } });
    const vm = plugin.vms[0];
    httpCall(vm, 1, "never", GET(), 0);
    httpCall(vm, 1, "never", GET(), 500);
    clock.advance(499);
    await envoy.settle();
    assert.equal(envoy.pendingCallouts().length, 2);
    clock.advance(1);
    assert.deepEqual(pluginMessages(envoy.logs).filter((m) => m.startsWith("probe: callout")), ["probe: callout token=8 status=504 bytes=24 body=upstream request timeout"]);
    clock.advance(3_600_000);
    await envoy.settle();
    assert.deepEqual(envoy.pendingCallouts().map((c) => [c.token, c.request.timeoutMs]), [[4, null]]);
    envoy.shutdown();
  });

  test("static cluster: real HTTP to the address; the response body and :status are readable in the callback", async () => {
    const { clock, envoy } = await probeEnvoy(
      { configuration: `tick=10;cluster=model0;authority=model-0:8000;calloutPath=/metrics` },
      { clusters: { model0: { type: "static", address: `127.0.0.1:${port}` } } },
    );
    seen.length = 0;
    clock.advance(10);
    await envoy.settle();
    assert.deepEqual(seen[0], { method: "GET", url: "/metrics", host: "model-0:8000", body: "" });
    assert.ok(pluginMessages(envoy.logs, 0).includes("probe: callout token=4 status=200 bytes=28 body=vllm:num_requests_waiting 3\n"));
    envoy.shutdown();
  });

  test("a real callout carries what Envoy's async client and router add: x-envoy-internal, and x-envoy-expected-rq-timeout-ms when it has a timeout", async () => {
    // As a metrics server behind Envoy 1.40 receives a scrape (tests/differential/).
    const { envoy, plugin } = await probeEnvoy({}, { clusters: { dst: { type: "original_dst" } } });
    const vm = plugin.vms[0];
    seenHeaders.length = 0;
    const to = [["x-envoy-original-dst-host", `127.0.0.1:${port}`]] as [string, string][];
    assert.equal(httpCall(vm, 1, "dst", GET("/metrics", to), 1000)[0], WasmResult.Ok);
    await envoy.settle();
    assert.equal(httpCall(vm, 1, "dst", GET("/metrics", to), 0)[0], WasmResult.Ok);
    await envoy.settle();
    assert.deepEqual(seenHeaders.map((h) => [h["x-envoy-internal"], h["x-envoy-expected-rq-timeout-ms"]]), [["true", "1000"], ["true", undefined]]);
    envoy.shutdown();
  });

  test("original_dst: connects to x-envoy-original-dst-host; without a usable header the call fails inline (InternalFailure, no callback)", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace", clusters: { dst: { type: "original_dst" } } });
    const vm = plugin.vms[0];
    assert.deepEqual(httpCall(vm, 1, "dst", GET("/metrics", [["x-envoy-original-dst-host", `127.0.0.1:${port}`]]), 1000), [WasmResult.Ok, 4]);
    assert.deepEqual(httpCall(vm, 1, "dst", GET(), 1000), [WasmResult.InternalFailure, 0]);
    assert.deepEqual(httpCall(vm, 1, "dst", GET("/", [["x-envoy-original-dst-host", "not-an-address"]]), 1000), [WasmResult.InternalFailure, 0]);
    await envoy.settle();
    const callbacks = guestCalls(envoy.logs).filter((c) => c.startsWith("proxy_on_http_call_response"));
    assert.equal(callbacks.length, 1);
    assert.match(callbacks[0], /^proxy_on_http_call_response\(1, 4, \d+, 28, 0\)$/);
    assert.deepEqual(guestCalls(envoy.logs).filter((c) => c.includes(", 12,")), [], "token 12 (the third call) never calls back");
    envoy.shutdown();
  });

  test("with a real clock, a slow upstream times out into a 504 after the timeout", async () => {
    const envoy = new Envoy({ clock: new RealClock(), clusters: { model0: { type: "static", address: `127.0.0.1:${port}` } } });
    const plugin = await envoy.addHttpFilter({ name: "p", rootId: "r", wasm: probePath() });
    const started = Date.now();
    httpCall(plugin.vms[0], 1, "model0", GET("/slow"), 100);
    await envoy.settle();
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 90 && elapsed < 900, `took ${elapsed} ms`);
    assert.ok(pluginMessages(envoy.logs, 0).includes("probe: callout token=4 status=504 bytes=24 body=upstream request timeout"));
    envoy.shutdown();
  });

  test("connection refused or closed before headers: Envoy's 503 local reply", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { envoy, plugin } = await probeEnvoy({}, {
      clusters: { dead: { type: "static", address: `127.0.0.1:${deadPort}` }, live: { type: "static", address: `127.0.0.1:${port}` } },
    });
    httpCall(plugin.vms[0], 1, "dead", GET(), 1000);
    httpCall(plugin.vms[0], 1, "live", GET("/close"), 1000);
    await envoy.settle();
    const lines = pluginMessages(envoy.logs, 0).filter((m) => m.startsWith("probe: callout"));
    assert.equal(lines.length, 2);
    assert.ok(lines.some((m) => m.startsWith("probe: callout token=4 status=503") && m.includes("body=upstream connect error or disconnect/reset before headers")));
    assert.ok(lines.some((m) => m.startsWith("probe: callout token=8 status=503")));
    envoy.shutdown();
  });

  test("a reset after response headers is (0, 0, 0) and proxy_get_status gives 11 'reset' during the callback", async () => {
    const { envoy, plugin } = await probeEnvoy({}, {
      logLevel: "trace",
      clusters: { live: { type: "static", address: `127.0.0.1:${port}` }, sim: { type: "handler", handle: () => ({ reset: true }) } },
    });
    const vm = plugin.vms[0];
    const statuses: string[] = [];
    vm.beforeGuestCall = (fn) => {
      if (fn !== "proxy_on_http_call_response") return;
      const code = vm.alloc(4);
      const out = slots(vm);
      vm.hostCall("proxy_get_status", [code, out.ptr, out.size], 1);
      statuses.push(`${u32At(vm, code)} ${text(out.read())}`);
    };
    httpCall(vm, 1, "live", GET("/reset"), 1000);
    httpCall(vm, 1, "sim", GET(), 1000);
    await envoy.settle();
    assert.deepEqual(guestCalls(envoy.logs).filter((c) => c.startsWith("proxy_on_http_call_response")).sort(), [
      "proxy_on_http_call_response(1, 4, 0, 0, 0)",
      "proxy_on_http_call_response(1, 8, 0, 0, 0)",
    ]);
    assert.deepEqual(statuses, ["11 reset", "11 reset"]);
    assert.ok(pluginMessages(envoy.logs, 0).includes("probe: callout failed token=4"));
    envoy.shutdown();
  });

  test("the response headers and body exist only during the callback", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { clusters: { sim: { type: "handler", handle: () => ({ status: 202, body: "abc", trailers: { "x-t": "1" } }) } } });
    const vm = plugin.vms[0];
    const key = put(vm, ":status");
    const out = slots(vm);
    const during: unknown[] = [];
    vm.beforeGuestCall = (fn) => {
      if (fn !== "proxy_on_http_call_response") return;
      during.push(vm.hostCall("proxy_get_header_map_value", [MapType.HttpCallResponseHeaders, ...key, out.ptr, out.size], 1), text(out.read()));
      during.push(vm.hostCall("proxy_get_buffer_bytes", [BufferType.HttpCallResponseBody, 0, 10, out.ptr, out.size], 1), text(out.read()));
      during.push(vm.hostCall("proxy_get_header_map_pairs", [MapType.HttpCallResponseTrailers, out.ptr, out.size], 1), out.sizeValue() > 0);
    };
    httpCall(vm, 1, "sim", GET(), 1000);
    await envoy.settle();
    assert.deepEqual(during, [WasmResult.Ok, "202", WasmResult.Ok, "abc", WasmResult.Ok, true]);
    assert.equal(vm.hostCall("proxy_get_header_map_value", [MapType.HttpCallResponseHeaders, ...key, out.ptr, out.size], 1), WasmResult.BadArgument);
    assert.equal(vm.hostCall("proxy_get_buffer_bytes", [BufferType.HttpCallResponseBody, 0, 10, out.ptr, out.size], 1), WasmResult.NotFound);
    envoy.shutdown();
  });
});

