// Real Envoy with the filter against the same Envoy without it (npm run
// bench:envoy): for 1 KB and 16 KB chat bodies and 1, 2 and 8 Envoy workers
// (one worker has no other VM to replicate, which tells the filter's own work
// apart from what replication across workers adds),
//   - saturation: wrk with many connections and no pauses; requests per
//     second, and Envoy's CPU per request (utime + stime of its process from
//     /proc/<pid>/stat over the run, divided by the requests);
//   - a fixed moderate rate: each connection pauses about THINK_MS between
//     requests, with the connections chosen so the no-filter Envoy would see
//     about --rate-share of its saturation rate; the filter run uses the same
//     connections and pauses. p50 and p99 latency from wrk (microseconds),
//     and Envoy's CPU per request at that rate.
// A third Envoy runs the floor module (assembly/floor.ts) in the filter's
// place: what any Wasm filter that routes on the body costs, so the report can
// tell that apart from the router's own work. The Envoys run side by side and
// take turns in short rounds (measurePair), so the shared machine's slow
// moments fall on all of them.
// Upstreams: 8 loopback servers in a process of their own that answer at once
// (loopback-upstream.ts), so the cost measured is Envoy's and the filter's.
// Bodies: shared system prompts and distinct user turns (wrk-scripts.ts); the
// report checks that the filter routed them (prefix_router.routed).
//
// This machine's cores are shared by Envoy, wrk and the upstream process, so
// saturation is the whole machine's and not Envoy's alone; the report prints
// how busy the machine was and what the upstream used, and the CPU per request
// is the figure that does not depend on who else runs. With 2 cores, 8 workers
// are more threads than cores: that run shows the cost of the extra VMs (each
// worker has its own, and they share the filter's index), not more throughput.
// Linux only (/proc).
//
// Usage: node --import tsx scripts/bench/envoy-load.ts [--seconds S] [--warmup S] [--rate-seconds S]
//        [--rate-share F] [--connections N] [--sizes 1024,16384] [--workers 1,2,8] [--out FILE]
//        [--router-config JSON]   fields merged into the filter's configuration (its run only)
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { clockTicksPerSecond, cpuSeconds, machineCpuSeconds, machineFacts } from "./proc.ts";
import { startLoopbackUpstream, type LoopbackUpstream } from "./loopback-upstream.ts";
import { ROOT, WASM, FLOOR_WASM, envoyUnderTestVersion, startEnvoyPair, type EnvoySide } from "./envoy-under-test.ts";
import { StopOnExit } from "./stop-on-exit.ts";
import { median } from "./median.ts";
import { filterFieldsFromJson } from "../gateway/envoy-config.ts";
import { INSTALL_WRK, findWrk, runWrkWithoutErrors, wrkVersion, type WrkResult, type WrkScript } from "./wrk.ts";
import { chatBodyShape, chatLoadScript } from "./wrk-scripts.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "6" },
    warmup: { type: "string", default: "2" },
    "rate-seconds": { type: "string", default: "9" },
    "rate-share": { type: "string", default: "0.3" },
    connections: { type: "string", default: "64" },
    sizes: { type: "string", default: "1024,16384" },
    workers: { type: "string", default: "1,2,8" },
    out: { type: "string", default: "reports/envoy-load.md" },
    "router-config": { type: "string" },
  },
});

