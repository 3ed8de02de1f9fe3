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
import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Envoy, VirtualClock } from "../host/index.ts";
import { HEADER_BYTES } from "../hardening/journal-check.ts";

const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outIndex = args.indexOf("--out");
const outFile = outIndex >= 0 ? args[outIndex + 1] : "reports/bench-router.md";

const SIZES = [1024, 16 * 1024, 128 * 1024];
const ENDPOINTS = [4, 16, 64, 256];
const WARMUP = quick ? 200 : 2000;
const MEASURED = quick ? 500 : 5000;
const MEMORY_PROMPTS = quick ? 20_000 : 1_000_000;

function filler(seed: number, n: number): string {
  let x = (seed * 2654435761) >>> 0;
  const words = ["the", "model", "cache", "prefix", "token", "route", "envoy", "server", "block", "hash", "query", "answer"];
  let s = "";
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += words[x % words.length] + " ";
  }
  return s.slice(0, n);
}

/** A chat body of about `size` bytes: one of 8 shared system prompts (half the body) and a distinct question. */
function chatBody(size: number, i: number): string {
  const system = filler(1000 + (i % 8), Math.floor(size / 2));
  const skeleton = JSON.stringify({ model: "llama-3.1-8b", messages: [{ role: "system", content: system }, { role: "user", content: "" }], max_tokens: 64 });
  const user = `request ${i}: ` + filler(i, Math.max(0, size - skeleton.length - 20));
  return JSON.stringify({ model: "llama-3.1-8b", messages: [{ role: "system", content: system }, { role: "user", content: user }], max_tokens: 64 });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The module's own xxHash64 pass, from a second instance of the same .wasm with inert imports. */
async function hashPass(): Promise<(bytes: Uint8Array, reps: number) => number[]> {
  const module = await WebAssembly.compile(readFileSync(WASM));
  const imports: Record<string, Record<string, () => number>> = {};
  for (const imp of WebAssembly.Module.imports(module)) (imports[imp.module] ??= {})[imp.name] = () => 0;
  const instance = await WebAssembly.instantiate(module, imports as WebAssembly.Imports);
  const memory = instance.exports.memory as WebAssembly.Memory;
  const hash = instance.exports.prefix_router_hash_pass as (ptr: number, len: number) => bigint;
  return (bytes, reps) => {
    const base = memory.buffer.byteLength;
    memory.grow(Math.ceil(bytes.length / 65536) + 1);
    new Uint8Array(memory.buffer).set(bytes, base);
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      hash(base, bytes.length);
      times.push((performance.now() - t0) * 1000);
    }
    return times;
  };
}

async function gateway(endpoints: number, vms = 1) {
  const clock = new VirtualClock();
  const envoy = new Envoy({ clock, logLevel: "warn" });
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router", rootId: "prefix_router", vmId: "prefix_router", wasm: WASM, concurrency: vms,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({ endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `10.${(i >> 8) & 255}.${i & 255}.1:8000` })) }),
  });
  return { clock, envoy, plugin };
}

const HEADERS = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gateway", "content-type": "application/json" };

