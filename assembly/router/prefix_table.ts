// The prefix index as one VM holds it: which endpoint holds which block hashes,
// with per-endpoint eviction that approximates the model server's LRU.
//
// One slot per (block hash, endpoint) pair, in an open-addressing table with
// linear probing in raw linear memory: every pair of a hash sits in the probe
// run that starts at the hash's home slot, so a lookup reads consecutive
// memory from one place instead of following a chain of nodes scattered over
// the pool. The node pool with doubly linked bucket chains it replaced cost
// several cache misses per new block (the bucket, the chain's nodes, the
// evicted node's neighbours), and with a prefix every endpoint holds, a chain
// of every endpoint: the index was the largest part of a decision and, with 8
// worker VMs replaying each other's placements, three quarters of all module
// time (npm run bench:profile -- --vms 8).
//
// Slot layout (SLOT_BYTES = 8, one u64):
//
//   bit 63 … 17    16      15 … 0
//   | key (47)   | used  | ep (16) |
//     key:    the hash's low 47 bits; two blocks whose hashes share them are
//             taken for one (about one request in 10^12 has such a pair)
//     used:   1 when touched since last (re)queued in the ring: a second chance
//     ep:     endpoint index, EMPTY for a free slot (all bits set: memory
//             filled with 0xFF is an empty table)
//
// Deletion shifts the rest of the probe run back (Knuth's algorithm R for
// linear probing, TAOCP vol. 3, 6.4), so no tombstones accumulate under the
// constant insert-and-evict of a full index. The eviction rings hold hashes,
// not slot ids, so a shift moves nothing but the run itself: a ring of slot
// ids had to be told of every move, a cache miss in another array each.
//
// The table holds at most half as many pairs as it has slots, so probe runs
// stay short. It grows up to twice the sum of the endpoints' capacities (any
// size, not only a power of two: slots are chosen by multiply-shift range
// reduction), four-fold at a time, so that the tables it leaves behind add up
// to a third of the last rather than all of it: Wasm memory keeps its
// high-water mark.
//
// Eviction is CLOCK-like second chance (FIFO with reinsertion), which
// approximates LRU while keeping a refresh to one store in a slot the lookup
// has just read. Per endpoint, a ring of hashes in queue order grows by
// doubling up to the endpoint's capacity. Memory is bounded by
// SLOT_BYTES × 2 × Σcapacity for the table and 8 × Σcapacity for rings (each
// at most doubled by growth). No allocation on lookups or updates except
// those bounded growths.
//
// Home slots are chosen by mix64(hash ^ salt), not by the hash's bits: block
// hashes come from client prompts and xxHash64 is not keyed, so an attacker
// could grind prompts whose entries all share a home and make every lookup,
// touch and eviction walk one long run (measured with the chained table
// before: 40× slower requests for everyone with an 8k-entry table). The owner
// passes a salt the client cannot know (router.ts: the host's random bits).
//
// This file knows nothing of Envoy: shared-data replication is journal.ts's job.
import { mix64 } from "./hash";

// @ts-ignore: decorator
@inline const SLOT_BYTES: usize = 8;
// @ts-ignore: decorator
@inline const KEY_SHIFT: u64 = 17;
// @ts-ignore: decorator
@inline const KEY_MASK: u64 = (<u64>1 << 47) - 1;
// @ts-ignore: decorator
@inline const USED_BIT: u64 = 1 << 16;
// @ts-ignore: decorator
@inline const ENDPOINT_MASK: u64 = 0xFFFF;
// @ts-ignore: decorator
@inline const EMPTY: u32 = 0xFFFF;
/** A free slot (what memory.fill with 0xFF writes). */
const EMPTY_SLOT: u64 = 0xFFFFFFFFFFFFFFFF;
/** No slot. */
// @ts-ignore: decorator
@inline const NONE: u32 = 0xFFFFFFFF;
const INITIAL_SLOTS: u32 = 2048;
const MIN_SLOTS: u32 = 16;
/** The table never has more slots than this (u32 slot ids; 2 × MAX_INDEX_ENTRIES is far below). */
const MAX_SLOTS: u64 = 0x7FFFFFFF;
/** A ring's first size; it doubles from there, so its size is always a power of two (positions wrap by a mask). */
const INITIAL_RING: u32 = 256;
/** Slots matchPrefix keeps per entry for the commit (endpoints holding that hash); more are looked up again. */
const FOUND_PER_ENTRY: i32 = 4;

