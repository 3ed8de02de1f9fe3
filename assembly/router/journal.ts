// The shared prefix index journal: how every worker VM of one vm_id sees the
// same routing history through Envoy shared data.
//
// proxy-wasm shared data is a key/value store with compare-and-swap and no
// delete (ENVOY_HOST.md §5). Reading a whole index from it on every request
// would copy megabytes; instead each VM keeps its own index (prefix_table.ts)
// and all VMs replicate it from a bounded, append-only ring of events:
//
//   <ns>head          u64 next sequence number (claimed by CAS)
//   <ns>slot/<k>      the event with seq ≡ k (mod journalSlots)
//
//   event:  +0 seq u64 | +8 vm tag u32 | +12 releases u16 | +14 blocks u16 |
//           +16 routed endpoint key u64 (0 = none) |
//           +24 matched u16: leading index entries the routed endpoint held
//               already, as the deciding VM saw it | +26 reserved (zero) |
//           +32 blocks × index entry (block hash) u64 | releases × endpoint key u64
//   (hashes first, so the router can hash a prompt straight into the event)
//   The EVENT_* offsets below name these fields; writeHeader and append write
//   them, readSlot and deliver read them.
//
// Appending claims seq H by CAS-ing head from H to H+1, then writes slot H mod S.
// Readers apply events in seq order and skip their own (already applied when
// made). A slot still holding an older seq was claimed but not yet written by
// another thread: the reader waits for it on a later sync, unless it is far
// behind the head (its writer died between claim and write), then skips it.
// A reader that fell more than S behind jumps ahead (the ring was overwritten).
// So shared data holds at most 2 + journalSlots keys of at most
// 32 + 8 × (MAX_RELEASES + maxPrefixBlocks) bytes each, whatever the traffic.
import * as host from "../abi/host";
import { WasmResult } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import { MAX_RELEASES, PENDING_WINDOW, CLAIM_ATTEMPTS } from "./limits";

const EVENT_SEQ: usize = 0;
const EVENT_TAG: usize = 8;
const EVENT_RELEASES: usize = 12;
const EVENT_BLOCKS: usize = 14;
const EVENT_ROUTED: usize = 16;
const EVENT_MATCHED: usize = 24;
export const EVENT_HEADER_BYTES: usize = 32;

/**
 * The tag of an event another Envoy's filter made, taken in from a peer
 * (peers.ts): it places blocks in the index and nothing else, since its
 * request is not in flight here. VM tags count up from 1 (vm_tag.ts) and
 * never reach it.
 */
export const PEER_TAG: u32 = u32.MAX_VALUE;

// Readers of a stored event's fields, for code that hands events on (peer_answer.ts).
// @ts-ignore: decorator
@inline export function eventTag(p: usize): u32 { return load<u32>(p + EVENT_TAG); }
// @ts-ignore: decorator
@inline export function eventBlocks(p: usize): i32 { return <i32>load<u16>(p + EVENT_BLOCKS); }
// @ts-ignore: decorator
@inline export function eventRouted(p: usize): u64 { return load<u64>(p + EVENT_ROUTED); }
// @ts-ignore: decorator
@inline export function eventMatched(p: usize): i32 { return <i32>load<u16>(p + EVENT_MATCHED); }

/** What a ring slot holds when read for a given seq. */
namespace Slot {
  export const Unwritten: i32 = 0;
  export const Holds: i32 = 1;
  export const Overwritten: i32 = 2;
}

/** Receives replicated events during sync. */
export abstract class EventSink {
  abstract apply(tag: u32, routedKey: u64, releases: usize, releaseCount: i32, hashes: usize, blockCount: i32, matched: i32): void;
}

/** Takes stored events one by one (Journal.scan); false: no room for this one, stop. */
export abstract class StoredEventSink {
  abstract take(event: usize, size: usize): bool;
}

/** Counters the router exports as stats. */
export class JournalStats {
  applied: u64 = 0;
  gaps: u64 = 0;
  casConflicts: u64 = 0;
  appendFailures: u64 = 0;
}

@final
export class Journal {
  private prefix: ArrayBuffer;
  private key: usize;          // scratch for "<ns>slot/<k>"
  private headKey: ArrayBuffer;
  private headValue: usize = memory.data(8);
  private slots: u64;
  private nextSeq: u64 = 0;    // the next seq this VM has not yet applied
  private headSeen: u64 = 0;
  private headCas: u32 = 0;
  private buf: HostBuffer = new HostBuffer();
  readonly stats: JournalStats = new JournalStats();
  /** The seq of the event being handed to a sink, for a sink that weighs events by age (router.ts IndexReplay). */
  deliveringSeq: u64 = 0;
  // The outgoing event, built in place.
  readonly event: usize;
  readonly eventCapacity: i32;

