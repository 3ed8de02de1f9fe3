// The endpoints the router may pick, in slots. A static configuration fills
// one slot per listed endpoint for good; with discovery (discovery.ts) the
// slots follow the cluster's membership as Envoy reports it: an arriving
// endpoint takes the lowest free slot, a leaving one frees its slot, and each
// member carries the state Envoy's health flags give it (membership.ts).
//
// Every per-endpoint array in the router is indexed by slot and sized once
// for every slot, so a membership change allocates nothing there; the
// owners are told through SlotListener to forget a leaving endpoint (its
// index entries, in-flight counts and load) and to start an arriving one
// cold. A slot's generation changes each time it is vacated, so a stream
// that outlives its endpoint does not release into the slot's next occupant.
import { EndpointKeys, endpointKey, endpointKeyOfBytes } from "./endpoint_keys";
import { Member, MemberRecordReader } from "./membership";

export abstract class SlotListener {
  /** Slot e now holds `address`, starting cold. */
  abstract occupied(e: i32, address: string): void;
  /** Slot e's endpoint left: forget everything about it. */
  abstract vacated(e: i32): void;
}

/** What applying a membership record changed. */
export class MembershipChange {
  added: i32 = 0;
  removed: i32 = 0;
  /** Members the record had that found no free slot. */
  overLimit: i32 = 0;
  /** Any state or membership change at all. */
  changed: bool = false;
}

@final
export class Endpoints {
  readonly keys: EndpointKeys;
  /** Per slot: the address as the destination header carries it (empty when free). */
  readonly headerBytes: StaticArray<ArrayBuffer>;
  readonly names: StaticArray<string>;
  readonly state: StaticArray<u8>;
  readonly generation: StaticArray<u32>;
  /** Every occupied slot is below this. */
  span: i32 = 0;
  /** Occupied slots. */
  members: i32 = 0;
  /** The state a member must be in to be picked: Healthy, else Degraded, Absent when none may be. */
  pickableState: u8 = Member.Absent;
  pickable: i32 = 0;
  private static readonly EMPTY: ArrayBuffer = new ArrayBuffer(0);
  /** Scratch for apply(): slots the record names. */
  private seen: StaticArray<bool>;
  readonly change: MembershipChange = new MembershipChange();

  constructor(readonly capacity: i32) {
    this.keys = new EndpointKeys(capacity);
    this.headerBytes = new StaticArray<ArrayBuffer>(capacity);
    this.names = new StaticArray<string>(capacity);
    this.state = new StaticArray<u8>(capacity);
    this.generation = new StaticArray<u32>(capacity);
    this.seen = new StaticArray<bool>(capacity);
    for (let e = 0; e < capacity; e++) {
      unchecked(this.headerBytes[e] = Endpoints.EMPTY);
      unchecked(this.names[e] = "");
    }
  }

  // @ts-ignore: decorator
  @inline isMember(e: i32): bool { return unchecked(this.state[e]) != Member.Absent; }

  /** May slot e be picked now? */
  // @ts-ignore: decorator
  @inline isCandidate(e: i32): bool { return unchecked(this.state[e]) == this.pickableState; }

  /** Fills slots with a static list, all healthy. */
  fill(addresses: string[], listener: SlotListener): void {
    for (let i = 0; i < addresses.length && i < this.capacity; i++) this.occupy(i, addresses[i], Member.Healthy, listener);
    this.refresh();
  }

  /**
   * Makes the slots follow a membership record: members it lacks leave,
   * members it adds arrive, states follow. A malformed record changes nothing.
   */
  apply(ptr: usize, size: usize, listener: SlotListener): MembershipChange {
    const ch = this.change;
    ch.added = 0;
    ch.removed = 0;
    ch.overLimit = 0;
    ch.changed = false;
    const r = new MemberRecordReader();
    if (!r.open(ptr, size)) return ch;
    // Validate first, so a record cut short cannot empty the cluster.
    let hosts = 0;
    while (r.next()) hosts++;
    if (r.remaining != 0) return ch;
    // Members that stay, with their new states.
    for (let e = 0; e < this.capacity; e++) unchecked(this.seen[e] = false);
    r.open(ptr, size);
    while (r.next()) {
      const e = this.slotOf(r.address, r.length);
      if (e < 0) continue;
      unchecked(this.seen[e] = true);
      if (unchecked(this.state[e]) != r.state) {
        unchecked(this.state[e] = r.state);
        ch.changed = true;
      }
    }
    // Members that left free their slots first, so a full table can take
    // the arrivals of the same change.
    for (let e = 0; e < this.span; e++) {
      if (!this.isMember(e) || unchecked(this.seen[e])) continue;
      this.vacate(e, listener);
      ch.removed++;
    }
    if (ch.removed > 0) this.keys.rebuild();
    r.open(ptr, size);
    while (r.next()) {
      if (this.slotOf(r.address, r.length) >= 0) continue;
      const free = this.freeSlot();
      if (free < 0) {
        ch.overLimit++;
        continue;
      }
      this.occupy(free, String.UTF8.decodeUnsafe(r.address, r.length), r.state, listener);
      ch.added++;
    }
    if (ch.added > 0 || ch.removed > 0) ch.changed = true;
    if (ch.changed) this.refresh();
    return ch;
  }

  /** The slot holding the address [p, p+n), or -1. */
  private slotOf(p: usize, n: usize): i32 {
    const e = this.keys.indexOf(endpointKeyOfBytes(p, n));
    if (e < 0) return -1;
    const held = unchecked(this.headerBytes[e]);
    return <usize>held.byteLength == n && memory.compare(changetype<usize>(held), p, n) == 0 ? e : -1;
  }

  private freeSlot(): i32 {
    for (let e = 0; e < this.capacity; e++) {
      if (!this.isMember(e)) return e;
    }
    return -1;
  }

  private occupy(e: i32, address: string, state: u8, listener: SlotListener): void {
    unchecked(this.names[e] = address);
    unchecked(this.headerBytes[e] = String.UTF8.encode(address));
    unchecked(this.state[e] = state);
    // Keyed at once, so a duplicate later in the same record finds it.
    this.keys.insert(e, endpointKey(address));
    if (e >= this.span) this.span = e + 1;
    listener.occupied(e, address);
  }

  private vacate(e: i32, listener: SlotListener): void {
    listener.vacated(e);
    unchecked(this.names[e] = "");
    unchecked(this.headerBytes[e] = Endpoints.EMPTY);
    unchecked(this.state[e] = Member.Absent);
    unchecked(this.generation[e]++);
    this.keys.clear(e);
  }

  /** Recounts after a change: span, members, which state is pickable; re-keys. */
  private refresh(): void {
    let span = 0;
    let members = 0;
    let healthy = 0;
    let degraded = 0;
    for (let e = 0; e < this.capacity; e++) {
      const s = unchecked(this.state[e]);
      if (s == Member.Absent) continue;
      span = e + 1;
      members++;
      if (s == Member.Healthy) healthy++;
      else if (s == Member.Degraded) degraded++;
    }
    this.span = span;
    this.members = members;
    // As Envoy's load balancers do with degraded hosts: used only when no healthy one is left.
    this.pickableState = healthy > 0 ? Member.Healthy : degraded > 0 ? Member.Degraded : Member.Absent;
    this.pickable = healthy > 0 ? healthy : degraded;
    this.keys.rebuild();
  }
}