/** With several VMs, requests take turns across them, so each decision also applies the others' journal events. */
async function decisionCost(size: number, endpoints: number, vms = 1) {
  const { clock, plugin } = await gateway(endpoints, vms);
  const bodies = Array.from({ length: 64 }, (_, i) => Buffer.from(chatBody(size, i)));
  const times: number[] = [];
  const guest: number[] = [];
  /** In-module time of the ticks during the measured requests (their journal catch-up, mostly), ms. */
  let tickGuestMs = 0;
  for (const v of plugin.vms) v.profileTime = true;
  for (let i = 0; i < WARMUP + MEASURED; i++) {
    const body = i < WARMUP ? bodies[i % bodies.length] : Buffer.from(chatBody(size, i));
    const worker = i % vms;
    const vm = plugin.vms[worker];
    const s = plugin.newStream(worker);
    s.sendRequestHeaders(HEADERS, false);
    vm.guestCallMs = 0;
    vm.hostCallMs = 0;
    const t0 = performance.now();
    s.sendRequestBody(body, true);
    const t1 = performance.now();
    if (i >= WARMUP) {
      times.push((t1 - t0) * 1000);
      guest.push((vm.guestCallMs - vm.hostCallMs) * 1000);
    }
    s.complete();
    if (i % 100 === 0) {
      for (const v of plugin.vms) v.guestCallMs = v.hostCallMs = 0;
      clock.advance(100);
      if (i >= WARMUP) for (const v of plugin.vms) tickGuestMs += v.guestCallMs - v.hostCallMs;
    }
  }
  times.sort((a, b) => a - b);
  guest.sort((a, b) => a - b);
  return {
    p50: percentile(times, 50), p99: percentile(times, 99), guestP50: percentile(guest, 50), guestP99: percentile(guest, 99), bytes: bodies[0].length,
    tickPerRequestUs: (tickGuestMs * 1000) / MEASURED,
  };
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
    s.sendRequestBody(JSON.stringify({ model: "m", messages: [{ role: "user", content: `${i} ${filler(i, 700)}` }] }), true);
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
  say(`Node ${process.version} (V8 ${process.versions.v8}), ${quick ? "quick run" : `${WARMUP} warm-up + ${MEASURED} measured requests per cell`}, one worker VM unless said, default configuration.`);
  say("Decision = the proxy_on_request_body call that routes: body copy into Wasm, extraction, hashing, index, scoring, header, journal, including the emulator's handling of the host calls it makes. In-module = the same call minus the time spent inside host functions: the filter's own work, which is what runs in V8 under Envoy too (Envoy's host side is C++). Hash = one xxHash64 pass over the same body bytes in the same module.");
  say("");
  say("| body | endpoints | decision p50 µs | decision p99 µs | in-module p50 µs | in-module p99 µs | hash pass p50 µs | in-module / hash (p50) |");
  say("|---|---|---|---|---|---|---|---|");
  for (const size of SIZES) {
    const sample = Buffer.from(chatBody(size, 0));
    const hashTimes = hash(sample, quick ? 500 : 5000).sort((a, b) => a - b);
    const hashP50 = percentile(hashTimes, 50);
    for (const endpoints of ENDPOINTS) {
      const r = await decisionCost(size, endpoints);
      say(`| ${(r.bytes / 1024).toFixed(0)} KB | ${endpoints} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.guestP50.toFixed(1)} | ${r.guestP99.toFixed(1)} | ${hashP50.toFixed(2)} | ${(r.guestP50 / hashP50).toFixed(2)}× |`);
    }
  }
  say("");
  say(`Several worker VMs sharing one index through the journal (requests take turns across the VMs, so each decision also applies the events the others appended since its last one; the last column is the ticks' in-module time, all VMs', divided by the requests):`);
  say("");
  say("| body | endpoints | worker VMs | decision p50 µs | decision p99 µs | in-module p50 µs | in-module p99 µs | in-module / hash (p50) | ticks' in-module µs per request |");
  say("|---|---|---|---|---|---|---|---|---|");
  const sample16 = Buffer.from(chatBody(16 * 1024, 0));
  const hash16 = percentile(hash(sample16, quick ? 500 : 5000).sort((a, b) => a - b), 50);
  for (const [endpoints, vms] of [[64, 1], [64, 4], [64, 8], [64, 16], [256, 4]] as const) {
    const r = await decisionCost(16 * 1024, endpoints, vms);
    say(`| ${(r.bytes / 1024).toFixed(0)} KB | ${endpoints} | ${vms} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.guestP50.toFixed(1)} | ${r.guestP99.toFixed(1)} | ${(r.guestP50 / hash16).toFixed(2)}× | ${r.tickPerRequestUs.toFixed(1)} |`);
  }
  say("");
  const m = await memoryAfterDistinctPrompts();
  const mib = (n: number) => (n / 1048576).toFixed(1);
  say(`## Memory after ${MEMORY_PROMPTS.toLocaleString("en")} distinct prompts (64 endpoints, default configuration)`);
  say("");
  say(`| measure | value |`);
  say(`|---|---|`);
  say(`| Wasm linear memory at start | ${mib(m.start)} MiB |`);
  say(`| after ${(MEMORY_PROMPTS / 10).toLocaleString("en")} prompts | ${mib(m.afterWarmup)} MiB |`);
  say(`| after all | ${mib(m.end)} MiB |`);
  // The journal's head, VM-tag counter and 4096 slots of at most HEADER_BYTES + 8 × (64 + 256) bytes,
  // and the affinity ring's head (this run makes no sticky routes), each with its key.
  say(`| shared data | ${m.sharedKeys} keys, ${mib(m.sharedBytes)} MiB (bound: 4099 keys, ${mib(4098 * (HEADER_BYTES + 8 * (64 + 256) + 64) + (8 + 64))} MiB) |`);
  say(`| throughput through the emulator | ${(MEMORY_PROMPTS / m.seconds).toFixed(0)} requests/s |`);
  if (!quick) writeFileSync(outFile, lines.join("\n") + "\n");
}

await main();
