// Replay of a Mooncake-format trace (../shared/BRIEF.md): one JSON object per
// line with timestamp (ms), input_length and output_length (tokens) and
// hash_ids (one per 512-token block; equal ids at equal positions mean equal
// content). Owns: turning hash ids into deterministic text, requests into
// /v1/completions specs, and the arrival times (as recorded, or spread within
// their time slot). Must not: scale time (the driver does) or route.
//
// Each hash id becomes seeded filler text of exactly 512 tokens under the
// chosen tokenizer (hash.ts), so equal id prefixes give equal prompt prefixes
// and the trace's prefix structure holds:
// - FIXED: 2,048 characters (512 × 4), the prompt cut to input_length × 4
//   characters (the evaluator's original replay, reproduced bit for bit);
// - VARYING: whole words until 512 tokens, with a per-id tilt towards longer
//   or shorter words, so each id has its own characters per token (≈ 3.6–4.6)
//   and a request's ratio depends on its ids. The prompt is cut at the last
//   word boundary within input_length tokens (at most a few tokens short), so
//   the server's tokenization of the prompt is the ids' tokenizations end to
//   end.
// Either way an id is exactly 32 KV blocks, so each id's 32 block content
// hashes are computed once and a request's hash chain is built from them
// without rehashing its text; the test suite checks the result equals the
// tokenizer's blockHashes(promptText).

import { readFileSync } from "node:fs";
import {
  BLOCK_CHARS, BLOCK_TOKENS, CHARS_PER_TOKEN, chainHash, contentHash, DEFAULT_TOKENIZER, pieceTokens, rootHash,
  type TokenizerName,
} from "../sim/hash.ts";
import { completionsBody, COMPLETIONS_PATH } from "../sim/openai.ts";
import { labelSeed, Rng } from "../sim/random.ts";
import { fillerText, fillerWord, type PromptSource, type RequestSpec, type Workload } from "./workload.ts";

export interface TraceRecord {
  timestamp: number;
  input_length: number;
  output_length: number;
  hash_ids: number[];
}

/** Tokens per hash id in Mooncake traces. */
export const HASH_ID_TOKENS = 512;
const BLOCKS_PER_ID = HASH_ID_TOKENS / BLOCK_TOKENS;

/** Arrival times as the trace records them, or spread within their time slot (spreadArrivals). */
export type ArrivalMode = "recorded" | "spread";
export const DEFAULT_ARRIVALS: ArrivalMode = "spread";

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

/** One hash id's text: 512 tokens, its word boundaries and its 32 block content hashes. */
interface IdText {
  text: string;
  /** Ascending (token count, character offset) at each word end; empty under FIXED (every 4 characters is a boundary). */
  wordTokens: Int32Array;
  wordChars: Int32Array;
  chunks: Float64Array;
}

/** The text of each hash id, made on first use. */
class HashIdTexts {
  private readonly ids = new Map<number, IdText>();
  /** Tokens of each "word " piece, memoized: the vocabulary is small and pieceTokens hashes. */
  private readonly pieceCost = new Map<string, number>();
  constructor(private readonly seed: number, readonly tokenizer: TokenizerName) {}

  get(id: number): IdText {
    let t = this.ids.get(id);
    if (t === undefined) {
      const rng = new Rng(this.seed ^ Math.imul(id + 1, 0x9e3779b1));
      t = this.tokenizer === "fixed" ? fixedIdText(rng) : varyingIdText(rng, this.pieceCost);
      this.ids.set(id, t);
    }
    return t;
  }
}

function fixedIdText(rng: Rng): IdText {
  const text = fillerText(rng, HASH_ID_TOKENS * CHARS_PER_TOKEN);
  const chunks = new Float64Array(BLOCKS_PER_ID);
  for (let j = 0; j < BLOCKS_PER_ID; j++) chunks[j] = contentHash(text, j * BLOCK_CHARS, (j + 1) * BLOCK_CHARS);
  return { text, wordTokens: new Int32Array(0), wordChars: new Int32Array(0), chunks };
}

