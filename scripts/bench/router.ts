// Decision-speed and memory benchmark for the built filter (npm run bench).
//
// Decision cost: the real build/prefix_router.wasm in the host emulator, one
// worker VM (and, in a second table, four), a warm index. Each measured request opens a stream, sends its
// headers (not timed), then times the last proxy_on_request_body call: Envoy's
// copy of the body into Wasm memory, JSON extraction, block hashing, journal
// catch-up, prefix match, scoring, setting the header and appending the
// journal event. That is the work the filter adds to a request. Streams are
// then completed, so in-flight counts stay realistic.
//
// Yardstick: one xxHash64 pass over the same bytes by the same module (its
// diagnostic export prefix_router_hash_pass), in the same V8.
//
// Memory: 10^6 distinct prompts through one VM; linear memory and shared-data
// size afterwards, against the configured bounds.
//
// Usage: node --import tsx scripts/bench/router.ts [--quick] [--out reports/bench-router.md]
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { journalEventBound } from "../hardening/journal-check.ts";
import { DEFAULT_INDEX_STRIDE, DEFAULT_MAX_PREFIX_BLOCKS } from "../gateway/envoy-config.ts";
import { HEADERS, benchGateway as gateway, chatBody, filler, moduleHash } from "./router-workload.ts";
import { BATCH, type CellRun, decisionCost, percentile } from "./decision-cost.ts";
import { machineFacts } from "./proc.ts";
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outIndex = args.indexOf("--out");
const outFile = outIndex >= 0 ? args[outIndex + 1] : "reports/bench-router.md";

const SIZES = [1024, 16 * 1024, 128 * 1024];
const ENDPOINTS = [4, 16, 64, 256];
const WARMUP = quick ? 200 : 2000;
/** Runs of each cell, each on a fresh gateway, to show how much a figure moves between runs. */
const RUNS = quick ? 1 : 3;
const MEASURED = quick ? 500 : 5000;
const MEMORY_PROMPTS = quick ? 20_000 : 1_000_000;
/** Memory-run prompts: 65 blocks of 64 characters, 4 index entries at the default stride, so the index fills. */
const MEMORY_PROMPT_CHARS = 4200;


/** The module's own xxHash64 pass over `bytes`, timed `reps` times. */
async function hashPass(): Promise<(bytes: Uint8Array, reps: number) => number[]> {
  const { load, hash } = await moduleHash();
  return (bytes, reps) => {
    const base = load(bytes);
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      hash(base, bytes.length);
      times.push((performance.now() - t0) * 1000);
    }
    return times;
  };
}

/** A cell measured RUNS times, each on a fresh gateway: the median run's figures and each figure's range over runs. */
async function cell(size: number, endpoints: number, vms = 1) {
  const runs: CellRun[] = [];
  for (let r = 0; r < RUNS; r++) runs.push(await decisionCost(size, endpoints, vms, { warmup: WARMUP, measured: MEASURED }));
  const pick = (f: (x: CellRun) => number) => {
    const xs = runs.map(f).sort((a, b) => a - b);
    return { median: xs[Math.floor(xs.length / 2)], min: xs[0], max: xs[xs.length - 1] };
  };
  return {
    bytes: runs[0].bytes,
    p50: pick((x) => x.p50), p99: pick((x) => x.p99), moduleP50: pick((x) => x.moduleP50), moduleP99: pick((x) => x.moduleP99),
    batchMean: pick((x) => x.batchMean), tick: pick((x) => x.tickPerRequestUs), hostCalls: pick((x) => x.hostCallsPerRequest),
  };
}

/** "median (min–max)" of a figure over the runs. */
function spread(f: { median: number; min: number; max: number }, digits = 1): string {
  return RUNS === 1 ? f.median.toFixed(digits) : `${f.median.toFixed(digits)} (${f.min.toFixed(digits)}–${f.max.toFixed(digits)})`;
}

