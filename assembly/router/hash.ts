// xxHash64 over raw linear memory, the prefix index's block chain built on its
// rounds, and the small mixers built on it.
//
// xxHash64 is Yann Collet's public-domain-specified algorithm
// (github.com/Cyan4973/xxHash, doc/xxhash_spec.md); this is an implementation
// of that specification, reading 8 bytes at a time with unaligned loads.
// No allocation: it reads [ptr, ptr+len) and returns a u64.
//
// The block chain: the prompt is cut into fixed-size blocks, and block i's
// hash must depend on the model and on every byte up to the end of block i,
// so that equal hashes mean equal prefixes. The reference router gets this by
// hashing each block with xxHash64 seeded with the previous block's hash
// (BRIEF). That makes every block pay xxHash64's whole setup and finalization
// (four lane merges and an avalanche) on one serial dependency: 16 KB cost
// about five single passes over the same bytes (npm run bench:profile). Here
// the chain is carried in xxHash64's four lanes instead: they are seeded with
// the model once and run over the whole prompt, and block i's hash is a
// digest of the lanes after block i. One pass, the lanes' dependency chains
// never wait for a digest, and the chaining value is 256 bits instead of 64.

// @ts-ignore: decorator
@inline const P1: u64 = 0x9E3779B185EBCA87;
// @ts-ignore: decorator
@inline const P2: u64 = 0xC2B2AE3D27D4EB4F;
// @ts-ignore: decorator
@inline const P3: u64 = 0x165667B19E3779F9;
// @ts-ignore: decorator
@inline const P4: u64 = 0x85EBCA77C2B2AE63;
// @ts-ignore: decorator
@inline const P5: u64 = 0x27D4EB2F165667C5;

// @ts-ignore: decorator
@inline function round(acc: u64, lane: u64): u64 {
  return rotl<u64>(acc + lane * P2, 31) * P1;
}

// @ts-ignore: decorator
@inline function mergeRound(acc: u64, val: u64): u64 {
  return (acc ^ round(0, val)) * P1 + P4;
}

