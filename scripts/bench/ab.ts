// Side-by-side module time of two or more builds of the filter (npm run bench:ab):
// the same decision measurement as npm run bench (decision-cost.ts), each build
// on a fresh gateway, the builds taking turns round after round so that a slow
// moment of the machine falls on all of them. Use it to measure a change: the
// machine's speed moves by up to 1.6× between runs of npm run bench, far more
// than most changes.
//
// Usage: node --import tsx scripts/bench/ab.ts --wasm A.wasm,B.wasm
//          [--vms 1,8] [--size 16384] [--endpoints 64] [--rounds 3] [--bodies lines|plain]
//   A build of an earlier commit: git worktree add /tmp/old <commit> && (cd /tmp/old && npm ci && npm run build),
//   then /tmp/old/build/prefix_router.wasm.
import { parseArgs } from "node:util";
import { decisionCost } from "./decision-cost.ts";

const { values } = parseArgs({
  options: {
    wasm: { type: "string" },
    vms: { type: "string", default: "1,8" },
    size: { type: "string", default: "16384" },
    endpoints: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    // "plain": bodies without line breaks, so without JSON escapes (the benchmark's bodies before commit 58d6977).
    bodies: { type: "string", default: "lines" },
  },
});
if (!values.wasm || (values.bodies !== "lines" && values.bodies !== "plain")) {
  process.stderr.write("usage: node --import tsx scripts/bench/ab.ts --wasm A.wasm,B.wasm [--vms 1,8] [--size 16384] [--endpoints 64] [--rounds 3] [--bodies lines|plain]\n");
  process.exit(2);
}
const builds = values.wasm.split(",");
const vmCounts = values.vms.split(",").map(Number);
const size = Number(values.size);
const endpoints = Number(values.endpoints);
const rounds = Number(values.rounds);
/** As npm run bench: requests to warm the index, then measured ones. */
const WARMUP = 2000;
const MEASURED = 5000;

console.log(`| build | worker VMs | round | module p50 µs | batch mean µs | ticks' module µs per request |`);
console.log(`|---|---|---|---|---|---|`);
for (const vmCount of vmCounts) {
  for (let round = 1; round <= rounds; round++) {
    for (const wasm of builds) {
      const r = await decisionCost(size, endpoints, vmCount, { warmup: WARMUP, measured: MEASURED, wasm, lineBreaks: values.bodies === "lines" });
      console.log(`| ${wasm} | ${vmCount} | ${round} | ${r.moduleP50.toFixed(1)} | ${r.batchMean.toFixed(1)} | ${r.tickPerRequestUs.toFixed(1)} |`);
    }
  }
}
