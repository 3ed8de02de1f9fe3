// Regression tests for filter bugs the hardening work found (each also noted in
// README "Reliability"): memory that configurations leaked, and a duplicate
// check that made the largest allowed configuration take half a minute.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Envoy, VirtualClock } from "../../scripts/host/index.ts";
import { FuzzModule } from "../../scripts/hardening/fuzz-module.ts";
import { routerWasm, send, chatBody, filler, type Gateway } from "../../scripts/hardening/gateway.ts";

const encoder = new TextEncoder();

test("parsing a configuration frees its scratch buffer (it leaked 64 KiB each time)", () => {
  const m = FuzzModule.load();
  const config = encoder.encode('{"endpoints":[{"address":"10.0.0.1:80"},{"address":"[::1]:81"}],"metrics":{"cluster":"m","dialect":"sglang"}}');
  const parse = () => assert.equal(m.exports.fuzz_config(m.place(config), config.length), 1);
  for (let i = 0; i < 50; i++) parse();
  const before = m.heap();
  for (let i = 0; i < 2000; i++) parse();
  const after = m.heap();
  assert.equal(after.usedBytes, before.usedBytes);
  assert.equal(after.heapBytes, before.heapBytes);
});

test("a configuration replaced in a running VM frees the old index (Envoy keeps the VM across updates)", async () => {
  const clock = new VirtualClock();
  const envoy = new Envoy({ clock, logLevel: "warn" });
  const wasm = routerWasm();
  const config = (i: number) => JSON.stringify({ endpoints: Array.from({ length: 16 }, (_, k) => ({ address: `10.${i % 200}.0.${k + 1}:8000` })) });
  const keep = await envoy.addHttpFilter({ name: "keep", rootId: "prefix_router", vmId: "v", wasm, configuration: config(999), allowOnHeadersStopIteration: true });
  let previous = keep;
  const memory: number[] = [];
  for (let i = 0; i < 100; i++) {
    const plugin = await envoy.addHttpFilter({ name: `update${i}`, rootId: "prefix_router", vmId: "v", wasm, configuration: config(i), allowOnHeadersStopIteration: true });
    assert.equal(plugin.vm(0), keep.vm(0), "same VM");
    const gw: Gateway = { clock, envoy, plugin, endpoints: [], config: {} };
    for (let r = 0; r < 30; r++) {
      const s = send(gw, chatBody([["system", filler(i * 100 + r, 3000)], ["user", "q"]])).stream;
      s.sendResponseHeaders({ ":status": "200" }, false);
      s.sendResponseBody("{}", true);
    }
    if (previous !== keep) previous.releaseAll(); // the old root context: on_done, on_delete
    previous = plugin;
    memory.push(keep.vm(0)!.memoryBytes());
  }
  envoy.shutdown();
  // The heap may step up once while old and new roots interleave their blocks
  // (seen after 37 updates, then flat through 150); a leaked index grows it on
  // and on, so the second half must stay flat.
  assert.equal(memory[memory.length - 1], memory[49], `linear memory ${memory.join(", ")}`);
});

test("the largest allowed configuration (65,534 endpoints) parses in linear time", () => {
  const m = FuzzModule.load();
  const endpoints = (n: number) => Array.from({ length: n }, (_, i) => `{"address":"10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:80"}`).join(",");
  const max = encoder.encode(`{"endpoints":[${endpoints(65534)}]}`);
  const t0 = performance.now();
  assert.equal(m.exports.fuzz_config(m.place(max), max.length), 1);
  const ms = performance.now() - t0;
  // It compared every endpoint with every earlier one: about 30 s.
  assert.ok(ms < 3000, `${ms} ms`);
  const over = encoder.encode(`{"endpoints":[${endpoints(65535)}]}`);
  assert.equal(m.exports.fuzz_config(m.place(over), over.length), 0);
  assert.match(m.handedOut(m.exports.fuzz_config_error()), /at most 65534 endpoints/);
});
