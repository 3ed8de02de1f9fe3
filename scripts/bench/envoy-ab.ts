// Side by side in real Envoy: Envoy's CPU per request with two or more builds
// of the filter (npm run bench:envoy-ab), the real-Envoy counterpart of
// npm run bench:ab. The module's own time is what bench:ab measures; this
// adds what a build costs on Envoy's side of the ABI (host calls, copies into
// the module, V8's entries and exits), which the emulator cannot show.
//
// One Envoy per build, all up together in front of the same loopback
// upstream; wrk saturates each in turn for a few seconds, round after round,
// the order reversed every other round, so that a slow moment of this shared
// machine falls on every build. CPU per request = utime + stime of the Envoy
// process over its rounds (/proc/<pid>/stat) divided by the requests wrk
// completed. Printed per round, then the median and spread per build, and
// each build's median ratio to the first over the rounds (paired by round).
// With --idle, no load: each Envoy's CPU per second of wall time, idle after
// one request, in turns: what the filter's ticks cost a gateway with no
// traffic (every worker's VM wakes every tickMs; --endpoints sets how many
// endpoints each tick's stats cover).
//
// Usage: node --import tsx scripts/bench/envoy-ab.ts --wasm A.wasm,B.wasm
//          [--workers 2] [--size 16384] [--rounds 6] [--seconds 3] [--connections 64]
//          [--idle] [--endpoints 8] [--stream-chunks N]
//   A name in --wasm may also be "plain" (the same bootstrap without the Wasm
//   filter) or "floor" (build/floor.wasm): --wasm plain,build/prefix_router.wasm
//   gives the filter's share of plain Envoy's throughput, paired by round; or
//   "floor-calls" (the floor making the router's host calls per request,
//   assembly/floor.ts): --wasm floor,floor-calls,build/prefix_router.wasm
//   splits what the router adds over the floor into those calls and its own code.
//   A build of an earlier commit: git worktree add /tmp/old <commit> && (cd /tmp/old && npm ci && npm run build),
//   then /tmp/old/build/prefix_router.wasm.
import { parseArgs } from "node:util";
import { clockTicksPerSecond, cpuSeconds } from "./proc.ts";
import { startLoopbackUpstream } from "./loopback-upstream.ts";
import { ROOT, startEnvoyUnderTest, type EnvoyUnderTest } from "./envoy-under-test.ts";
import { StopOnExit } from "./stop-on-exit.ts";
import { median } from "./median.ts";
import { INSTALL_WRK, findWrk, runWrkWithoutErrors } from "./wrk.ts";
import { chatLoadScript } from "./wrk-scripts.ts";
import { positiveInteger } from "./options.ts";

