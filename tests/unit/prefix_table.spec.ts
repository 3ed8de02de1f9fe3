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
