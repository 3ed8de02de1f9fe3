// The body reader alone (npm run bench:extract): PromptExtractor.extract, the
// largest part of a decision, on the decision benchmark's chat bodies
// (router-workload.ts), run through build/fuzz.wasm, which exports it and is
// compiled with the release target's flags. No emulator and no host calls: a
// change to the reader (json.ts, request.ts) is seen here without the rest of
// the decision around it. Batches of 64 bodies go in turn through 1,024
// distinct ones, written into memory before each batch (untimed): the same
// few bodies over and over would let the branch predictor learn where their
// escapes are, which it cannot on real traffic. One xxHash64 pass over the
// same bodies is timed alike, for scale.
//
// Usage: node --import tsx scripts/bench/extract.ts [--wasm build/fuzz.wasm]
//          [--size 16384] [--bodies lines|plain|code|unicode] [--rounds 5]
//   lines: the decision benchmark's bodies (a \n escape every line); plain:
//   the same without line breaks, so without escapes; code: lines that end in
//   a string literal holding a backslash (`= "\n";`), so \" and \\ escapes too;
//   unicode: the lines' letters turned into CJK characters and sent as \u
//   escapes, as Python's json.dumps writes non-ASCII text by default.
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
const KINDS = ["lines", "plain", "code", "unicode"];
if (!KINDS.includes(values.bodies)) {
  process.stderr.write("usage: node --import tsx scripts/bench/extract.ts [--wasm build/fuzz.wasm] [--size 16384] [--bodies lines|plain|code|unicode] [--rounds 5]\n");
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
/** Bodies per batch, and distinct bodies the batches go through. */
const BATCH = 64;
const POOL = 1024;
/** Batches per round: the first sixth warm up and are not counted. */
const BATCHES = 600;

const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(values.wasm)), {
  env: { proxy_log: () => 0 },
});
const e = instance.exports as unknown as FuzzExports;
e._initialize?.();
e.fuzz_body_setup(PROMPT_CAP);

const size = Number(values.size);
/** A chat body's messages with each letter a CJK character, all non-ASCII written as \u escapes. */
function asEscapedUnicode(body: string): string {
  const value = JSON.parse(body) as { messages: Array<{ content: string }> };
  for (const m of value.messages) m.content = m.content.replace(/[a-z]/g, (c) => String.fromCharCode(0x4e00 + ((c.charCodeAt(0) * 37) % 2000)));
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}
const bodies = Array.from({ length: POOL }, (_, i) => {
  const body = chatBody(size, i, values.bodies !== "plain", values.bodies === "code");
  return Buffer.from(values.bodies === "unicode" ? asEscapedUnicode(body) : body);
});
const slot = Math.max(...bodies.map((b) => b.length)) + 64;
// Pages of our own past the module's heap, as the fuzz driver places its inputs.
const base = e.memory.grow(Math.ceil((BATCH * slot) / 65536) + 1) * 65536;
/** The bodies of batch `n`, written into memory: [offset, length] each. */
function place(n: number): Array<[number, number]> {
  const u8 = new Uint8Array(e.memory.buffer);
  return Array.from({ length: BATCH }, (_, i) => {
    const body = bodies[(n * BATCH + i) % POOL];
    u8.set(body, base + i * slot);
    return [base + i * slot, body.length];
  });
}

/** Median over batches of the µs per body that `run` takes. */
function time(run: (at: number, length: number) => void): number {
  const perBody: number[] = [];
  for (let batch = 0; batch < BATCHES; batch++) {
    const placed = place(batch);
    const t0 = process.hrtime.bigint();
    for (const [at, length] of placed) run(at, length);
    const us = Number(process.hrtime.bigint() - t0) / 1000 / BATCH;
    if (batch >= BATCHES / 6) perBody.push(us);
  }
  perBody.sort((a, b) => a - b);
  return perBody[Math.floor(perBody.length / 2)];
}

for (let n = 0; n < POOL / BATCH; n++) {
  for (const [at, length] of place(n)) {
    const outcome = e.fuzz_body(at, length, CHAT_API);
    if (outcome !== 0) throw new Error(`body at batch ${n}: extract returned ${outcome}, not Ok`);
  }
}
const escapes = bodies.reduce((n, b) => n + b.toString("latin1").split("\\").length - 1, 0) / POOL;
console.log(`# The body reader alone\n`);
const command = ["node --import tsx scripts/bench/extract.ts", ...process.argv.slice(2)].join(" ");
console.log("`" + command + "` (npm run bench:extract): PromptExtractor.extract on " + POOL + " of the decision benchmark's chat bodies in turn, in batches of " + BATCH + ", through build/fuzz.wasm (release flags), no emulator; median µs per body over " + (BATCHES * 5) / 6 + " batches per round, and one xxHash64 pass over the same bytes for scale.\n");
console.log(`| round | extract µs per body | one xxHash64 pass µs | extract / pass |`);
console.log(`|---|---|---|---|`);
const extracts: number[] = [];
for (let round = 1; round <= Number(values.rounds); round++) {
  const extract = time((at, length) => e.fuzz_body(at, length, CHAT_API));
  const pass = time((at, length) => e.fuzz_xxh64(at, length, 0n));
  extracts.push(extract);
  console.log(`| ${round} | ${extract.toFixed(2)} | ${pass.toFixed(2)} | ${(extract / pass).toFixed(2)}× |`);
}
extracts.sort((a, b) => a - b);
console.log(`\n${bodies[0].length}-byte chat bodies (${values.bodies === "plain" ? "no escapes" : `${Math.round(escapes)} backslashes each`}), ${relative(process.cwd(), values.wasm)}: extract ${extracts[Math.floor(extracts.length / 2)].toFixed(2)} µs per body, median of ${extracts.length} rounds.`);
