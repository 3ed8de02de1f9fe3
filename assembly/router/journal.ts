// The shared prefix index journal: how every worker VM of one vm_id sees the
// same routing history through Envoy shared data.
//
// proxy-wasm shared data is a key/value store with compare-and-swap and no
// delete (ENVOY_HOST.md §5). Reading a whole index from it on every request
// would copy megabytes; instead each VM keeps its own index (prefix_table.ts)
// and all VMs replicate it from an append-only log of events, kept twice:
//
//   <ns>page          the open page: the newest events, at most
//                     JOURNAL_PAGE_BYTES and pageEvents of them (always the
//                     newest one);
//                     appending is a compare-and-swap of the whole page, and
//                     so is what orders events (the next seq is the page's
//                     first + count)
//   <ns>slot/<k>      the event with seq ≡ k (mod journalSlots), written by
//                     its appender right after the page took it: the ring a
//                     VM that fell behind the page, or starts, reads
//
//   page:   +0 first seq u64 | +8 count u32 | +12 event bytes u32 |
//           +16 count events back to back, seqs first, first + 1, …
//   event:  +0 seq u64 | +8 vm tag u32 | +12 releases u16 | +14 blocks u16 |
//           +16 routed endpoint key u64 (0 = none) |
//           +24 matched u16: leading index entries the routed endpoint held
//               already, as the deciding VM saw it | +26 reserved (zero) |
//           +32 blocks × index entry (block hash) u64 | releases × endpoint key u64
//   (hashes first, so the router can hash a prompt straight into the event)
//   The PAGE_* and EVENT_* offsets below name these fields; pages are read by
//   readPage and written by append, events written by writeHeader and append
//   and read by readSlot and deliver.
//
// A decision so costs three host calls however many VMs there are: one read
// of the page (every other VM's events since this VM's last decision, in
// order), the page's compare-and-swap and the slot's write. A ring of slots
// alone, with a head claimed by CAS, cost one read per other VM's event: with
// 8 worker VMs 10 shared-data calls a decision, with 32 VMs 34, each taking
// the one mutex that guards all of a process's shared data
// (proxy-wasm-cpp-host src/shared_data.cc) and copying its value under it.
// The page stays below the host's 4 KiB small-buffer size (abi/memory.ts), so
// reading it costs the heap nothing either.
//
// Readers apply events in seq order and skip their own (already applied when
// made): those older than the page from the ring, then the page's. A slot
// older than the page but still holding an older seq was taken by the page
// but not yet written (its writer is between its two calls): the reader
// waits for it on a later sync, for up to PENDING_SLOT_MS of its clock, then
// skips it (counted as a gap). The wait is timed, not counted in events: a
// writer's thread can be descheduled between the two calls for as long as the
// kernel likes, and on a busy node the other VMs append hundreds of events
// meanwhile (a window of 64 events lost one in CI, 8 workers on 2 cores). A
// reader that fell more than journalSlots behind jumps ahead (the ring was
// overwritten). So shared data
// holds at most 1 + journalSlots keys: the page, of at most
// 16 + max(JOURNAL_PAGE_BYTES, one event) bytes, and slots of at most
// 32 + 8 × (MAX_RELEASES + maxPrefixBlocks / indexStride) bytes each,
// whatever the traffic.
import * as host from "../abi/host";
import { WasmResult } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import { MAX_RELEASES, PENDING_SLOT_MS, CLAIM_ATTEMPTS, JOURNAL_PAGE_BYTES } from "./limits";

const EVENT_SEQ: usize = 0;
const EVENT_TAG: usize = 8;
const EVENT_RELEASES: usize = 12;
const EVENT_BLOCKS: usize = 14;
const EVENT_ROUTED: usize = 16;
const EVENT_MATCHED: usize = 24;
export const EVENT_HEADER_BYTES: usize = 32;

const PAGE_FIRST: usize = 0;
const PAGE_COUNT: usize = 8;
const PAGE_EVENT_BYTES: usize = 12;
const PAGE_HEADER_BYTES: usize = 16;

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

/**
 * A reader's wait for one slot the page has moved past but its writer has
 * not written: since when (on the reader's clock) it has found it so.
 */