function positive(name: string, text: string, integer = true): number {
  const n = Number(text);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`--${name}: "${text}" is not a positive ${integer ? "whole " : ""}number`);
  return n;
}
/** wrk takes whole seconds (its units.c scan_time reads an integer), so each round must last a whole number of them. */
function checkWholeRounds(name: string, seconds: number, rounds: number): void {
  if (!Number.isInteger(seconds / rounds)) throw new Error(`--${name}: ${seconds} s does not split into ${rounds} rounds of whole seconds (wrk's -d takes an integer)`);
}
const SECONDS = positive("seconds", values.seconds!);
const WARMUP = positive("warmup", values.warmup!);
const RATE_SECONDS = positive("rate-seconds", values["rate-seconds"]!);
const RATE_SHARE = positive("rate-share", values["rate-share"]!, false);
const CONNECTIONS = positive("connections", values.connections!);
const SIZES = values.sizes!.split(",").map((s) => positive("sizes", s));
const WORKERS = values.workers!.split(",").map((s) => positive("workers", s));
const ROUTER_CONFIG = values["router-config"] !== undefined ? filterFieldsFromJson("--router-config", values["router-config"]) : undefined;
const UPSTREAMS = 8;
/** Saturation and fixed-rate time is split into rounds, plain and filter taking turns. */
const SATURATION_ROUNDS = 3;
const RATE_ROUNDS = 3;
checkWholeRounds("seconds", SECONDS, SATURATION_ROUNDS);
checkWholeRounds("rate-seconds", RATE_SECONDS, RATE_ROUNDS);
/** Mean pause between an answer and the next request on one connection at the fixed rate (wrk's delay(), whole ms). */
const THINK_MS = 4;
/** What a request takes unloaded on this machine, for choosing the connections at the fixed rate; the report shows the rate reached. */
const EXPECTED_LATENCY_MS = 0.5;

interface Measured {
  /** Saturation over all rounds: requests, seconds, and what Envoy, the upstream and the machine spent. */
  saturationRequests: number;
  saturationSeconds: number;
  cpuUsPerRequest: number;
  machineBusyShare: number;
  upstreamCpuUsPerRequest: number;
  /** The fixed-rate rounds, in order. */
  atRate: WrkResult[];
  atRateCpuUsPerRequest: number;
  /** With the filter: requests it saw and routed in the whole run (warm-up included). */
  filterRequests: number | null;
  routed: number | null;
}

const stops = new StopOnExit();
const ticks = clockTicksPerSecond();
let requestNumber = 0;

const rateRequestsPerSecond = (m: Measured) => m.atRate.reduce((a, r) => a + r.requests, 0) / m.atRate.reduce((a, r) => a + r.durationSeconds, 0);
const p50 = (m: Measured) => median(m.atRate.map((r) => r.latencyUs.p50));
const p99 = (m: Measured) => median(m.atRate.map((r) => r.latencyUs.p99));
const saturationRps = (m: Measured) => m.saturationRequests / m.saturationSeconds;

/**
 * Both Envoys run at once (the idle one costs next to nothing) and take turns,
 * plain then filter, round after round: a slow moment of this shared machine
 * then falls on both rather than on one.
 */
