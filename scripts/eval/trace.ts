// Replay of a Mooncake-format trace (../shared/BRIEF.md): one JSON object per
// line with timestamp (ms), input_length and output_length (tokens) and
// hash_ids (one per 512-token block; equal ids at equal positions mean equal
// content). Owns: turning hash ids into deterministic text and requests into
// /v1/completions specs. Must not: scale time (the driver does) or route.
//
// Each hash id becomes 2,048 characters (512 tokens × 4) of filler text drawn
// from a generator seeded by (seed, id), so equal id prefixes give equal prompt
// prefixes and the trace's prefix structure holds. The prompt is the ids'
// texts concatenated and cut to input_length × 4 characters. A hash id's text
// is exactly 32 KV blocks (64 characters each), so each id's 32 block content
// hashes are computed once and a request's hash chain is built from them
// without rehashing its text; the test suite checks the result equals
// blockHashes(promptText) from hash.ts.

import { readFileSync } from "node:fs";
import { BLOCK_CHARS, CHARS_PER_TOKEN, chainHash, contentHash, rootHash } from "../sim/hash.ts";
import { completionsBody, COMPLETIONS_PATH } from "../sim/openai.ts";
import { labelSeed, Rng } from "../sim/random.ts";
import { fillerText, type PromptSource, type RequestSpec, type Workload } from "./workload.ts";

export interface TraceRecord {
  timestamp: number;
  input_length: number;
  output_length: number;
  hash_ids: number[];
}

/** Tokens per hash id in Mooncake traces. */
export const HASH_ID_TOKENS = 512;
const ID_CHARS = HASH_ID_TOKENS * CHARS_PER_TOKEN;
const BLOCKS_PER_ID = ID_CHARS / BLOCK_CHARS;

export function loadTrace(file: string): TraceRecord[] {
  const out: TraceRecord[] = [];
  const lines = readFileSync(file, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const r = JSON.parse(line) as TraceRecord;
    if (!Number.isFinite(r.timestamp) || !Number.isInteger(r.input_length) || r.input_length < 1 ||
        !Number.isInteger(r.output_length) || !Array.isArray(r.hash_ids)) {
      throw new Error(`${file}:${i + 1}: not a Mooncake trace record`);
    }
    if (r.hash_ids.length * HASH_ID_TOKENS < r.input_length) {
      throw new Error(`${file}:${i + 1}: ${r.hash_ids.length} hash ids cannot cover ${r.input_length} tokens`);
    }
    out.push(r);
  }
  return out;
}

/** Text and block content hashes of each hash id, made on first use. */
class HashIdTexts {
  private readonly texts = new Map<number, string>();
  private readonly chunks = new Map<number, Float64Array>();
  constructor(private readonly seed: number) {}

  text(id: number): string {
    let t = this.texts.get(id);
    if (t === undefined) {
      t = fillerText(new Rng(this.seed ^ Math.imul(id + 1, 0x9e3779b1)), ID_CHARS);
      this.texts.set(id, t);
    }
    return t;
  }

  chunkHashes(id: number): Float64Array {
    let h = this.chunks.get(id);
    if (h === undefined) {
      const t = this.text(id);
      h = new Float64Array(BLOCKS_PER_ID);
      for (let j = 0; j < BLOCKS_PER_ID; j++) h[j] = contentHash(t, j * BLOCK_CHARS, (j + 1) * BLOCK_CHARS);
      this.chunks.set(id, h);
    }
    return h;
  }
}

class TraceSource implements PromptSource {
  constructor(
    private readonly texts: HashIdTexts,
    private readonly ids: readonly number[],
    private readonly chars: number,
    private readonly model: string,
    private readonly maxTokens: number,
  ) {}

  promptPrefix(chars: number): string {
    const n = Math.min(chars, this.chars);
    const k = Math.ceil(n / ID_CHARS);
    const parts: string[] = [];
    for (let i = 0; i < k; i++) parts.push(this.texts.text(this.ids[i]));
    return parts.join("").slice(0, n);
  }

  promptText(): string {
    return this.promptPrefix(this.chars);
  }

  body(): string {
    return completionsBody(this.model, this.promptText(), this.maxTokens);
  }
}

export interface TraceOptions {
  /** Served model name used in the bodies. */
  model: string;
  seed: number;
  /** Keep only the first n requests. */
  limit?: number;
  name?: string;
}

export function traceWorkload(records: readonly TraceRecord[], opts: TraceOptions): Workload {
  const texts = new HashIdTexts(opts.seed ^ labelSeed("trace-text"));
  const recs = [...records.slice(0, opts.limit ?? records.length)]
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.timestamp - b.r.timestamp || a.i - b.i)
    .map((x) => x.r);
  const root = rootHash(null);
  const requests: RequestSpec[] = recs.map((r, id) => {
    const chars = r.input_length * CHARS_PER_TOKEN;
    const nBlocks = Math.floor(chars / BLOCK_CHARS);
    const hashes = new Float64Array(nBlocks);
    let h = root;
    for (let b = 0; b < nBlocks; b++) {
      h = chainHash(h, texts.chunkHashes(r.hash_ids[Math.floor(b / BLOCKS_PER_ID)])[b % BLOCKS_PER_ID]);
      hashes[b] = h;
    }
    const maxTokens = Math.max(1, r.output_length);
    return {
      id,
      arrivalMs: r.timestamp,
      model: opts.model,
      adapter: null,
      path: COMPLETIONS_PATH,
      promptTokens: r.input_length,
      maxTokens,
      hashes,
      source: new TraceSource(texts, r.hash_ids, chars, opts.model, maxTokens),
    };
  });
  return {
    name: opts.name ?? "trace",
    description: `${requests.length} requests replayed from a Mooncake-format trace; each 512-token hash id is 2,048 characters of seeded text`,
    requests,
  };
}