const USAGE = "usage: node --import tsx scripts/bench/envoy-ab.ts --wasm A.wasm,B.wasm|plain|floor|floor-calls [--workers 2] [--size 16384] [--rounds 6] [--seconds 3] [--connections 64] [--idle] [--endpoints 8] [--stream-chunks N]\n";
const { values } = parseArgs({
  options: {
    wasm: { type: "string" },
    workers: { type: "string", default: "2" },
    size: { type: "string", default: "16384" },
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "3" },
    connections: { type: "string", default: "64" },
    idle: { type: "boolean", default: false },
    endpoints: { type: "string", default: "8" },
    // > 0: the upstream streams each answer as N events a millisecond apart (loopback-upstream.ts).
    "stream-chunks": { type: "string", default: "0" },
  },
});
/** positiveInteger, with the usage after the error and exit status 2. */
function wholePositive(name: string, text: string): number {
  try {
    return positiveInteger(name, text);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
if (!values.wasm || values.wasm.split(",").length < 2) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const builds = values.wasm.split(",");
const workers = wholePositive("workers", values.workers!);
const size = wholePositive("size", values.size!);
const rounds = wholePositive("rounds", values.rounds!);
const seconds = wholePositive("seconds", values.seconds!); // wrk's -d takes whole seconds
const connections = wholePositive("connections", values.connections!);
const endpointCount = wholePositive("endpoints", values.endpoints!);
const streamChunks = values["stream-chunks"] === "0" ? 0 : wholePositive("stream-chunks", values["stream-chunks"]!);
const wrk = findWrk();
if (wrk === null && !values.idle) {
  process.stderr.write(`wrk not found: ${INSTALL_WRK}\n`);
  process.exit(2);
}

/** A build's figures over its rounds: the median, then the range. */
function medianAndRange(xs: number[]): string {
  return `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
}

/** "plain": the bootstrap without the Wasm filter; "floor", "floor-calls": build/floor.wasm (assembly/floor.ts); else a build of the filter. */
function sideOf(name: string): { filter: boolean | "floor" | "floor-calls"; wasmFile?: string } {
  if (name === "plain") return { filter: false };
  if (name === "floor" || name === "floor-calls") return { filter: name };
  return { filter: true, wasmFile: name };
}

const stops = new StopOnExit();
const ticks = clockTicksPerSecond();
try {
  const upstream = await startLoopbackUpstream(endpointCount, ROOT, streamChunks);
  stops.add(upstream.stop);
  const envoys: EnvoyUnderTest[] = [];
  for (const wasmFile of builds) {
    const envoy = await startEnvoyUnderTest({ endpoints: upstream.addresses, workers, ...sideOf(wasmFile) });
    stops.add(envoy.stop);
    envoys.push(envoy);
  }
  if (values.idle) {
    await measureIdle(envoys);
  } else {
    await measureSaturated(envoys);
  }
} finally {
  await stops.stopAll();
}

/** Each build's CPU per second while no request arrives, after one routed request. */
async function measureIdle(envoys: EnvoyUnderTest[]): Promise<void> {
  for (const envoy of envoys) {
    const r = await fetch(`${envoy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "warm ".repeat(600) }] }),
    });
    await r.text();
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const spent = builds.map(() => [] as number[]);
  console.log(`idle, ${workers} Envoy workers, ${endpointCount} endpoints, ${seconds} s per build per round\n`);
  console.log("| round | build | Envoy CPU ms per s |");
  console.log("|---|---|---|");
  for (let round = 1; round <= rounds; round++) {
    for (const i of roundOrder(round)) {
      const cpu0 = await cpuSeconds(envoys[i].pid, ticks);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      const perSecond = (((await cpuSeconds(envoys[i].pid, ticks)) - cpu0) * 1000) / seconds;
      spent[i].push(perSecond);
      console.log(`| ${round} | ${builds[i]} | ${perSecond.toFixed(1)} |`);
    }
  }
  console.log("\n| build | Envoy CPU ms per s, median (min–max) |");
  console.log("|---|---|");
  for (let i = 0; i < builds.length; i++) {
    console.log(`| ${builds[i]} | ${medianAndRange(spent[i])} |`);
  }
}

/** The builds in turn, the order reversed every other round. */
function roundOrder(round: number): number[] {
  const order = builds.map((_, i) => i);
  return round % 2 === 0 ? order.reverse() : order;
}

async function measureSaturated(envoys: EnvoyUnderTest[]): Promise<void> {
  const script = chatLoadScript({ bodyBytes: size });
  let requestNumber = 0;
  const saturate = async (i: number, durationSeconds: number) => {
    requestNumber += 10_000_000;
    return runWrkWithoutErrors(wrk!, { url: envoys[i].url, connections, durationSeconds, script, args: [String(requestNumber)] }, builds[i]);
  };
  // Warm-up: V8 tiers the module up, connections open.
  for (let i = 0; i < builds.length; i++) await saturate(i, 2);

  const cpuPerRequest = builds.map(() => [] as number[]);
  const rate = builds.map(() => [] as number[]);
  console.log(`${size} B chat bodies, ${workers} Envoy workers, ${connections} connections, ${seconds} s per build per round\n`);
  console.log("| round | build | req/s | Envoy CPU µs/req |");
  console.log("|---|---|---|---|");
  for (let round = 1; round <= rounds; round++) {
    for (const i of roundOrder(round)) {
      const cpu0 = await cpuSeconds(envoys[i].pid, ticks);
      const r = await saturate(i, seconds);
      const perRequest = (((await cpuSeconds(envoys[i].pid, ticks)) - cpu0) / r.requests) * 1e6;
      cpuPerRequest[i].push(perRequest);
      rate[i].push(r.requestsPerSecond);
      console.log(`| ${round} | ${builds[i]} | ${Math.round(r.requestsPerSecond)} | ${perRequest.toFixed(1)} |`);
    }
  }
  console.log("\n| build | Envoy CPU µs/req, median (min–max) | ÷ first build, median of rounds | req/s, median | req/s ÷ first build's, median of rounds |");
  console.log("|---|---|---|---|---|");
  for (let i = 0; i < builds.length; i++) {
    const xs = cpuPerRequest[i];
    const ratio = median(xs.map((x, round) => x / cpuPerRequest[0][round]));
    const rateRatio = median(rate[i].map((x, round) => x / rate[0][round]));
    console.log(`| ${builds[i]} | ${medianAndRange(xs)} | ${ratio.toFixed(3)} | ${Math.round(median(rate[i]))} | ${rateRatio.toFixed(3)} |`);
  }
}