@final
export class PrefixTable {
  private slots: usize = 0;
  private slotCount: u32 = 0;
  /** Pairs in the table, all endpoints together. */
  private live: u32 = 0;
  private maxPairs: u64 = 0;    // Σ capacity: the table never needs more than twice as many slots
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
  // FOUND_PER_ENTRY slots of that hash (one per endpoint holding it), so that
  // touchMatched for the chosen endpoint refreshes them without probing again.
  private foundSlots: StaticArray<u32>;
  private foundCount: StaticArray<u8>;
  private foundEntries: i32 = 0;
  /** Where the last find's probe reached an empty slot: an insertion right after it goes there. */
  private probeEnd: u32 = NONE;
  /** What warm() read, kept only so that its loads stay in the code. */
  private warmFold: u64 = 0;

  constructor(endpointCount: i32, capacityEach: u32, salt: u64 = 0, maxEntriesPerRequest: i32 = 0) {
    this.foundSlots = new StaticArray<u32>(maxEntriesPerRequest * FOUND_PER_ENTRY);
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
    this.maxPairs = <u64>capacityEach * <u64>endpointCount;
    this.resize(<u32>min<u64>(<u64>INITIAL_SLOTS, this.slotLimit()));
  }

  // ---- slot field access -----------------------------------------------------
  // @ts-ignore: decorator
  @inline private at(s: u32): usize { return this.slots + <usize>s * SLOT_BYTES; }
  // @ts-ignore: decorator
  @inline private slotOf(s: u32): u64 { return load<u64>(this.at(s)); }
  // @ts-ignore: decorator
  @inline private endpointOf(s: u32): u32 { return <u32>(this.slotOf(s) & ENDPOINT_MASK); }
  // @ts-ignore: decorator
  @inline private markUsed(s: u32): void { store<u64>(this.at(s), this.slotOf(s) | USED_BIT); }
  // @ts-ignore: decorator
  @inline private next(s: u32): u32 { return s + 1 == this.slotCount ? 0 : s + 1; }
  /** A key's home slot: the salted mix's high half scaled to the table (Lemire's multiply-shift). */
  // @ts-ignore: decorator
  @inline private homeOfKey(key: u64): u32 { return <u32>(((mix64(key ^ this.salt) >> 32) * <u64>this.slotCount) >> 32); }
  // @ts-ignore: decorator
  @inline private home(h: u64): u32 { return this.homeOfKey(h & KEY_MASK); }

  // ---- queries -------------------------------------------------------------------

  /** Blocks the endpoint currently holds. */
  size(e: i32): u32 { return unchecked(this.count[e]); }
  capacityOf(e: i32): u32 { return unchecked(this.capacity[e]); }

  holds(e: i32, h: u64): bool {
    return this.find(<u32>e, h) != NONE;
  }

  /** Bytes of linear memory this table owns (slots, rings). */
  memoryBytes(): usize {
    let rings: usize = 0;
    for (let e = 0; e < this.endpointCount; e++) rings += <usize>unchecked(this.ringSlots[e]) << 3;
    return <usize>this.slotCount * SLOT_BYTES + rings;
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
      const key = h & KEY_MASK;
      let found = false;
      let kept = 0;
      let s = this.home(h);
      while (true) {
        const slot = this.slotOf(s);
        const e = <i32>(slot & ENDPOINT_MASK);
        if (<u32>e == EMPTY) break;
        if (slot >> KEY_SHIFT == key) {
          if (i < keep && kept < FOUND_PER_ENTRY) unchecked(this.foundSlots[i * FOUND_PER_ENTRY + kept++] = s);
          // Only an endpoint that matched every earlier hash extends its run.
          if (unchecked(match[e]) == i) {
            unchecked(match[e] = i + 1);
            found = true;
          }
        }
        s = this.next(s);
      }
      if (i < keep) unchecked(this.foundCount[i] = <u8>kept);
      if (!found) break;
    }
    // Entries past the walk were not looked up; the one that stopped it was (its slots are kept).
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
   * e's slot for is refreshed in place, the rest are looked up as usual. A
   * kept slot is used only if it still holds that hash for e (touching the
   * tail may have evicted it or shifted another pair into it).
   */
  touchMatched(e: i32, hashes: usize, n: i32): void {
    if (unchecked(this.capacity[e]) == 0) return;
    this.warm(e, hashes, n);
    for (let i = n - 1; i >= 0; i--) {
      const h = load<u64>(hashes + (<usize>i << 3));
      let s = NONE;
      if (i < this.foundEntries) {
        const base = i * FOUND_PER_ENTRY;
        const count = <i32>unchecked(this.foundCount[i]);
        for (let k = 0; k < count; k++) {
          const candidate = unchecked(this.foundSlots[base + k]);
          const slot = candidate < this.slotCount ? this.slotOf(candidate) : EMPTY_SLOT;
          if (<u32>(slot & ENDPOINT_MASK) == <u32>e && slot >> KEY_SHIFT == (h & KEY_MASK)) {
            s = candidate;
            break;
          }
        }
      }
      if (s == NONE) {
        this.touch(e, h);
        continue;
      }
      this.markUsed(s);
    }
  }

