// Other VMs' placements this VM has read from the journal but not yet written
// into its own prefix table.
//
// Writing every other worker's index entries into this VM's table on the
// request path made a decision's cost grow with the number of workers (each
// decision paid for the others' since its last one). Instead the request path
// only notes them here, and the tick writes them all (router.ts onTick), so
// every VM's table holds every decision within a tick. A decision cannot wait
// for the tick when a noted placement extends what the table knows of its own
// prompt: that is what keeps a conversation or a burst sharing a new prefix on
// one endpoint across workers. Block hashes are chained, so two prompts share
// their first k entries exactly when their k-th entries are equal; a placement
// whose routed endpoint already held `matched` entries (as the deciding VM saw
// it) adds something only from entry `matched` on, so it extends this
// prompt's match exactly when the prompt's entry `matched` equals the
// placement's (its probe). Such placements are written before the match
// (applyRelevant); the others cost one comparison per decision until the tick.
//
// A tick's placements mostly repeat the same prefixes: every request behind a
// shared system prompt refreshes that prompt's entries at its endpoint. The
// table's refresh is a used bit, so refreshing an entry twice between
// evictions is refreshing it once: flush writes the first `matched` entries of
// a placement only if no earlier placement of the same flush refreshed the
// same prefix at the same endpoint (the same entry at `matched` - 1, chained,
// means the same prefix), and always its new entries.
//
// Storage: per placement its endpoint slot and the slot's generation (a slot
// that changed hands since is skipped), the entry count, `matched`, the probe,
// and the entries, copied into an arena. Both are bounded; when either is
// full the owner writes everything (flush) and starts over.
import { PrefixTable } from "./prefix_table";
import { mix64 } from "./hash";

@final
export class PendingPlacements {
  private endpoint: StaticArray<i32>;
  private generation: StaticArray<u32>;
  private count: StaticArray<u16>;
  private matched: StaticArray<u16>;
  private probe: StaticArray<u64>;
  private offset: StaticArray<u32>;
  /** Written already (relevant to an earlier decision). */
  private written: StaticArray<bool>;
  private arena: usize;
  private arenaBytes: usize;
  private arenaUsed: usize = 0;
  length: i32 = 0;
  // Prefixes refreshed during the current flush: an open-addressed set of
  // (endpoint, last prefix entry) keys, each slot stamped with the flush that
  // wrote it, so the set is never cleared.
  private refreshedKeys: StaticArray<u64>;
  private refreshedStamps: StaticArray<u32>;
  private refreshedMask: i32;
  private flushes: u32 = 0;
  /** Prefix entries a flush did not write again (they were refreshed earlier in the same flush). */
  skippedRefreshes: u64 = 0;
  /** Placements written because they extended a decision's match, and those written by a flush. */
  writtenAtOnce: u64 = 0;
  writtenByFlush: u64 = 0;

  /** `generations`: each endpoint slot's current generation (endpoints.ts). */
  constructor(private table: PrefixTable, private generations: StaticArray<u32>, private maxPlacements: i32, arenaBytes: usize) {
    this.endpoint = new StaticArray<i32>(maxPlacements);
    this.generation = new StaticArray<u32>(maxPlacements);
    this.count = new StaticArray<u16>(maxPlacements);
    this.matched = new StaticArray<u16>(maxPlacements);
    this.probe = new StaticArray<u64>(maxPlacements);
    this.offset = new StaticArray<u32>(maxPlacements);
    this.written = new StaticArray<bool>(maxPlacements);
    this.arena = heap.alloc(arenaBytes);
    this.arenaBytes = arenaBytes;
    let slots = 16;
    while (slots < maxPlacements * 2) slots <<= 1;
    this.refreshedKeys = new StaticArray<u64>(slots);
    this.refreshedStamps = new StaticArray<u32>(slots);
    this.refreshedMask = slots - 1;
  }

  /** Notes that slot e (of that generation) now holds `hashes[0..count)`; false when there is no room. */
  add(e: i32, generation: u32, hashes: usize, count: i32, matched: i32): bool {
    const bytes = <usize>count << 3;
    const i = this.length;
    if (i == this.maxPlacements || this.arenaUsed + bytes > this.arenaBytes) return false;
    unchecked(this.endpoint[i] = e);
    unchecked(this.generation[i] = generation);
    unchecked(this.count[i] = <u16>count);
    unchecked(this.matched[i] = <u16>matched);
    unchecked(this.probe[i] = matched < count ? load<u64>(hashes + (<usize>matched << 3)) : 0);
    unchecked(this.offset[i] = <u32>this.arenaUsed);
    unchecked(this.written[i] = false);
    memory.copy(this.arena + this.arenaUsed, hashes, bytes);
    this.arenaUsed += bytes;
    this.length = i + 1;
    return true;
  }

  /**
   * Writes, now, every noted placement that extends the match of a prompt
   * whose index entries are `entries[0..n)`: its entry `matched` is the
   * placement's probe.
   */
  applyRelevant(entries: usize, n: i32): void {
    for (let i = 0; i < this.length; i++) {
      const m = <i32>unchecked(this.matched[i]);
      if (m >= n || m >= <i32>unchecked(this.count[i]) || unchecked(this.written[i])) continue;
      if (load<u64>(entries + (<usize>m << 3)) != unchecked(this.probe[i])) continue;
      this.writeOne(i, false);
    }
  }

  /** Writes every placement not written yet, in the order they were noted, and empties the list. */
  flush(): void {
    this.flushes++;
    for (let i = 0; i < this.length; i++) {
      if (!unchecked(this.written[i])) this.writeOne(i, true);
    }
    this.length = 0;
    this.arenaUsed = 0;
  }

  /** Writes placement i; with `oncePerFlush`, its prefix only if this flush has not refreshed it yet. */
  private writeOne(i: i32, oncePerFlush: bool): void {
    unchecked(this.written[i] = true);
    if (oncePerFlush) this.writtenByFlush++;
    else this.writtenAtOnce++;
    const e = unchecked(this.endpoint[i]);
    if (unchecked(this.generations[e]) != unchecked(this.generation[i])) return;
    const hashes = this.arena + <usize>unchecked(this.offset[i]);
    const count = <i32>unchecked(this.count[i]);
    const m = min(<i32>unchecked(this.matched[i]), count);
    let from = 0;
    if (oncePerFlush && m > 0 && !this.firstRefresh(e, load<u64>(hashes + (<usize>(m - 1) << 3)))) {
      from = m;
      this.skippedRefreshes += <u64>m;
    }
    this.table.touchAll(e, hashes + (<usize>from << 3), count - from);
  }

  /** Records that e's prefix ending in `last` is refreshed in this flush; false if it already was. */
  private firstRefresh(e: i32, last: u64): bool {
    const key = mix64(last ^ (<u64>(e + 1) * 0x9E3779B97F4A7C15));
    const stamp = this.flushes;
    let s = <i32>(<u32>key) & this.refreshedMask;
    while (unchecked(this.refreshedStamps[s]) == stamp) {
      if (unchecked(this.refreshedKeys[s]) == key) return false;
      s = (s + 1) & this.refreshedMask;
    }
    unchecked(this.refreshedKeys[s] = key);
    unchecked(this.refreshedStamps[s] = stamp);
    return true;
  }

  free(): void {
    heap.free(this.arena);
    this.length = 0;
    this.arenaUsed = 0;
  }
}
