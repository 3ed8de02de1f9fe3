// The prefix index as one VM holds it: which endpoint holds which block hashes,
// with per-endpoint eviction that approximates the model server's LRU.
//
// One node per (block hash, endpoint) pair, in a pool of fixed-size records in
// raw linear memory. A node sits on its hash bucket's chain (so a lookup finds
// every endpoint holding a hash) and in its endpoint's eviction ring. Eviction
// is CLOCK-like second chance (FIFO with reinsertion), which approximates LRU
// while keeping a refresh to one store in a node the lookup has just read: the
// doubly linked LRU list it replaced cost several cache misses per touched
// block, and the index is touched for every block of every request on every VM.
//
// Node layout (NODE_BYTES = 24; index 0 is the null sentinel):
//
//   +0        +8          +12        +16      +18       +19   +20
//   | hash u64 | chain u32 | prev u32 | ep u16 | used u8 | pad | pad u32 |
//     chain:  next node in the same bucket, or next free node
//     prev:   previous node in the same bucket, NIL for the bucket's first:
//             unlinking an evicted node needs no walk of its bucket, which
//             for a prefix every endpoint holds is a chain of every endpoint
//             (the walk was a fifth of a decision's time, npm run bench:profile)
//     used:   1 when touched since last (re)queued in the ring: a second chance
//     ep:     endpoint index, FREE_ENDPOINT on the free list
//
// Per endpoint, a ring of node ids in queue order grows by doubling up to the
// endpoint's capacity. Memory is bounded by NODE_BYTES × Σcapacity for nodes,
// 4 × Σcapacity for rings and 4 × (pool size rounded up to a power of 2) for
// buckets. No allocation on lookups or updates except those bounded growths.
//
// Buckets are chosen by mix64(hash ^ salt), not by the hash's low bits: block
// hashes come from client prompts and xxHash64 is not keyed, so an attacker can
// grind prompts whose entries all share low bits and chain the whole table into
// one bucket, making every lookup, touch and eviction walk it (measured: 40×
// slower requests for everyone with an 8k-entry table). The owner passes a salt
// the client cannot know (router.ts: the VM's start time in ns).
//
// This file knows nothing of Envoy: shared-data replication is journal.ts's job.
import { mix64 } from "./hash";

// @ts-ignore: decorator
@inline const NODE_BYTES: usize = 24;
// @ts-ignore: decorator
@inline const NIL: u32 = 0;
// @ts-ignore: decorator
@inline const FREE_ENDPOINT: u32 = 0xFFFF;
const INITIAL_NODES: u32 = 1024;
const INITIAL_RING: u32 = 256;
/** Nodes matchPrefix keeps per entry for the commit (endpoints holding that hash); more are looked up again. */
const FOUND_PER_ENTRY: i32 = 4;

@final
export class PrefixTable {
  private nodes: usize = 0;
  private nodeSlots: u32 = 0;   // allocated records, sentinel included
  private used: u32 = 1;        // records ever handed out (bump pointer)
  private freeHead: u32 = NIL;
  private buckets: usize = 0;
  private bucketMask: u32 = 0;
  private maxNodes: u32 = 0;    // Σ capacity: the pool never needs more
  private readonly salt: u64;
  readonly endpointCount: i32;
  private count: StaticArray<u32>;
  private capacity: StaticArray<u32>;
  // Eviction rings: ptr, allocated slots, head index, length.
  private ring: StaticArray<usize>;
  private ringSlots: StaticArray<u32>;
  private ringHead: StaticArray<u32>;
  private ringLength: StaticArray<u32>;
  // What the last matchPrefix found, per entry of the request it walked: up to
  // FOUND_PER_ENTRY nodes of that hash (one per endpoint holding it), so that
  // touchAll for the chosen endpoint refreshes them without walking the
  // bucket chains a second time.
  private foundNodes: StaticArray<u32>;
  private foundCount: StaticArray<u8>;
  private foundEntries: i32 = 0;
  /** What warm() read, kept only so that its loads stay in the code. */
  private warmFold: u32 = 0;

