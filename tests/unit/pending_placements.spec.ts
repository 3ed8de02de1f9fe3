import { PrefixTable } from "../../assembly/router/prefix_table";
import { PendingPlacements } from "../../assembly/router/pending_placements";

/** A u64 array in raw memory: `shared` entries base+0 …, then entries distinct from other bases. */
function chain(base: u64, shared: i32, n: i32, own: u64): usize {
  const p = heap.alloc(<usize>max(n, 1) << 3);
  for (let i = 0; i < n; i++) store<u64>(p + (<usize>i << 3), i < shared ? base + <u64>i : own * 1000 + <u64>i);
  return p;
}

describe("PendingPlacements", () => {
  it("keeps a placement out of the table until flush", () => {
    const t = new PrefixTable(2, 100);
    const generations = new StaticArray<u32>(2);
    const pending = new PendingPlacements(t, generations, 8, 4096);
    const placed = chain(100, 4, 4, 1);
    expect<bool>(pending.add(1, 0, placed, 4, 0)).toBe(true);
    expect<bool>(t.holds(1, 100)).toBe(false);
    // A prompt that shares nothing with it leaves it pending.
    pending.applyRelevant(chain(900, 3, 3, 2), 3);
    expect<bool>(t.holds(1, 100)).toBe(false);
    pending.flush();
    expect<bool>(t.holds(1, 100)).toBe(true);
    expect<bool>(t.holds(1, 103)).toBe(true);
    expect<i32>(pending.length).toBe(0);
  });

  it("writes at once a placement whose first new entry is the prompt's", () => {
    const t = new PrefixTable(2, 100);
    const pending = new PendingPlacements(t, new StaticArray<u32>(2), 8, 4096);
    // Endpoint 0 already held entries 0..1 (matched 2); the placement adds 2..5.
    pending.add(0, 0, chain(100, 6, 6, 1), 6, 2);
    // A prompt sharing entries 0..1 only: its entry 2 differs from the probe.
    pending.applyRelevant(chain(100, 2, 5, 3), 5);
    expect<bool>(t.holds(0, 102)).toBe(false);
    // A prompt sharing entries 0..3: the placement extends its match.
    pending.applyRelevant(chain(100, 4, 8, 4), 8);
    expect<bool>(t.holds(0, 102)).toBe(true);
    expect<bool>(t.holds(0, 105)).toBe(true);
  });

  it("never counts a placement with nothing new, or beyond the prompt, as relevant", () => {
    const t = new PrefixTable(1, 100);
    const pending = new PendingPlacements(t, new StaticArray<u32>(1), 8, 4096);
    pending.add(0, 0, chain(100, 3, 3, 1), 3, 3);   // a refresh: every entry was held
    pending.add(0, 0, chain(200, 6, 6, 1), 6, 4);   // new from entry 4 on
    pending.applyRelevant(chain(100, 3, 3, 2), 3);
    pending.applyRelevant(chain(200, 4, 4, 2), 4); // the prompt ends where the new entries begin
    expect<bool>(t.holds(0, 100)).toBe(false);
    expect<bool>(t.holds(0, 204)).toBe(false);
    pending.flush();
    expect<bool>(t.holds(0, 100)).toBe(true);
    expect<bool>(t.holds(0, 205)).toBe(true);
  });

  it("skips a placement whose endpoint slot changed hands since", () => {
    const t = new PrefixTable(1, 100);
    const generations = new StaticArray<u32>(1);
    const pending = new PendingPlacements(t, generations, 8, 4096);
    pending.add(0, 0, chain(100, 2, 2, 1), 2, 0);
    generations[0] = 1;
    pending.flush();
    expect<bool>(t.holds(0, 100)).toBe(false);
  });

  it("refuses a placement once its count or arena bound is reached", () => {
    const t = new PrefixTable(1, 100);
    const pending = new PendingPlacements(t, new StaticArray<u32>(1), 2, 64);
    expect<bool>(pending.add(0, 0, chain(100, 4, 4, 1), 4, 0)).toBe(true);   // 32 bytes
    expect<bool>(pending.add(0, 0, chain(200, 5, 5, 1), 5, 0)).toBe(false);  // 40 more do not fit
    expect<bool>(pending.add(0, 0, chain(300, 4, 4, 1), 4, 0)).toBe(true);
    expect<bool>(pending.add(0, 0, chain(400, 1, 1, 1), 1, 0)).toBe(false);  // two already
    pending.flush();
    expect<bool>(pending.add(0, 0, chain(200, 5, 5, 1), 5, 0)).toBe(true);
  });

  it("refreshes a prefix at an endpoint once per flush, and its new entries always", () => {
    const t = new PrefixTable(2, 100);
    const pending = new PendingPlacements(t, new StaticArray<u32>(2), 8, 4096);
    const p = chain(100, 2, 4, 1);   // 100, 101, then its own
    pending.add(0, 0, p, 4, 2);
    pending.add(0, 0, chain(100, 2, 4, 2), 4, 2); // the same two-entry prefix at 0
    pending.add(1, 0, chain(100, 2, 4, 3), 4, 2); // the same prefix at another endpoint
    pending.flush();
    expect<u64>(pending.skippedRefreshes).toBe(2);
    expect<bool>(t.holds(0, 100)).toBe(true);
    expect<bool>(t.holds(0, 2002)).toBe(true);  // the second placement's own entries
    expect<bool>(t.holds(1, 101)).toBe(true);
    // A new flush refreshes it again.
    pending.add(0, 0, chain(100, 2, 4, 4), 4, 2);
    pending.flush();
    expect<u64>(pending.skippedRefreshes).toBe(2);
  });
});
