// What trading decisions (`peers`) costs in real Envoy (npm run bench:envoy-peers):
// two Envoys with the filter that are each other's peers, A and B, and a
// third, C, the same without peers, in front of one loopback upstream. Each
// round: both peers idle (B's CPU per second with only its ticks and its asks
// every 100 ms), then wrk saturates A (A's CPU per request, with B's asks to
// answer and its own to send; B's CPU meanwhile, and the decisions it took in
// from A), then C (the same requests without peers).
//
// Figures: A's and C's Envoy CPU per request, so what peers add to the
// Envoy that routes; and B's CPU per decision it imported (its CPU during A's
// load less its idle rate, over the decisions it took in), the price every
// other replica pays for each request one replica routes. With R replicas
// sharing the traffic, a replica spends about its own CPU per request plus
// (R − 1) × that price.
//
// Usage: node --import tsx scripts/bench/envoy-peers.ts [--workers 2] [--size 16384] [--rounds 4]
//          [--seconds 4] [--connections 64] [--endpoints 8]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { clockTicksPerSecond, cpuSeconds } from "./proc.ts";
import { startLoopbackUpstream } from "./loopback-upstream.ts";
import { ROOT, startEnvoyUnderTest, type EnvoyUnderTest } from "./envoy-under-test.ts";
import { StopOnExit } from "./stop-on-exit.ts";
import { median } from "./median.ts";
import { INSTALL_WRK, findWrk, runWrkWithoutErrors } from "./wrk.ts";
import { chatLoadScript } from "./wrk-scripts.ts";
import { freePort } from "../gateway/files.ts";
import { positiveInteger } from "./options.ts";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "2" },
    size: { type: "string", default: "16384" },
    rounds: { type: "string", default: "4" },
    seconds: { type: "string", default: "4" },
    connections: { type: "string", default: "64" },
    endpoints: { type: "string", default: "8" },
  },
});
const workers = positiveInteger("workers", values.workers!);
const size = positiveInteger("size", values.size!);
const rounds = positiveInteger("rounds", values.rounds!);
const seconds = positiveInteger("seconds", values.seconds!);
const connections = positiveInteger("connections", values.connections!);
const endpointCount = positiveInteger("endpoints", values.endpoints!);
const wrk = findWrk();
if (wrk === null) {
  process.stderr.write(`wrk not found: ${INSTALL_WRK}\n`);
  process.exit(2);
}

const IMPORTED = "wasmcustom.prefix_router.peers.decisions_imported";
const ticks = clockTicksPerSecond();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const imported = async (e: EnvoyUnderTest) => (await e.stats(`^${IMPORTED.replace(/\./g, "\\.")}$`)).get(IMPORTED) ?? 0;

const stops = new StopOnExit();
try {
  const upstream = await startLoopbackUpstream(endpointCount, ROOT, 0);
  stops.add(upstream.stop);
  const portA = await freePort();
  let portB = await freePort();
  while (portB === portA) portB = await freePort();
  const addresses = [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`];
  const token = randomBytes(24).toString("hex");
  const start = async (listen?: string) => {
    const e = await startEnvoyUnderTest({
      endpoints: upstream.addresses, workers, filter: true, ...(listen === undefined ? {} : { listen, peers: { addresses, token } }),
    });
    stops.add(e.stop);
    return e;
  };
  const a = await start(addresses[0]);
  const b = await start(addresses[1]);
  const c = await start();

  const script = chatLoadScript({ bodyBytes: size });
  let requestNumber = 0;
  const saturate = (e: EnvoyUnderTest, name: string, durationSeconds: number) => {
    requestNumber += 10_000_000;
    return runWrkWithoutErrors(wrk!, { url: e.url, connections, durationSeconds, script, args: [String(requestNumber)] }, name);
  };
  // Warm-up: V8 tiers the modules up, connections open, B's asks reach A.
  await saturate(a, "A", 2);
  await saturate(c, "C", 2);
  await sleep(1000);

  const rows = { a: [] as number[], c: [] as number[], idle: [] as number[], perImport: [] as number[], share: [] as number[] };
  console.log(`${size} B chat bodies, ${workers} Envoy worker${workers === 1 ? "" : "s"} each, ${connections} connections, ${seconds} s per phase\n`);
  console.log("| round | B idle, CPU ms/s | A with peers, req/s | A CPU µs/req | B: decisions taken in per A request | B CPU µs per decision taken in | C without peers, req/s | C CPU µs/req |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (let round = 1; round <= rounds; round++) {
    const b0 = await cpuSeconds(b.pid, ticks);
    await sleep(seconds * 1000);
    const idlePerSecond = (await cpuSeconds(b.pid, ticks)) - b0;
    const idleMsPerSecond = (idlePerSecond * 1000) / seconds;

    const [cpuA0, cpuB0, imported0] = [await cpuSeconds(a.pid, ticks), await cpuSeconds(b.pid, ticks), await imported(b)];
    const t0 = performance.now();
    const ra = await saturate(a, "A", seconds);
    await sleep(500); // B's last asks of A's decisions
    const elapsed = (performance.now() - t0) / 1000;
    const [cpuA1, cpuB1, imported1] = [await cpuSeconds(a.pid, ticks), await cpuSeconds(b.pid, ticks), await imported(b)];
    const aPerRequest = ((cpuA1 - cpuA0) / ra.requests) * 1e6;
    const took = imported1 - imported0;
    const bPerImport = took > 0 ? (((cpuB1 - cpuB0) - (idlePerSecond / seconds) * elapsed) / took) * 1e6 : NaN;

    const c0 = await cpuSeconds(c.pid, ticks);
    const rc = await saturate(c, "C", seconds);
    const cPerRequest = (((await cpuSeconds(c.pid, ticks)) - c0) / rc.requests) * 1e6;

    rows.a.push(aPerRequest);
    rows.c.push(cPerRequest);
    rows.idle.push(idleMsPerSecond);
    rows.perImport.push(bPerImport);
    rows.share.push(took / ra.requests);
    console.log(`| ${round} | ${idleMsPerSecond.toFixed(1)} | ${Math.round(ra.requestsPerSecond)} | ${aPerRequest.toFixed(1)} | ${(took / ra.requests).toFixed(3)} | ${bPerImport.toFixed(1)} | ${Math.round(rc.requestsPerSecond)} | ${cPerRequest.toFixed(1)} |`);
  }
  const m = (xs: number[]) => median(xs).toFixed(1);
  console.log("\n| medians | |");
  console.log("|---|---|");
  console.log(`| A (peers) CPU µs per request | ${m(rows.a)} |`);
  console.log(`| C (no peers) CPU µs per request | ${m(rows.c)} |`);
  console.log(`| A ÷ C, median of rounds | ${median(rows.a.map((x, i) => x / rows.c[i])).toFixed(3)} |`);
  console.log(`| B CPU µs per decision taken in from A | ${m(rows.perImport)} |`);
  console.log(`| B's decisions taken in per A request | ${median(rows.share).toFixed(3)} |`);
  console.log(`| B idle (ticks, asks every 100 ms), CPU ms per s | ${m(rows.idle)} |`);
} finally {
  await stops.stopAll();
}