  constructor(endpointCount: i32, capacityEach: u32, salt: u64 = 0, maxEntriesPerRequest: i32 = 0) {
    this.foundNodes = new StaticArray<u32>(maxEntriesPerRequest * FOUND_PER_ENTRY);
    this.foundCount = new StaticArray<u8>(maxEntriesPerRequest);
    this.salt = salt;
    this.endpointCount = endpointCount;
    this.count = new StaticArray<u32>(endpointCount);
    this.capacity = new StaticArray<u32>(endpointCount);
    this.ring = new StaticArray<usize>(endpointCount);
    this.ringSlots = new StaticArray<u32>(endpointCount);
    this.ringHead = new StaticArray<u32>(endpointCount);
    this.ringLength = new StaticArray<u32>(endpointCount);
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
  @inline private endpointOf(n: u32): u32 { return <u32>load<u16>(this.at(n), 16); }
  // @ts-ignore: decorator
  @inline private prevOf(n: u32): u32 { return load<u32>(this.at(n), 12); }
  // @ts-ignore: decorator
  @inline private setPrev(n: u32, v: u32): void { store<u32>(this.at(n), v, 12); }
  // @ts-ignore: decorator
  @inline private markUsed(n: u32): void { store<u8>(this.at(n), 1, 18); }
  // @ts-ignore: decorator
  @inline private bucketAt(h: u64): usize { return this.buckets + ((<usize>(<u32>mix64(h ^ this.salt) & this.bucketMask)) << 2); }

  // ---- queries -------------------------------------------------------------------

  /** Blocks the endpoint currently holds. */
  size(e: i32): u32 { return unchecked(this.count[e]); }
  capacityOf(e: i32): u32 { return unchecked(this.capacity[e]); }

  holds(e: i32, h: u64): bool {
    return this.find(<u32>e, h) != NIL;
  }

  /** Bytes of linear memory this table owns (nodes, buckets, rings). */
  memoryBytes(): usize {
    let rings: usize = 0;
    for (let e = 0; e < this.endpointCount; e++) rings += <usize>unchecked(this.ringSlots[e]) << 2;
    return <usize>this.nodeSlots * NODE_BYTES + (<usize>this.bucketMask + 1) * 4 + rings;
  }

  /**
   * Longest-prefix match per endpoint: `match[e]` becomes the number of leading
   * hashes of `hashes[0..n)` (u64 array in memory) that endpoint e holds, with no
   * gap. Returns the longest match of any endpoint. Work is proportional to the
   * matched prefix: it stops at the first hash no endpoint still matching holds.
   */
  matchPrefix(hashes: usize, n: i32, match: StaticArray<i32>): i32 {
    const endpoints = this.endpointCount;
    for (let e = 0; e < endpoints; e++) unchecked(match[e] = 0);
    const keep = min(n, this.foundCount.length);
    let i = 0;
    for (; i < n; i++) {
      const h = load<u64>(hashes + (<usize>i << 3));
      let found = false;
      let kept = 0;
      let node = load<u32>(this.bucketAt(h));
      while (node != NIL) {
        if (this.hashOf(node) == h) {
          const e = <i32>this.endpointOf(node);
          if (i < keep && kept < FOUND_PER_ENTRY) unchecked(this.foundNodes[i * FOUND_PER_ENTRY + kept++] = node);
          // Only an endpoint that matched every earlier hash extends its run.
          if (unchecked(match[e]) == i) {
            unchecked(match[e] = i + 1);
            found = true;
          }
        }
        node = this.chainOf(node);
      }
      if (i < keep) unchecked(this.foundCount[i] = <u8>kept);
      if (!found) break;
    }
    // Entries past the walk were not looked up; the one that stopped it was (its nodes are kept).
    this.foundEntries = min(i + 1, keep);
    return i;
  }

  // ---- updates ----------------------------------------------------------------------

  /**
   * Records that endpoint e now holds every hash of `hashes[0..n)`, touched
   * last to first: the first blocks are queued last and so evicted last, as a
   * model server frees a finished request's blocks tail first so that its
   * prefix blocks survive longest (vLLM v1/core/block_pool.py `free_blocks`
   * receives them reversed from kv_cache_manager.py `free`).
   */
  touchAll(e: i32, hashes: usize, n: i32): void {
    if (unchecked(this.capacity[e]) == 0) return;
    this.warm(e, hashes, n);
    for (let i = n - 1; i >= 0; i--) this.touch(e, load<u64>(hashes + (<usize>i << 3)));
  }

  /**
   * touchAll for the request the last matchPrefix walked: an entry it found
   * e's node for is refreshed in place, the rest are looked up as usual. A
   * kept node is used only if it still holds that hash for e (touching the
   * tail may have evicted it, and a freed node may hold another hash now).
   */
  touchMatched(e: i32, hashes: usize, n: i32): void {
    if (unchecked(this.capacity[e]) == 0) return;
    this.warm(e, hashes, n);
    for (let i = n - 1; i >= 0; i--) {
      const h = load<u64>(hashes + (<usize>i << 3));
      let node = NIL;
      if (i < this.foundEntries) {
        const base = i * FOUND_PER_ENTRY;
        const count = <i32>unchecked(this.foundCount[i]);
        for (let k = 0; k < count; k++) {
          const candidate = unchecked(this.foundNodes[base + k]);
          if (this.endpointOf(candidate) == <u32>e && this.hashOf(candidate) == h) {
            node = candidate;
            break;
          }
        }
      }
      if (node == NIL) {
        this.touch(e, h);
        continue;
      }
      this.markUsed(node);
    }
  }

  touch(e: i32, h: u64): void {
    if (unchecked(this.capacity[e]) == 0) return;
    let node = this.find(<u32>e, h);
    if (node != NIL) {
      this.markUsed(node);
      return;
    }
    if (unchecked(this.count[e]) >= unchecked(this.capacity[e])) this.evictOne(e);
    node = this.allocNode();
    if (node == NIL) return;
    const p = this.at(node);
    store<u64>(p, h);
    store<u16>(p, <u16>e, 16);
    store<u8>(p, 0, 18);
    this.linkBucket(node, h);
    this.pushRing(e, node);
    unchecked(this.count[e]++);
  }

  /** Changes an endpoint's capacity, evicting if it now holds too much. */
  setCapacity(e: i32, cap: u32): void {
    const old = unchecked(this.capacity[e]);
    unchecked(this.capacity[e] = cap);
    this.maxNodes = <u32>min<u64>(<u64>this.maxNodes - old + cap, 0x7FFFFFFF);
    while (unchecked(this.count[e]) > cap) this.evictOne(e);
  }

  /**
   * Forgets every hash endpoint e holds (it left the cluster, or its server
   * restarted with an empty cache) and returns its nodes to the free list and
   * its ring to the heap, so an endpoint that comes and goes leaves nothing
   * behind. Its capacity is kept; the caller sets the next occupant's.
   */
  dropEndpoint(e: i32): void {
    const ring = unchecked(this.ring[e]);
    const slots = unchecked(this.ringSlots[e]);
    const head = unchecked(this.ringHead[e]);
    // Every node of e is in its ring exactly once (queued on insert, requeued only after a pop).
    for (let i: u32 = 0; i < unchecked(this.ringLength[e]); i++) {
      const node = load<u32>(ring + (<usize>((head + i) % slots) << 2));
      this.unlinkBucket(node);
      store<u16>(this.at(node), <u16>FREE_ENDPOINT, 16);
      this.setChain(node, this.freeHead);
      this.freeHead = node;
    }
    if (ring != 0) heap.free(ring);
    unchecked(this.ring[e] = 0);
    unchecked(this.ringSlots[e] = 0);
    unchecked(this.ringHead[e] = 0);
    unchecked(this.ringLength[e] = 0);
    unchecked(this.count[e] = 0);
  }

  /**
   * Returns the table's raw memory (nodes, buckets, rings) to the heap when
   * its owner goes away; the table must not be used afterwards.
   */
  free(): void {
    for (let e = 0; e < this.endpointCount; e++) {
      const ring = unchecked(this.ring[e]);
      if (ring != 0) heap.free(ring);
      unchecked(this.ring[e] = 0);
      unchecked(this.ringSlots[e] = 0);
      unchecked(this.ringLength[e] = 0);
      unchecked(this.capacity[e] = 0);
      unchecked(this.count[e] = 0);
    }
    if (this.nodes != 0) heap.free(this.nodes);
    if (this.buckets != 0) heap.free(this.buckets);
    this.nodes = 0;
    this.buckets = 0;
    this.nodeSlots = 0;
    this.used = 1;
    this.freeHead = NIL;
  }

  // ---- internals ----------------------------------------------------------------------

  /**
   * Reads, ahead of touching n hashes for e, the memory the touches will
   * read one by one: each hash's bucket and the first node on it, and the
   * nodes at the front of e's ring (the eviction candidates) with their
   * bucket neighbours. The loads of one pass do not depend on each other, so
   * the CPU overlaps their cache misses, where the touches would take them
   * one after another. Wasm has no prefetch instruction; the values are
   * folded into a field so that the loads are not optimized away.
   */
  private warm(e: i32, hashes: usize, n: i32): void {
    let fold: u32 = 0;
    for (let i = 0; i < n; i++) fold ^= load<u32>(this.bucketAt(load<u64>(hashes + (<usize>i << 3))));
    const length = unchecked(this.ringLength[e]);
    const ahead = min<u32>(<u32>n, length);
    const ring = unchecked(this.ring[e]);
    const slots = unchecked(this.ringSlots[e]);
    const head = unchecked(this.ringHead[e]);
    for (let k: u32 = 0; k < ahead; k++) fold ^= load<u32>(this.at(load<u32>(ring + (<usize>((head + k) % slots) << 2))), 8);
    for (let i = 0; i < n; i++) fold ^= load<u32>(this.at(load<u32>(this.bucketAt(load<u64>(hashes + (<usize>i << 3))))), 16);
    for (let k: u32 = 0; k < ahead; k++) {
      const node = load<u32>(ring + (<usize>((head + k) % slots) << 2));
      fold ^= load<u32>(this.at(this.chainOf(node)), 16) ^ load<u32>(this.at(this.prevOf(node)), 8);
    }
    this.warmFold ^= fold;
  }

  private find(e: u32, h: u64): u32 {
    let node = load<u32>(this.bucketAt(h));
    while (node != NIL) {
      if (this.hashOf(node) == h && this.endpointOf(node) == e) return node;
      node = this.chainOf(node);
    }
    return NIL;
  }

  /**
   * Second chance: pop the oldest queued node; if it was touched since it was
   * queued, queue it again, else evict it. Terminates: each reinsertion clears
   * the node's chance, so at most one lap of the ring is reinserted.
   */
  private evictOne(e: i32): void {
    while (unchecked(this.ringLength[e]) > 0) {
      const node = this.popRing(e);
      const p = this.at(node);
      if (load<u8>(p, 18) != 0) {
        store<u8>(p, 0, 18);
        this.pushRing(e, node);
        continue;
      }
      this.unlinkBucket(node);
      unchecked(this.count[e]--);
      store<u16>(p, <u16>FREE_ENDPOINT, 16);
      this.setChain(node, this.freeHead);
      this.freeHead = node;
      return;
    }
  }

  private pushRing(e: i32, node: u32): void {
    let slots = unchecked(this.ringSlots[e]);
    const length = unchecked(this.ringLength[e]);
    if (length == slots) {
      this.growRing(e, slots == 0 ? INITIAL_RING : slots << 1);
      slots = unchecked(this.ringSlots[e]);
    }
    const head = unchecked(this.ringHead[e]);
    const at = (head + length) % slots;
    store<u32>(unchecked(this.ring[e]) + (<usize>at << 2), node);
    unchecked(this.ringLength[e] = length + 1);
  }

  private popRing(e: i32): u32 {
    const head = unchecked(this.ringHead[e]);
    const node = load<u32>(unchecked(this.ring[e]) + (<usize>head << 2));
    unchecked(this.ringHead[e] = (head + 1) % unchecked(this.ringSlots[e]));
    unchecked(this.ringLength[e]--);
    return node;
  }

  /** Re-lays the ring in queue order in a bigger buffer. */
  private growRing(e: i32, slots: u32): void {
    const old = unchecked(this.ring[e]);
    const oldSlots = unchecked(this.ringSlots[e]);
    const length = unchecked(this.ringLength[e]);
    const head = unchecked(this.ringHead[e]);
    const fresh = heap.alloc(<usize>slots << 2);
    for (let i: u32 = 0; i < length; i++) {
      store<u32>(fresh + (<usize>i << 2), load<u32>(old + (<usize>((head + i) % oldSlots) << 2)));
    }
    if (old != 0) heap.free(old);
    unchecked(this.ring[e] = fresh);
    unchecked(this.ringSlots[e] = slots);
    unchecked(this.ringHead[e] = 0);
  }

  /** Puts `node` (holding h) first in its bucket. */
  private linkBucket(node: u32, h: u64): void {
    const bucket = this.bucketAt(h);
    const head = load<u32>(bucket);
    this.setChain(node, head);
    this.setPrev(node, NIL);
    if (head != NIL) this.setPrev(head, node);
    store<u32>(bucket, node);
  }

  private unlinkBucket(node: u32): void {
    const prev = this.prevOf(node);
    const next = this.chainOf(node);
    if (prev == NIL) store<u32>(this.bucketAt(this.hashOf(node)), next);
    else this.setChain(prev, next);
    if (next != NIL) this.setPrev(next, prev);
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
      this.linkBucket(n, this.hashOf(n));
    }
  }
}
