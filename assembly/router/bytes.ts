// A growable byte buffer in raw linear memory with a hard cap, used for the
// canonical prompt and other per-request scratch. It is allocated once and
// reused for every request on the VM, so the per-request path never allocates:
// `reset()` only rewinds. Writes past `cap` are dropped (and counted in
// `dropped`), which is how the prompt stays bounded by maxPrefixBlocks × block size.

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

  /** Appends a code point as UTF-8. */
  writeCodePoint(cp: u32): void {
    if (cp < 0x80) {
      this.writeByte(cp);
    } else if (cp < 0x800) {
      this.writeByte(0xC0 | (cp >> 6));
      this.writeByte(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      this.writeByte(0xE0 | (cp >> 12));
      this.writeByte(0x80 | ((cp >> 6) & 0x3F));
      this.writeByte(0x80 | (cp & 0x3F));
    } else {
      this.writeByte(0xF0 | (cp >> 18));
      this.writeByte(0x80 | ((cp >> 12) & 0x3F));
      this.writeByte(0x80 | ((cp >> 6) & 0x3F));
      this.writeByte(0x80 | (cp & 0x3F));
    }
  }

  equals(other: ByteSink): bool {
    return this.len == other.len && memory.compare(this.ptr, other.ptr, this.len) == 0;
  }

  toString(): string {
    return String.UTF8.decodeUnsafe(this.ptr, this.len);
  }
}
