// Side-by-side module time of two or more builds of the filter (npm run bench:ab):
// the same decision workload as npm run bench (router-workload.ts), each build
// on a fresh gateway, the builds taking turns round after round so that a slow
// moment of the machine falls on all of them. Use it to measure a change: the
// machine's speed moves by up to 1.6× between runs of npm run bench, far more
// than most changes.
//
// Usage: node --import tsx scripts/bench/ab.ts --wasm A.wasm,B.wasm
//          [--vms 1,8] [--size 16384] [--endpoints 64] [--rounds 3]
//   A build of an earlier commit: git worktree add /tmp/old <commit> && (cd /tmp/old && npm ci && npm run build),
//   then /tmp/old/build/prefix_router.wasm.
import { parseArgs } from "node:util";
import { HEADERS, benchGateway, chatBody } from "./router-workload.ts";

const { values } = parseArgs({
  options: {
    wasm: { type: "string" },
    vms: { type: "string", default: "1,8" },
    size: { type: "string", default: "16384" },
    endpoints: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
  },
});
if (!values.wasm) {
  process.stderr.write("usage: node --import tsx scripts/bench/ab.ts --wasm A.wasm,B.wasm [--vms 1,8] [--size 16384] [--endpoints 64] [--rounds 3]\n");
  process.exit(2);
}
const builds = values.wasm.split(",");
const vmCounts = values.vms.split(",").map(Number);
const size = Number(values.size);
const endpoints = Number(values.endpoints);
const rounds = Number(values.rounds);
/** As npm run bench: requests to warm the index, then measured ones; a tick (100 ms) every 100 requests. */
const WARMUP = 2000;
const MEASURED = 4000;
const TICK_EVERY = 100;

const totalModuleMs = (vms: { moduleMs(): number }[]) => vms.reduce((sum, vm) => sum + vm.moduleMs(), 0);

/** Module time per decision (p50 and mean, µs) and the ticks' module time per request (µs). */
async function measure(wasm: string, vmCount: number): Promise<{ p50: number; mean: number; tick: number }> {
  const { clock, plugin } = await benchGateway(endpoints, vmCount, wasm);
  for (const vm of plugin.vms) vm.profileTime = true;
  const decisions: number[] = [];
  let tickMs = 0;
  for (let i = 0; i < WARMUP + MEASURED; i++) {
    const worker = i % vmCount;
    const vm = plugin.vms[worker];
    const stream = plugin.newStream(worker);
    stream.sendRequestHeaders(HEADERS, false);
    // Warm-up bodies repeat 64 prompts; measured ones are each new, half sharing a system prompt.
    const body = Buffer.from(chatBody(size, i < WARMUP ? i % 64 : i));
    const before = vm.moduleMs();
    stream.sendRequestBody(body, true);
    if (i >= WARMUP) decisions.push((vm.moduleMs() - before) * 1000);
    stream.complete();
    if (i % TICK_EVERY === 0) {
      const beforeTick = totalModuleMs(plugin.vms);
      clock.advance(100);
      if (i >= WARMUP) tickMs += totalModuleMs(plugin.vms) - beforeTick;
    }
  }
  decisions.sort((a, b) => a - b);
  return {
    p50: decisions[decisions.length >> 1],
    mean: decisions.reduce((a, b) => a + b, 0) / decisions.length,
    tick: (tickMs * 1000) / MEASURED,
  };
}

console.log(`| build | worker VMs | round | module p50 µs | module mean µs | ticks' module µs per request |`);
console.log(`|---|---|---|---|---|---|`);
for (const vmCount of vmCounts) {
  for (let round = 1; round <= rounds; round++) {
    for (const wasm of builds) {
      const r = await measure(wasm, vmCount);
      console.log(`| ${wasm} | ${vmCount} | ${round} | ${r.p50.toFixed(1)} | ${r.mean.toFixed(1)} | ${r.tick.toFixed(1)} |`);
    }
  }
}
