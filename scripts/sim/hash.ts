// Token and block arithmetic of the simulated model server, and the chained
// block hashes its prefix cache is keyed by. Owns: the two tokenizer models
// (FIXED: 4 characters per token, so a 16-token block is always 64 characters;
// VARYING, the default: a deterministic per-word token count whose characters
// per token vary with the text), the block geometry (16 tokens) and the hash
// chain. Must not: know about requests, engines or routing; the replay, the
// HTTP server and the oracle all reach block hashes through this file so they
// agree bit for bit.
//
// Why a varying tokenizer: a router that cuts prompts into 64-character
// blocks (16 tokens × ~4 characters, the reference picker's choice) lines up
// with the server's 16-token blocks only if every token is exactly 4
// characters. Real BPE tokenizers give ~3–5 characters per token depending on
// the words (Llama 3 on English prose ≈ 4.2, on code and numbers fewer), so
// the server's block boundaries fall at character offsets no router can know
// without the tokenizer, and a prompt's token count is only estimated from its
// length. VARYING keeps that property while staying a pure function of the
// text (no vocabulary file): see pieceTokens.
//
// Why chained hashes: vLLM identifies a full KV block by
// hash(parent block hash, the block's token ids, extra keys such as the LoRA
// name) (vllm/v1/core/kv_cache_utils.py, hash_block_tokens), so equal hashes at
// position i imply equal prompts up to the end of block i. We hash each block's
// 64 characters (its 16 "tokens") and chain it to the previous hash; the root
// of the chain carries the LoRA adapter, as vLLM's extra keys do.
//
// Hash values are integers below 2^53 so they are exact JavaScript numbers and
// cheap Map keys. Collisions are ~n²/2^54: about 1e-3 for the 4 million blocks
// of the shared trace, and a collision only turns one miss into one hit.

/** Characters per token: the usual ~4 for English BPE vocabularies. */
export const CHARS_PER_TOKEN = 4;
/** vLLM's default KV block size in tokens (CacheConfig.block_size = 16 on CUDA). */
export const BLOCK_TOKENS = 16;
export const BLOCK_CHARS = BLOCK_TOKENS * CHARS_PER_TOKEN;

const TWO32 = 4294967296;

/** Tokens the FIXED tokenizer sees in a text of `chars` characters. */
export function tokensOf(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

/** murmur3's 32-bit finalizer: full avalanche of one word. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Two 32-bit lanes folded into one integer < 2^53. */
function join(hi: number, lo: number): number {
  return (hi >>> 11) * TWO32 + (lo >>> 0);
}

/**
 * Content hash of text[start, end): two independent multiplicative lanes over
 * the UTF-16 code units, finalized. Only block content goes in; the chain is
 * applied by chainHash.
 */
export function contentHash(text: string, start: number, end: number): number {
  let a = 0x9747b28c ^ (end - start);
  let b = 0x2545f491;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x5bd1e995);
    a ^= a >>> 15;
    b = Math.imul(b + c, 0x27d4eb2f);
    b ^= b >>> 13;
  }
  return join(fmix32(a), fmix32(b ^ a));
}

/** hash(block i) = H(hash(block i-1), content hash of block i). */
export function chainHash(parent: number, content: number): number {
  const pLo = parent % TWO32;
  const pHi = Math.floor(parent / TWO32);
  const cLo = content % TWO32;
  const cHi = Math.floor(content / TWO32);
  const a = fmix32((Math.imul(pLo ^ 0x6a09e667, 0x9e3779b1) + cLo) | 0);
  const b = fmix32((Math.imul(pHi ^ cHi ^ 0xbb67ae85, 0x85ebca77) + a) | 0);
  return join(fmix32(a ^ Math.imul(cHi, 0xc2b2ae3d)), b);
}

/**
 * The parent of a request's first block. Base-model requests share one root;
 * each LoRA adapter gets its own, because vLLM adds the adapter name to the
 * block hash's extra keys: different adapters never share KV blocks.
 */
export function rootHash(adapter: string | null): number {
  const key = adapter ?? "";
  return contentHash("\u0001root\u0001" + key, 0, key.length + 6);
}

/**
 * Chained hashes of every full block of text under the FIXED tokenizer
 * (64-character blocks; a partial last block has none, as in vLLM).
 */
