// The proxy-wasm "pairs" wire format for header maps, byte for byte as cpp-host
// src/pairs_util.cc pairsSize / marshalPairs / toPairs:
//
//   u32 N | N x { u32 key_len, u32 value_len } | N x { key, 0x00, value, 0x00 }
//
// All integers little-endian. Decoding is strict: anything over the limits,
// overrunning, missing a NUL or not ending exactly at the end decodes to an
// empty list (toPairs returns {}), never an error.
import { PAIRS_MAX_BYTES, PAIRS_MAX_COUNT } from "./limits.ts";

export type Pair = [string, string];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** cpp-host pairs_util.cc pairsSize + marshalPairs. */
export function encodePairs(pairs: readonly (readonly [string, string])[]): Uint8Array {
  const encoded = pairs.map(([k, v]) => [encoder.encode(k), encoder.encode(v)] as const);
  let size = 4;
  for (const [k, v] of encoded) size += 8 + k.length + 1 + v.length + 1;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, encoded.length, true);
  let sizes = 4;
  let data = 4 + 8 * encoded.length;
  for (const [k, v] of encoded) {
    view.setUint32(sizes, k.length, true);
    view.setUint32(sizes + 4, v.length, true);
    sizes += 8;
    out.set(k, data);
    data += k.length + 1; // NUL already zero
    out.set(v, data);
    data += v.length + 1;
  }
  return out;
}

/** cpp-host pairs_util.cc toPairs: malformed or oversized input is an empty list. */
export function decodePairs(buffer: Uint8Array): Pair[] {
  if (buffer.length > PAIRS_MAX_BYTES) return [];
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const end = buffer.length;
  if (4 > end) return [];
  const count = view.getUint32(0, true);
  if (count > PAIRS_MAX_COUNT) return [];
  let pos = 4;
  if (pos + count * 8 > end) return [];
  const sizes: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    sizes.push([view.getUint32(pos, true), view.getUint32(pos + 4, true)]);
    pos += 8;
  }
  const pairs: Pair[] = [];
  for (const [keyLen, valueLen] of sizes) {
    if (pos + keyLen + 1 > end) return [];
    const key = decoder.decode(buffer.subarray(pos, pos + keyLen));
    pos += keyLen;
    if (buffer[pos++] !== 0) return [];
    if (pos + valueLen + 1 > end) return [];
    const value = decoder.decode(buffer.subarray(pos, pos + valueLen));
    pos += valueLen;
    if (buffer[pos++] !== 0) return [];
    pairs.push([key, value]);
  }
  if (pos !== end) return [];
  return pairs;
}
