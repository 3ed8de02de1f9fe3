// The prefix index stays bounded: per-endpoint LRU eviction in each VM, and a
// fixed-size journal in Envoy shared data whatever the traffic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gateway, send, chatBody, text, stat } from "./harness.ts";
import { HEADER_BYTES } from "../../scripts/hardening/journal-check.ts";

test("an endpoint's index evicts at lruCapacityPerServer", async () => {
  const gw = await gateway({ endpoints: 1, config: { lruCapacityPerServer: 64 } });
  const a = chatBody([["user", text(1, 40 * 64)]]);
  send(gw, a, { complete: true });
  const matched = () => stat(gw, "prefix_router.prefix_blocks_matched");
  send(gw, a, { complete: true });
  assert.equal(matched(), 40, "second send matches all 40 blocks");
  // Other traffic worth twice the capacity pushes a's blocks out: a recently
  // used block gets one second chance (CLOCK), then goes.
  for (let i = 0; i < 2; i++) send(gw, chatBody([["user", text(2 + i, 64 * 64)]]), { complete: true });
  const before = matched();
  send(gw, a, { complete: true });
  assert.equal(matched() - before, 0, "evicted");
  gw.clock.advance(200);
  assert.equal(stat(gw, "prefix_router.endpoint.10.0.0.1:8000.index_blocks"), 64);
});

test("10^5 distinct prompts keep shared data under its bound", async () => {
  const slots = 256;
  const maxPrefixBlocks = 32;
  const gw = await gateway({ endpoints: 4, vms: 2, config: { journalSlots: slots, maxPrefixBlocks, lruCapacityPerServer: 2000 } });
  // keys: head, vm tag counter, the affinity ring's head (no sticky routes here), and one
  // per slot; values at most HEADER_BYTES + 8 × (64 + blocks).
  const bound = (slots + 3) * (64 + HEADER_BYTES + 8 * (64 + maxPrefixBlocks));
  const memory0 = gw.plugin.vms.map((vm) => vm.memoryBytes());
  for (let i = 0; i < 100_000; i++) {
    send(gw, chatBody([["user", `${i} ${text(i, 300)}`]]), { complete: true });
    if (i % 5000 === 0) gw.clock.advance(100);
  }
  const shared = gw.envoy.sharedData("prefix_router");
  assert.ok(shared.keys().length <= slots + 3, `${shared.keys().length} keys`);
  assert.ok(shared.totalBytes() <= bound, `${shared.totalBytes()} bytes > ${bound}`);
  // Linear memory is bounded too: the index holds at most 4 × 2000 blocks.
  gw.plugin.vms.forEach((vm, i) => assert.ok(vm.memoryBytes() <= memory0[i] + 4 * 1024 * 1024, `vm ${i}: ${vm.memoryBytes()}`));
  assert.equal(stat(gw, "prefix_router.routed"), 100_000);
});
