// Serializes a header map the way proxy-wasm hosts read one (cpp-host
// src/pairs_util.cc): a u32 count, then (key length, value length) u32 pairs,
// then every key and value each followed by a NUL byte. Little-endian.
//
//   | n | k0len v0len | k1len v1len | … | k0 \0 v0 \0 | k1 \0 v1 \0 | …
//
// encodePairs builds the proxy_http_call headers, once per distinct header set
// (at configure time), not per call. PairsReader walks what the host returns
// from proxy_get_header_map_pairs, checking every length against the buffer,
// so a malformed map ends the walk instead of reading past it.

export function encodePairs(keys: string[], values: string[]): ArrayBuffer {
  const n = keys.length;
  const k = new Array<ArrayBuffer>(n);
  const v = new Array<ArrayBuffer>(n);
  let size = 4;
  for (let i = 0; i < n; i++) {
    k[i] = String.UTF8.encode(keys[i]);
    v[i] = String.UTF8.encode(values[i]);
    size += 8 + k[i].byteLength + 1 + v[i].byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, n);
  let sizes = base + 4;
  let data = base + 4 + 8 * <usize>n;
  for (let i = 0; i < n; i++) {
    store<u32>(sizes, k[i].byteLength);
    store<u32>(sizes, v[i].byteLength, 4);
    sizes += 8;
    memory.copy(data, changetype<usize>(k[i]), k[i].byteLength);
    data += k[i].byteLength;
    store<u8>(data++, 0);
    memory.copy(data, changetype<usize>(v[i]), v[i].byteLength);
    data += v[i].byteLength;
    store<u8>(data++, 0);
  }
  return out;
}

/** Walks a serialized header map in place; key and value point into the buffer, without their NUL. */
@final
export class PairsReader {
  key: usize = 0;
  keyLength: usize = 0;
  value: usize = 0;
  valueLength: usize = 0;
  /** The walk ended at a length that runs past the buffer: the map is malformed. */
  malformed: bool = false;
  private sizes: usize = 0;
  private data: usize = 0;
  private end: usize = 0;
  private left: u32 = 0;

  /** Starts at the map in [ptr, ptr+size); false (and no pairs) if its count does not fit the buffer. */
  reset(ptr: usize, size: usize): bool {
    this.left = 0;
    this.malformed = true;
    if (size < 4) return false;
    const n = load<u32>(ptr);
    const data = <u64>4 + <u64>8 * <u64>n;
    if (data > <u64>size) return false;
    this.sizes = ptr + 4;
    this.data = ptr + <usize>data;
    this.end = ptr + size;
    this.left = n;
    this.malformed = false;
    return true;
  }

  /** Moves to the next pair; false at the end, or where a length runs past the buffer (then `malformed`). */
  next(): bool {
    if (this.left == 0) return false;
    const keyLength = <usize>load<u32>(this.sizes);
    const valueLength = <usize>load<u32>(this.sizes, 4);
    // Each of key and value is followed by a NUL: both must fit before the end.
    if (<u64>keyLength + <u64>valueLength + 2 > <u64>(this.end - this.data)) {
      this.left = 0;
      this.malformed = true;
      return false;
    }
    this.key = this.data;
    this.keyLength = keyLength;
    this.value = this.data + keyLength + 1;
    this.valueLength = valueLength;
    this.data = this.value + valueLength + 1;
    this.sizes += 8;
    this.left--;
    return true;
  }
}