function varyingIdText(rng: Rng, pieceCost: Map<string, number>): IdText {
  const cost = (piece: string): number => {
    let t = pieceCost.get(piece);
    if (t === undefined) pieceCost.set(piece, (t = pieceTokens(piece, 0, piece.length)));
    return t;
  };
  // How wordy this text is: its characters per token differ from its neighbours'.
  const skew = rng.float() * 2 - 1;
  const parts: string[] = [];
  const wordTokens: number[] = [];
  const wordChars: number[] = [];
  let tokens = 0;
  let chars = 0;
  while (tokens < HASH_ID_TOKENS) {
    let piece = fillerWord(rng, skew) + " ";
    let t = cost(piece);
    // Land exactly on 512 tokens: a few more draws, then a word that is always one token.
    for (let tries = 0; tokens + t > HASH_ID_TOKENS && tries < 8; tries++) {
      piece = fillerWord(rng, skew) + " ";
      t = cost(piece);
    }
    if (tokens + t > HASH_ID_TOKENS) {
      piece = "of ";
      t = 1;
    }
    parts.push(piece);
    tokens += t;
    chars += piece.length;
    wordTokens.push(tokens);
    wordChars.push(chars);
  }
  const text = parts.join("");
  // Token ends as VARYING_TOKENIZER.tokenEnds(text) gives them (each piece split evenly), without rehashing.
  const ends = new Int32Array(HASH_ID_TOKENS);
  for (let w = 0, n = 0, start = 0; w < wordTokens.length; w++) {
    const t = wordTokens[w] - n;
    const len = wordChars[w] - start;
    for (let k = 1; k <= t; k++) ends[n++] = start + Math.round((len * k) / t);
    start = wordChars[w];
  }
  const chunks = new Float64Array(BLOCKS_PER_ID);
  for (let j = 0, start = 0; j < BLOCKS_PER_ID; j++) {
    const end = ends[(j + 1) * BLOCK_TOKENS - 1];
    chunks[j] = contentHash(text, start, end);
    start = end;
  }
  return { text, wordTokens: Int32Array.from(wordTokens), wordChars: Int32Array.from(wordChars), chunks };
}

/** A request's prompt: the first `fullIds` ids whole, then `tailChars` characters of the next. */
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
    const parts: string[] = [];
    for (let i = 0, len = 0; len < n; i++) {
      const t = this.texts.get(this.ids[i]).text;
      parts.push(t);
      len += t.length;
    }
    return parts.join("").slice(0, n);
  }

  promptText(): string {
    return this.promptPrefix(this.chars);
  }

  body(): string {
    return completionsBody(this.model, this.promptText(), this.maxTokens);
  }
}

/**
 * Spread arrivals that share a timestamp uniformly over their slot: from that
 * timestamp to the next distinct one (the last slot is as long as the median
 * slot). A request alone at its timestamp keeps it. Why: traces whose clock
 * ticks coarsely (the conversation trace behind issue 12 records ~10 requests
 * at one millisecond every ~3 s) turn into synchronized bursts that real
 * clients never send; spreading removes the artifact and keeps every
 * request in its recorded slot, so the load over any slot is unchanged.
 * `timestamps` must be ascending; the result is not re-sorted.
 */
export function spreadArrivals(timestamps: readonly number[], seed: number): number[] {
  const distinct: number[] = [];
  for (const t of timestamps) if (distinct.length === 0 || t !== distinct[distinct.length - 1]) distinct.push(t);
  const gaps = distinct.slice(1).map((t, i) => t - distinct[i]).sort((a, b) => a - b);
  const lastSlot = gaps.length > 0 ? gaps[Math.floor(gaps.length / 2)] : 0;
  const rng = new Rng(seed ^ labelSeed("trace-arrivals"));
  const out = new Array<number>(timestamps.length);
  let k = 0;
  for (let i = 0; i < timestamps.length; ) {
    let j = i;
    while (j < timestamps.length && timestamps[j] === timestamps[i]) j++;
    while (distinct[k] !== timestamps[i]) k++;
    const slot = k + 1 < distinct.length ? distinct[k + 1] - distinct[k] : lastSlot;
    for (let m = i; m < j; m++) out[m] = j - i === 1 ? timestamps[m] : timestamps[m] + rng.float() * slot;
    i = j;
  }
  return out;
}

