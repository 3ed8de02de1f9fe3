// Sticky routes that prefix matching cannot find: a Responses follow-up that
// names its previous response (`previous_response_id`: the client sends only
// the new turn, so its prompt shares nothing with the cached conversation)
// goes back to the endpoint that produced that response, and requests of one
// session (the configured sessionHeader) go where the session went.
//
// The map, id hash → endpoint key, is shared by all VMs of the vm_id the way
// the prefix index is: each VM keeps its own table and all replicate it from
// a bounded ring in shared data, a second Journal (journal.ts) under
// <ns>affinity/, whose events carry one hash and the endpoint key. The ring
// holds the last `affinityEntries` mappings; older ones fall out first, and
// each VM forgets them too (an entry older than the ring is treated as gone).
// Shared data: 2 + affinityEntries keys of 40 bytes; per VM a table of
// 2 × affinityEntries slots of 24 bytes, allocated with the first mapping (a
// deployment without Responses follow-ups or sessions never pays for it).
import { EventSink, Journal, EVENT_HEADER_BYTES } from "./journal";

@final
export class AffinityMap extends EventSink {
  private journal: Journal;
  private hashes: StaticArray<u64>;
  private endpointKeys: StaticArray<u64>;
  private stamps: StaticArray<u64>;
  private mask: i32;
  /** Mappings applied so far, this VM's own included: the age of an entry. */
  private clock: u64 = 0;

  constructor(namespace: string, private entries: i32, private vmTag: u32, nowMs: i64) {
    super();
    this.hashes = new StaticArray<u64>(0);
    this.endpointKeys = new StaticArray<u64>(0);
    this.stamps = new StaticArray<u64>(0);
    this.mask = -1;
    this.journal = new Journal(namespace + "affinity/", entries, 1);
    this.journal.open(this, vmTag, nowMs);
  }

  /** Takes in the mappings other VMs made since the last call (`nowMs`: clock.ts nowMs). */
  sync(nowMs: i64): void {
    this.journal.sync(this, this.vmTag, nowMs);
  }

  /** Where this VM is in the affinity journal: it moves when any VM remembers a mapping. */
  position(): u64 {
    return this.journal.position();
  }

  /** The endpoint key `hash` maps to, or 0. Call sync() first for the freshest view. */
  lookup(hash: u64): u64 {
    if (hash == 0 || this.mask < 0) return 0;
    let s = <i32>(<u32>hash) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++) {
      const h = unchecked(this.hashes[s]);
      if (h == 0) return 0;
      if (h == hash) return this.live(s) ? unchecked(this.endpointKeys[s]) : 0;
      s = (s + 1) & this.mask;
    }
    return 0;
  }

  /** Maps `hash` to `endpointKey` here and, through the ring, on every VM. */
  remember(hash: u64, endpointKey: u64): void {
    if (hash == 0 || endpointKey == 0) return;
    this.insert(hash, endpointKey);
    store<u64>(this.journal.event, hash, EVENT_HEADER_BYTES);
    this.journal.append(this.journal.writeHeader(this.vmTag, 0, 1, endpointKey, 0));
  }

  apply(tag: u32, routedKey: u64, releases: usize, releaseCount: i32, hashes: usize, blockCount: i32, matched: i32): void {
    if (blockCount == 1 && routedKey != 0) this.insert(load<u64>(hashes), routedKey);
  }

  /** An entry older than the ring's length has fallen out of it. */
  // @ts-ignore: decorator
  @inline private live(s: i32): bool {
    return this.clock - unchecked(this.stamps[s]) <= <u64>this.entries;
  }

  private insert(hash: u64, endpointKey: u64): void {
    if (this.mask < 0) this.allocate();
    this.clock++;
    let s = <i32>(<u32>hash) & this.mask;
    // The table holds twice the live entries, so a free, stale or matching slot is always near.
    for (let probes = 0; probes <= this.mask; probes++) {
      const h = unchecked(this.hashes[s]);
      if (h == 0 || h == hash || !this.live(s)) break;
      s = (s + 1) & this.mask;
    }
    unchecked(this.hashes[s] = hash);
    unchecked(this.endpointKeys[s] = endpointKey);
    unchecked(this.stamps[s] = this.clock);
  }

  private allocate(): void {
    let size = 16;
    while (size < this.entries * 2) size <<= 1;
    this.hashes = new StaticArray<u64>(size);
    this.endpointKeys = new StaticArray<u64>(size);
    this.stamps = new StaticArray<u64>(size);
    this.mask = size - 1;
  }

  free(): void {
    this.journal.free();
  }
}
