import { BlockChain, xxh64, xxh64String } from "../../assembly/router/hash";

// Vectors computed with the xxhash-wasm npm package (the reference C code
// compiled to Wasm), so a wrong round, prime or tail step fails here.
function hashOf(s: string, seed: u64): u64 {
  return xxh64String(s, seed);
}

describe("xxh64", () => {
  it("matches the reference for short inputs and the tail paths", () => {
    expect<u64>(hashOf("", 0)).toBe(0xef46db3751d8e999);
    expect<u64>(hashOf("a", 0)).toBe(0xd24ec4f1a98c6e5b);
    expect<u64>(hashOf("abc", 0)).toBe(0x44bc2cf5ad770999);
    expect<u64>(hashOf("Nobody inspects the spammish repetition", 0)).toBe(0xfbcea83c8a378bf1);
  });

  it("matches the reference across the 32-byte stripe loop and seeds", () => {
    expect<u64>(hashOf("x".repeat(64), 0)).toBe(0xa97161d5402f516e);
    expect<u64>(hashOf("0123456789abcdef".repeat(4) + "tail-bytes!", 123456789)).toBe(0x85b894acaee6925d);
    expect<u64>(hashOf("é".repeat(40), 0xffffffffffffffff)).toBe(0xa103f403382c8337);
  });

  it("reads only the given range", () => {
    const buf = String.UTF8.encode("abcXYZ");
    expect<u64>(xxh64(changetype<usize>(buf), 3, 0)).toBe(0x44bc2cf5ad770999);
  });
});

/** The chained hashes of `text` cut into blocks of `size` bytes, seeded with `seed`. */
function chainOf(text: string, size: i32, seed: u64): u64[] {
  const bytes = String.UTF8.encode(text);
  const chain = new BlockChain();
  chain.start(seed);
  const out: u64[] = [];
  for (let i = 0; i + size <= bytes.byteLength; i += size) out.push(chain.next(changetype<usize>(bytes) + <usize>i, <usize>size));
  return out;
}

const BASE = "0123456789abcdef".repeat(16); // 256 bytes

describe("BlockChain", () => {
  it("gives a block's hash from the seed and every byte up to its end, nothing after", () => {
    const a = chainOf(BASE, 64, 7);
    const longer = chainOf(BASE + "x".repeat(64), 64, 7);
    expect<i32>(a.length).toBe(4);
    for (let i = 0; i < 4; i++) expect<u64>(longer[i]).toBe(a[i]);
    // One byte changed in the second block: the first hash stays, every later one moves.
    const changed = chainOf(BASE.substring(0, 100) + "#" + BASE.substring(101), 64, 7);
    expect<u64>(changed[0]).toBe(a[0]);
    for (let i = 1; i < 4; i++) expect<bool>(changed[i] != a[i]).toBe(true);
    // Another seed (model) moves them all.
    const other = chainOf(BASE, 64, 8);
    for (let i = 0; i < 4; i++) expect<bool>(other[i] != a[i]).toBe(true);
  });

  it("tells equal blocks apart by what came before them", () => {
    const h = chainOf("z".repeat(256), 64, 0);
    for (let i = 1; i < 4; i++) expect<bool>(h[i] != h[i - 1]).toBe(true);
  });

  it("chains block sizes that are not a multiple of 32 bytes, every byte counting", () => {
    for (let size = 8; size <= 72; size += 5) {
      const h = chainOf(BASE, size, 3);
      const last = BASE.length / size - 1;
      // Change the last byte of the last whole block: only that block's hash moves.
      const at = (last + 1) * size - 1;
      const changed = chainOf(BASE.substring(0, at) + "#" + BASE.substring(at + 1), size, 3);
      for (let i = 0; i < last; i++) expect<u64>(changed[i]).toBe(h[i]);
      expect<bool>(changed[last] != h[last]).toBe(true);
    }
  });

  it("absorbs many blocks at once with the block-by-block hashes, every stride-th written and the first returned", () => {
    const text = BASE.repeat(4); // 1024 bytes
    const bytes = String.UTF8.encode(text);
    const p = changetype<usize>(bytes);
    const out = new StaticArray<u64>(1024);
    const outPtr = changetype<usize>(out);
    // Multiples of 32 bytes take the lanes-in-locals loop; the others block by block.
    const sizes: i32[] = [32, 64, 96, 128, 8, 40, 72];
    const strides: i32[] = [1, 3, 16];
    for (let s = 0; s < sizes.length; s++) {
      const size = sizes[s];
      const each = chainOf(text, size, 5);
      for (let t = 0; t < strides.length; t++) {
        const stride = strides[t];
        for (let blocks = 0; blocks <= min(each.length, 20); blocks += blocks < 4 ? 1 : 7) {
          const chain = new BlockChain();
          chain.start(5);
          for (let i = 0; i < 1024; i++) out[i] = 0xDEAD;
          const first = chain.absorbBlocks(p, blocks, <usize>size, stride, outPtr);
          expect<u64>(first).toBe(blocks > 0 ? each[0] : 0);
          const written = blocks / stride;
          for (let i = 0; i < written; i++) expect<u64>(out[i]).toBe(each[(i + 1) * stride - 1]);
          expect<u64>(out[written]).toBe(0xDEAD); // nothing past them
          // The chain stands after the last block: the next one hashes as block by block.
          if (blocks < each.length) expect<u64>(chain.next(p + <usize>(blocks * size), <usize>size)).toBe(each[blocks]);
        }
      }
    }
  });

  it("carries on from a copied state as from the original", () => {
    const bytes = String.UTF8.encode(BASE);
    const p = changetype<usize>(bytes);
    const a = new BlockChain();
    a.start(11);
    a.next(p, 64);
    const b = new BlockChain();
    b.copyFrom(a);
    expect<u64>(b.next(p + 64, 64)).toBe(a.next(p + 64, 64));
  });
});
