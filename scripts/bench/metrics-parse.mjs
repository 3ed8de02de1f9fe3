// How long parseLoad takes on the realistic pages in tests/fixtures/metrics.
// Compiles a small AssemblyScript entry (below) against assembly/metrics/ with
// the release settings of scripts/bench/metrics.asconfig.json (-O3, SIMD,
// incremental runtime, no asserts), loads it in Node's V8 (Envoy's default
// Wasm engine is V8 too) and times repeated parses of each page.
//
//   node scripts/bench/metrics-parse.mjs [iterations]
//
// A measurement, not a test: nothing here fails on a slow machine. The entry
// lives in this file, not in a .ts file, because scripts/**/*.ts is checked
// by the Node tsconfig and AssemblyScript is not TypeScript.
import asc from "assemblyscript/asc";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const iterations = Number(process.argv[2] ?? 2000);

// Exposes parseLoad over a page buffer this script fills, so the timing
// covers exactly what the router calls per scrape.
const ENTRY = "scripts/bench/metrics_bench_entry.ts";
const ENTRY_SOURCE = `
import { Dialect, ServerLoad, parseLoad, sglangDialect, trtllmDialect, vllmDialect } from "../../assembly/metrics/dialect";

const dialects: StaticArray<Dialect> = [vllmDialect(), sglangDialect(), trtllmDialect()];
const load = new ServerLoad();
let page: ArrayBuffer = new ArrayBuffer(0);

export function reserve(length: i32): usize {
  page = new ArrayBuffer(length);
  return changetype<usize>(page);
}

export function parseMany(dialect: i32, length: i32, iterations: i32): u32 {
  const chosen = dialects[dialect];
  const ptr = changetype<usize>(page);
  for (let i = 0; i < iterations; i++) parseLoad(ptr, <usize>length, chosen, load);
  return load.present;
}

export function waiting(): f64 { return load.waiting; }
export function running(): f64 { return load.running; }
export function kvUtilization(): f64 { return load.kvUtilization; }
`;

let binary = null;
const { error, stderr } = await asc.main([
  ENTRY,
  "--baseDir", root,
  "--config", "scripts/bench/metrics.asconfig.json",
  "--outFile", "bench.wasm",
], {
  readFile(name, baseDir) {
    if (name === ENTRY) return ENTRY_SOURCE;
    try { return readFileSync(join(baseDir, name), "utf8"); } catch { return null; }
  },
  writeFile(name, contents) { if (name.endsWith(".wasm")) binary = contents; },
  listFiles() { return []; },
});
if (error) {
  console.error(stderr.toString());
  process.exit(1);
}

const { instance } = await WebAssembly.instantiate(binary, {
  env: { abort() { throw new Error("abort in the metrics benchmark module"); } },
});
const wasm = instance.exports;

const pages = [
  ["vllm-v1-dp2.prom", 0],
  ["vllm-v1-legacy.prom", 0],
  ["sglang.prom", 1],
  ["trtllm.prom", 2],
];
console.log(`parseLoad, median of 5 rounds of ${iterations} parses per page, Node ${process.version} (${process.arch})`);
for (const [file, dialect] of pages) {
  const bytes = readFileSync(join(root, "tests/fixtures/metrics", file));
  const ptr = wasm.reserve(bytes.length);
  new Uint8Array(wasm.memory.buffer, ptr, bytes.length).set(bytes);
  wasm.parseMany(dialect, bytes.length, 200); // warm up V8's tiers
  const memoryBefore = wasm.memory.buffer.byteLength;
  const perParse = [];
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    wasm.parseMany(dialect, bytes.length, iterations);
    perParse.push(Number(process.hrtime.bigint() - start) / 1e3 / iterations); // µs
  }
  perParse.sort((a, b) => a - b);
  const median = perParse[2];
  const grew = wasm.memory.buffer.byteLength !== memoryBefore;
  console.log(
    `${file.padEnd(20)} ${(bytes.length / 1024).toFixed(1).padStart(5)} KB  ` +
    `${median.toFixed(1).padStart(6)} µs/parse  ${(bytes.length / median).toFixed(0).padStart(5)} MB/s  ` +
    `waiting=${wasm.waiting()} running=${wasm.running()} kv=${wasm.kvUtilization().toFixed(4)}` +
    (grew ? "  (linear memory grew during the timed parses!)" : ""),
  );
}
