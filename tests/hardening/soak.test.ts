// The short version of `npm run soak`: 30,000 requests of the realistic mix on 8
// VMs; linear memory flat after warm-up, shared data within its bound,
// in-flight counts back to zero, throughput not decaying, no VM failed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { soak } from "../../scripts/hardening/soak.ts";

test("30,000 requests on 8 VMs: memory flat, shared data bounded, in flight back to zero", async () => {
  const r = await soak({ requests: 30_000, seed: 14, gpuBlocks: 2000 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.inFlightAfter, 0);
  assert.equal(r.routed, r.requests);
  for (const w of r.windows) assert.ok(w.sharedDataKeys <= r.sharedDataBound.keys && w.sharedDataBytes <= r.sharedDataBound.bytes);
});
