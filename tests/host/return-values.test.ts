// §1.5: how Envoy reads what the callbacks return, in both modes of
// allow_on_headers_stop_iteration, and what the filter manager then does: stop
// all (no body callback until proxy_continue_stream, then the whole buffered
// body in one call, request headers already gone) versus stop headers only
// (body callbacks arrive, headers still editable); local replies forcing a stop;
// continue and close taking effect after the VM call returns.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Envoy, VirtualClock, WasmResult, bodyText, encodePairs } from "../../scripts/host/index.ts";
import { guestCalls, minimalModule, pluginMessages, probeEnvoy, put, request, slots, wat } from "./helpers.ts";

/** A filter that returns its count/size argument: the test picks the return value. */
const ECHO = minimalModule(`
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) local.get 1)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) local.get 1)
  (func (export "proxy_on_request_trailers") (param i32 i32) (result i32) local.get 1)`);

async function echo(allowOnHeadersStopIteration = false) {
  const envoy = new Envoy({ clock: new VirtualClock() });
  return envoy.addHttpFilter({ name: "echo", wasm: await wat(ECHO), allowOnHeadersStopIteration });
}

const headersOf = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, "v"]));

describe("return-value conversion", () => {
  test("headers: 1 becomes StopAllIterationAndWatermark unless allowed; 2 becomes Continue; above 4 stops all", async () => {
    const strict = await echo(false);
    const allowed = await echo(true);
    const expected: [number, string, string][] = [
      [0, "Continue", "Continue"],
      [1, "StopAllIterationAndWatermark", "StopIteration"],
      [2, "Continue", "Continue"],
      [3, "StopAllIterationAndBuffer", "StopAllIterationAndBuffer"],
      [4, "StopAllIterationAndWatermark", "StopAllIterationAndWatermark"],
      [5, "StopAllIterationAndWatermark", "StopAllIterationAndWatermark"],
    ];
    for (const [n, byDefault, withKnob] of expected) {
      assert.equal(strict.newStream().sendRequestHeaders(headersOf(n), false), byDefault, `${n} headers`);
      assert.equal(allowed.newStream().sendRequestHeaders(headersOf(n), false), withKnob, `${n} headers, allowed`);
    }
  });

  test("body: 0..3 map to Continue, StopIterationAndBuffer, StopIterationAndWatermark, StopIterationNoBuffer; above 3 is NoBuffer", async () => {
    const plugin = await echo();
    for (const [size, status] of [[0, "Continue"], [1, "StopIterationAndBuffer"], [2, "StopIterationAndWatermark"], [3, "StopIterationNoBuffer"], [9, "StopIterationNoBuffer"]] as const) {
      const s = plugin.newStream();
      s.sendRequestHeaders(headersOf(2), false);
      assert.equal(s.sendRequestBody("x".repeat(size), false), status, `body of ${size}`);
    }
  });

  test("trailers: 0 is Continue, anything else StopIteration", async () => {
    const plugin = await echo();
    for (const [n, status] of [[0, "Continue"], [1, "StopIteration"], [2, "StopIteration"]] as const) {
      const s = plugin.newStream();
      s.sendRequestHeaders(headersOf(2), false);
      assert.equal(s.sendRequestTrailers(headersOf(n)), status);
    }
  });
});

