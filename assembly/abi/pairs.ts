// Serializes a header map the way proxy-wasm hosts read one (cpp-host
// src/pairs_util.cc): a u32 count, then (key length, value length) u32 pairs,
// then every key and value each followed by a NUL byte. Little-endian.
//
//   | n | k0len v0len | k1len v1len | … | k0 \0 v0 \0 | k1 \0 v1 \0 | …
//
// Used for proxy_http_call headers. Built once per distinct header set (at
// configure time), not per call.

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
