// Stable 64-bit keys for endpoints, and the map from key to the local slot.
//
// Journal events name endpoints by the xxHash64 of their address rather than by
// position, so VMs whose configurations list endpoints in another order, or
// whose views of a discovered cluster differ for a tick, still agree on who is
// who. Slots come and go with the cluster's membership (endpoints.ts): a free
// slot's key is 0, which no address gets. Lookup is an open-addressing table
// sized once for every slot; it is rebuilt after a membership change (rare),
// so lookups need no tombstones.
import { xxh64, xxh64String } from "./hash";

/** The key of an address: never 0, which means "no endpoint" in events and "free" in slots. */
export function endpointKey(address: string): u64 {
  // Remap the (astronomically unlikely) zero hash.
  const key = xxh64String(address);
  return key == 0 ? 1 : key;
}

/** endpointKey of the UTF-8 address [p, p+n). */
export function endpointKeyOfBytes(p: usize, n: usize): u64 {
  const key = xxh64(p, n, 0);
  return key == 0 ? 1 : key;
}

@final
export class EndpointKeys {
  /** Per slot: its endpoint's key, 0 when the slot is free. */
  readonly keys: StaticArray<u64>;
  private slots: StaticArray<u64>;
  private indexes: StaticArray<i32>;
  private mask: i32;

  constructor(capacity: i32) {
    this.keys = new StaticArray<u64>(capacity);
    let size = 16;
    while (size < capacity * 2) size <<= 1;
    this.slots = new StaticArray<u64>(size);
    this.indexes = new StaticArray<i32>(size);
    this.mask = size - 1;
    this.rebuild();
  }

  /** Gives free slot `e` the endpoint with this key, findable at once. */
  insert(e: i32, key: u64): void {
    unchecked(this.keys[e] = key);
    this.place(e, key);
  }

  /** Frees slot e; it stays findable until rebuild(), which a batch of changes ends with. */
  // @ts-ignore: decorator
  @inline clear(e: i32): void {
    unchecked(this.keys[e] = 0);
  }

  /** Re-indexes every occupied slot. */
  rebuild(): void {
    const size = this.indexes.length;
    for (let i = 0; i < size; i++) unchecked(this.indexes[i] = -1);
    for (let e = 0; e < this.keys.length; e++) {
      const key = unchecked(this.keys[e]);
      if (key != 0) this.place(e, key);
    }
  }

  private place(e: i32, key: u64): void {
    let s = <i32>(<u32>key) & this.mask;
    while (unchecked(this.indexes[s]) >= 0) s = (s + 1) & this.mask;
    unchecked(this.slots[s] = key);
    unchecked(this.indexes[s] = e);
  }

  /** The slot of the endpoint with this key, or -1 if it is not a member here. */
  indexOf(key: u64): i32 {
    if (key == 0) return -1;
    let s = <i32>(<u32>key) & this.mask;
    while (true) {
      const i = unchecked(this.indexes[s]);
      if (i < 0) return -1;
      if (unchecked(this.slots[s]) == key) return i;
      s = (s + 1) & this.mask;
    }
    return -1;
  }
}
