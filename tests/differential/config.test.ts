// Differential: a filter configuration the filter refuses. Real Envoy runs the
// canary's proxy_on_configure while it loads the bootstrap, logs the filter's
// own line, and exits non-zero; the dev gateway (the emulator's canary) must
// refuse the same configuration and carry the same line, printed with the
// same "wasm log <root_id> <vm_id>: " prefix. Each configuration passes the
// generator's checks (they are filter fields the generator passes through)
// so only the filter can refuse it.
import assert from "node:assert/strict";
import { envoyTest } from "../e2e/real-envoy.ts";
import { startRefused } from "./driver.ts";

const REFUSED: Array<{ what: string; filter: Record<string, unknown>; line: string }> = [
  { what: "a weight out of range", filter: { weights: { prefix: -1 } }, line: "weights.prefix: must be between 0.0 and 1000.0" },
  { what: "a tick period out of range", filter: { tickMs: 5 }, line: "tickMs: must be between 10.0 and 60000.0" },
  { what: "an unknown field", filter: { bogus: true }, line: "bogus: unknown field" },
  { what: "no positive weight", filter: { weights: { prefix: 0, queue: 0, kvCache: 0, inFlight: 0 } }, line: "weights: at least one weight must be positive" },
];

envoyTest("differential: Envoy and the dev gateway refuse the same invalid filter configurations with the same log line", { timeout: 60_000 }, async (t) => {
  for (const c of REFUSED) {
    await t.test(c.what, async () => {
      const input = { endpoints: ["127.0.0.1:9"], metrics: false as const, filter: c.filter };
      const expected = `wasm log prefix_router prefix_router: prefix-router: invalid configuration: ${c.line}`;
      const envoy = await startRefused("envoy", input, { concurrency: 2 });
      assert.equal(envoy.exitCode, 1, `Envoy did not exit 1: ${envoy.error}`);
      // Only the canary configures before Envoy gives up: one line, not one per worker.
      assert.deepEqual(envoy.lines.filter((l) => l.includes("prefix-router:")), [expected]);
      const dev = await startRefused("dev", input, { concurrency: 2 });
      assert.match(dev.error, /^Unable to create Wasm plugin prefix_router: Failed to configure base Wasm plugin/);
      // The refusal itself names the line, as Envoy's log does before it exits.
      assert.ok(dev.error.includes(`prefix-router: invalid configuration: ${c.line}`), dev.error);
      // Everything the wasm logger printed, in order: the filter's line, then Envoy's own
      // ("Wasm VM failed …", "Plugin prefix_router failed to load", the fail-closed line).
      assert.deepEqual(dev.lines, envoy.lines);
      assert.equal(envoy.lines[0], expected);
    });
  }
});
