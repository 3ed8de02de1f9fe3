// The body reader alone (npm run bench:extract): PromptExtractor.extract, the
// largest part of a decision, on the decision benchmark's chat bodies
// (router-workload.ts), run through build/fuzz.wasm, which exports it and is
// compiled with the release target's flags. No emulator and no host calls: a
// change to the reader (json.ts, request.ts) is seen here without the rest of
// the decision around it. The extractor decodes the prompt in place, so each
// batch of 64 bodies is written into memory again (untimed) before it runs.
// One xxHash64 pass over the same bodies is timed alike, for scale.
//
// Usage: node --import tsx scripts/bench/extract.ts [--wasm build/fuzz.wasm]
//          [--size 16384] [--bodies lines|plain] [--rounds 5]
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";
import { chatBody } from "./router-workload.ts";

const { values } = parseArgs({
  options: {
    wasm: { type: "string", default: new URL("../../build/fuzz.wasm", import.meta.url).pathname },
    size: { type: "string", default: "16384" },
    bodies: { type: "string", default: "lines" },
    rounds: { type: "string", default: "5" },
  },
});
if (values.bodies !== "lines" && values.bodies !== "plain") {
  process.stderr.write("usage: node --import tsx scripts/bench/extract.ts [--wasm build/fuzz.wasm] [--size 16384] [--bodies lines|plain] [--rounds 5]\n");
  process.exit(2);
}

interface FuzzExports {
  memory: WebAssembly.Memory;
  _initialize?: () => void;
  fuzz_body_setup(promptCap: number): void;
  fuzz_body(ptr: number, len: number, api: number): number;
  fuzz_xxh64(ptr: number, len: number, seed: bigint): bigint;
}

/** The filter's prompt cap with its defaults: maxPrefixBlocks 4096 × hashBlockSize 64. */
const PROMPT_CAP = 4096 * 64;
const CHAT_API = 1;
const BODIES = 64;
/** Batches per round: the first sixth warm up and are not counted. */
const BATCHES = 600;

const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(values.wasm)), {
  env: { proxy_log: () => 0 },
});
const e = instance.exports as unknown as FuzzExports;
e._initialize?.();
e.fuzz_body_setup(PROMPT_CAP);

const size = Number(values.size);
const bodies = Array.from({ length: BODIES }, (_, i) => Buffer.from(chatBody(size, i, values.bodies === "lines")));
// Pages of our own past the module's heap, as the fuzz driver places its inputs.
const bytes = bodies.reduce((n, b) => n + b.length + 64, 0);
let at = e.memory.grow(Math.ceil(bytes / 65536) + 1) * 65536;
const offsets = bodies.map((b) => {
  const here = at;
  at += b.length + 64;
  return here;
});
const writeAll = () => {
  const u8 = new Uint8Array(e.memory.buffer);
  bodies.forEach((b, i) => u8.set(b, offsets[i]));
};

/** Median over batches of the µs per body that `run` takes over all bodies. */
function time(run: (i: number) => void, rewrite: boolean): number {
  const perBody: number[] = [];
  for (let batch = 0; batch < BATCHES; batch++) {
    if (rewrite) writeAll();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BODIES; i++) run(i);
    const us = Number(process.hrtime.bigint() - t0) / 1000 / BODIES;
    if (batch >= BATCHES / 6) perBody.push(us);
  }
  perBody.sort((a, b) => a - b);
  return perBody[Math.floor(perBody.length / 2)];
}

writeAll();
for (let i = 0; i < BODIES; i++) {
  const outcome = e.fuzz_body(offsets[i], bodies[i].length, CHAT_API);
  if (outcome !== 0) throw new Error(`body ${i}: extract returned ${outcome}, not Ok`);
}
const escapes = bodies.reduce((n, b) => n + b.toString("latin1").split("\\").length - 1, 0) / BODIES;
console.log(`# The body reader alone\n`);
const command = ["node --import tsx scripts/bench/extract.ts", ...process.argv.slice(2)].join(" ");
console.log("`" + command + "` (npm run bench:extract): PromptExtractor.extract on " + BODIES + " of the decision benchmark's chat bodies in turn, through build/fuzz.wasm (release flags), no emulator; median µs per body over " + (BATCHES * 5) / 6 + " batches per round, and one xxHash64 pass over the same bytes for scale.\n");
console.log(`| round | extract µs per body | one xxHash64 pass µs | extract / pass |`);
console.log(`|---|---|---|---|`);
const extracts: number[] = [];
for (let round = 1; round <= Number(values.rounds); round++) {
  const extract = time((i) => e.fuzz_body(offsets[i], bodies[i].length, CHAT_API), true);
  writeAll();
  const pass = time((i) => e.fuzz_xxh64(offsets[i], bodies[i].length, 0n), false);
  extracts.push(extract);
  console.log(`| ${round} | ${extract.toFixed(2)} | ${pass.toFixed(2)} | ${(extract / pass).toFixed(2)}× |`);
}
extracts.sort((a, b) => a - b);
console.log(`\n${bodies[0].length}-byte chat bodies (${values.bodies === "lines" ? `${Math.round(escapes)} escapes each` : "no escapes"}), ${relative(process.cwd(), values.wasm)}: extract ${extracts[Math.floor(extracts.length / 2)].toFixed(2)} µs per body, median of ${extracts.length} rounds.`);