async function measurePair(wrk: string, upstream: LoopbackUpstream, bodyBytes: number, workers: number): Promise<{ plain: Measured; floor: Measured; filter: Measured; connectionsAtRate: number }> {
  process.stderr.write(`${bodyBytes} B, ${workers} workers ...\n`);
  const sides = [] as Array<EnvoySide & { m: Measured }>;
  try {
    for (const side of await startEnvoyPair(stops, { endpoints: upstream.addresses, workers, routerConfig: ROUTER_CONFIG }, true)) {
      sides.push({
        ...side,
        m: { saturationRequests: 0, saturationSeconds: 0, cpuUsPerRequest: 0, machineBusyShare: 0, upstreamCpuUsPerRequest: 0, atRate: [], atRateCpuUsPerRequest: 0, filterRequests: null, routed: null },
      });
    }
    const saturate = chatLoadScript({ bodyBytes });
    const run = async (side: (typeof sides)[number], script: WrkScript, connections: number, seconds: number) => {
      requestNumber += 10_000_000;
      return runWrkWithoutErrors(wrk, { url: side.envoy.url, connections, durationSeconds: seconds, script, args: [String(requestNumber)] }, `${side.name} ${bodyBytes} B, ${workers} workers`);
    };
    // Warm-up: V8 compiles the module with its baseline tier first and optimizes hot functions later; connections open.
    for (const side of sides) await run(side, saturate, CONNECTIONS, WARMUP);

    const spent = sides.map(() => ({ envoy: 0, upstream: 0, busy: 0, total: 0 }));
    for (let round = 0; round < SATURATION_ROUNDS; round++) {
      for (const [i, side] of sides.entries()) {
        const envoy0 = await cpuSeconds(side.envoy.pid, ticks);
        const upstream0 = await cpuSeconds(upstream.pid, ticks);
        const machine0 = await machineCpuSeconds(ticks);
        const r = await run(side, saturate, CONNECTIONS, SECONDS / SATURATION_ROUNDS);
        const machine1 = await machineCpuSeconds(ticks);
        spent[i].envoy += (await cpuSeconds(side.envoy.pid, ticks)) - envoy0;
        spent[i].upstream += (await cpuSeconds(upstream.pid, ticks)) - upstream0;
        spent[i].busy += machine1.busy - machine0.busy;
        spent[i].total += machine1.total - machine0.total;
        side.m.saturationRequests += r.requests;
        side.m.saturationSeconds += r.durationSeconds;
      }
    }
    for (const [i, side] of sides.entries()) {
      side.m.cpuUsPerRequest = (spent[i].envoy / side.m.saturationRequests) * 1e6;
      side.m.upstreamCpuUsPerRequest = (spent[i].upstream / side.m.saturationRequests) * 1e6;
      side.m.machineBusyShare = spent[i].busy / spent[i].total;
    }

    // The same connections and pauses for both: the offered load is the plain Envoy's share.
    const connectionsAtRate = Math.max(2, Math.round((RATE_SHARE * saturationRps(sides[0].m) * (THINK_MS + EXPECTED_LATENCY_MS)) / 1000));
    const paced = chatLoadScript({ bodyBytes, thinkMs: THINK_MS });
    const rateCpu = sides.map(() => 0);
    for (let round = 0; round < RATE_ROUNDS; round++) {
      for (const [i, side] of sides.entries()) {
        const envoy0 = await cpuSeconds(side.envoy.pid, ticks);
        side.m.atRate.push(await run(side, paced, connectionsAtRate, RATE_SECONDS / RATE_ROUNDS));
        rateCpu[i] += (await cpuSeconds(side.envoy.pid, ticks)) - envoy0;
      }
    }
    for (const [i, side] of sides.entries()) {
      side.m.atRateCpuUsPerRequest = (rateCpu[i] / side.m.atRate.reduce((a, r) => a + r.requests, 0)) * 1e6;
    }
    const side = (name: EnvoySide["name"]) => sides.find((x) => x.name === name)!;
    const filter = side("filter");
    const stats = await filter.envoy.stats("^wasmcustom\\.prefix_router\\.(requests|routed)$");
    filter.m.filterRequests = stats.get("wasmcustom.prefix_router.requests") ?? 0;
    filter.m.routed = stats.get("wasmcustom.prefix_router.routed") ?? 0;
    return { plain: side("plain").m, floor: side("floor").m, filter: filter.m, connectionsAtRate };
  } finally {
    for (const side of sides) await side.stop();
  }
}

