// Stable 64-bit keys for endpoints, and the map from key to the local index.
//
// Journal events name endpoints by the xxHash64 of their address rather than by
// position, so VMs whose configurations list endpoints in another order (or a
// configuration update that adds or removes some) still agree on who is who.
// Lookup is an open-addressing table sized at configure time; no allocation
// afterwards.
import { xxh64String } from "./hash";

@final
export class EndpointKeys {
  readonly keys: StaticArray<u64>;
  private slots: StaticArray<u64>;
  private indexes: StaticArray<i32>;
  private mask: i32;

  constructor(addresses: string[]) {
    const n = addresses.length;
    this.keys = new StaticArray<u64>(n);
    let size = 16;
    while (size < n * 2) size <<= 1;
    this.slots = new StaticArray<u64>(size);
    this.indexes = new StaticArray<i32>(size);
    this.mask = size - 1;
    for (let i = 0; i < size; i++) unchecked(this.indexes[i] = -1);
    for (let i = 0; i < n; i++) {
      // Key 0 means "no endpoint" in events; remap the (astronomically unlikely) zero hash.
      let key = xxh64String(addresses[i]);
      if (key == 0) key = 1;
      unchecked(this.keys[i] = key);
      let s = <i32>(<u32>key) & this.mask;
      while (unchecked(this.indexes[s]) >= 0) s = (s + 1) & this.mask;
      unchecked(this.slots[s] = key);
      unchecked(this.indexes[s] = i);
    }
  }

  /** The local index of the endpoint with this key, or -1 if it is not configured here. */
  indexOf(key: u64): i32 {
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
