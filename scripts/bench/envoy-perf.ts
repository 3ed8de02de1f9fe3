// Where real Envoy's CPU goes with and without the filter (npm run
// bench:envoy-perf): Linux perf samples each Envoy (plain, the floor module,
// the filter; one worker unless --workers says more; saturated by wrk with the load test's chat bodies)
// and splits them by code region: Envoy's own binary (its C++, the Wasm host
// functions, V8's runtime and its calls in and out of the module among them),
// V8's generated code ("[JIT]": the module's own work, compiled), the kernel
// (sockets), and libc. Each in microseconds per request. This says how much
// of what the filter adds is the module's work (which `npm run bench` times
// in the emulator) and how much is Envoy's side of the ABI. Envoy's release
// binary is stripped, so perf can name no function inside it.
//
// Needs perf (Debian's linux-perf) allowed to sample this user's processes
// (kernel.perf_event_paranoid ≤ 2) and wrk. A command, not a test.
//
// "floor-calls" is the floor making the router's host calls per request
// (assembly/floor.ts): the filter's excess over the floor splits into those
// calls (floor-calls − floor) and the rest, its own code mostly.
//
// Usage: node --import tsx scripts/bench/envoy-perf.ts [--seconds 5] [--size 16384] [--connections 64] [--workers 1]
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startLoopbackUpstream } from "./loopback-upstream.ts";
import { ROOT, startEnvoyUnderTest } from "./envoy-under-test.ts";
import { StopOnExit } from "./stop-on-exit.ts";
import { INSTALL_WRK, findWrk, runWrkWithoutErrors } from "./wrk.ts";
import { chatLoadScript } from "./wrk-scripts.ts";
import { positiveInteger } from "./options.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    size: { type: "string", default: "16384" },
    connections: { type: "string", default: "64" },
    workers: { type: "string", default: "1" },
  },
});
const seconds = positiveInteger("seconds", values.seconds!);
const size = positiveInteger("size", values.size!);
const connections = positiveInteger("connections", values.connections!);
const workers = positiveInteger("workers", values.workers!);
const FREQUENCY = 2999; // Hz: not a multiple of the kernel's tick, so samples do not lock to it
const wrk = findWrk();
if (wrk === null) {
  process.stderr.write(`wrk not found: ${INSTALL_WRK}\n`);
  process.exit(2);
}

/** Samples per code region (perf's dso column), from `perf report --sort dso`. */
function samplesByRegion(data: string): Map<string, number> {
  const text = execFileSync("perf", ["report", "-i", data, "--no-children", "--sort", "dso", "-g", "none", "--stdio", "-n"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^\s+[\d.]+%\s+(\d+)\s+(.+?)\s*$/.exec(line);
    if (m === null) continue;
    const region = m[2].startsWith("[JIT]") ? "V8 generated code" : m[2] === "envoy" ? "Envoy's binary" : m[2] === "[kernel.kallsyms]" ? "kernel" : m[2].startsWith("libc") ? "libc" : "other";
    out.set(region, (out.get(region) ?? 0) + Number(m[1]));
  }
  return out;
}

const REGIONS = ["Envoy's binary", "V8 generated code", "kernel", "libc", "other"];
const stops = new StopOnExit();
const dir = await mkdtemp(join(tmpdir(), "prefix-router-perf-"));
try {
  const upstream = await startLoopbackUpstream(8, ROOT, 0);
  stops.add(upstream.stop);
  const script = chatLoadScript({ bodyBytes: size });
  const rows: { name: string; perRequest: Map<string, number>; requests: number }[] = [];
  for (const name of ["plain", "floor", "floor-calls", "filter"] as const) {
    const envoy = await startEnvoyUnderTest({ endpoints: upstream.addresses, workers, filter: name === "plain" ? false : name === "filter" ? true : name });
    const stop = stops.add(envoy.stop);
    await runWrkWithoutErrors(wrk, { url: envoy.url, connections, durationSeconds: 2, script, args: ["1"] }, `${name} warm-up`);
    const data = join(dir, `${name}.data`);
    const perf = spawn("perf", ["record", "-F", String(FREQUENCY), "-p", String(envoy.pid), "-o", data, "--", "sleep", String(seconds)], { stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => perf.on("exit", resolve));
    const r = await runWrkWithoutErrors(wrk, { url: envoy.url, connections, durationSeconds: seconds, script, args: ["10000000"] }, name);
    if ((await exited) !== 0) throw new Error("perf record failed: is linux-perf installed and kernel.perf_event_paranoid ≤ 2?");
    await stop();
    const perRequest = new Map([...samplesByRegion(data)].map(([k, n]) => [k, (n / FREQUENCY / r.requests) * 1e6]));
    rows.push({ name, perRequest, requests: r.requests });
  }
  const cell = (m: Map<string, number>, k: string) => (m.get(k) ?? 0).toFixed(1);
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  console.log(`${size} B chat bodies, ${workers} Envoy worker${workers === 1 ? "" : "s"}, ${connections} connections, ${seconds} s sampled at ${FREQUENCY} Hz each; Envoy CPU in µs per request\n`);
  console.log(`| Envoy | requests | ${REGIONS.join(" | ")} | total |`);
  console.log(`|---|---|${REGIONS.map(() => "---|").join("")}---|`);
  for (const r of rows) console.log(`| ${r.name} | ${r.requests} | ${REGIONS.map((k) => cell(r.perRequest, k)).join(" | ")} | ${total(r.perRequest).toFixed(1)} |`);
  const [plain, floor, floorCalls, filter] = rows.map((r) => r.perRequest);
  const diff = (a: Map<string, number>, b: Map<string, number>) => new Map(REGIONS.map((k) => [k, (a.get(k) ?? 0) - (b.get(k) ?? 0)]));
  const differenceRow = (label: string, a: Map<string, number>, b: Map<string, number>) =>
    console.log(`| ${label} | | ${REGIONS.map((k) => cell(diff(a, b), k)).join(" | ")} | ${(total(a) - total(b)).toFixed(1)} |`);
  differenceRow("floor − plain", floor, plain);
  differenceRow("filter − floor", filter, floor);
  differenceRow("of which floor-calls − floor", floorCalls, floor);
  differenceRow("of which filter − floor-calls", filter, floorCalls);
} finally {
  await stops.stopAll();
  await rm(dir, { recursive: true, force: true });
}
