// A growable byte buffer in raw linear memory with a hard cap, used for the
// canonical prompt and other per-request scratch. It is allocated once and
// reused for every request on the VM, so the per-request path never allocates:
// `reset()` only rewinds. Writes past `cap` are dropped (and counted in
// `dropped`), which is how the prompt stays bounded by maxPrefixBlocks × block size.

/** Where ByteSink.writeCodePoint encodes a code point that may not fit whole. */
const CODE_POINT_SCRATCH: usize = memory.data(4);

/** Writes code point `cp` as UTF-8 at `to` (up to 4 bytes); returns the position after it. */
export function storeUtf8(to: usize, cp: u32): usize {
  if (cp < 0x80) {
    store<u8>(to, <u8>cp);
    return to + 1;
  }
  if (cp < 0x800) {
    store<u8>(to, <u8>(0xC0 | (cp >> 6)));
    store<u8>(to + 1, <u8>(0x80 | (cp & 0x3F)));
    return to + 2;
  }
  if (cp < 0x10000) {
    store<u8>(to, <u8>(0xE0 | (cp >> 12)));
    store<u8>(to + 1, <u8>(0x80 | ((cp >> 6) & 0x3F)));
    store<u8>(to + 2, <u8>(0x80 | (cp & 0x3F)));
    return to + 3;
  }
  store<u8>(to, <u8>(0xF0 | (cp >> 18)));
  store<u8>(to + 1, <u8>(0x80 | ((cp >> 12) & 0x3F)));
  store<u8>(to + 2, <u8>(0x80 | ((cp >> 6) & 0x3F)));
  store<u8>(to + 3, <u8>(0x80 | (cp & 0x3F)));
  return to + 4;
}

@final
export class ByteSink {
  ptr: usize = 0;
  len: usize = 0;
  capacity: usize = 0;
  /** Hard limit on len; bytes written beyond it are dropped. */
  cap: usize = 0;
  dropped: usize = 0;

  constructor(cap: usize) {
    this.setCap(cap);
  }

  setCap(cap: usize): void {
    this.cap = cap;
    if (this.capacity < cap) {
      // Reserve the full cap up front: the buffer is bounded and reused.
      this.ptr = this.ptr == 0 ? heap.alloc(cap) : heap.realloc(this.ptr, cap);
      this.capacity = cap;
    }
    this.reset();
  }

  /**
   * Returns the buffer to the heap: it lives outside the garbage collector, so
   * an owner that goes away (a parse, a root context) must free it. Afterwards
   * the sink holds nothing and drops every write.
   */
  free(): void {
    if (this.ptr != 0) heap.free(this.ptr);
    this.ptr = 0;
    this.capacity = 0;
    this.cap = 0;
    this.reset();
  }

  // @ts-ignore: decorator
  @inline reset(): void {
    this.len = 0;
    this.dropped = 0;
  }

  // @ts-ignore: decorator
  @inline full(): bool {
    return this.len >= this.cap;
  }

  // @ts-ignore: decorator
  @inline writeByte(b: u32): void {
    if (this.len < this.cap) {
      store<u8>(this.ptr + this.len, <u8>b);
      this.len++;
    } else {
      this.dropped++;
    }
  }

  writeBytes(src: usize, n: usize): void {
    const room = this.cap - this.len;
    const take = n < room ? n : room;
    memory.copy(this.ptr + this.len, src, take);
    this.len += take;
    this.dropped += n - take;
  }

  /**
   * Appends [src, end) up to its first `stop` byte and returns where it
   * stopped (`end` if there is none). Sixteen bytes at a time with SIMD: each
   * lane is stored before it is tested, so the bytes after a stop byte land
   * past `len`, where the next write goes over them. The last few bytes, and a
   * sink with under 16 bytes of room, go byte by byte (past cap dropped).
   */
  writeUntil(src: usize, end: usize, stop: u8): usize {
    const stops = i8x16.splat(<i8>stop);
    const dst = this.ptr + this.len;
    const room = this.cap - this.len;
    let p = src;
    while (p + 16 <= end && p - src + 16 <= room) {
      const lane = v128.load(p);
      v128.store(dst + (p - src), lane);
      const bits = i8x16.bitmask(i8x16.eq(lane, stops));
      if (bits != 0) {
        p += <usize>ctz<u32>(bits);
        this.len += p - src;
        return p;
      }
      p += 16;
    }
    this.len += p - src;
    let q = p;
    while (q < end && load<u8>(q) != stop) q++;
    this.writeBytes(p, q - p);
    return q;
  }

  /** Appends a code point as UTF-8 (bytes past the cap dropped and counted). */
  writeCodePoint(cp: u32): void {
    if (this.cap - this.len >= 4) {
      this.len = storeUtf8(this.ptr + this.len, cp) - this.ptr;
      return;
    }
    // Near the cap: encoded aside, then byte by byte.
    const n = storeUtf8(CODE_POINT_SCRATCH, cp) - CODE_POINT_SCRATCH;
    for (let i: usize = 0; i < n; i++) this.writeByte(load<u8>(CODE_POINT_SCRATCH + i));
  }

  equals(other: ByteSink): bool {
    return this.len == other.len && memory.compare(this.ptr, other.ptr, this.len) == 0;
  }

  toString(): string {
    return String.UTF8.decodeUnsafe(this.ptr, this.len);
  }
}