interface Row {
  bodyBytes: number;
  workers: number;
  plain: Measured;
  floor: Measured;
  filter: Measured;
  connectionsAtRate: number;
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (us: number) => (us / 1000).toFixed(3);
const signedMs = (us: number) => `${us >= 0 ? "+" : "−"}${(Math.abs(us) / 1000).toFixed(3)}`;
const pct = (f: number) => `${Math.round(f * 100)}%`;
const sizeLabel = (b: number) => (b >= 1024 ? `${Math.round(b / 1024)} KB` : `${b} B`);

function report(rows: Row[], facts: { envoy: string; wrk: string; loadAverage: number[] }): string {
  const m = machineFacts();
  const command = `node --import tsx scripts/bench/envoy-load.ts --seconds ${SECONDS} --warmup ${WARMUP} --rate-seconds ${RATE_SECONDS} ` +
    `--rate-share ${RATE_SHARE} --connections ${CONNECTIONS} --sizes ${SIZES.join(",")} --workers ${WORKERS.join(",")}` +
    (values["router-config"] !== undefined ? ` --router-config '${values["router-config"]}'` : "");
  const lines = [
    "# Real Envoy with and without the filter: throughput, latency, CPU",
    "",
    `\`${command}\` (npm run bench:envoy), ${new Date().toISOString().slice(0, 10)}.`,
    "",
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}; Envoy ${facts.envoy}, wrk ${facts.wrk}, Node ${m.node};`,
    `load average ${facts.loadAverage.map((x) => x.toFixed(2)).join(" / ")} (1 / 5 / 15 min) before the run: anything above 0 was other work on these cores.`,
    `Envoy, wrk (one thread) and the upstream process (${UPSTREAMS} loopback servers answering at once) share these ${m.cores} cores,`,
    "so saturation is the machine's, not Envoy's alone: \"machine busy\" says how much of all cores was in use, and the",
    "upstream's CPU per request is shown beside Envoy's. Envoy's CPU per request (utime + stime from /proc/<pid>/stat,",
    "all threads, over the run, divided by the requests) is the figure that does not depend on who else runs.",
    `With ${m.cores} cores, 8 workers are more threads than cores: that run shows what 8 VMs cost, not more throughput.`,
    "",
    "All three Envoys run the generator's bootstrap (scripts/gateway/envoy-config.ts) for the same 8 endpoints, without",
    "access logs or metrics scrapes; \"plain\" is that bootstrap with the Wasm entry removed from the HTTP filter chain",
    "(its override_host cluster then round-robins); \"floor\" has build/floor.wasm (assembly/floor.ts) in the filter's place,",
    "the least a body-routing Wasm filter does: hold the headers, buffer the body, copy it into the module, set the",
    "destination header (empty: round robin again). Bodies: OpenAI chat completions, one of 8 shared system prompts",
    "(75% of the body) and a user turn no other request has (wrk-scripts.ts).",
    "",
    "The Envoys are up together and take turns, plain, floor, filter, in rounds of a few seconds, so a slow moment of",
    "this shared machine falls on all rather than on one.",
    `Saturation: ${CONNECTIONS} connections, no pauses, ${SECONDS} s each in ${SATURATION_ROUNDS} rounds, after a ${WARMUP} s warm-up. Fixed rate: each`,
    `connection pauses 0 to ${2 * THINK_MS} ms (mean ${THINK_MS}, wrk's delay() in whole ms) after each answer, with the connections chosen`,
    `for about ${pct(RATE_SHARE)} of the plain Envoy's saturation; the filter Envoy gets the same connections and pauses`,
    `(${RATE_SECONDS} s each in ${RATE_ROUNDS} rounds; p50 and p99 are the median of the rounds'). Latency: wrk's, from the request's`,
    "first byte written to the answer's last read, in microseconds; shown in ms. This is a closed loop with pauses,",
    "not an open-loop schedule: a slower answer delays that connection's next request rather than queueing it.",
    "",
    "| body | workers | Envoy | saturation, req/s | machine busy | Envoy CPU µs/req | upstream CPU µs/req | fixed rate, req/s (conns) | p50 ms | p99 ms | Envoy CPU µs/req at rate |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    for (const [name, x] of [["plain", r.plain], ["floor", r.floor], ["filter", r.filter]] as const) {
      lines.push(`| ${sizeLabel(r.bodyBytes)} | ${r.workers} | ${name} | ${int(saturationRps(x))} | ${pct(x.machineBusyShare)} | ` +
        `${int(x.cpuUsPerRequest)} | ${int(x.upstreamCpuUsPerRequest)} | ${int(rateRequestsPerSecond(x))} (${r.connectionsAtRate}) | ` +
        `${ms(p50(x))} | ${ms(p99(x))} | ${int(x.atRateCpuUsPerRequest)} |`);
    }
  }
  lines.push(
    "",
    "What the filter adds (filter against plain), and how much of it any body-reading Wasm filter adds (floor against plain):",
    "",
    "| body | workers | req/s at saturation | added p50 ms | added p99 ms | added Envoy CPU µs/req (saturation / at rate) | of which the floor's (saturation / at rate) | floor's req/s, p50 | plain ÷ filter CPU per request | routed |",
    "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of rows) {
    const f = r.filter;
    const p = r.plain;
    const fl = r.floor;
    lines.push(`| ${sizeLabel(r.bodyBytes)} | ${r.workers} | ${pct(saturationRps(f) / saturationRps(p))} | ` +
      `${signedMs(p50(f) - p50(p))} | ${signedMs(p99(f) - p99(p))} | ` +
      `${int(f.cpuUsPerRequest - p.cpuUsPerRequest)} / ${int(f.atRateCpuUsPerRequest - p.atRateCpuUsPerRequest)} | ` +
      `${int(fl.cpuUsPerRequest - p.cpuUsPerRequest)} / ${int(fl.atRateCpuUsPerRequest - p.atRateCpuUsPerRequest)} | ` +
      `${pct(saturationRps(fl) / saturationRps(p))}, ${signedMs(p50(fl) - p50(p))} | ` +
      `${pct(p.cpuUsPerRequest / f.cpuUsPerRequest)} | ${int(f.routed ?? 0)} of ${int(f.filterRequests ?? 0)} |`);
  }
  const big = rows.filter((r) => r.bodyBytes === 16384);
  if (big.length > 0) {
    lines.push("", "Targets at 16 KB (with the filter: at least 75% of plain Envoy's requests per second, at most 0.1 ms added p50):", "");
    for (const r of big) {
      const share = saturationRps(r.filter) / saturationRps(r.plain);
      const added = (p50(r.filter) - p50(r.plain)) / 1000;
      const cpuShare = r.plain.cpuUsPerRequest / r.filter.cpuUsPerRequest;
      lines.push(`- ${r.workers} worker${r.workers === 1 ? "" : "s"}: ${pct(share)} of plain's requests per second (${share >= 0.75 ? "met" : "NOT met"}) on this shared machine; ` +
        `${pct(cpuShare)} if Envoy had the cores to itself (plain's CPU per request over the filter's); ` +
        `added p50 ${added.toFixed(3)} ms (${added <= 0.1 ? "met" : "NOT met"}). The floor alone: ` +
        `${pct(saturationRps(r.floor) / saturationRps(r.plain))} of plain's requests per second, ${pct(r.plain.cpuUsPerRequest / r.floor.cpuUsPerRequest)} by CPU, ` +
        `added p50 ${((p50(r.floor) - p50(r.plain)) / 1000).toFixed(3)} ms.`);
    }
  }
  lines.push(
    "",
    `"plain ÷ filter CPU per request" is the share of plain Envoy's throughput the filter would keep where Envoy is`,
    "CPU-bound on cores of its own. The routed column counts the whole run of the filter Envoy (warm-up, saturation,",
    "fixed rate); wrk counted no errors (connect, read, write, timeout, status ≥ 400) in any run.",
    `Filter: ${WASM.replace(ROOT, "")}; floor: ${FLOOR_WASM.replace(ROOT, "")}.`,
    "",
  );
  return lines.join("\n");
}

async function main(): Promise<void> {
  const wrk = findWrk();
  if (wrk === null) throw new Error(`wrk not found: ${INSTALL_WRK}`);
  const envoyVersion = await envoyUnderTestVersion();
  const loadAverage = loadavg();
  for (const size of SIZES) {
    const shape = chatBodyShape({ bodyBytes: size });
    process.stderr.write(`${size} B bodies: ${shape.systemChars} shared + ${shape.userChars} distinct characters\n`);
  }
  const upstream = await startLoopbackUpstream(UPSTREAMS, ROOT);
  stops.add(upstream.stop);
  const rows: Row[] = [];
  for (const bodyBytes of SIZES) {
    for (const workers of WORKERS) {
      rows.push({ bodyBytes, workers, ...(await measurePair(wrk, upstream, bodyBytes, workers)) });
    }
  }
  const text = report(rows, { envoy: envoyVersion, wrk: wrkVersion(wrk), loadAverage });
  process.stdout.write(text);
  if (values.out) await writeFile(values.out, text);
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`bench:envoy: ${(e as Error).message}\n`);
    process.exitCode = 1;
  })
  .finally(() => stops.stopAll());