export interface TraceOptions {
  /** Served model name used in the bodies. */
  model: string;
  seed: number;
  /** Keep only the first n requests. */
  limit?: number;
  name?: string;
  /** The simulated servers' tokenizer (hash.ts); default VARYING. */
  tokenizer?: TokenizerName;
  /** Default "spread". */
  arrivals?: ArrivalMode;
}

export function traceWorkload(records: readonly TraceRecord[], opts: TraceOptions): Workload {
  const tokenizer = opts.tokenizer ?? DEFAULT_TOKENIZER;
  const arrivals = opts.arrivals ?? DEFAULT_ARRIVALS;
  const texts = new HashIdTexts(opts.seed ^ labelSeed("trace-text"), tokenizer);
  const recs = [...records.slice(0, opts.limit ?? records.length)]
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.timestamp - b.r.timestamp || a.i - b.i)
    .map((x) => x.r);
  const recorded = recs.map((r) => r.timestamp);
  const times = arrivals === "spread" ? spreadArrivals(recorded, opts.seed) : recorded;
  const order = recs.map((_, i) => i).sort((a, b) => times[a] - times[b] || a - b);
  const root = rootHash(null);
  const requests: RequestSpec[] = order.map((ri, id) => {
    const r = recs[ri];
    let tokens: number;
    let chars: number;
    if (tokenizer === "fixed") {
      tokens = r.input_length;
      chars = r.input_length * CHARS_PER_TOKEN;
    } else {
      // Whole ids, then the words of the next that fit in what is left.
      const full = Math.floor(r.input_length / HASH_ID_TOKENS);
      tokens = full * HASH_ID_TOKENS;
      chars = 0;
      for (let i = 0; i < full; i++) chars += texts.get(r.hash_ids[i]).text.length;
      const rest = r.input_length - tokens;
      if (rest > 0) {
        const t = texts.get(r.hash_ids[full]);
        let w = 0;
        while (w < t.wordTokens.length && t.wordTokens[w] <= rest) w++;
        // An empty prompt is no request: keep at least the first word.
        if (w === 0 && tokens === 0) w = 1;
        if (w > 0) {
          tokens += t.wordTokens[w - 1];
          chars += t.wordChars[w - 1];
        }
      }
    }
    const nBlocks = Math.floor(tokens / BLOCK_TOKENS);
    const hashes = new Float64Array(nBlocks);
    let h = root;
    for (let b = 0; b < nBlocks; b++) {
      h = chainHash(h, texts.get(r.hash_ids[Math.floor(b / BLOCKS_PER_ID)]).chunks[b % BLOCKS_PER_ID]);
      hashes[b] = h;
    }
    const maxTokens = Math.max(1, r.output_length);
    return {
      id,
      arrivalMs: times[ri],
      model: opts.model,
      adapter: null,
      path: COMPLETIONS_PATH,
      promptTokens: tokens,
      maxTokens,
      hashes,
      source: new TraceSource(texts, r.hash_ids, chars, opts.model, maxTokens),
    };
  });
  const text = tokenizer === "fixed"
    ? "each 512-token hash id is 2,048 characters of seeded text"
    : "each 512-token hash id is seeded text of its own characters per token (varying tokenizer)";
  return {
    name: opts.name ?? "trace",
    description: `${requests.length} requests replayed from a Mooncake-format trace, arrivals ${arrivals === "spread" ? "spread within their time slot" : "as recorded"}; ${text}`,
    requests,
  };
}
