import { PrefixTable } from "../../assembly/router/prefix_table";

/** A u64 array in raw memory holding base+0 … base+n-1 (chained hashes stand-in). */
function hashes(base: u64, n: i32): usize {
  const p = heap.alloc(<usize>max(n, 1) << 3);
  for (let i = 0; i < n; i++) store<u64>(p + (<usize>i << 3), base + <u64>i);
  return p;
}

describe("PrefixTable", () => {
  it("matches the longest held prefix per endpoint", () => {
    const t = new PrefixTable(3, 100);
    const req = hashes(1000, 5);
    t.touchAll(0, req, 5);
    t.touchAll(1, req, 2);
    const match = new StaticArray<i32>(3);
    expect<i32>(t.matchPrefix(req, 5, match)).toBe(5);
    expect<i32>(match[0]).toBe(5);
    expect<i32>(match[1]).toBe(2);
    expect<i32>(match[2]).toBe(0);
  });

  it("does not count blocks after a gap", () => {
    const t = new PrefixTable(1, 100);
    const req = hashes(50, 4);
    t.touch(0, 50);
    t.touch(0, 52);
    t.touch(0, 53);
    const match = new StaticArray<i32>(1);
    expect<i32>(t.matchPrefix(req, 4, match)).toBe(1);
    expect<i32>(match[0]).toBe(1);
  });

  it("evicts the least recently used block at capacity, prefix blocks last", () => {
    const t = new PrefixTable(1, 4);
    t.touchAll(0, hashes(10, 4), 4);   // 10 is now most recent, 13 least
    t.touch(0, 99);                      // evicts 13
    expect<bool>(t.holds(0, 13)).toBe(false);
    expect<bool>(t.holds(0, 10)).toBe(true);
    expect<bool>(t.holds(0, 99)).toBe(true);
    expect<u32>(t.size(0)).toBe(4);
    t.touch(0, 12);                      // refresh 12; next eviction takes 11
    t.touch(0, 98);
    expect<bool>(t.holds(0, 11)).toBe(false);
    expect<bool>(t.holds(0, 12)).toBe(true);
  });

  it("keeps endpoints' capacities independent", () => {
    const t = new PrefixTable(2, 3);
    t.touchAll(0, hashes(1, 3), 3);
    t.touchAll(1, hashes(100, 10), 10);
    expect<u32>(t.size(0)).toBe(3);
    expect<u32>(t.size(1)).toBe(3);
    expect<bool>(t.holds(0, 1)).toBe(true);
    expect<bool>(t.holds(1, 100)).toBe(true);
    expect<bool>(t.holds(1, 109)).toBe(false);
  });

  it("grows its pool and rehashes without losing entries", () => {
    const t = new PrefixTable(2, 50000);
    t.touchAll(0, hashes(0, 30000), 30000);
    t.touchAll(1, hashes(0, 20000), 20000);
    const match = new StaticArray<i32>(2);
    expect<i32>(t.matchPrefix(hashes(0, 30000), 30000, match)).toBe(30000);
    expect<i32>(match[1]).toBe(20000);
    expect<u32>(t.size(0)).toBe(30000);
  });

  it("shrinks capacity by evicting and reuses freed nodes", () => {
    const t = new PrefixTable(1, 10);
    t.touchAll(0, hashes(0, 10), 10);
    const before = t.memoryBytes();
    t.setCapacity(0, 2);
    expect<u32>(t.size(0)).toBe(2);
    expect<bool>(t.holds(0, 0)).toBe(true);
    expect<bool>(t.holds(0, 1)).toBe(true);
    expect<bool>(t.holds(0, 2)).toBe(false);
    t.setCapacity(0, 10);
    for (let round = 0; round < 100; round++) t.touchAll(0, hashes(<u64>round * 100, 10), 10);
    expect<usize>(t.memoryBytes()).toBe(before);
  });

  it("ignores an endpoint with zero capacity", () => {
    const t = new PrefixTable(1, 0);
    t.touch(0, 5);
    expect<bool>(t.holds(0, 5)).toBe(false);
  });

  it("refreshes what the match found exactly as looking the entries up again would, evictions included", () => {
    // Two tables fed the same requests; one commits with touchMatched, the other with touchAll.
    const fast = new PrefixTable(4, 24, 7, 64);
    const slow = new PrefixTable(4, 24, 7, 64);
    const match = new StaticArray<i32>(4);
    const other = new StaticArray<i32>(4);
    let x: u64 = 12345;
    for (let r = 0; r < 400; r++) {
      x = x * 6364136223846793005 + 1442695040888963407;
      // Requests share prefixes (base from a small set) and end in fresh blocks.
      const base = <u64>((x >> 33) % 6) * 1000;
      const n = 4 + <i32>((x >> 20) % 20);
      const req = heap.alloc(<usize>n << 3);
      for (let i = 0; i < n; i++) store<u64>(req + (<usize>i << 3), i < n / 2 ? base + <u64>i : (x ^ <u64>i) | 1);
      const e = <i32>((x >> 40) % 4);
      fast.matchPrefix(req, n, match);
      slow.matchPrefix(req, n, other);
      for (let k = 0; k < 4; k++) expect<i32>(match[k]).toBe(other[k]);
      fast.touchMatched(e, req, n);
      slow.touchAll(e, req, n);
      for (let k = 0; k < 4; k++) expect<u32>(fast.size(k)).toBe(slow.size(k));
      heap.free(req);
    }
  });
});