  touch(e: i32, h: u64): void {
    if (unchecked(this.capacity[e]) == 0) return;
    const found = this.find(<u32>e, h);
    if (found != NONE) {
      this.markUsed(found);
      return;
    }
    let s = this.probeEnd;
    if (unchecked(this.count[e]) >= unchecked(this.capacity[e])) {
      // The eviction may shift a pair into the empty slot the probe ended on.
      if (this.evictOne(e)) s = NONE;
    }
    if (<u64>(this.live + 1) * 2 > <u64>this.slotCount) {
      const limit = this.slotLimit();
      if (<u64>this.slotCount >= limit) return; // only if capacities are inconsistent; never expected
      this.resize(<u32>min<u64>(max<u64>(<u64>this.slotCount * 4, <u64>(this.live + 1) * 2), limit));
      s = NONE;
    }
    const key = h & KEY_MASK;
    if (s == NONE) s = this.emptySlotFor(key);
    store<u64>(this.at(s), (key << KEY_SHIFT) | <u64>e);
    this.live++;
    this.pushRing(e, h);
    unchecked(this.count[e]++);
  }

  /** Changes an endpoint's capacity, evicting if it now holds too much. */
  setCapacity(e: i32, cap: u32): void {
    const old = unchecked(this.capacity[e]);
    unchecked(this.capacity[e] = cap);
    this.maxPairs = this.maxPairs - <u64>old + <u64>cap;
    while (unchecked(this.count[e]) > cap) this.evictOne(e);
  }

  /**
   * Forgets every hash endpoint e holds (it left the cluster, or its server
   * restarted with an empty cache) and returns its ring to the heap, so an
   * endpoint that comes and goes leaves nothing behind. Its capacity is kept;
   * the caller sets the next occupant's.
   */
  dropEndpoint(e: i32): void {
    const ring = unchecked(this.ring[e]);
    const slots = unchecked(this.ringSlots[e]);
    const head = unchecked(this.ringHead[e]);
    // Every pair of e is in its ring exactly once.
    for (let i: u32 = 0; i < unchecked(this.ringLength[e]); i++) {
      const s = this.find(<u32>e, load<u64>(ring + (<usize>((head + i) & (slots - 1)) << 3)));
      if (s != NONE) this.remove(s);
    }
    if (ring != 0) heap.free(ring);
    unchecked(this.ring[e] = 0);
    unchecked(this.ringSlots[e] = 0);
    unchecked(this.ringHead[e] = 0);
    unchecked(this.ringLength[e] = 0);
    unchecked(this.count[e] = 0);
  }

  /**
   * Returns the table's raw memory (slots, rings) to the heap when its owner
   * goes away; the table must not be used afterwards.
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
    if (this.slots != 0) heap.free(this.slots);
    this.slots = 0;
    this.slotCount = 0;
    this.live = 0;
  }

  // ---- internals ----------------------------------------------------------------------

  /** Twice the capacities' sum (at least MIN_SLOTS): the table's size at its largest. */
  private slotLimit(): u64 {
    return min<u64>(max<u64>(this.maxPairs * 2, <u64>MIN_SLOTS), MAX_SLOTS);
  }

  /** e's slot for h, or NONE; on NONE, probeEnd is the empty slot that ended the probe. */
  private find(e: u32, h: u64): u32 {
    // The slot e holds for h, and empty, as they would read in the table.
    const wanted = ((h & KEY_MASK) << KEY_SHIFT) | <u64>e;
    let s = this.home(h);
    while (true) {
      const slot = this.slotOf(s);
      if ((slot & ~USED_BIT) == wanted) return s;
      if ((slot & ENDPOINT_MASK) == <u64>EMPTY) break;
      s = this.next(s);
    }
    this.probeEnd = s;
    return NONE;
  }

  /** The first empty slot of a key's probe run (the table is never full). */
  private emptySlotFor(key: u64): u32 {
    let s = this.homeOfKey(key);
    while (this.endpointOf(s) != EMPTY) s = this.next(s);
    return s;
  }

  /**
   * Frees slot s and closes the gap (algorithm R): each later pair of the run
   * whose home does not lie cyclically in (gap, its slot] moves back into the gap.
   */
  private remove(s: u32): void {
    let gap = s;
    let j = s;
    while (true) {
      j = this.next(j);
      const slot = this.slotOf(j);
      if ((slot & ENDPOINT_MASK) == <u64>EMPTY) break;
      const k = this.homeOfKey(slot >> KEY_SHIFT);
      const stays = gap <= j ? gap < k && k <= j : gap < k || k <= j;
      if (stays) continue;
      store<u64>(this.at(gap), slot);
      gap = j;
    }
    store<u64>(this.at(gap), EMPTY_SLOT);
    this.live--;
  }

