// Byte-level mutation shared by the three parsers' fuzzers: the classic moves of
// coverage-less fuzzers (bit flips, interesting bytes, token insertion,
// deletion, duplication, splicing, truncation, blow-up by repetition), applied
// a few at a time to a valid input so most results stay close to the grammar.
// It knows nothing of JSON or Prometheus beyond the token lists callers give.
import type { Rng } from "./rng.ts";

const encoder = new TextEncoder();

/** Bytes that matter to some parser, plus the UTF-8 troublemakers. */
const INTERESTING = [
  0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x22, 0x23, 0x2c, 0x2d, 0x2e, 0x30, 0x3a, 0x3d, 0x45, 0x5b, 0x5c, 0x5d,
  0x65, 0x75, 0x7b, 0x7d, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xed, 0xef, 0xf0, 0xf4, 0xf8, 0xfe, 0xff,
];

export interface MutationOptions {
  /** Tokens worth inserting (grammar fragments, escapes, keywords). */
  tokens: readonly string[];
  /** Other inputs to splice from. */
  pool?: readonly Uint8Array[];
  /** Upper bound on the result's size. */
  maxBytes: number;
}

/** Applies 1–8 random mutations to a copy of `input`. */
export function mutate(rng: Rng, input: Uint8Array, options: MutationOptions): Uint8Array {
  let out = input;
  const rounds = 1 + rng.int(rng.chance(0.7) ? 3 : 8);
  for (let i = 0; i < rounds; i++) out = mutateOnce(rng, out, options);
  return out.length > options.maxBytes ? out.subarray(0, options.maxBytes) : out;
}

function mutateOnce(rng: Rng, b: Uint8Array, o: MutationOptions): Uint8Array {
  const n = b.length;
  const at = rng.int(n + 1);
  switch (rng.int(11)) {
    case 0: { // flip a bit
      if (n === 0) return b;
      const c = b.slice();
      c[rng.int(n)] ^= 1 << rng.int(8);
      return c;
    }
    case 1: { // overwrite with an interesting byte
      if (n === 0) return b;
      const c = b.slice();
      c[rng.int(n)] = rng.pick(INTERESTING);
      return c;
    }
    case 2: // insert an interesting byte
      return concat(b.subarray(0, at), Uint8Array.of(rng.pick(INTERESTING)), b.subarray(at));
    case 3: // insert a token
    case 4:
      return concat(b.subarray(0, at), encoder.encode(rng.pick(o.tokens)), b.subarray(at));
    case 5: { // delete a range
      const len = rng.int(Math.min(64, n - at) + 1);
      return concat(b.subarray(0, at), b.subarray(at + len));
    }
    case 6: { // duplicate a range
      const len = rng.int(Math.min(256, n - at) + 1);
      return concat(b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len));
    }
    case 7: { // splice: our head, another input's tail
      const other = o.pool && o.pool.length > 0 ? rng.pick(o.pool) : b;
      return concat(b.subarray(0, at), other.subarray(rng.int(other.length + 1)));
    }
    case 8: // truncate
      return b.subarray(0, at);
    case 9: { // swap two ranges' order
      const cut = at + rng.int(n - at + 1);
      return concat(b.subarray(cut), b.subarray(at, cut), b.subarray(0, at));
    }
    default: { // blow up: repeat a short range many times
      const len = 1 + rng.int(Math.min(16, Math.max(1, n - at)));
      const piece = n > 0 ? b.subarray(Math.min(at, n - 1), Math.min(at, n - 1) + len) : encoder.encode(rng.pick(o.tokens));
      const times = rng.chance(0.9) ? rng.range(2, 64) : rng.range(1000, Math.max(1000, Math.floor(o.maxBytes / Math.max(1, piece.length) / 4)));
      const out = new Uint8Array(n + piece.length * times);
      out.set(b.subarray(0, at), 0);
      for (let i = 0; i < times; i++) out.set(piece, at + i * piece.length);
      out.set(b.subarray(at), at + piece.length * times);
      return out;
    }
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Random bytes: sometimes pure noise, sometimes noise drawn from the token alphabet. */
export function noise(rng: Rng, tokens: readonly string[], maxBytes: number): Uint8Array {
  const n = rng.size(256, maxBytes);
  if (rng.chance(0.5)) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = rng.chance(0.3) ? rng.pick(INTERESTING) : rng.int(256);
    return out;
  }
  const out = new Uint8Array(n);
  let total = 0;
  while (total < n) {
    const t = encoder.encode(rng.pick(tokens)).subarray(0, n - total);
    out.set(t, total);
    total += t.length;
  }
  return out;
}
