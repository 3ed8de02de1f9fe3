// Token and block arithmetic of the simulated model server, and the chained
// block hashes its prefix cache is keyed by. Owns: the tokenizer model (4
// characters per token), the block geometry (16 tokens = 64 characters) and the
// hash chain. Must not: know about requests, engines or routing; the replay,
// the HTTP server and the oracle all reach block hashes through this file so
// they agree bit for bit.
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

/** Tokens the simulated tokenizer sees in a text. */
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

/** Chained hashes of every full block of text (a partial last block has none, as in vLLM). */
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
