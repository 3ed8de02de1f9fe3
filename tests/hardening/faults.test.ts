// The short version of `npm run faults`: metrics servers that are down, slow,
// reset, answer 500 or garbage, all fail, then recover (real loopback servers);
// a 100 MiB page and one just under the 8 MiB copy limit; a worker VM trapping
// mid-request under FAIL_RELOAD; eight VMs racing on the same shared-data keys;
// a worker stalled between its journal page swap and its slot write.
import { test } from "node:test";
import assert from "node:assert/strict";
import { metricsFaults, hugePages, vmRestart, raceEightVms, stalledWriter, PROBE_SYSTEM_CHARS } from "../../scripts/hardening/faults.ts";
import { wholeEntryBlocks } from "../e2e/scenarios.ts";

test("failing metrics servers mark endpoints unhealthy, routing goes on and recovers", async () => {
  const r = await metricsFaults({ window: 120, deadlineMs: 15_000, seed: 11 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.pickedSettled[0], 3, "only the three endpoints with working metrics once settled");
  assert.equal(r.pickedSettled[1], 8, "all eight when every metrics server fails");
  assert.equal(r.pickedSettled[2], 8, "all eight again after recovery");
});

test("a 100 MiB metrics page is refused without a copy; an 8 MiB one is read once", async () => {
  const r = await hugePages({ sizes: [100 << 20, (8 << 20) - 1] });
  assert.deepEqual(r.problems, []);
  assert.ok(r.vmMemoryBytesAfter < 16 << 20, `${r.vmMemoryBytesAfter} bytes`);
});

test("a VM that traps mid-request is reloaded, replays the index, and nothing else breaks", async () => {
  const r = await vmRestart({ requests: 1_000, seed: 12 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.trappedRequestStatus, 503);
  assert.equal(r.reloads, 1);
  // Work scoring may move a probe or two to an idle endpoint (faults.ts says why); the rest
  // must find their whole system prompt in the replayed index: "system" 0x1F, the text,
  // 0x1E are 65 full 64-character blocks, 4 whole index entries of DEFAULT_INDEX_STRIDE.
  const indexedBlocks = wholeEntryBlocks(7 + PROBE_SYSTEM_CHARS + 1);
  assert.equal(indexedBlocks, 64);
  assert.ok(r.warmProbes.sameDestination >= r.warmProbes.probes - 2, `${r.warmProbes.sameDestination} of ${r.warmProbes.probes}`);
  assert.ok(r.warmProbes.matchedBlocks >= indexedBlocks * r.warmProbes.sameDestination, `${r.warmProbes.matchedBlocks} blocks matched`);
  assert.equal(r.inFlightAfter, 0);
});

test("eight VMs racing on the journal: no lost or corrupt entry, in-flight counts back to zero", async () => {
  const r = await raceEightVms({ requests: 10_000, seed: 13, probes: 32 });
  assert.deepEqual(r.problems, []);
  assert.ok(r.casConflicts > 100, `${r.casConflicts} CAS conflicts`);
  assert.equal(r.journal.corrupt, 0);
  // The ring's 4,096 slots hold the last routing events and the release-only events the
  // ticks flushed between them: at least 95% of the ring is routing events matched to their request.
  assert.ok(r.journal.matched > 3900, `${r.journal.matched} routing events matched`);
  assert.equal(r.probes.sameDestination, r.probes.sent);
  assert.equal(r.inFlightAfter, 0);
});

test("a worker stalled between its journal page swap and its slot write while the others route 200 requests: no event lost, its prompt where it went on every worker", async () => {
  const r = await stalledWriter({ stalls: 4, burst: 200, seed: 17 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.stalls, 4);
  assert.equal(r.requestsDuringStalls, 800);
  assert.equal(r.journalGaps, 0);
  assert.equal(r.probes.sent, 4 * 8);
  assert.equal(r.probes.sameDestination, r.probes.sent);
});