  /**
   * Reads, ahead of touching n hashes for e, the memory the touches will
   * read one by one: each hash's home slot, and the home slots of the hashes
   * at the front of e's ring (the eviction candidates). The loads of one pass do not depend on
   * each other, so the CPU overlaps their cache misses, where the touches
   * would take them one after another. Wasm has no prefetch instruction; the
   * values are folded into a field so that the loads are not optimized away.
   */
  private warm(e: i32, hashes: usize, n: i32): void {
    let fold: u64 = 0;
    for (let i = 0; i < n; i++) fold ^= load<u64>(this.at(this.home(load<u64>(hashes + (<usize>i << 3)))));
    const ahead = min<u32>(<u32>n, unchecked(this.ringLength[e]));
    const ring = unchecked(this.ring[e]);
    const slots = unchecked(this.ringSlots[e]);
    const head = unchecked(this.ringHead[e]);
    for (let k: u32 = 0; k < ahead; k++) fold ^= load<u64>(this.at(this.home(load<u64>(ring + (<usize>((head + k) & (slots - 1)) << 3)))));
    this.warmFold ^= fold;
  }

  /**
   * Second chance: pop the oldest queued pair; if it was touched since it was
   * queued, queue it again, else evict it. Terminates: each reinsertion clears
   * the pair's chance, so at most one lap of the ring is reinserted. Returns
   * whether a pair was evicted.
   */
  private evictOne(e: i32): bool {
    while (unchecked(this.ringLength[e]) > 0) {
      const h = this.popRing(e);
      const s = this.find(<u32>e, h);
      if (s == NONE) continue; // never expected: every queued hash is held
      const slot = this.slotOf(s);
      if ((slot & USED_BIT) != 0) {
        store<u64>(this.at(s), slot & ~USED_BIT);
        this.pushRing(e, h);
        continue;
      }
      this.remove(s);
      unchecked(this.count[e]--);
      return true;
    }
    return false;
  }

  private pushRing(e: i32, h: u64): void {
    let slots = unchecked(this.ringSlots[e]);
    const length = unchecked(this.ringLength[e]);
    if (length == slots) {
      this.growRing(e, slots == 0 ? INITIAL_RING : slots << 1);
      slots = unchecked(this.ringSlots[e]);
    }
    const head = unchecked(this.ringHead[e]);
    const at = (head + length) & (slots - 1);
    store<u64>(unchecked(this.ring[e]) + (<usize>at << 3), h);
    unchecked(this.ringLength[e] = length + 1);
  }

  private popRing(e: i32): u64 {
    const head = unchecked(this.ringHead[e]);
    const h = load<u64>(unchecked(this.ring[e]) + (<usize>head << 3));
    unchecked(this.ringHead[e] = (head + 1) & (unchecked(this.ringSlots[e]) - 1));
    unchecked(this.ringLength[e]--);
    return h;
  }

  /** Re-lays the ring in queue order in a bigger buffer. */
  private growRing(e: i32, slots: u32): void {
    const old = unchecked(this.ring[e]);
    const oldSlots = unchecked(this.ringSlots[e]);
    const length = unchecked(this.ringLength[e]);
    const head = unchecked(this.ringHead[e]);
    const fresh = heap.alloc(<usize>slots << 3);
    for (let i: u32 = 0; i < length; i++) {
      store<u64>(fresh + (<usize>i << 3), load<u64>(old + (<usize>((head + i) & (oldSlots - 1)) << 3)));
    }
    if (old != 0) heap.free(old);
    unchecked(this.ring[e] = fresh);
    unchecked(this.ringSlots[e] = slots);
    unchecked(this.ringHead[e] = 0);
  }

  /** Moves every pair into a table of `count` slots. */
  private resize(count: u32): void {
    const old = this.slots;
    const oldCount = this.slotCount;
    const bytes = <usize>count * SLOT_BYTES;
    this.slots = heap.alloc(bytes);
    memory.fill(this.slots, 0xFF, bytes); // every slot EMPTY_SLOT
    this.slotCount = count;
    if (old == 0) return;
    for (let i: u32 = 0; i < oldCount; i++) {
      const slot = load<u64>(old + <usize>i * SLOT_BYTES);
      if ((slot & ENDPOINT_MASK) == <u64>EMPTY) continue;
      store<u64>(this.at(this.emptySlotFor(slot >> KEY_SHIFT)), slot);
    }
    heap.free(old);
  }
}