describe("StopIteration from request headers", () => {
  test("default: everything stops, the body is buffered by Envoy and arrives in one call after continue, without the request headers", async () => {
    const { clock, envoy, plugin } = await probeEnvoy({ configuration: "tick=100" }, { logLevel: "trace" });
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(request("/stop"), false), "StopAllIterationAndWatermark");
    assert.equal(s.sendRequestBody("hello", false), "Buffered");
    assert.equal(s.sendRequestBody(" world", true), "Buffered");
    assert.equal(guestCalls(envoy.logs).filter((c) => c.startsWith("proxy_on_request_body")).length, 0, "no body callback while stopped");
    assert.equal(s.upstreamRequest === null, true);

    clock.advance(100); // the probe's tick continues the stream
    const calls = guestCalls(envoy.logs, 0);
    assert.deepEqual(calls.filter((c) => c.startsWith("proxy_on_request_body")), ["proxy_on_request_body(2, 11, 1)"]);
    assert.ok(calls.indexOf("proxy_on_request_body(2, 11, 1)") > calls.indexOf("proxy_on_tick(1)"));
    assert.ok(
      envoy.logs.findIndex((l) => l.message === "[host<-vm] proxy_on_tick return: void" && l.vm === 0) <
        envoy.logs.findIndex((l) => l.message === "[host->vm] proxy_on_request_body(2, 11, 1)"),
      "continue is deferred until on_tick returns",
    );
    assert.ok(pluginMessages(envoy.logs, 0).some((m) => m.startsWith("probe: body complete id=2 bytes=11 header_status=2")), "replace header: BadArgument");
    assert.deepEqual(
      s.upstreamRequest?.headers.map(([k]) => k),
      [":method", ":path", ":authority", ":scheme", "x-probe-seen"],
    );
    assert.equal(bodyText(s.upstreamRequest!.body), "hello world");
    envoy.shutdown();
  });

  test("default: once headers continue, the request header map is gone (get and replace BadArgument, pairs empty)", async () => {
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    const results: number[] = [];
    let pairsSize = -1;
    vm.beforeGuestCall = (fn, args) => {
      if (fn !== "proxy_on_request_body") return;
      const out = slots(vm);
      const [k, kl] = put(vm, ":path");
      const [v, vl] = put(vm, "/changed");
      results.push(vm.hostCall("proxy_get_header_map_value", [0, k, kl, out.ptr, out.size], args[0]));
      results.push(vm.hostCall("proxy_replace_header_map_value", [0, k, kl, v, vl], args[0]));
      results.push(vm.hostCall("proxy_get_header_map_pairs", [0, out.ptr, out.size], args[0]));
      pairsSize = out.sizeValue();
    };
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(request("/"), false), "Continue");
    s.sendRequestBody("x", true);
    assert.deepEqual(results, [WasmResult.BadArgument, WasmResult.BadArgument, WasmResult.Ok]);
    assert.equal(pairsSize, 0);
    assert.equal(s.upstreamRequest?.headers.find(([k]) => k === ":path")?.[1], "/");
    envoy.shutdown();
  });

  test("allow_on_headers_stop_iteration: headers are held, each body chunk is delivered, and on_request_body may still edit the headers", async () => {
    const { envoy, plugin } = await probeEnvoy({ allowOnHeadersStopIteration: true }, { logLevel: "trace" });
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(request("/stop"), false), "StopIteration");
    assert.equal(s.sendRequestBody("hello", false), "StopIterationAndBuffer");
    assert.equal(s.upstreamRequest === null, true, "headers are held");
    assert.equal(s.sendRequestBody(" world", true), "Continue");
    assert.deepEqual(
      guestCalls(envoy.logs).filter((c) => c.startsWith("proxy_on_request_body")),
      ["proxy_on_request_body(2, 5, 0)", "proxy_on_request_body(2, 11, 1)"],
      "the second call sees the cumulative buffered body",
    );
    assert.ok(pluginMessages(envoy.logs).some((m) => m.startsWith("probe: body complete id=2 bytes=11 header_status=0")));
    const headers = new Map(s.upstreamRequest!.headers);
    assert.equal(headers.get("x-probe-body-bytes"), "11");
    assert.equal(headers.get("x-probe-count"), "1");
    assert.equal(bodyText(s.upstreamRequest!.body), "hello world");
    envoy.shutdown();
  });

  test("buffering past the buffer limit after StopIterationAndBuffer gives a 413 local reply", async () => {
    const { envoy, plugin } = await probeEnvoy({ allowOnHeadersStopIteration: true }, { bufferLimitBytes: 8 });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/stop"), false);
    s.sendRequestBody("hello", false);
    s.sendRequestBody(" world", false);
    assert.equal(s.localResponse?.status, 413);
    assert.equal(s.localResponse?.details, "request_payload_too_large");
    assert.equal(s.ended, true);
    envoy.shutdown();
  });

  test("past the buffer limit the filter is still called with the whole buffer, and destroyed after that call (Envoy 1.40)", async () => {
    // Real Envoy calls on_request_body after its 413 and only then on_log /
    // on_done (tests/differential/http.test.ts): the stream's destruction waits
    // for the filter callback that raised the limit (stream.ts destroy).
    const { envoy, plugin } = await probeEnvoy({ allowOnHeadersStopIteration: true }, { bufferLimitBytes: 8, logLevel: "trace" });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/stop"), false);
    s.sendRequestBody("hello", false);
    s.sendRequestBody(" world", false);
    assert.equal(s.localResponse?.status, 413);
    const calls = guestCalls(envoy.logs, 0).filter((c) => /^proxy_on_(request_body|response_headers|log|done|delete)\(2/.test(c));
    assert.deepEqual(calls.map((c) => c.replace(/\(.*/, "")), [
      "proxy_on_request_body", // "hello": buffered
      "proxy_on_response_headers", // the 413 through the encoder side
      "proxy_on_request_body", // " world": the whole over-limit buffer
      "proxy_on_log", "proxy_on_done", "proxy_on_delete",
    ]);
    assert.equal(calls[2], "proxy_on_request_body(2, 11, 0)");
    envoy.shutdown();
  });
});