  constructor(namespace: string, slots: i32, maxBlocks: i32) {
    this.prefix = String.UTF8.encode(namespace);
    this.headKey = String.UTF8.encode(namespace + "head");
    this.key = heap.alloc(<usize>this.prefix.byteLength + 32);
    memory.copy(this.key, changetype<usize>(this.prefix), this.prefix.byteLength);
    this.slots = <u64>slots;
    this.eventCapacity = maxBlocks;
    this.event = heap.alloc(EVENT_HEADER_BYTES + (<usize>(MAX_RELEASES + maxBlocks) << 3));
    memory.fill(this.event, 0, EVENT_HEADER_BYTES);
  }

  /**
   * Fills the outgoing event's header (append writes seq): `blocks` hashes are
   * already at event + EVENT_HEADER_BYTES, followed by `releases` endpoint
   * keys. Returns the event's size in bytes.
   */
  writeHeader(tag: u32, releases: i32, blocks: i32, routedKey: u64, matched: i32): usize {
    const ev = this.event;
    store<u32>(ev + EVENT_TAG, tag);
    store<u16>(ev + EVENT_RELEASES, <u16>releases);
    store<u16>(ev + EVENT_BLOCKS, <u16>blocks);
    store<u64>(ev + EVENT_ROUTED, routedKey);
    store<u16>(ev + EVENT_MATCHED, <u16>matched);
    return EVENT_HEADER_BYTES + (<usize>(blocks + releases) << 3);
  }

  /** Creates the head key if this is the first VM, and starts reading at the
   * oldest event still in the ring, so a new VM starts with the loads that
   * history leaves (its index comes from replay, router.ts startIndexing). */
  open(sink: EventSink, selfTag: u32): void {
    if (!this.readHead()) {
      store<u64>(this.headValue, 0);
      // Racing VMs all write 0 here before any append, so the race is benign.
      host.setSharedData(changetype<usize>(this.headKey), this.headKey.byteLength, this.headValue, 8, 0);
      this.readHead();
    }
    const head = this.headSeen;
    this.nextSeq = head > this.slots ? head - this.slots : 0;
    this.sync(sink, selfTag);
  }

  /** Reads head; false if it does not exist yet. */
  private readHead(): bool {
    const status = host.getSharedData(changetype<usize>(this.headKey), this.headKey.byteLength, this.buf);
    const ok = status == WasmResult.Ok && this.buf.size == 8;
    if (ok) {
      this.headSeen = load<u64>(this.buf.ptr);
      this.headCas = this.buf.cas;
    } else {
      this.headSeen = 0;
      this.headCas = 0;
    }
    this.buf.release();
    return ok;
  }

  /** The next seq this VM will read: it moves when any VM appends (tick_pace.ts watches it). */
  position(): u64 {
    return this.nextSeq;
  }

  /** Applies every event this VM has not seen yet (except its own). */
  sync(sink: EventSink, selfTag: u32): void {
    if (!this.readHead()) return;
    const head = this.headSeen;
    if (head < this.nextSeq) {
      // The head went backwards: shared data was reset under us. Start over there.
      this.nextSeq = head;
      this.stats.gaps++;
      return;
    }
    if (head - this.nextSeq > this.slots) {
      this.stats.gaps += head - this.slots - this.nextSeq;
      this.nextSeq = head - this.slots;
    }
    while (this.nextSeq < head) {
      const seq = this.nextSeq;
      const slot = this.readSlot(seq);
      if (slot == Slot.Holds) {
        this.deliver(sink, selfTag);
        this.stats.applied++;
        this.buf.release();
        this.nextSeq++;
        continue;
      }
      this.buf.release();
      if (slot == Slot.Overwritten) {
        // Overwritten by a later lap: this VM is behind; take what is there next time.
        this.stats.gaps++;
        this.nextSeq++;
        continue;
      }
      // Claimed but not written yet (or garbage). Wait for it unless it is old.
      if (head - seq <= PENDING_WINDOW) break;
      this.stats.gaps++;
      this.nextSeq++;
    }
  }

  /**
   * Delivers again, to `sink`, the events still in the ring that this VM has
   * already taken in (except its own), oldest first: for a VM that starts
   * keeping state it did not keep before (router.ts: an index from its first
   * decision on). Events the ring no longer holds are gone.
   */
  replay(sink: EventSink, selfTag: u32): void {
    const from = this.nextSeq > this.slots ? this.nextSeq - this.slots : 0;
    for (let seq = from; seq < this.nextSeq; seq++) {
      if (this.readSlot(seq) == Slot.Holds) this.deliver(sink, selfTag);
      this.buf.release();
    }
  }

