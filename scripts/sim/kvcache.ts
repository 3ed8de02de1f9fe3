// The KV block pool of one simulated model server: vLLM's automatic prefix
// caching at block granularity. Owns: reference counts, the free-block queue
// (which is also the LRU eviction order), the hash → cached block map and the
// prefix-cache counters. Must not: schedule, time anything or know requests
// beyond the block lists the engine hands it.
//
// What it follows in vLLM (vllm-project/vllm, vllm/v1/core):
// - block_pool.py BlockPool: every block is either referenced by running
//   requests (ref_cnt > 0) or sits in free_block_queue, a doubly linked list;
//   a free block may still carry its hash and be hit ("lazy eviction").
// - get_new_blocks pops from the queue head and, if the popped block is
//   cached, evicts it (_maybe_evict_cached_block): eviction happens only when
//   the memory is reused, and only free blocks are ever evicted; blocks held by
//   running requests are safe.
// - touch: a hit on a free block takes it out of the queue (ref 0 → 1).
// - free_blocks: blocks reaching ref 0 are queued by eviction priority; blocks
//   without a hash (a partial last block, generated tokens) are prepended and
//   reused first, hashed blocks are appended and live longest.
// - kv_cache_manager.py free(): a request's blocks are freed in reverse order
//   "so that the tail blocks are evicted first", so a prefix outlives its
//   suffixes.
// - get_computed_blocks: the hit is the longest run of leading full blocks
//   found in the cache, capped at prompt_length − 1 tokens because the last
//   token is always recomputed to get logits.
// - get_usage: 1 − free / (num_gpu_blocks − 1); block 0 is the null block.
// Simplification: vLLM keeps duplicate blocks under one hash (two requests
// prefilling the same text at once); here the second copy stays unhashed and
// is reused first. Lookups are unaffected.
//
// KV events: vLLM can publish what its prefix cache gains and loses
// (vllm/distributed/kv_events.py BlockStored / BlockRemoved, emitted by
// block_pool.py cache_full_blocks and _maybe_evict_cached_block, published by
// the scheduler once per step). `onKvEvent`, when set, receives the same two
// facts as they happen here; delivery, batching and delay belong to whoever
// listens (scripts/eval/kv-events.ts). Unset, it costs one null check.

/** A change to the set of cached block hashes, as vLLM's KV events publisher reports it. */
export interface KvEvent {
  readonly type: "stored" | "removed";
  /** Chained block hash (hash.ts), the key every lookup uses. */
  readonly hash: number;
}

export class KvCache {
  /** Optional listener for block stored / removed events (see the header). */
  onKvEvent: ((e: KvEvent) => void) | null = null;
  readonly numBlocks: number;
  private readonly ref: Int32Array;
  private readonly hash: Float64Array;
  // Free queue: a doubly linked list over block ids with sentinels HEAD/TAIL.
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly HEAD: number;
  private readonly TAIL: number;
  private readonly byHash = new Map<number, number>();
  private free = 0;

  /** vllm:prefix_cache_queries_total: prompt tokens of requests looked up. */
  queries = 0;
  /** vllm:prefix_cache_hits_total: prompt tokens served from the cache. */
  hits = 0;

  constructor(numBlocks: number) {
    this.numBlocks = numBlocks;
    this.ref = new Int32Array(numBlocks);
    this.hash = new Float64Array(numBlocks).fill(NaN);
    this.prev = new Int32Array(numBlocks + 2);
    this.next = new Int32Array(numBlocks + 2);
    this.HEAD = numBlocks;
    this.TAIL = numBlocks + 1;
    this.next[this.HEAD] = this.TAIL;
    this.prev[this.TAIL] = this.HEAD;
    // Block 0 is vLLM's null block: never free, never allocated.
    this.ref[0] = 1;
    for (let b = 1; b < numBlocks; b++) this.pushBack(b);
  }

  get numFree(): number {
    return this.free;
  }

