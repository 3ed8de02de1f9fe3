// The short version of `npm run fuzz`: every saved regression input replayed,
// then a seeded campaign per parser (20,000 inputs each, in build/fuzz.wasm with
// every input ending at the end of linear memory) and fuzzing through the real
// filter in the emulator. No trap, no invariant or reference broken, the heap
// back to its baseline, no VM failed, no request altered or sent elsewhere.
// A new crashing input is saved to tests/fuzz/regressions/ like the full run's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fuzzParser, replayRegressions, PARSERS, REGRESSIONS_DIR } from "../../scripts/hardening/fuzz.ts";
import { fuzzRouterBodies, fuzzRouterConfigs, fuzzRouterPages } from "../../scripts/hardening/fuzz-router.ts";

test("every saved regression input replays without a trap or a broken invariant", () => {
  for (const parser of PARSERS) {
    const r = replayRegressions(parser);
    assert.deepEqual(r.failures, [], `${parser}: ${r.failures.join("\n")}`);
  }
});

for (const [i, parser] of PARSERS.entries()) {
  test(`${parser} parser: 20,000 generated, mutated, truncated and extreme inputs`, () => {
    const r = fuzzParser(parser, { count: 20_000, seed: 1000 + i, regressionsDir: REGRESSIONS_DIR });
    const findings = r.findings.map((f) => `${f.kind}: ${f.message} (${f.file})`).join("\n");
    assert.equal(r.traps, 0, findings);
    assert.equal(r.violations, 0, findings);
    assert.equal(r.memory.leakedBytes, 0, `heap in use ${r.memory.baseline.usedBytes} → ${r.memory.end.usedBytes}`);
    for (const origin of ["generated", "mutated", "truncated", "special"] as const) assert.ok(r.byOrigin[origin] > 0, origin);
    if (parser !== "config") assert.ok(r.oracleCompared > 1000, `${r.oracleCompared} compared with the reference`);
  });
}

test("the filter takes fuzzed bodies, configurations and metrics pages without failing or misrouting", async () => {
  for (const r of [await fuzzRouterBodies(2_000, 7), await fuzzRouterConfigs(150, 7), await fuzzRouterPages(800, 7)]) {
    assert.deepEqual(r.problems, [], r.kind);
    assert.equal(r.vmFailures, 0, r.kind);
    assert.equal(r.altered, 0, r.kind);
    assert.equal(r.badDestinations, 0, r.kind);
    assert.equal(r.localReplies, 0, r.kind);
    assert.equal(r.inFlightAfter, 0, r.kind);
    assert.ok(r.routed > 0, `${r.kind}: nothing routed`);
  }
});