/**
 * A VM keeps an index from its first decision on and then replays the ring
 * (router.ts startIndexing): the first decision of a worker that joins after
 * `events` decisions of another, in module time, beside its second.
 */
async function firstDecisionReplay(events: number) {
  const { clock, plugin } = await gateway(64, 2);
  for (const v of plugin.vms) v.profileTime = true;
  for (let i = 0; i < events; i++) {
    const s = plugin.newStream(0);
    s.sendRequestHeaders(HEADERS, false);
    s.sendRequestBody(Buffer.from(chatBody(16 * 1024, i)), true);
    s.complete();
    if (i % 100 === 0) clock.advance(100);
  }
  const vm = plugin.vms[1];
  const decide = (i: number) => {
    const s = plugin.newStream(1);
    s.sendRequestHeaders(HEADERS, false);
    const m0 = vm.moduleMs();
    s.sendRequestBody(Buffer.from(chatBody(16 * 1024, events + i)), true);
    const ms = vm.moduleMs() - m0;
    s.complete();
    return ms;
  };
  return { first: decide(0), second: decide(1) };
}

async function memoryAfterDistinctPrompts() {
  const { clock, envoy, plugin } = await gateway(64);
  const vm = plugin.vms[0];
  const start = vm.memoryBytes();
  let afterWarmup = 0;
  const t0 = performance.now();
  for (let i = 0; i < MEMORY_PROMPTS; i++) {
    const s = plugin.newStream();
    s.sendRequestHeaders(HEADERS, false);
    s.sendRequestBody(JSON.stringify({ model: "m", messages: [{ role: "user", content: `${i} ${filler(i, MEMORY_PROMPT_CHARS)}` }] }), true);
    s.complete();
    if (i % 1000 === 0) clock.advance(100);
    if (i === Math.floor(MEMORY_PROMPTS / 10)) afterWarmup = vm.memoryBytes();
    if (!quick && i % 100_000 === 0 && i > 0) process.stderr.write(`  memory run: ${i} prompts\n`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const shared = envoy.sharedData("prefix_router");
  return { start, afterWarmup, end: vm.memoryBytes(), sharedKeys: shared.keys().length, sharedBytes: shared.totalBytes(), seconds };
}

async function main() {
  const hash = await hashPass();
  const lines: string[] = [];
  const say = (s: string) => {
    lines.push(s);
    process.stdout.write(s + "\n");
  };
  say(`# prefix-router decision benchmark`);
  say("");
  const machine = machineFacts();
  say(`${machine.cores} cores (${machine.cpuModel}), Node ${process.version} (V8 ${process.versions.v8}), ${quick ? "quick run" : `${WARMUP} warm-up + ${MEASURED} measured requests per cell`}, ${RUNS} run${RUNS === 1 ? "" : "s"} of each cell on a fresh gateway (figures: the median run, and the range over runs in parentheses), one worker VM unless said, default configuration.`);
  say("Decision = the proxy_on_request_body call that routes: body copy into Wasm, extraction, hashing, index, scoring, header, journal, including the emulator's handling of the host calls it makes. Module time (scripts/host/vm.ts moduleMs, the one definition every benchmark uses) = the same call less the time spent inside host functions: the filter's own work, which is what runs in V8 under Envoy too (Envoy's host side is C++). Batch mean = module time per request over batches of " + BATCH + " requests (median batch). Hash = one xxHash64 pass over the same body bytes in the same module.");
  say("");
  say("| body | endpoints | decision p50 µs | decision p99 µs | module p50 µs | module p99 µs | batch mean µs | hash pass p50 µs | module / hash (p50) |");
  say("|---|---|---|---|---|---|---|---|---|");
  for (const size of SIZES) {
    const sample = Buffer.from(chatBody(size, 0));
    const hashTimes = hash(sample, quick ? 500 : 5000).sort((a, b) => a - b);
    const hashP50 = percentile(hashTimes, 50);
    for (const endpoints of ENDPOINTS) {
      const r = await cell(size, endpoints);
      say(`| ${(r.bytes / 1024).toFixed(0)} KB | ${endpoints} | ${spread(r.p50)} | ${spread(r.p99)} | ${spread(r.moduleP50)} | ${spread(r.moduleP99)} | ${spread(r.batchMean)} | ${hashP50.toFixed(2)} | ${(r.moduleP50.median / hashP50).toFixed(2)}× |`);
    }
  }
  say("");
  say(`Several worker VMs sharing one index through the journal. Requests take turns across the VMs, so each decision reads the events the others appended since its last one: their loads apply at once, their index entries wait for the tick unless they extend the decision's own match (README "Decision speed"). Ticks run every 100 requests; the tick column is all VMs' tick module time divided by the requests, the work moved off the request path. Host calls: per request, all kinds (in Envoy each is a C++ call from V8):`);
  say("");
  say("| body | endpoints | worker VMs | decision p50 µs | module p50 µs | module p99 µs | batch mean µs | module / hash (p50) | ticks' module µs per request | host calls per request |");
  say("|---|---|---|---|---|---|---|---|---|---|");
  const sample16 = Buffer.from(chatBody(16 * 1024, 0));
  const hash16 = percentile(hash(sample16, quick ? 500 : 5000).sort((a, b) => a - b), 50);
  for (const [endpoints, vms] of [[64, 1], [64, 4], [64, 8], [64, 16], [256, 4]] as const) {
    const r = await cell(16 * 1024, endpoints, vms);
    say(`| ${(r.bytes / 1024).toFixed(0)} KB | ${endpoints} | ${vms} | ${spread(r.p50)} | ${spread(r.moduleP50)} | ${spread(r.moduleP99)} | ${spread(r.batchMean)} | ${(r.moduleP50.median / hash16).toFixed(2)}× | ${spread(r.tick)} | ${spread(r.hostCalls)} |`);
  }
  say("");
  const replayEvents = quick ? 500 : 5000;
  const replay = await firstDecisionReplay(replayEvents);
  say(`A worker's first decision replays the ring into its new index (16 KB bodies, 64 endpoints, ${replayEvents.toLocaleString("en")} decisions of another VM before it, the ring holding the last 4,096): ${replay.first.toFixed(1)} ms of module time, its second ${(replay.second * 1000).toFixed(0)} µs.`);
  say("");
  const m = await memoryAfterDistinctPrompts();
  const mib = (n: number) => (n / 1048576).toFixed(1);
  say(`## Memory after ${MEMORY_PROMPTS.toLocaleString("en")} distinct prompts of ${MEMORY_PROMPT_CHARS.toLocaleString("en")} characters (64 endpoints, default configuration)`);
  say("");
  say(`| measure | value |`);
  say(`|---|---|`);
  say(`| Wasm linear memory at start | ${mib(m.start)} MiB |`);
  say(`| after ${(MEMORY_PROMPTS / 10).toLocaleString("en")} prompts | ${mib(m.afterWarmup)} MiB |`);
  say(`| after all | ${mib(m.end)} MiB |`);
  // The journal's head, VM-tag counter and 4096 slots of at most one event each, and the affinity
  // ring's head (this run makes no sticky routes), each with its key.
  const eventBound = journalEventBound(DEFAULT_MAX_PREFIX_BLOCKS, DEFAULT_INDEX_STRIDE);
  say(`| shared data | ${m.sharedKeys} keys, ${mib(m.sharedBytes)} MiB (bound: 4099 keys, ${mib(4098 * (eventBound + 64) + (8 + 64))} MiB) |`);
  say(`| throughput through the emulator | ${(MEMORY_PROMPTS / m.seconds).toFixed(0)} requests/s |`);
  if (!quick) writeFileSync(outFile, lines.join("\n") + "\n");
}

await main();
