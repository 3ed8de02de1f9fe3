// The release build collects garbage only at the end of host callbacks
// (assembly/abi/collect.ts, AssemblyScript's minimal runtime, which finds live
// objects from globals alone). These tests hold streams open across many
// collections, so that an object freed while still in use would show as a
// wrong route, a lost stream or a trap, and check that what requests leave
// behind is collected: linear memory stops growing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gateway, send, chatBody, DEST, header } from "./harness.ts";

/** Streams between collections without a tick (collect.ts COLLECT_EVERY_STREAMS). */
const COLLECT_EVERY_STREAMS = 1024;

test("streams held open across collections are still whole: each routes once its body comes, and ends cleanly", async () => {
  const gw = await gateway({ endpoints: 8, vms: 1 });
  const held = Array.from({ length: 600 }, () => {
    const stream = gw.plugin.newStream();
    stream.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gateway", "content-type": "application/json" }, false);
    return stream;
  });
  // Three collections by stream count, then two by tick (a tick collects when a stream ended since the
  // last collection), each while those 600 wait parked.
  const request = (i: number) => assert.ok(send(gw, chatBody([["user", `question ${i} `.repeat(40)]]), { complete: true }).destination, `request ${i}`);
  for (let i = 0; i < 3 * COLLECT_EVERY_STREAMS; i++) request(i);
  for (const tick of [0, 1]) {
    request(-1 - tick);
    gw.clock.advance(30);
  }
  const prompt = "the same long system prompt ".repeat(80);
  const first = new Map<string, number>();
  held.forEach((stream, i) => {
    stream.sendRequestBody(Buffer.from(chatBody([["system", prompt], ["user", `held ${i}`]])), true);
    const destination = header(stream.requestHeaders, DEST);
    assert.ok(destination, `held stream ${i} was not routed`);
    first.set(destination!, (first.get(destination!) ?? 0) + 1);
    stream.complete();
  });
  // One shared prompt: the held streams follow it to few endpoints, as any other requests would.
  assert.ok(first.size <= 3, `a shared prompt went to ${first.size} endpoints`);
  assert.ok(!gw.plugin.vms[0].failed);
});

test("what requests leave behind is collected: linear memory stops growing", async () => {
  const gw = await gateway({ endpoints: 8, vms: 2 });
  const run = (n: number, offset: number) => {
    for (let i = 0; i < n; i++) {
      send(gw, chatBody([["user", `prompt ${offset + i} `.repeat(30)]]), { vm: i % 2, complete: true });
      if (i % 200 === 199) gw.clock.advance(25);
    }
  };
  run(6000, 0);
  const after6k = gw.plugin.vms.map((vm) => vm.memoryBytes());
  run(12000, 6000);
  const after18k = gw.plugin.vms.map((vm) => vm.memoryBytes());
  // Each request leaves its stream's object; 12,000 more uncollected would be over a megabyte a VM.
  after18k.forEach((bytes, v) => assert.ok(bytes - after6k[v] <= 256 << 10, `VM ${v} grew from ${after6k[v]} to ${bytes} bytes`));
});
