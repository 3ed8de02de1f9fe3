// The prefix index stays bounded: per-endpoint LRU eviction in each VM, and a
// fixed-size journal in Envoy shared data whatever the traffic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gateway, send, chatBody, text, stat } from "./harness.ts";
import { DEFAULT_INDEX_STRIDE } from "../e2e/scenarios.ts";
import { journalEventBound } from "../../scripts/hardening/journal-check.ts";

test("an endpoint's index evicts at lruCapacityPerServer", async () => {
  // In index entries of DEFAULT_INDEX_STRIDE (16) blocks: a capacity of 16
  // entries (256 blocks), a prompt of 10 entries (160 blocks), and other
  // prompts of 16 entries each.
  const S = DEFAULT_INDEX_STRIDE;
  const gw = await gateway({ endpoints: 1, config: { lruCapacityPerServer: 16 * S } });
  const a = chatBody([["user", text(1, 10 * S * 64)]]);
  send(gw, a, { complete: true });
  const matched = () => stat(gw, "prefix_router.prefix_blocks_matched");
  send(gw, a, { complete: true });
  assert.equal(matched(), 10 * S, `second send matches all ${10 * S} blocks`);
  // Other traffic worth twice the capacity pushes a's blocks out: a recently
  // used block gets one second chance (CLOCK), then goes.
  for (let i = 0; i < 2; i++) send(gw, chatBody([["user", text(2 + i, 16 * S * 64)]]), { complete: true });
  const before = matched();
  send(gw, a, { complete: true });
  assert.equal(matched() - before, 0, "evicted");
  gw.clock.advance(200);
  assert.equal(stat(gw, "prefix_router.endpoint.10.0.0.1:8000.index_blocks"), 16 * S);
});

test("10^5 distinct prompts keep shared data under its bound", async () => {
  const slots = 256;
  const maxPrefixBlocks = 32;
  // indexStride 1: every block of these short prompts is an index entry, so the index and
  // the journal's events fill (at the default stride a 300-character prompt has none).
  const gw = await gateway({ endpoints: 4, vms: 2, config: { journalSlots: slots, maxPrefixBlocks, indexStride: 1, lruCapacityPerServer: 2000 } });
  // keys (at most 64 bytes each): one per slot, of at most one event; the journal's page and the
  // affinity ring's (no sticky routes here), of at most 4,000 bytes of events or one event, and a
  // 16-byte header (journal.ts); the vm tag counter.
  const event = journalEventBound(maxPrefixBlocks, 1);
  const bound = slots * (64 + event) + 2 * (64 + 16 + Math.max(4000, event)) + (64 + 8);
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

test("bodies of changing sizes are read whole while the module keeps one spare block for them", async () => {
  // The module keeps the last large host buffer it freed (abi/memory.ts) and
  // hands it out again for any body no larger. A reused block that were too
  // small, or still in use, would corrupt the prompt: its repeat would then
  // match less than its whole shared system prompt.
  const gw = await gateway({ endpoints: 4, config: { maxBodyBytes: 1 << 20 } });
  const system = text(42, 4200); // 4 index entries: 64 full blocks of the prompt's 65
  const sizes = [5_000, 60_000, 17_000, 300_000, 4_100, 120_000, 9_000];
  const vm = gw.plugin.vms[0];
  let memoryAfterFirstRound = 0;
  for (let round = 0; round < 3; round++) {
    for (const [i, size] of sizes.entries()) {
      const body = chatBody([["system", system], ["user", `round ${round} body ${i}: ${text(1000 * round + i, size)}`]]);
      const before = stat(gw, "prefix_router.prefix_blocks_matched");
      const sent = send(gw, body, { complete: true });
      assert.ok(sent.destination, `round ${round}, ${size} bytes: not routed`);
      if (round + i > 0) assert.equal(stat(gw, "prefix_router.prefix_blocks_matched") - before, 4 * DEFAULT_INDEX_STRIDE, `round ${round}, ${size} bytes`);
    }
    if (round === 0) memoryAfterFirstRound = vm.memoryBytes();
  }
  assert.equal(vm.memoryBytes(), memoryAfterFirstRound, "linear memory grew after the first round of sizes");
});