describe("local replies, continue and close", () => {
  test("a local response forces StopAllIterationAndWatermark, goes through on_response_headers, and ends the stream", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(request("/", { "x-probe-local": "429" }), false), "StopAllIterationAndWatermark");
    assert.deepEqual(s.localResponse, {
      status: 429,
      details: "probe_local", // whitespace replaced
      body: "local from probe",
      bodyBytes: new TextEncoder().encode("local from probe"),
      headers: [[":status", "429"], ["x-probe-local-reply", "1"], ["content-length", "16"], ["content-type", "text/plain"]],
    });
    assert.equal(s.downstreamResponse?.status, 429);
    assert.equal(new Map(s.downstreamResponse!.headers).get("x-probe-response"), "1", "the filter saw its own reply");
    assert.equal(bodyText(s.downstreamResponse!.body), "local from probe");
    assert.equal(s.upstreamRequest, null);
    const calls = guestCalls(envoy.logs, 0).filter((c) => /^proxy_on_\w+\(2/.test(c));
    assert.deepEqual(calls.slice(1), [
      "proxy_on_request_headers(2, 5, 0)",
      "proxy_on_response_headers(2, 4, 0)",
      "proxy_on_response_body(2, 16, 1)",
      "proxy_on_log(2)",
      "proxy_on_done(2)",
      "proxy_on_delete(2)",
    ]);
    assert.equal(s.sendRequestBody("more", true), "StreamEnded");
    envoy.shutdown();
  });

  test("a local reply's body is bytes: every byte value and NULs arrive unchanged, content-length counts bytes", async () => {
    // Every byte value once, then two NULs: not UTF-8 (0x80.., 0xFF), and text that would stop at a NUL.
    const body = Uint8Array.from([...Array.from({ length: 256 }, (_, i) => i), 0, 0]);
    const headers = encodePairs([["content-type", "application/octet-stream"]]);
    const data = (bytes: Uint8Array) => [...bytes].map((b) => "\\" + b.toString(16).padStart(2, "0")).join("");
    const module = minimalModule(`
      (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (data (i32.const 64) "bytes")
      (data (i32.const 128) "${data(headers)}")
      (data (i32.const 512) "${data(body)}")
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $reply (i32.const 200) (i32.const 64) (i32.const 5) (i32.const 512) (i32.const ${body.length})
          (i32.const 128) (i32.const ${headers.length}) (i32.const -1)))
        (i32.const 0))`);
    const envoy = new Envoy({ clock: new VirtualClock() });
    const plugin = await envoy.addHttpFilter({ name: "bytes", wasm: await wat(module) });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/"), true);
    const local = s.localResponse!;
    assert.equal(local.status, 200);
    assert.deepEqual([...local.bodyBytes], [...body]);
    assert.deepEqual(local.headers, [[":status", "200"], ["content-type", "application/octet-stream"], ["content-length", "258"]]);
    assert.deepEqual([...s.downstreamResponse!.body], [...body]);
    assert.equal(new Map(s.downstreamResponse!.headers).get("content-length"), "258");
    assert.equal(s.upstreamRequest, null);
    envoy.shutdown();
  });

  test("proxy_close_stream resets the stream after the callback returns", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/", { "x-probe-close": "1" }), false);
    assert.equal(s.resetDetails, "wasm_close_stream");
    assert.equal(s.upstreamRequest, null);
    const at = (m: string) => envoy.logs.findIndex((l) => l.message === m);
    assert.ok(at("[host<-vm] proxy_on_request_headers return: 0") < at("[host->vm] proxy_on_log(2)"));
    envoy.shutdown();
  });
});