@final
class SlotWait {
  private seq: u64 = u64.MAX_VALUE;
  private sinceMs: i64 = 0;

  /** Whether to skip slot `seq`, found unwritten at `nowMs`: it has been so for PENDING_SLOT_MS. */
  expired(seq: u64, nowMs: i64): bool {
    if (seq != this.seq) {
      this.seq = seq;
      this.sinceMs = nowMs;
    }
    return nowMs - this.sinceMs >= PENDING_SLOT_MS;
  }
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
  private pageKey: ArrayBuffer;
  private slots: u64;
  private nextSeq: u64 = 0;    // the next seq this VM has not yet applied
  private buf: HostBuffer = new HostBuffer();
  // The page as this VM last read it: an append writes the next page in
  // place, a new header over the events it drops and the new event after the
  // last (tryAppend).
  private page: usize;
  private pageFirst: u64 = 0;
  private pageCount: u32 = 0;
  private pageBytes: usize = 0;
  private pageCas: u32 = 0;
  /** The image stands for the page shared data holds as of pageCas (this VM has not appended since). */
  private pageHeld: bool = false;
  /** Events an append keeps in the page at most (setPageEvents). */
  private pageEvents: u64 = u64.MAX_VALUE;
  // Unwritten slots that sync and scan are waiting for (scan's readers are peers, each at its own seq).
  private syncWait: SlotWait = new SlotWait();
  private scanWait: SlotWait = new SlotWait();
  readonly stats: JournalStats = new JournalStats();
  /** The seq of the event being handed to a sink, for a sink that weighs events by age (router.ts IndexReplay). */
  deliveringSeq: u64 = 0;
  // The outgoing event, built in place.
  readonly event: usize;
  readonly eventCapacity: i32;

  constructor(namespace: string, slots: i32, maxBlocks: i32) {
    this.prefix = String.UTF8.encode(namespace);
    this.pageKey = String.UTF8.encode(namespace + "page");
    this.key = heap.alloc(<usize>this.prefix.byteLength + 32);
    memory.copy(this.key, changetype<usize>(this.prefix), this.prefix.byteLength);
    this.slots = <u64>slots;
    this.eventCapacity = maxBlocks;
    const maxEvent = EVENT_HEADER_BYTES + (<usize>(MAX_RELEASES + maxBlocks) << 3);
    this.event = heap.alloc(maxEvent);
    memory.fill(this.event, 0, EVENT_HEADER_BYTES);
    // Room for the largest page this VM takes in, and an event after it.
    this.page = heap.alloc(this.pageLimit() + maxEvent);
  }

  /**
   * Keeps at most `events` events in the page from this VM's next append on
   * (at least one). A reader needs the events since its last read, about one
   * for every other VM taking requests; the rest would be copied in and out
   * of every decision for nothing (with one worker, 4 KB each way).
   */
  setPageEvents(events: i32): void {
    this.pageEvents = <u64>max(events, 1);
  }

