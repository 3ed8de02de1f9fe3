// The prefix index as one VM holds it: which endpoint holds which block hashes,
// with a per-endpoint LRU that mimics the model server's own eviction.
//
// One node per (block hash, endpoint) pair, in a pool of fixed-size records in
// raw linear memory, threaded on two lists: the hash bucket chain (so a lookup
// finds every endpoint holding a hash) and the endpoint's LRU list. Lookups and
// updates allocate nothing; the pool grows by doubling (heap.realloc, nodes are
// referenced by index) up to the sum of the endpoints' capacities, which bounds
// memory at NODE_BYTES × Σcapacity plus the bucket array.
//
// Node layout (NODE_BYTES = 24, index 0 is the null sentinel):
//
//   +0        +8          +12       +16       +20       +22
//   | hash u64 | chain u32 | prev u32 | next u32 | ep u16 | pad |
//     chain: next node in the same bucket, or next free node
//     prev/next: the endpoint's LRU list (head = most recently used)
//     ep: endpoint index, FREE_ENDPOINT when on the free list
//
// This file knows nothing of Envoy: shared-data replication is journal.ts's job.

// @ts-ignore: decorator
@inline const NODE_BYTES: usize = 24;
// @ts-ignore: decorator
@inline const NIL: u32 = 0;
// @ts-ignore: decorator
@inline const FREE_ENDPOINT: u32 = 0xFFFF;
export const MAX_ENDPOINTS: i32 = 0xFFFE;
const INITIAL_NODES: u32 = 1024;

@final
export class PrefixTable {
  private nodes: usize = 0;
  private nodeSlots: u32 = 0;   // allocated records, sentinel included
  private used: u32 = 1;        // records ever handed out (bump pointer)
  private freeHead: u32 = NIL;
  private buckets: usize = 0;
  private bucketMask: u32 = 0;
  private maxNodes: u32 = 0;    // Σ capacity: the pool never needs more
  readonly endpointCount: i32;
  private head: StaticArray<u32>;
  private tail: StaticArray<u32>;
  private count: StaticArray<u32>;
  private capacity: StaticArray<u32>;

  constructor(endpointCount: i32, capacityEach: u32) {
    this.endpointCount = endpointCount;
    this.head = new StaticArray<u32>(endpointCount);
    this.tail = new StaticArray<u32>(endpointCount);
    this.count = new StaticArray<u32>(endpointCount);
    this.capacity = new StaticArray<u32>(endpointCount);
    for (let e = 0; e < endpointCount; e++) unchecked(this.capacity[e] = capacityEach);
    this.maxNodes = <u32>min<u64>(<u64>capacityEach * <u64>endpointCount, 0x7FFFFFFF);
    this.growNodes(min<u32>(INITIAL_NODES, this.maxNodes + 1));
  }

  // ---- node field access -----------------------------------------------------
  // @ts-ignore: decorator
  @inline private at(n: u32): usize { return this.nodes + <usize>n * NODE_BYTES; }
  // @ts-ignore: decorator
  @inline private hashOf(n: u32): u64 { return load<u64>(this.at(n)); }
  // @ts-ignore: decorator
  @inline private chainOf(n: u32): u32 { return load<u32>(this.at(n), 8); }
  // @ts-ignore: decorator
  @inline private setChain(n: u32, v: u32): void { store<u32>(this.at(n), v, 8); }
  // @ts-ignore: decorator
  @inline private prevOf(n: u32): u32 { return load<u32>(this.at(n), 12); }
  // @ts-ignore: decorator
  @inline private setPrev(n: u32, v: u32): void { store<u32>(this.at(n), v, 12); }
  // @ts-ignore: decorator
  @inline private nextOf(n: u32): u32 { return load<u32>(this.at(n), 16); }
  // @ts-ignore: decorator
  @inline private setNext(n: u32, v: u32): void { store<u32>(this.at(n), v, 16); }
  // @ts-ignore: decorator
  @inline private endpointOf(n: u32): u32 { return <u32>load<u16>(this.at(n), 20); }
  // @ts-ignore: decorator
  @inline private bucketAt(h: u64): usize { return this.buckets + ((<usize>(<u32>h & this.bucketMask)) << 2); }

  // ---- queries -------------------------------------------------------------------

  /** Blocks the endpoint currently holds. */
  size(e: i32): u32 { return unchecked(this.count[e]); }
  capacityOf(e: i32): u32 { return unchecked(this.capacity[e]); }

  holds(e: i32, h: u64): bool {
    return this.find(<u32>e, h) != NIL;
  }

  /** Bytes of linear memory this table owns (nodes and buckets). */
  memoryBytes(): usize {
    return <usize>this.nodeSlots * NODE_BYTES + (<usize>this.bucketMask + 1) * 4;
  }

  /**
   * Longest-prefix match per endpoint: `match[e]` becomes the number of leading
   * hashes of `hashes[0..n)` (u64 array in memory) that endpoint e holds, with no
   * gap. Returns the longest match of any endpoint. Work is proportional to the
   * matched prefix: it stops at the first block no endpoint still matching holds.
   */
  matchPrefix(hashes: usize, n: i32, match: StaticArray<i32>): i32 {
    const endpoints = this.endpointCount;
    for (let e = 0; e < endpoints; e++) unchecked(match[e] = 0);
    let i = 0;
    for (; i < n; i++) {
      const h = load<u64>(hashes + (<usize>i << 3));
      let found = false;
      let node = load<u32>(this.bucketAt(h));
      while (node != NIL) {
        if (this.hashOf(node) == h) {
          const e = <i32>this.endpointOf(node);
          // Only an endpoint that matched every earlier block extends its run.
          if (unchecked(match[e]) == i) {
            unchecked(match[e] = i + 1);
            found = true;
          }
        }
        node = this.chainOf(node);
      }
      if (!found) break;
    }
    return i;
  }