// @ts-ignore: decorator
@inline function avalanche(h: u64): u64 {
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

export function xxh64(ptr: usize, len: usize, seed: u64): u64 {
  const end = ptr + len;
  let p = ptr;
  let h: u64;
  if (len >= 32) {
    let v1 = seed + P1 + P2;
    let v2 = seed + P2;
    let v3 = seed;
    let v4 = seed - P1;
    const limit = end - 32;
    do {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    } while (p <= limit);
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = seed + P5;
  }
  h += <u64>len;
  while (p + 8 <= end) {
    h ^= round(0, load<u64>(p));
    h = rotl<u64>(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= <u64>load<u32>(p) * P1;
    h = rotl<u64>(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= <u64>load<u8>(p) * P5;
    h = rotl<u64>(h, 11) * P1;
    p++;
  }
  return avalanche(h);
}

/** A chain's hash from its four lanes: xxHash64's lane merge and avalanche. */
// @ts-ignore: decorator
@inline function lanesDigest(v1: u64, v2: u64, v3: u64, v4: u64): u64 {
  return avalanche(rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18));
}

/** The running state of a block chain: xxHash64's four accumulators, carried from block to block. */
@final
export class BlockChain {
  v1: u64 = 0;
  v2: u64 = 0;
  v3: u64 = 0;
  v4: u64 = 0;

  /** Starts a chain seeded with `seed` (the model's hash), as xxHash64 starts its lanes. */
  start(seed: u64): void {
    this.v1 = seed + P1 + P2;
    this.v2 = seed + P2;
    this.v3 = seed;
    this.v4 = seed - P1;
  }

  copyFrom(other: BlockChain): void {
    this.v1 = other.v1;
    this.v2 = other.v2;
    this.v3 = other.v3;
    this.v4 = other.v4;
  }

  /**
   * Runs the lanes over the next block [ptr, ptr+len). A block size that is
   * not a multiple of 32 bytes (hashBlockSize may be any of 8-4096) puts its
   * last words into the lanes in order and its last bytes, packed, into the
   * fourth.
   */
  // @ts-ignore: decorator
  @inline absorb(ptr: usize, len: usize): void {
    let v1 = this.v1;
    let v2 = this.v2;
    let v3 = this.v3;
    let v4 = this.v4;
    const end = ptr + len;
    let p = ptr;
    while (p + 32 <= end) {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    }
    // Fewer than 32 bytes are left: at most three whole words.
    if (p + 8 <= end) {
      v1 = round(v1, load<u64>(p));
      p += 8;
    }
    if (p + 8 <= end) {
      v2 = round(v2, load<u64>(p));
      p += 8;
    }
    if (p + 8 <= end) {
      v3 = round(v3, load<u64>(p));
      p += 8;
    }
    if (p < end) {
      let tail: u64 = 0;
      for (let shift: u64 = 0; p < end; p++, shift += 8) tail |= <u64>load<u8>(p) << shift;
      v4 = round(v4, tail);
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
  }

  /**
   * The chained hash of the last block absorbed: a digest of everything since
   * start(). Only the blocks the index keeps need one; the chain itself runs
   * in the lanes.
   */
  // @ts-ignore: decorator
  @inline digest(): u64 {
    return lanesDigest(this.v1, this.v2, this.v3, this.v4);
  }

  /**
   * Absorbs `blocks` blocks of `blockSize` bytes from `ptr` and writes the
   * digest after every `stride`-th block to `out` (a u64 each, in order);
   * returns the digest after the first block (0 for none). The same hashes
   * as absorb() and digest() block by block, but with a block size that is a
   * multiple of 32 bytes (the default 64 is) the lanes stay in locals from
   * the first block to the last: block by block, each absorb stored them back
   * into the object and the next loaded them again, and hashing a prompt so
   * cost about twice one xxHash64 pass over it (npm run bench:profile).
   */
  absorbBlocks(ptr: usize, blocks: i32, blockSize: usize, stride: i32, out: usize): u64 {
    if (blocks <= 0) return 0;
    if ((blockSize & 31) != 0 || blockSize == 0) return this.absorbBlocksOneByOne(ptr, blocks, blockSize, stride, out);
    let v1 = this.v1;
    let v2 = this.v2;
    let v3 = this.v3;
    let v4 = this.v4;
    let p = ptr;
    let first: u64 = 0;
    let k = 0;          // blocks since the last digest written to `out`
    let left = blocks;
    // Runs of blocks up to the next digest anyone needs, so that the loop
    // keeps no per-block count: the first block alone (its digest is the
    // return value), then up to each stride-th block. Kept per block, that
    // count cost half again the rounds' instructions (npm run bench:icount).
    let run = 1;
    while (true) {
      const runEnd = p + <usize>run * blockSize;
      do {
        v1 = round(v1, load<u64>(p));
        v2 = round(v2, load<u64>(p, 8));
        v3 = round(v3, load<u64>(p, 16));
        v4 = round(v4, load<u64>(p, 24));
        p += 32;
      } while (p < runEnd);
      if (left == blocks) first = lanesDigest(v1, v2, v3, v4);
      left -= run;
      k += run;
      if (k == stride) {
        store<u64>(out, lanesDigest(v1, v2, v3, v4));
        out += 8;
        k = 0;
      }
      if (left == 0) break;
      run = min(stride - k, left);
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
    return first;
  }

  private absorbBlocksOneByOne(ptr: usize, blocks: i32, blockSize: usize, stride: i32, out: usize): u64 {
    let first: u64 = 0;
    for (let i = 0, k = 1; i < blocks; i++, k++) {
      this.absorb(ptr + <usize>i * blockSize, blockSize);
      if (i == 0) first = this.digest();
      if (k == stride) {
        store<u64>(out, this.digest());
        out += 8;
        k = 0;
      }
    }
    return first;
  }

  /** absorb() then digest(). */
  next(ptr: usize, len: usize): u64 {
    this.absorb(ptr, len);
    return this.digest();
  }
}

/** Hashes an AssemblyScript string's UTF-8 bytes (configuration time only: it allocates). */
export function xxh64String(s: string, seed: u64 = 0): u64 {
  const utf8 = String.UTF8.encode(s);
  return xxh64(changetype<usize>(utf8), utf8.byteLength, seed);
}

/** A 64-bit finalizer (SplitMix64's) for combining two hashes into a well-mixed one. */
// @ts-ignore: decorator
@inline export function mix64(x: u64): u64 {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
  return x ^ (x >> 31);
}