  /**
   * Hands `sink` the events in the ring from seq `since` on, oldest first and
   * as stored (every VM's), until the head or until the sink has no room;
   * returns the seq to go on from. A `since` past the head (the journal was
   * reset: its Envoy restarted) or older than the ring starts at the oldest
   * event the ring holds. Stops at a slot claimed but not yet written, as
   * sync does, so that what it returns is never past an event still to come.
   */
  scan(since: u64, sink: StoredEventSink): u64 {
    if (!this.readHead()) return 0;
    const head = this.headSeen;
    const oldest = head > this.slots ? head - this.slots : 0;
    let seq = since > head || since < oldest ? oldest : since;
    while (seq < head) {
      const slot = this.readSlot(seq);
      if (slot == Slot.Holds) {
        const taken = sink.take(this.buf.ptr, this.buf.size);
        this.buf.release();
        if (!taken) break;
        seq++;
        continue;
      }
      this.buf.release();
      if (slot == Slot.Unwritten && head - seq <= PENDING_WINDOW) break;
      seq++;
    }
    return seq;
  }

  /** Reads slot `seq` into buf (the caller releases it): whether it holds that event, a later one, or neither. */
  private readSlot(seq: u64): i32 {
    const keyLen = this.slotKey(seq);
    const status = host.getSharedData(this.key, keyLen, this.buf);
    const p = this.buf.ptr;
    const size = this.buf.size;
    if (status != WasmResult.Ok || size < EVENT_HEADER_BYTES) return Slot.Unwritten;
    const releases = <i32>load<u16>(p + EVENT_RELEASES);
    const blocks = <i32>load<u16>(p + EVENT_BLOCKS);
    const valid = size == EVENT_HEADER_BYTES + (<usize>(releases + blocks) << 3) && <i32>load<u16>(p + EVENT_MATCHED) <= blocks;
    if (!valid) return Slot.Unwritten;
    const written = load<u64>(p + EVENT_SEQ);
    if (written == seq) return Slot.Holds;
    return written > seq ? Slot.Overwritten : Slot.Unwritten;
  }

  /** Hands the event in buf (readSlot said it holds one) to `sink`, unless this VM wrote it. */
  private deliver(sink: EventSink, selfTag: u32): void {
    const p = this.buf.ptr;
    const tag = load<u32>(p + EVENT_TAG);
    if (tag == selfTag) return;
    const releases = <i32>load<u16>(p + EVENT_RELEASES);
    const blocks = <i32>load<u16>(p + EVENT_BLOCKS);
    const hashPtr = p + EVENT_HEADER_BYTES;
    this.deliveringSeq = load<u64>(p + EVENT_SEQ);
    sink.apply(tag, load<u64>(p + EVENT_ROUTED), hashPtr + (<usize>blocks << 3), releases, hashPtr, blocks, <i32>load<u16>(p + EVENT_MATCHED));
  }

  /**
   * Appends the event built in `event` (header fields other than seq filled by
   * the caller). Returns the seq it got, or u64.MAX_VALUE if every claim lost.
   * When that seq is the next one this VM would apply, an event of this VM's
   * own counts as applied; one it took in from a peer (`own` false) is
   * applied by this VM's next sync, like any other VM's.
   */
  append(eventBytes: usize, own: bool = true): u64 {
    let seq: u64 = u64.MAX_VALUE;
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      if (this.headCas == 0 && !this.readHead()) break;
      const claimed = this.headSeen;
      store<u64>(this.headValue, claimed + 1);
      const status = host.setSharedData(changetype<usize>(this.headKey), this.headKey.byteLength, this.headValue, 8, this.headCas);
      if (status == WasmResult.Ok) {
        seq = claimed;
        this.headSeen = claimed + 1;
        this.headCas = 0; // unknown until the next read
        break;
      }
      this.stats.casConflicts++;
      this.readHead();
    }
    if (seq == u64.MAX_VALUE) {
      this.stats.appendFailures++;
      return seq;
    }
    store<u64>(this.event + EVENT_SEQ, seq);
    const keyLen = this.slotKey(seq);
    host.setSharedData(this.key, keyLen, this.event, eventBytes, 0);
    if (own && seq == this.nextSeq) this.nextSeq = seq + 1;
    return seq;
  }

  /** Writes "<ns>slot/<seq mod slots>" into the key scratch; returns its length. */
  private slotKey(seq: u64): usize {
    let p = this.key + <usize>this.prefix.byteLength;
    store<u32>(p, 0x746F6C73); // "slot"
    store<u8>(p, 0x2F, 4);     // "/"
    p += 5;
    let k = seq % this.slots;
    // Decimal digits, written backwards into a small window then moved.
    const digits = memory.data(24);
    let n: usize = 0;
    do {
      store<u8>(digits + 23 - n, <u8>(0x30 + <u32>(k % 10)));
      k /= 10;
      n++;
    } while (k != 0);
    memory.copy(p, digits + 24 - n, n);
    return <usize>this.prefix.byteLength + 5 + n;
  }

  /** Returns the raw buffers to the heap when the router goes away; unusable afterwards. */
  free(): void {
    heap.free(this.key);
    heap.free(this.event);
    this.buf.release();
  }
}