/** The index's semantics without its layout: per endpoint, a queue of hashes with second-chance flags. */
class ModelIndex {
  queues: Array<Array<u64>> = [];
  used: Array<Array<bool>> = [];
  caps: Array<u32> = [];
  constructor(endpoints: i32, cap: u32) {
    for (let e = 0; e < endpoints; e++) {
      this.queues.push([]);
      this.used.push([]);
      this.caps.push(cap);
    }
  }
  holds(e: i32, h: u64): bool { return this.queues[e].indexOf(h) >= 0; }
  evict(e: i32): void {
    const q = this.queues[e];
    const u = this.used[e];
    while (q.length > 0) {
      const h = q.shift();
      const second = u.shift();
      if (second) {
        q.push(h);
        u.push(false);
        continue;
      }
      return;
    }
  }
  touch(e: i32, h: u64): void {
    if (this.caps[e] == 0) return;
    const at = this.queues[e].indexOf(h);
    if (at >= 0) {
      this.used[e][at] = true;
      return;
    }
    if (<u32>this.queues[e].length >= this.caps[e]) this.evict(e);
    this.queues[e].push(h);
    this.used[e].push(false);
  }
  setCapacity(e: i32, cap: u32): void {
    this.caps[e] = cap;
    while (<u32>this.queues[e].length > cap) this.evict(e);
  }
  drop(e: i32): void {
    this.queues[e] = [];
    this.used[e] = [];
  }
}

describe("PrefixTable against the model of its semantics", () => {
  it("agrees on every hash, size and match through inserts, evictions, shifts, growth, shrinking and drops", () => {
    // Few distinct hashes over many endpoints: long probe runs of one hash, wrap-around and
    // shifting deletions in a small table; capacities change and endpoints leave as they go.
    const endpoints = 6;
    const t = new PrefixTable(endpoints, 40, 99, 16);
    const m = new ModelIndex(endpoints, 40);
    const match = new StaticArray<i32>(endpoints);
    const req = heap.alloc(16 << 3);
    let x: u64 = 987654321;
    for (let r = 0; r < 1500; r++) {
      x = x * 6364136223846793005 + 1442695040888963407;
      const e = <i32>((x >> 40) % <u64>endpoints);
      const op = (x >> 20) % 50;
      if (op == 0) {
        const cap = <u32>((x >> 8) % 60);
        t.setCapacity(e, cap);
        m.setCapacity(e, cap);
      } else if (op == 1) {
        t.dropEndpoint(e);
        m.drop(e);
      } else {
        const n = 1 + <i32>((x >> 28) % 16);
        const base = ((x >> 33) % 8) * 100;
        for (let i = 0; i < n; i++) store<u64>(req + (<usize>i << 3), i < n / 2 ? base + <u64>i : ((x >> 50) % 200) * 1000 + <u64>i);
        t.matchPrefix(req, n, match);
        if (op % 2 == 0) t.touchMatched(e, req, n);
        else t.touchAll(e, req, n);
        for (let i = n - 1; i >= 0; i--) m.touch(e, load<u64>(req + (<usize>i << 3)));
      }
      for (let k = 0; k < endpoints; k++) expect<u32>(t.size(k)).toBe(<u32>m.queues[k].length);
      if (r % 100 == 0) {
        for (let k = 0; k < endpoints; k++) {
          const q = m.queues[k];
          for (let i = 0; i < q.length; i++) expect<bool>(t.holds(k, q[i])).toBe(true);
          for (let h: u64 = 0; h < 800; h += 7) expect<bool>(t.holds(k, h)).toBe(m.holds(k, h));
        }
      }
    }
    heap.free(req);
  });
});
