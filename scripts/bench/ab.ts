// Side-by-side module time of two or more builds of the filter (npm run bench:ab):
// the same decision measurement as npm run bench (decision-cost.ts), each build
// on a gateway of its own, all of them up at once and taking turns batch by
// batch (100 requests each, the order rotating), so that a slow moment of the
// machine falls on every build alike. On a shared machine whose speed moves
// by half within seconds, builds timed one after the other (even in rounds of
// a few seconds, as this script did before) differ by more than most changes;
// batches a few milliseconds apart do not. The figure to read is the ratio:
// each batch's module time over the first build's batch of the same turn,
// the median over all turns with the range of the middle half.
//
// Usage: node --import tsx scripts/bench/ab.ts --wasm A.wasm,B.wasm
//          [--vms 1,8] [--size 16384] [--endpoints 64] [--rounds 3] [--batches 40] [--bodies lines|plain]
//   --rounds: fresh gateways each round (the index warmed again); --batches: turns per round.
//   A build of an earlier commit: git worktree add /tmp/old <commit> && (cd /tmp/old && npm ci && npm run build),
//   then /tmp/old/build/prefix_router.wasm.
import { parseArgs } from "node:util";
import { BATCH, DecisionRun, percentile } from "./decision-cost.ts";
import { positiveInteger } from "./options.ts";

const { values } = parseArgs({
  options: {
    wasm: { type: "string" },
    vms: { type: "string", default: "1,8" },
    size: { type: "string", default: "16384" },
    endpoints: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    batches: { type: "string", default: "40" },
    // "plain": bodies without line breaks, so without JSON escapes (the benchmark's bodies before commit 58d6977).
    bodies: { type: "string", default: "lines" },
  },
});
if (!values.wasm || (values.bodies !== "lines" && values.bodies !== "plain")) {
  process.stderr.write("usage: node --import tsx scripts/bench/ab.ts --wasm A.wasm,B.wasm [--vms 1,8] [--size 16384] [--endpoints 64] [--rounds 3] [--batches 40] [--bodies lines|plain]\n");
  process.exit(2);
}
const builds = values.wasm.split(",");
const vmCounts = values.vms.split(",").map((v) => positiveInteger("vms", v));
const size = positiveInteger("size", values.size);
const endpoints = positiveInteger("endpoints", values.endpoints);
const rounds = positiveInteger("rounds", values.rounds);
const batches = positiveInteger("batches", values.batches);
const lineBreaks = values.bodies === "lines";
/** As npm run bench: requests to warm the index before any is measured. */
const WARMUP = 2000;

const sortedCopy = (xs: number[]) => [...xs].sort((a, b) => a - b);
const fixed = (x: number, digits = 1) => x.toFixed(digits);

console.log(`${size} B chat bodies (${lineBreaks ? "lines of about 80 characters" : "no line breaks"}), ${endpoints} endpoints; per round, fresh gateways warmed with ${WARMUP} requests, then ${batches} turns of ${BATCH} requests per build.\n`);
console.log(`| build | worker VMs | round | module p50 µs | batch mean µs (median) | ticks' module µs per request | batch ÷ first build's, median (middle half) |`);
console.log(`|---|---|---|---|---|---|---|`);
const summary: string[] = [];
for (const vmCount of vmCounts) {
  /** Per build after the first: every turn's ratio to the first build, over all rounds. */
  const allRatios: number[][] = builds.map(() => []);
  for (let round = 1; round <= rounds; round++) {
    const runs: DecisionRun[] = [];
    for (const wasm of builds) {
      const run = await DecisionRun.start(size, endpoints, vmCount, { wasm, lineBreaks });
      run.warm(WARMUP);
      runs.push(run);
    }
    const perTurn: number[][] = builds.map(() => []);
    for (let turn = 0; turn < batches; turn++) {
      // The order rotates, so no build always follows the same one.
      for (let k = 0; k < runs.length; k++) {
        const b = (turn + k) % runs.length;
        perTurn[b].push(runs[b].measure(BATCH));
      }
    }
    runs.forEach((run, b) => {
      const r = run.result();
      const ratios = perTurn[b].map((ms, turn) => ms / perTurn[0][turn]);
      allRatios[b].push(...ratios);
      const sorted = sortedCopy(ratios);
      const ratio = b === 0 ? "" : `${fixed(percentile(sorted, 50), 3)} (${fixed(percentile(sorted, 25), 3)}–${fixed(percentile(sorted, 75), 3)})`;
      console.log(`| ${builds[b]} | ${vmCount} | ${round} | ${fixed(r.moduleP50)} | ${fixed(r.batchMean)} | ${fixed(r.tickPerRequestUs)} | ${ratio} |`);
    });
  }
  for (let b = 1; b < builds.length; b++) {
    const sorted = sortedCopy(allRatios[b]);
    summary.push(`- ${vmCount} worker VM${vmCount > 1 ? "s" : ""}: ${builds[b]} ÷ ${builds[0]}, module time per batch: median ${fixed(percentile(sorted, 50), 3)}, middle half ${fixed(percentile(sorted, 25), 3)}–${fixed(percentile(sorted, 75), 3)}, over ${sorted.length} turns`);
  }
}
console.log(`\n${summary.join("\n")}`);