  /** vllm:kv_cache_usage_perc, 0..1. */
  usage(): number {
    return 1 - this.free / (this.numBlocks - 1);
  }

  /** Blocks held by running requests (not in the free queue). */
  get numUsed(): number {
    return this.numBlocks - 1 - this.free;
  }

  /** Cached (hashed) blocks, held or free. */
  get numCached(): number {
    return this.byHash.size;
  }

  /** How many leading blocks of `hashes` are cached, at most `max`. No side effects. */
  longestHit(hashes: Float64Array, max: number): number {
    const n = Math.min(max, hashes.length);
    let i = 0;
    while (i < n && this.byHash.has(hashes[i])) i++;
    return i;
  }

  /** Of the first n blocks of `hashes` (all cached), how many sit in the free queue. */
  freeAmongHit(hashes: Float64Array, n: number): number {
    let k = 0;
    for (let i = 0; i < n; i++) if (this.ref[this.byHash.get(hashes[i])!] === 0) k++;
    return k;
  }

  /** Take a reference on the first n cached blocks of `hashes`; appends their ids to `out`. */
  touch(hashes: Float64Array, n: number, out: number[]): void {
    for (let i = 0; i < n; i++) {
      const b = this.byHash.get(hashes[i])!;
      if (this.ref[b] === 0) this.unlink(b);
      this.ref[b]++;
      out.push(b);
    }
  }

  /** Allocate n fresh blocks from the queue head, evicting their cached content. Caller checks numFree. */
  allocate(n: number, out: number[]): void {
    if (n > this.free) throw new Error(`KV cache: allocating ${n} blocks with ${this.free} free`);
    for (let i = 0; i < n; i++) {
      const b = this.next[this.HEAD];
      this.unlink(b);
      const h = this.hash[b];
      if (h === h) {
        // Evict: this memory now holds other tokens.
        if (this.byHash.get(h) === b) {
          this.byHash.delete(h);
          this.onKvEvent?.({ type: "removed", hash: h });
        }
        this.hash[b] = NaN;
      }
      this.ref[b] = 1;
      out.push(b);
    }
  }

  /** Register a full block under its chained hash so later requests can hit it. */
  cache(block: number, h: number): void {
    if (this.hash[block] === this.hash[block]) return;
    if (this.byHash.has(h)) return; // a duplicate stays unhashed (see the header)
    this.hash[block] = h;
    this.byHash.set(h, block);
    this.onKvEvent?.({ type: "stored", hash: h });
  }

  /**
   * Release a request's blocks, given in allocation order. They are released
   * last-first, so the queue receives tail blocks before prefix blocks and
   * evicts them first; hashless blocks go to the head and are reused first.
   */
  release(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i];
      if (--this.ref[b] > 0) continue;
      if (this.ref[b] < 0) throw new Error(`KV cache: block ${b} released twice`);
      if (this.hash[b] === this.hash[b]) this.pushBack(b);
      else this.pushFront(b);
    }
  }

  /** Is the block with this hash cached and referenced by a running request? (tests) */
  isHeld(h: number): boolean {
    const b = this.byHash.get(h);
    return b !== undefined && this.ref[b] > 0;
  }

  isCached(h: number): boolean {
    return this.byHash.has(h);
  }

  private unlink(b: number): void {
    const p = this.prev[b];
    const n = this.next[b];
    this.next[p] = n;
    this.prev[n] = p;
    this.free--;
  }

  private pushBack(b: number): void {
    const last = this.prev[this.TAIL];
    this.next[last] = b;
    this.prev[b] = last;
    this.next[b] = this.TAIL;
    this.prev[this.TAIL] = b;
    this.free++;
  }

  private pushFront(b: number): void {
    const first = this.next[this.HEAD];
    this.next[this.HEAD] = b;
    this.prev[b] = this.HEAD;
    this.next[b] = first;
    this.prev[first] = b;
    this.free++;
  }
}