export function blockHashes(text: string, adapter: string | null): Float64Array {
  const n = Math.floor(text.length / BLOCK_CHARS);
  const out = new Float64Array(n);
  let h = rootHash(adapter);
  for (let i = 0; i < n; i++) {
    h = chainHash(h, contentHash(text, i * BLOCK_CHARS, (i + 1) * BLOCK_CHARS));
    out[i] = h;
  }
  return out;
}

// ---- tokenizers ----

export type TokenizerName = "fixed" | "varying";

/** How the simulated server turns a prompt into tokens, hence into 16-token KV blocks. */
export interface Tokenizer {
  readonly name: TokenizerName;
  /** Character offset just past each token, ascending; length = token count. */
  tokenEnds(text: string): Int32Array;
  count(text: string): number;
  /** Chained hashes of every full 16-token block (a partial last block has none). */
  blockHashes(text: string, adapter: string | null): Float64Array;
}

/** Chained block hashes from token end offsets: block b spans tokens [16b, 16b + 16). */
export function blockHashesFromEnds(text: string, ends: Int32Array, adapter: string | null): Float64Array {
  const n = Math.floor(ends.length / BLOCK_TOKENS);
  const out = new Float64Array(n);
  let h = rootHash(adapter);
  let start = 0;
  for (let i = 0; i < n; i++) {
    const end = ends[(i + 1) * BLOCK_TOKENS - 1];
    h = chainHash(h, contentHash(text, start, end));
    out[i] = h;
    start = end;
  }
  return out;
}

export const FIXED_TOKENIZER: Tokenizer = Object.freeze({
  name: "fixed" as const,
  tokenEnds(text: string): Int32Array {
    const n = tokensOf(text.length);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.min(text.length, (i + 1) * CHARS_PER_TOKEN);
    return out;
  },
  count: (text: string): number => tokensOf(text.length),
  blockHashes,
});

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

/**
 * Tokens of one piece (a run of non-space characters with the whitespace that
 * follows it) under the VARYING model: round(length / c), at least 1, where
 * c ∈ [2.5, 6.5) characters per token is fixed per piece by a hash of its text.
 * So a word always costs the same (a tokenizer is a function), short words
 * are one token, long ones several, and the mean over English-like filler is
 * ≈ 4.1 characters per token (tests/sim/tokenizer.test.ts measures it).
 */
export function pieceTokens(text: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  const charsPerToken = 2.5 + (fmix32(h) % 4096) / 1024;
  return Math.max(1, Math.round((end - start) / charsPerToken));
}

/** End of the piece starting at `start`: past its non-space run and the whitespace after it. */
function pieceEnd(text: string, start: number): number {
  let i = start;
  while (i < text.length && !isSpace(text.charCodeAt(i))) i++;
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

export const VARYING_TOKENIZER: Tokenizer = Object.freeze({
  name: "varying" as const,
  tokenEnds(text: string): Int32Array {
    let out = new Int32Array(Math.ceil(text.length / 3) + 8);
    let n = 0;
    for (let s = 0; s < text.length; ) {
      const e = pieceEnd(text, s);
      const t = pieceTokens(text, s, e);
      if (n + t > out.length) {
        const grown = new Int32Array(Math.max(out.length * 2, n + t));
        grown.set(out);
        out = grown;
      }
      // A piece's tokens split it evenly, so a shared prefix of whole pieces has identical token boundaries.
      for (let k = 1; k <= t; k++) out[n++] = s + Math.round(((e - s) * k) / t);
      s = e;
    }
    return out.slice(0, n);
  },
  count(text: string): number {
    let n = 0;
    for (let s = 0; s < text.length; ) {
      const e = pieceEnd(text, s);
      n += pieceTokens(text, s, e);
      s = e;
    }
    return n;
  },
  blockHashes(text: string, adapter: string | null): Float64Array {
    return blockHashesFromEnds(text, VARYING_TOKENIZER.tokenEnds(text), adapter);
  },
});

/** The evaluator's and the HTTP servers' default: the realistic one. */
export const DEFAULT_TOKENIZER: TokenizerName = "varying";

export function tokenizer(name: TokenizerName = DEFAULT_TOKENIZER): Tokenizer {
  if (name === "fixed") return FIXED_TOKENIZER;
  if (name === "varying") return VARYING_TOKENIZER;
  throw new Error(`unknown tokenizer ${String(name)}; fixed or varying`);
}