  // ---- updates ----------------------------------------------------------------------

  /**
   * Records that endpoint e now holds every block of `hashes[0..n)`. Blocks are
   * touched last to first so the first block ends most recently used: a model
   * server frees a finished request's blocks tail first, so its prefix blocks
   * are the last to be evicted (vLLM v1/core/block_pool.py `free_blocks` takes
   * blocks in reverse order from kv_cache_manager.py `free`).
   */
  touchAll(e: i32, hashes: usize, n: i32): void {
    for (let i = n - 1; i >= 0; i--) this.touch(e, load<u64>(hashes + (<usize>i << 3)));
  }

  touch(e: i32, h: u64): void {
    if (unchecked(this.capacity[e]) == 0) return;
    let node = this.find(<u32>e, h);
    if (node != NIL) {
      this.unlinkLru(node, e);
      this.pushLru(node, e);
      return;
    }
    if (unchecked(this.count[e]) >= unchecked(this.capacity[e])) {
      node = unchecked(this.tail[e]);
      this.unlinkLru(node, e);
      this.unlinkBucket(node);
      unchecked(this.count[e]--);
    } else {
      node = this.allocNode();
      if (node == NIL) return;
    }
    store<u64>(this.at(node), h);
    store<u16>(this.at(node), <u16>e, 20);
    const bucket = this.bucketAt(h);
    this.setChain(node, load<u32>(bucket));
    store<u32>(bucket, node);
    this.pushLru(node, e);
    unchecked(this.count[e]++);
  }

  /** Changes an endpoint's capacity, evicting its least recently used blocks if needed. */
  setCapacity(e: i32, cap: u32): void {
    const old = unchecked(this.capacity[e]);
    unchecked(this.capacity[e] = cap);
    this.maxNodes = <u32>min<u64>(<u64>this.maxNodes - old + cap, 0x7FFFFFFF);
    while (unchecked(this.count[e]) > cap) this.evictTail(e);
  }

  /** Drops everything endpoint e holds. */
  clearEndpoint(e: i32): void {
    while (unchecked(this.count[e]) > 0) this.evictTail(e);
  }

  // ---- internals ----------------------------------------------------------------------

  private find(e: u32, h: u64): u32 {
    let node = load<u32>(this.bucketAt(h));
    while (node != NIL) {
      if (this.hashOf(node) == h && this.endpointOf(node) == e) return node;
      node = this.chainOf(node);
    }
    return NIL;
  }

  private evictTail(e: i32): void {
    const node = unchecked(this.tail[e]);
    this.unlinkLru(node, e);
    this.unlinkBucket(node);
    unchecked(this.count[e]--);
    store<u16>(this.at(node), <u16>FREE_ENDPOINT, 20);
    this.setChain(node, this.freeHead);
    this.freeHead = node;
  }

  private pushLru(node: u32, e: i32): void {
    const first = unchecked(this.head[e]);
    this.setPrev(node, NIL);
    this.setNext(node, first);
    if (first != NIL) this.setPrev(first, node);
    else unchecked(this.tail[e] = node);
    unchecked(this.head[e] = node);
  }

  private unlinkLru(node: u32, e: i32): void {
    const prev = this.prevOf(node);
    const next = this.nextOf(node);
    if (prev != NIL) this.setNext(prev, next);
    else unchecked(this.head[e] = next);
    if (next != NIL) this.setPrev(next, prev);
    else unchecked(this.tail[e] = prev);
  }

  private unlinkBucket(node: u32): void {
    const bucket = this.bucketAt(this.hashOf(node));
    let cur = load<u32>(bucket);
    if (cur == node) {
      store<u32>(bucket, this.chainOf(node));
      return;
    }
    while (cur != NIL) {
      const next = this.chainOf(cur);
      if (next == node) {
        this.setChain(cur, this.chainOf(node));
        return;
      }
      cur = next;
    }
  }

  private allocNode(): u32 {
    if (this.freeHead != NIL) {
      const node = this.freeHead;
      this.freeHead = this.chainOf(node);
      return node;
    }
    if (this.used >= this.nodeSlots) {
      const limit = this.maxNodes + 1;
      if (this.nodeSlots >= limit) return NIL;
      this.growNodes(min<u32>(this.nodeSlots * 2, limit));
    }
    return this.used++;
  }

  private growNodes(slots: u32): void {
    const bytes = <usize>slots * NODE_BYTES;
    this.nodes = this.nodes == 0 ? heap.alloc(bytes) : heap.realloc(this.nodes, bytes);
    this.nodeSlots = slots;
    // Keep the load factor at or below one node per bucket.
    let bucketCount: u32 = 16;
    while (bucketCount < slots) bucketCount <<= 1;
    if (bucketCount - 1 != this.bucketMask) this.rebuildBuckets(bucketCount);
  }

  private rebuildBuckets(bucketCount: u32): void {
    if (this.buckets != 0) heap.free(this.buckets);
    this.buckets = heap.alloc(<usize>bucketCount << 2);
    memory.fill(this.buckets, 0, <usize>bucketCount << 2);
    this.bucketMask = bucketCount - 1;
    for (let n: u32 = 1; n < this.used; n++) {
      if (this.endpointOf(n) == FREE_ENDPOINT) continue;
      const bucket = this.bucketAt(this.hashOf(n));
      this.setChain(n, load<u32>(bucket));
      store<u32>(bucket, n);
    }
  }
}