  /** The largest page this VM takes in (a larger value is not a page of this format). */
  private pageLimit(): usize {
    return PAGE_HEADER_BYTES + max(JOURNAL_PAGE_BYTES, EVENT_HEADER_BYTES + (<usize>(MAX_RELEASES + this.eventCapacity) << 3));
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

  /** Creates the page if this is the first VM, and starts reading at the
   * oldest event still in the ring, so a new VM starts with the loads that
   * history leaves (its index comes from replay, router.ts startIndexing).
   * `nowMs`: clock.ts nowMs, as for sync. */
  open(sink: EventSink, selfTag: u32, nowMs: i64): void {
    if (!this.readPage() && this.pageCas == 0) {
      // An empty page at seq 0. Racing VMs all write it before any append (a
      // configuration's VMs start before its traffic), so the race is benign.
      const p = this.page;
      store<u64>(p + PAGE_FIRST, 0);
      store<u32>(p + PAGE_COUNT, 0);
      store<u32>(p + PAGE_EVENT_BYTES, 0);
      host.setSharedData(changetype<usize>(this.pageKey), this.pageKey.byteLength, p, PAGE_HEADER_BYTES, 0);
      this.readPage();
    }
    const head = this.head();
    this.nextSeq = head > this.slots ? head - this.slots : 0;
    this.sync(sink, selfTag, nowMs);
  }

  /**
   * Reads the page: head from its header, and its events into this VM's
   * image. A page whose events this VM cannot take (larger than its image,
   * as another configuration's under the same vm_id may write, or not
   * whole) is taken as empty at its head, so that sync reads those events
   * from the ring and an append starts a page of its own there. False if
   * there is no page, or none of this format (then head() is 0, and
   * pageCas the value's token, if any, so that an append replaces it).
   */
  private readPage(): bool {
    const status = host.getSharedData(changetype<usize>(this.pageKey), this.pageKey.byteLength, this.buf);
    const src = this.buf.ptr;
    const size = this.buf.size;
    this.pageCas = this.buf.cas;
    if (status != WasmResult.Ok || size < PAGE_HEADER_BYTES || <usize>load<u32>(src + PAGE_EVENT_BYTES) != size - PAGE_HEADER_BYTES) {
      this.buf.release();
      this.pageHeld = false;
      this.pageFirst = 0;
      this.pageCount = 0;
      this.pageBytes = 0;
      return false;
    }
    const first = load<u64>(src + PAGE_FIRST);
    const count = load<u32>(src + PAGE_COUNT);
    // Every event whole, in seq order from first, ending where the page does.
    let ok = size <= this.pageLimit();
    let e = src + PAGE_HEADER_BYTES;
    const end = src + size;
    for (let i: u32 = 0; ok && i < count; i++) {
      const bytes = validEventBytes(e, end);
      ok = bytes != 0 && load<u64>(e + EVENT_SEQ) == first + i;
      e += bytes;
    }
    if (ok && e == end) {
      memory.copy(this.page, src, size);
      this.pageFirst = first;
      this.pageCount = count;
      this.pageBytes = size - PAGE_HEADER_BYTES;
    } else {
      this.pageFirst = first + <u64>count;
      this.pageCount = 0;
      this.pageBytes = 0;
    }
    this.buf.release();
    this.pageHeld = true;
    return true;
  }

  /** The next seq to append as of the page this VM last read (0 if it read none). */
  // @ts-ignore: decorator
  @inline private head(): u64 {
    return this.pageFirst + <u64>this.pageCount;
  }

  /** The next seq this VM will read: it moves when any VM appends (tick_pace.ts watches it). */
  position(): u64 {
    return this.nextSeq;
  }

  /**
   * Applies every event this VM has not seen yet (except its own), up to a
   * slot still being written. `nowMs` (clock.ts nowMs) times the wait for it.
   */
  sync(sink: EventSink, selfTag: u32, nowMs: i64): void {
    if (!this.readPage()) return;
    const head = this.head();
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
    // Older than the page: from the ring.
    while (this.nextSeq < this.pageFirst) {
      const seq = this.nextSeq;
      const slot = this.readSlot(seq);
      if (slot == Slot.Holds) {
        this.deliver(this.buf.ptr, sink, selfTag);
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
      // Taken by the page but not written yet (or garbage). Wait for it, within limits.
      if (!this.syncWait.expired(seq, nowMs)) return;
      this.stats.gaps++;
      this.nextSeq++;
    }
    // The page's, in order (readPage checked each one).
    let e = this.page + PAGE_HEADER_BYTES;
    for (let seq = this.pageFirst; seq < head; seq++) {
      if (seq >= this.nextSeq) {
        this.deliver(e, sink, selfTag);
        this.stats.applied++;
        this.nextSeq = seq + 1;
      }
      e += storedEventBytes(e);
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
      if (this.readSlot(seq) == Slot.Holds) this.deliver(this.buf.ptr, sink, selfTag);
      this.buf.release();
    }
  }

  /**
   * Hands `sink` the events in the ring from seq `since` on, oldest first and
   * as stored (every VM's), until the head or until the sink has no room;
   * returns the seq to go on from. A `since` past the head (the journal was
   * reset: its Envoy restarted) or older than the ring starts at the oldest
   * event the ring holds. Stops at a slot taken but not yet written, as
   * sync does (and for as long), so that what it returns is never past an
   * event still to come.
   */
  scan(since: u64, sink: StoredEventSink, nowMs: i64): u64 {
    if (!this.readPage()) return 0;
    const head = this.head();
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
      if (slot == Slot.Unwritten && !this.scanWait.expired(seq, nowMs)) break;
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
    if (status != WasmResult.Ok || size == 0 || validEventBytes(p, p + size) != size) return Slot.Unwritten;
    const written = load<u64>(p + EVENT_SEQ);
    if (written == seq) return Slot.Holds;
    return written > seq ? Slot.Overwritten : Slot.Unwritten;
  }

  /** Hands the event at `p` (checked whole) to `sink`, unless this VM wrote it. */
  private deliver(p: usize, sink: EventSink, selfTag: u32): void {
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
   * the caller). Returns the seq it got, or u64.MAX_VALUE if every attempt
   * lost. When that seq is the next one this VM would apply, an event of this
   * VM's own counts as applied; one it took in from a peer (`own` false) is
   * applied by this VM's next sync, like any other VM's.
   */
  append(eventBytes: usize, own: bool = true): u64 {
    let seq: u64 = u64.MAX_VALUE;
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      // The page as the last sync read it, unless this VM changed it since.
      if (!this.pageHeld && !this.readPage()) {
        // No page of this format (readPage left the image empty): begin one where this VM has read to.
        this.pageFirst = this.nextSeq;
      }
      const claimed = this.head();
      if (this.tryAppend(claimed, eventBytes)) {
        seq = claimed;
        break;
      }
      this.stats.casConflicts++;
    }
    if (seq == u64.MAX_VALUE) {
      this.stats.appendFailures++;
      return seq;
    }
    const keyLen = this.slotKey(seq);
    host.setSharedData(this.key, keyLen, this.event, eventBytes, 0);
    if (own && seq == this.nextSeq) this.nextSeq = seq + 1;
    return seq;
  }

  /**
   * Writes the next page in place over this VM's image: the oldest events
   * dropped until the event fits in JOURNAL_PAGE_BYTES and pageEvents (or
   * none is left),
   * a new header over the last dropped bytes, the event as seq `claimed`
   * at the end. True if the compare-and-swap took it.
   */
  private tryAppend(claimed: u64, eventBytes: usize): bool {
    let start = this.page + PAGE_HEADER_BYTES;
    let first = this.pageFirst;
    let bytes = this.pageBytes;
    while (first < claimed && (bytes + eventBytes > JOURNAL_PAGE_BYTES || claimed - first >= this.pageEvents)) {
      const dropped = storedEventBytes(start);
      start += dropped;
      bytes -= dropped;
      first++;
    }
    const end = start + bytes;
    store<u64>(this.event + EVENT_SEQ, claimed);
    memory.copy(end, this.event, eventBytes);
    const p = start - PAGE_HEADER_BYTES;
    store<u64>(p + PAGE_FIRST, first);
    store<u32>(p + PAGE_COUNT, <u32>(claimed - first + 1));
    store<u32>(p + PAGE_EVENT_BYTES, <u32>(bytes + eventBytes));
    const status = host.setSharedData(changetype<usize>(this.pageKey), this.pageKey.byteLength, p, PAGE_HEADER_BYTES + bytes + eventBytes, this.pageCas);
    // The image is no longer the page (moved, or stale): the next append or sync reads it again.
    this.pageHeld = false;
    return status == WasmResult.Ok;
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
    heap.free(this.page);
    this.buf.release();
  }
}

/** An event's size as its header gives it. */
// @ts-ignore: decorator
@inline function storedEventBytes(p: usize): usize {
  return EVENT_HEADER_BYTES + (<usize>(<i32>load<u16>(p + EVENT_RELEASES) + <i32>load<u16>(p + EVENT_BLOCKS)) << 3);
}

/** The size of a whole, well-formed event at `p` that ends at or before `end`; 0 if there is none. */
function validEventBytes(p: usize, end: usize): usize {
  if (end - p < EVENT_HEADER_BYTES) return 0;
  const bytes = storedEventBytes(p);
  if (end - p < bytes || load<u16>(p + EVENT_MATCHED) > load<u16>(p + EVENT_BLOCKS)) return 0;
  return bytes;
}
