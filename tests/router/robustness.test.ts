// What the router does with bad input, odd streams and Envoy configured without
// allow_on_headers_stop_iteration: it never traps, never hangs, never alters a
// request, and says why it passed one through.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gateway, send, chatBody, text, stat, header, DEST, ROUTER_WASM, addresses } from "./harness.ts";
import { Envoy, VirtualClock } from "../../scripts/host/index.ts";

const malformed: Array<[string, string, string]> = [
  ["not_json", "/v1/chat/completions", "not json at all"],
  ["not_json", "/v1/chat/completions", '{"model":"m","messages":[{"role":"user","content":"x"}]'],
  ["not_json", "/v1/chat/completions", '{"model":"m","messages":[]} {"extra":1}'],
  ["not_json", "/v1/chat/completions", '{"model":"m","messages":[{"role":"user","content":"\\x"}]}'],
  ["not_json", "/v1/chat/completions", "\u0000\u0001\u0002"],
  ["not_json", "/v1/chat/completions", "[" .repeat(10000)],
  ["no_model", "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}]}'],
  ["no_model", "/v1/completions", '{"model":null,"prompt":"x"}'],
  ["no_prompt", "/v1/chat/completions", '{"model":"m"}'],
  ["no_prompt", "/v1/chat/completions", '{"model":"m","messages":"hello"}'],
  ["no_prompt", "/v1/completions", '{"model":"m","prompt":{}}'],
  ["token_prompt", "/v1/completions", '{"model":"m","prompt":[101,2023,-1]}'],
  ["token_prompt", "/v1/completions", '{"model":"m","prompt":[[101],[2023]]}'],
];

test("every malformed body passes through unchanged, counted by reason, without a trap", async () => {
  const gw = await gateway({ endpoints: 3, vms: 2 });
  const expected = new Map<string, number>();
  for (const [reason, path, body] of malformed) {
    const sent = send(gw, body, { path, headers: { [DEST]: "10.0.0.1:8000" } });
    assert.equal(sent.destination, undefined, `${reason}: ${body.slice(0, 40)}`);
    assert.equal(Buffer.from(sent.stream.upstreamRequest!.body).toString(), body);
    assert.equal(sent.stream.localResponse, null);
    sent.stream.complete();
    expected.set(reason, (expected.get(reason) ?? 0) + 1);
  }
  for (const [reason, n] of expected) assert.equal(stat(gw, `prefix_router.passthrough.${reason}`), n, reason);
  assert.ok(gw.plugin.vms.every((vm) => !vm.failed));
  // The filter still routes afterwards.
  assert.ok(send(gw, chatBody([["user", "fine"]]), { complete: true }).destination);
});

test("an oversized body passes through, by content-length or while streaming", async () => {
  const gw = await gateway({ endpoints: 2, config: { maxBodyBytes: 4096 } });
  const big = chatBody([["user", text(3, 10000)]]);
  const declared = send(gw, big, { headers: { "content-length": String(big.length) }, complete: true });
  assert.equal(declared.destination, undefined);
  const streamed = send(gw, big, { chunks: 8, complete: true });
  assert.equal(streamed.destination, undefined);
  assert.equal(Buffer.from(streamed.stream.upstreamRequest!.body).toString(), big);
  assert.equal(stat(gw, "prefix_router.passthrough.body_too_large"), 2);
});

test("a stream reset mid-body releases nothing it did not take and is counted", async () => {
  const gw = await gateway({ endpoints: 2 });
  const s = gw.plugin.newStream();
  s.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
  s.sendRequestBody('{"model":"m","mess', false);
  s.reset();
  assert.equal(stat(gw, "prefix_router.passthrough.aborted"), 1);
  gw.clock.advance(1000);
  assert.equal(stat(gw, "prefix_router.endpoint.10.0.0.1:8000.in_flight") + stat(gw, "prefix_router.endpoint.10.0.0.2:8000.in_flight"), 0);
});

test("in-flight counts are shared across VMs and return to zero on completion and reset", async () => {
  const gw = await gateway({ endpoints: 2, vms: 3 });
  const open = [];
  for (let i = 0; i < 12; i++) open.push(send(gw, chatBody([["user", text(700 + i, 300)]]), { vm: i % 3 }));
  gw.clock.advance(200); // ticks publish the gauges
  const inFlight = () => addresses(2).reduce((sum, a) => sum + stat(gw, `prefix_router.endpoint.${a}.in_flight`), 0);
  assert.equal(inFlight(), 12);
  open.forEach((sent, i) => (i % 2 ? sent.stream.reset() : sent.stream.complete()));
  gw.clock.advance(200);
  gw.clock.advance(200);
  assert.equal(inFlight(), 0);
});

test("without allow_on_headers_stop_iteration, requests never hang and the log says what to set", async () => {
  const gw = await gateway({ endpoints: 2, allowOnHeadersStopIteration: false, config: { parkTimeoutMs: 100 } });
  for (let i = 0; i < 5; i++) {
    const s = gw.plugin.newStream();
    s.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
    s.sendRequestBody(chatBody([["user", `q${i}`]]), true);
    if (i < 3) {
      assert.equal(s.upstreamRequest, null, "parked until the tick continues it");
      gw.clock.advance(250);
    }
    assert.ok(s.upstreamRequest, `request ${i} was released upstream`);
    assert.equal(header(s.upstreamRequest!.headers, DEST), undefined);
    s.complete();
  }
  assert.equal(stat(gw, "prefix_router.passthrough.headers_not_held"), 5);
  assert.ok(gw.envoy.logs.some((l) => l.level === "error" && l.message.includes("allow_on_headers_stop_iteration: true")));
});

test("clients whose bodies come later than parkTimeoutMs are let go, but do not make the filter give up on held headers", async () => {
  // Envoy holds the headers; the clients are just slow. Envoy has received none
  // of their body bytes (request.total_size equals the headers' size), so the
  // timeouts are not evidence of a misconfigured Envoy (assembly/router/root.ts).
  const gw = await gateway({ endpoints: 2, config: { parkTimeoutMs: 100 } });
  const slow = [];
  for (let i = 0; i < 4; i++) {
    const s = gw.plugin.newStream();
    s.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
    slow.push(s);
  }
  gw.clock.advance(250);
  for (const s of slow) {
    assert.ok(s.upstreamRequest, "a parked request is continued after parkTimeoutMs");
    s.sendRequestBody(chatBody([["user", "late"]]), true);
    s.complete();
  }
  assert.equal(stat(gw, "prefix_router.passthrough.body_timeout"), 4);
  assert.equal(stat(gw, "prefix_router.passthrough.headers_not_held"), 0);
  const s = gw.plugin.newStream();
  s.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
  s.sendRequestBody(chatBody([["user", "on time"]]), true);
  assert.ok(addresses(2).includes(header(s.upstreamRequest!.headers, DEST)!.split(",")[0]), "the next request is routed");
  s.complete();
  assert.ok(!gw.envoy.logs.some((l) => l.level === "error" && l.message.includes("allow_on_headers_stop_iteration")), "no misconfiguration was concluded");
});

test("an invalid configuration is rejected with one log line naming the field", async () => {
  for (const [config, field] of [
    ['{"endpoints":[{"address":"10.0.0.1:8000"}],"hashBlockSize":"big"}', "hashBlockSize: expected a number"],
    ['{"endpoints":[{"address":"example.com:80"}]}', "endpoints[0].address"],
    ['{"endpoints":[]}', "endpoints: at least one endpoint is required"],
    ["{nope", "configuration"],
  ] as const) {
    const envoy = new Envoy({ clock: new VirtualClock() });
    await assert.rejects(
      envoy.addHttpFilter({ name: "r", rootId: "r", vmId: "r", wasm: ROUTER_WASM, configuration: config, concurrency: 1 }),
    );
    // The filter's own line; Envoy's lines about the refused plugin follow it (source "host").
    const errors = envoy.logs.filter((l) => l.level === "error" && l.source === "plugin");
    assert.equal(errors.length, 1, JSON.stringify(envoy.logs));
    assert.ok(envoy.logs.some((l) => l.source === "host" && l.message === "Wasm VM failed Failed to configure base Wasm plugin"), JSON.stringify(envoy.logs));
    assert.ok(errors[0].message.includes(field), errors[0].message);
  }
});
