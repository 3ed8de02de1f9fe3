// §1.4: the calls one HTTP stream makes into the module, in Envoy's order, and
// how the stream ends: completion and reset both run on_log -> on_done ->
// on_delete (envoy conn_manager_impl.cc doDeferredStreamDestroy marks the
// request complete before the filter manager logs), and the context is
// released afterwards.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { guestCalls, probeEnvoy, request } from "./helpers.ts";

/** Calls into the module for context `id` (first argument), without malloc and friends. */
function callsFor(logs: Parameters<typeof guestCalls>[0], id: number, vm = 0): string[] {
  return guestCalls(logs, vm).filter((c) => c.startsWith("proxy_on_") && new RegExp(`^\\w+\\(${id}(,|\\))`).test(c));
}

describe("stream sequence", () => {
  test("a complete exchange: create, headers, body, response, then on_log, on_done, on_delete", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(request("/chat"), false), "Continue");
    assert.equal(s.sendRequestBody("hello", true), "Continue");
    assert.equal(s.sendResponseHeaders({ ":status": "200", "content-type": "text/plain" }, false), "Continue");
    assert.equal(s.ended, false);
    assert.equal(s.sendResponseBody("ok", true), "Continue");
    assert.equal(s.ended, true, "the response's last frame ends the stream");
    assert.deepEqual(callsFor(envoy.logs, 2), [
      "proxy_on_context_create(2, 1)",
      "proxy_on_request_headers(2, 4, 0)", // entries, pseudo-headers included
      "proxy_on_request_body(2, 5, 1)",
      "proxy_on_response_headers(2, 2, 0)",
      "proxy_on_response_body(2, 2, 1)",
      "proxy_on_log(2)",
      "proxy_on_done(2)",
      "proxy_on_delete(2)",
    ]);
    assert.deepEqual(plugin.vms[0].liveContexts(), [1], "the stream context is gone");
    s.complete();
    assert.equal(callsFor(envoy.logs, 2).length, 8, "complete() after the end does nothing");
    envoy.shutdown();
  });

  test("complete() ends a stream the client finished: on_log, on_done, on_delete once", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/"), true);
    s.complete();
    s.complete();
    assert.deepEqual(callsFor(envoy.logs, 2), [
      "proxy_on_context_create(2, 1)",
      "proxy_on_request_headers(2, 4, 1)",
      "proxy_on_log(2)",
      "proxy_on_done(2)",
      "proxy_on_delete(2)",
    ]);
    assert.equal(s.sendRequestBody("late", true), "StreamEnded");
    envoy.shutdown();
  });

  test("a reset stream still gets on_log before on_done and on_delete", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/"), false);
    s.reset();
    assert.deepEqual(callsFor(envoy.logs, 2).slice(-3), ["proxy_on_log(2)", "proxy_on_done(2)", "proxy_on_delete(2)"]);
    assert.equal(s.resetDetails, "downstream_reset");
    assert.deepEqual(plugin.vms[0].liveContexts(), [1]);
    envoy.shutdown();
  });

  test("a stream that ends before its headers reach the filter is created for on_log", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    plugin.newStream(0).reset();
    assert.deepEqual(callsFor(envoy.logs, 2), ["proxy_on_context_create(2, 1)", "proxy_on_log(2)", "proxy_on_done(2)", "proxy_on_delete(2)"]);
    envoy.shutdown();
  });

  test("trailers are delivered after the body, whose last frame then has end_of_stream=false", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/"), false);
    s.sendRequestBody("abc", false);
    s.sendRequestTrailers({ "x-checksum": "1" });
    assert.deepEqual(callsFor(envoy.logs, 2).slice(1), ["proxy_on_request_headers(2, 4, 0)", "proxy_on_request_body(2, 3, 0)", "proxy_on_request_trailers(2, 1)"]);
    assert.deepEqual(s.upstreamRequest?.trailers, [["x-checksum", "1"]]);
    assert.equal(s.upstreamRequest?.complete, true);
    envoy.shutdown();
  });
});
