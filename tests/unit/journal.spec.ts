// The journal ring over shared data (tests/unit/shared-data-shim.js plays the
// host's part: one store per spec file, so each test uses its own namespace).
// Several Journal objects on one namespace are several VMs of one Envoy.
export { malloc } from "../../assembly/abi/memory";
import { HostBuffer } from "../../assembly/abi/memory";
import * as host from "../../assembly/abi/host";
import { Journal, EventSink, StoredEventSink, PEER_TAG, EVENT_HEADER_BYTES, eventTag, eventBlocks, eventRouted, eventMatched } from "../../assembly/router/journal";
import { PENDING_SLOT_MS, JOURNAL_PAGE_BYTES } from "./../../assembly/router/limits";

/** Appends an event of `blocks` hashes base, base + 1, … routed to `routed`; returns its seq. */
function append(j: Journal, tag: u32, routed: u64, base: u64, blocks: i32 = 2, own: bool = true): u64 {
  for (let i = 0; i < blocks; i++) store<u64>(j.event + EVENT_HEADER_BYTES + (<usize>i << 3), base + <u64>i);
  return j.append(j.writeHeader(tag, 0, blocks, routed, blocks > 0 ? 1 : 0), own);
}

/** Collects what scan hands over as "tag:routed:firstHash" (tag P for PEER_TAG); declines after `room` events. */
class Collector extends StoredEventSink {
  seen: string[] = [];
  constructor(private room: i32 = i32.MAX_VALUE) {
    super();
  }
  take(event: usize, size: usize): bool {
    if (this.seen.length >= this.room) return false;
    const blocks = eventBlocks(event);
    expect<usize>(size).toBe(EVENT_HEADER_BYTES + (<usize>blocks << 3));
    const tag = eventTag(event);
    this.seen.push((tag == PEER_TAG ? "P" : tag.toString()) + ":" + eventRouted(event).toString() + ":" +
      (blocks > 0 ? load<u64>(event + EVENT_HEADER_BYTES).toString() : "-"));
    return true;
  }
}

/** Records what sync delivers, as "tag:routed:firstHash/blocks/matched". */
class Applied extends EventSink {
  seen: string[] = [];
  apply(tag: u32, routedKey: u64, releases: usize, releaseCount: i32, hashes: usize, blockCount: i32, matched: i32): void {
    this.seen.push((tag == PEER_TAG ? "P" : tag.toString()) + ":" + routedKey.toString() + ":" +
      (blockCount > 0 ? load<u64>(hashes).toString() : "-") + "/" + blockCount.toString() + "/" + matched.toString());
  }
}

/** Writes `<ns>page` as raw bytes: +0 first seq, +8 count, +12 event bytes, then the events. */
function writePage(ns: string, first: u64, count: u32, events: ArrayBuffer = new ArrayBuffer(0), eventBytes: u32 = u32.MAX_VALUE): void {
  const key = String.UTF8.encode(ns + "page");
  const value = new ArrayBuffer(16 + events.byteLength);
  const p = changetype<usize>(value);
  store<u64>(p, first);
  store<u32>(p + 8, count);
  store<u32>(p + 12, eventBytes == u32.MAX_VALUE ? <u32>events.byteLength : eventBytes);
  memory.copy(p + 16, changetype<usize>(events), events.byteLength);
  expect<u32>(host.setSharedData(changetype<usize>(key), key.byteLength, p, value.byteLength, 0)).toBe(0);
}

/** Leaves the page as a writer that took seqs up to `head` but never wrote their slots would (the page moved on). */
function claimUnwritten(ns: string, head: u64): void {
  writePage(ns, head, 0);
}

/** `<ns>page`'s first seq and count, as "first+count", and its size in bytes. */
function pageSpan(ns: string): string {
  const key = String.UTF8.encode(ns + "page");
  const buf = new HostBuffer();
  expect<u32>(host.getSharedData(changetype<usize>(key), key.byteLength, buf)).toBe(0);
  const span = load<u64>(buf.ptr).toString() + "+" + load<u32>(buf.ptr + 8).toString() + " " + buf.size.toString() + "B";
  buf.release();
  return span;
}

/** Now, on the clock the journal times its waits by (clock.ts nowMs); tests that wait move on from it. */
const T0: i64 = 1 << 40;

/** `<ns>slot/<k>`, the ring slot of `seq` in a journal of `slots` slots. */
function slotKey(ns: string, slots: u64, seq: u64): ArrayBuffer {
  return String.UTF8.encode(ns + "slot/" + (seq % slots).toString());
}

/**
 * Empties the slot of `seq` and returns what it held: the ring as it is while
 * the event's writer, its seq taken by the page, is stalled before writing it.
 */
function stallSlotWrite(ns: string, slots: u64, seq: u64): ArrayBuffer {
  const key = slotKey(ns, slots, seq);
  const buf = new HostBuffer();
  expect<u32>(host.getSharedData(changetype<usize>(key), key.byteLength, buf)).toBe(0);
  const held = new ArrayBuffer(<i32>buf.size);
  memory.copy(changetype<usize>(held), buf.ptr, buf.size);
  buf.release();
  expect<u32>(host.setSharedData(changetype<usize>(key), key.byteLength, 0, 0, 0)).toBe(0);
  return held;
}

/** The stalled writer's second call: the slot of `seq` gets its event. */
function finishSlotWrite(ns: string, slots: u64, seq: u64, event: ArrayBuffer): void {
  const key = slotKey(ns, slots, seq);
  expect<u32>(host.setSharedData(changetype<usize>(key), key.byteLength, changetype<usize>(event), event.byteLength, 0)).toBe(0);
}

/** A journal on `ns` opened by VM `tag`. */
function opened(ns: string, slots: i32, tag: u32, sink: EventSink = new Applied()): Journal {
  const j = new Journal(ns, slots, 64);
  j.open(sink, tag, T0);
  return j;
}

describe("Journal.scan", () => {
  it("hands over every VM's events from a seq on, oldest first and as stored, and says where to go on", () => {
    const ns = "scan-all/";
    const a = opened(ns, 16, 1);
    const b = opened(ns, 16, 2);
    expect<u64>(append(a, 1, 11, 100)).toBe(0);
    expect<u64>(append(b, 2, 22, 200)).toBe(1);
    expect<u64>(append(a, PEER_TAG, 33, 300, 2, false)).toBe(2);
    expect<u64>(append(a, 1, 0, 0, 0)).toBe(3); // a release or heartbeat: no blocks
    expect<u64>(append(b, 2, 55, 500)).toBe(4);
    const all = new Collector();
    expect<u64>(a.scan(0, all, T0)).toBe(5);
    expect<string>(all.seen.join(" ")).toBe("1:11:100 2:22:200 P:33:300 1:0:- 2:55:500");
    const middle = new Collector();
    expect<u64>(b.scan(3, middle, T0)).toBe(5);
    expect<string>(middle.seen.join(" ")).toBe("1:0:- 2:55:500");
    const none = new Collector();
    expect<u64>(a.scan(5, none, T0)).toBe(5);
    expect<i32>(none.seen.length).toBe(0);
    // Fields as stored.
    const one = new Collector();
    a.scan(4, one, T0);
    expect<string>(one.seen.join(" ")).toBe("2:55:500");
  });

  it("starts at the oldest event for a since past the head (the journal began again) or older than the ring", () => {
    const ns = "scan-oldest/";
    const a = opened(ns, 4, 1);
    for (let i = 0; i < 3; i++) append(a, 1, 10 + <u64>i, 100 * <u64>i);
    const past = new Collector();
    expect<u64>(a.scan(1000, past, T0)).toBe(3);
    expect<string>(past.seen.join(" ")).toBe("1:10:0 1:11:100 1:12:200");
    // Seven more: the ring of 4 holds seqs 6..9.
    for (let i = 3; i < 10; i++) append(a, 1, 10 + <u64>i, 100 * <u64>i);
    const old = new Collector();
    expect<u64>(a.scan(2, old, T0)).toBe(10);
    expect<string>(old.seen.join(" ")).toBe("1:16:600 1:17:700 1:18:800 1:19:900");
    const older = new Collector();
    expect<u64>(a.scan(0, older, T0)).toBe(10);
    expect<i32>(older.seen.length).toBe(4);
    const after = new Collector();
    expect<u64>(a.scan(11, after, T0)).toBe(10);
    expect<string>(after.seen.join(" ")).toBe("1:16:600 1:17:700 1:18:800 1:19:900");
    const inRing = new Collector();
    expect<u64>(a.scan(7, inRing, T0)).toBe(10);
    expect<string>(inRing.seen.join(" ")).toBe("1:17:700 1:18:800 1:19:900");
  });

  it("stops where the sink has no room, and goes on from there next time", () => {
    const ns = "scan-room/";
    const a = opened(ns, 16, 1);
    for (let i = 0; i < 5; i++) append(a, 1, 10 + <u64>i, 100 * <u64>i);
    const two = new Collector(2);
    expect<u64>(a.scan(0, two, T0)).toBe(2);
    expect<string>(two.seen.join(" ")).toBe("1:10:0 1:11:100");
    const full = new Collector(0);
    expect<u64>(a.scan(2, full, T0)).toBe(2);
    const rest = new Collector();
    expect<u64>(a.scan(2, rest, T0)).toBe(5);
    expect<string>(rest.seen.join(" ")).toBe("1:12:200 1:13:300 1:14:400");
  });

  it("stops at a slot claimed but not yet written, never passing an event still to come", () => {
    const ns = "scan-pending/";
    const a = opened(ns, 256, 1);
    append(a, 1, 10, 100);          // seq 0
    claimUnwritten(ns, 2);           // seq 1 claimed by a writer still writing
    const b = opened(ns, 256, 2);
    expect<u64>(append(b, 2, 20, 200)).toBe(2);
    const seen = new Collector();
    expect<u64>(a.scan(0, seen, T0)).toBe(1);
    expect<string>(seen.seen.join(" ")).toBe("1:10:100");
    // Still unwritten for PENDING_SLOT_MS, however few events came after it, it is given up (its writer died).
    append(b, 2, 30, 300);
    const waiting = new Collector();
    expect<u64>(a.scan(0, waiting, T0 + PENDING_SLOT_MS - 1)).toBe(1);
    const later = new Collector();
    expect<u64>(a.scan(0, later, T0 + PENDING_SLOT_MS)).toBe(4);
    expect<string>(later.seen.join(" ")).toBe("1:10:100 2:20:200 2:30:300");
  });

  it("hands over nothing before the journal exists", () => {
    const j = new Journal("scan-none/", 16, 64);
    const seen = new Collector();
    expect<u64>(j.scan(0, seen, T0)).toBe(0);
    expect<u64>(j.scan(7, seen, T0)).toBe(0);
    expect<i32>(seen.seen.length).toBe(0);
  });
});

describe("Journal.append from a peer", () => {
  it("leaves a peer's event (own false) to this VM's own sync, and an own event out of it", () => {
    const ns = "append-own/";
    const mine = new Applied();
    const a = opened(ns, 16, 1, mine);
    const other = new Applied();
    const b = opened(ns, 16, 2, other);
    expect<u64>(append(a, PEER_TAG, 77, 700, 3, false)).toBe(0);
    expect<u64>(a.position()).toBe(0); // not applied yet
    a.sync(mine, 1, T0);
    expect<string>(mine.seen.join(" ")).toBe("P:77:700/3/1");
    expect<u64>(a.position()).toBe(1);
    // The same event appended as this VM's own counts as applied: its sync does not hand it over again …
    expect<u64>(append(a, PEER_TAG, 88, 800, 3, true)).toBe(1);
    expect<u64>(a.position()).toBe(2);
    a.sync(mine, 1, T0);
    expect<string>(mine.seen.join(" ")).toBe("P:77:700/3/1");
    // … while every other VM gets both.
    b.sync(other, 2, T0);
    expect<string>(other.seen.join(" ")).toBe("P:77:700/3/1 P:88:800/3/1");
  });

  it("delivers a peer's event after this VM's own later ones are skipped", () => {
    const ns = "append-mixed/";
    const mine = new Applied();
    const a = opened(ns, 16, 1, mine);
    append(a, PEER_TAG, 77, 700, 2, false); // seq 0: still to apply here
    append(a, 1, 11, 100);                   // seq 1: own, but behind the peer's
    append(a, PEER_TAG, 99, 900, 2, false); // seq 2
    a.sync(mine, 1, T0);
    expect<string>(mine.seen.join(" ")).toBe("P:77:700/2/1 P:99:900/2/1");
    expect<u64>(a.position()).toBe(3);
  });
});

/** Appends `count` events of `blocks` hashes each from VM `tag` (routed 1000 + i, first hash i). */
function appendMany(j: Journal, tag: u32, count: i32, blocks: i32): void {
  for (let i = 0; i < count; i++) append(j, tag, 1000 + <u64>i, <u64>i, blocks);
}

/** "routed,routed,…" of what an Applied saw, in order. */
function routedOf(a: Applied): string {
  const out: string[] = [];
  for (let i = 0; i < a.seen.length; i++) out.push(a.seen[i].split(":")[1]);
  return out.join(",");
}

/** "1000,1001,…" for count events. */
function expectedRouted(count: i32): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push((1000 + i).toString());
  return out.join(",");
}

describe("Journal page", () => {
  it("keeps the newest events within JOURNAL_PAGE_BYTES, and always the newest one", () => {
    const ns = "page-trim/";
    const a = opened(ns, 256, 1);
    expect<string>(pageSpan(ns)).toBe("0+0 16B");
    appendMany(a, 1, 3, 16); // 160 B each
    expect<string>(pageSpan(ns)).toBe("0+3 496B");
    appendMany(a, 1, 40, 16);
    const fit = <i32>(JOURNAL_PAGE_BYTES / 160);
    expect<string>(pageSpan(ns)).toBe((43 - fit).toString() + "+" + fit.toString() + " " + (16 + fit * 160).toString() + "B");
    // One event larger than a page on its own still makes a page of it.
    const big = new Journal(ns, 256, 600);
    big.open(new Applied(), 2, T0);
    append(big, 2, 7, 7, 600);
    expect<string>(pageSpan(ns)).toBe("43+1 " + (16 + 32 + 600 * 8).toString() + "B");
  });

  it("keeps at most the events setPageEvents allows, and always the newest one", () => {
    const ns = "page-count/";
    const a = opened(ns, 256, 1);
    a.setPageEvents(3);
    appendMany(a, 1, 10, 2); // 48 B each
    expect<string>(pageSpan(ns)).toBe("7+3 160B");
    a.setPageEvents(0);
    append(a, 1, 7, 7);
    expect<string>(pageSpan(ns)).toBe("10+1 64B");
    // A VM that reads less often than that finds the rest in the ring.
    const seen = new Applied();
    const b = opened(ns, 256, 2, seen);
    expect<u64>(b.position()).toBe(11);
    expect<i32>(seen.seen.length).toBe(11);
  });

  it("hands a VM far behind every event in order: the ring's, then the page's", () => {
    const ns = "page-behind/";
    const a = opened(ns, 512, 1);
    const seen = new Applied();
    const b = opened(ns, 512, 2, seen);
    appendMany(a, 1, 200, 16); // the page holds the last 25
    b.sync(seen, 2, T0);
    expect<string>(routedOf(seen)).toBe(expectedRouted(200));
    expect<u64>(b.position()).toBe(200);
    expect<u64>(b.stats.applied).toBe(200);
    expect<u64>(b.stats.gaps).toBe(0);
  });

  it("orders racing appends by the page's compare-and-swap: the loser takes the next seq", () => {
    const ns = "page-race/";
    const seenA = new Applied();
    const a = opened(ns, 64, 1, seenA);
    const seenB = new Applied();
    const b = opened(ns, 64, 2, seenB);
    a.sync(seenA, 1, T0);  // a holds the page as it is now …
    expect<u64>(append(b, 2, 20, 200)).toBe(0); // … b appends first …
    expect<u64>(append(a, 1, 10, 100)).toBe(1); // … so a's swap fails once and takes seq 1
    expect<u64>(a.stats.casConflicts).toBe(1);
    expect<u64>(a.stats.appendFailures).toBe(0);
    a.sync(seenA, 1, T0);
    b.sync(seenB, 2, T0);
    expect<string>(seenA.seen.join(" ")).toBe("2:20:200/2/1");
    expect<string>(seenB.seen.join(" ")).toBe("1:10:100/2/1");
    expect<string>(pageSpan(ns)).toBe("0+2 112B");
  });

  it("waits for a slot the page has moved past but whose writer has not written it yet", () => {
    const ns = "page-pending/";
    const seen = new Applied();
    const a = opened(ns, 256, 1);
    const b = opened(ns, 256, 2, seen);
    append(a, 1, 10, 100);  // seq 0
    claimUnwritten(ns, 2);  // seq 1 taken, its slot not written
    append(a, 1, 30, 300);  // seq 2, in the page
    b.sync(seen, 2, T0);
    expect<string>(seen.seen.join(" ")).toBe("1:10:100/2/1");
    expect<u64>(b.position()).toBe(1);
  });

  it("waits out a writer stalled between its two calls however many events the others append meanwhile, then takes its event in order", () => {
    const ns = "page-stalled/";
    const slots: u64 = 512;
    const a = opened(ns, <i32>slots, 1);
    const c = opened(ns, <i32>slots, 3);
    const seen = new Applied();
    const b = opened(ns, <i32>slots, 2, seen);
    append(a, 1, 10, 100);                       // seq 0
    append(a, 1, 11, 110);                       // seq 1: a's thread stalls before its slot write …
    const event = stallSlotWrite(ns, slots, 1);
    appendMany(c, 3, 200, 16);                   // … while c appends 200 (the page holds the last 25)
    b.sync(seen, 2, T0);
    expect<string>(routedOf(seen)).toBe("10");
    b.sync(seen, 2, T0 + PENDING_SLOT_MS - 1);
    expect<u64>(b.position()).toBe(1);
    finishSlotWrite(ns, slots, 1, event);
    b.sync(seen, 2, T0 + PENDING_SLOT_MS - 1);
    expect<string>(routedOf(seen)).toBe("10,11," + expectedRouted(200));
    expect<u64>(b.position()).toBe(202);
    expect<u64>(b.stats.gaps).toBe(0);
  });

  it("gives up a slot left unwritten for PENDING_SLOT_MS since this VM found it so, counting one gap", () => {
    const ns = "page-lost/";
    const slots: u64 = 512;
    const a = opened(ns, <i32>slots, 1);
    const seen = new Applied();
    const b = opened(ns, <i32>slots, 2, seen);
    append(a, 1, 10, 100);                        // seq 0
    append(a, 1, 11, 110);                        // seq 1, never written to its slot
    stallSlotWrite(ns, slots, 1);
    appendMany(a, 1, 40, 16);
    const late = T0 + 5 * PENDING_SLOT_MS;        // b first looks long after the writer stalled
    b.sync(seen, 2, late);
    b.sync(seen, 2, late + PENDING_SLOT_MS - 1);
    expect<string>(routedOf(seen)).toBe("10");
    expect<u64>(b.stats.gaps).toBe(0);
    b.sync(seen, 2, late + PENDING_SLOT_MS);
    expect<string>(routedOf(seen)).toBe("10," + expectedRouted(40));
    expect<u64>(b.position()).toBe(42);
    expect<u64>(b.stats.gaps).toBe(1);
  });

  it("reads from the ring a page whose events are not whole, and one too large for this VM; ignores one with no valid header", () => {
    const ns = "page-bad/";
    const a = opened(ns, 256, 1);
    const seen = new Applied();
    const b = opened(ns, 256, 2, seen);
    appendMany(a, 1, 3, 2);
    // A header that promises 3 events over bytes that hold 2 of them.
    writePage(ns, 0, 3, new ArrayBuffer(96));
    b.sync(seen, 2, T0);
    expect<string>(routedOf(seen)).toBe("1000,1001,1002");
    // The next append replaces it with a page of its own at the head.
    append(a, 1, 1003, 3);
    expect<string>(pageSpan(ns)).toBe("3+1 64B");
    // A page this VM's image cannot hold: a writer with far larger events.
    const big = new Journal(ns, 256, 1000);
    big.open(new Applied(), 3, T0);
    append(big, 3, 1004, 4, 600);
    b.sync(seen, 2, T0);
    expect<string>(routedOf(seen)).toBe("1000,1001,1002,1003,1004");
    // A header whose byte count is wrong: no page; nothing is read, nothing lost.
    writePage(ns, 0, 0, new ArrayBuffer(32), 7);
    b.sync(seen, 2, T0);
    expect<u64>(b.position()).toBe(5);
    // An append replaces it, from where its VM has read (a has read its own 4, not big's).
    expect<u64>(append(b, 2, 1005, 5)).toBe(5);
    b.sync(seen, 2, T0);
    a.sync(new Applied(), 1, T0);
    expect<u64>(a.position()).toBe(6);
  });
});

/** xorshift32: the mutations' source, seeded by the test. */
let fuzzState: u32 = 1;
function next(): u32 {
  fuzzState ^= fuzzState << 13;
  fuzzState ^= fuzzState >> 17;
  fuzzState ^= fuzzState << 5;
  return fuzzState;
}

describe("Journal page, mutated", () => {
  it("takes in any bytes as a page without trapping, and hands its sink only whole events", () => {
    const ns = "page-fuzz/";
    const a = opened(ns, 64, 1);
    appendMany(a, 1, 6, 3);
    // The page as the writers left it.
    const key = String.UTF8.encode(ns + "page");
    const buf = new HostBuffer();
    expect<u32>(host.getSharedData(changetype<usize>(key), key.byteLength, buf)).toBe(0);
    const size = <i32>buf.size;
    const original = new Uint8Array(size);
    memory.copy(original.dataStart, buf.ptr, size);
    buf.release();
    fuzzState = 0x9E3779B9;
    let delivered = 0;
    for (let round = 0; round < 1000; round++) {
      // Flip 1 to 4 bytes, or cut the page short.
      const length = next() % 8 == 0 ? <i32>(next() % <u32>size) : size;
      const bytes = new ArrayBuffer(length);
      memory.copy(changetype<usize>(bytes), original.dataStart, length);
      const flips = 1 + <i32>(next() % 4);
      for (let f = 0; f < flips && length > 0; f++) {
        const at = <usize>(next() % <u32>length);
        store<u8>(changetype<usize>(bytes) + at, load<u8>(changetype<usize>(bytes) + at) ^ <u8>(1 + next() % 255));
      }
      expect<u32>(host.setSharedData(changetype<usize>(key), key.byteLength, changetype<usize>(bytes), length, 0)).toBe(0);
      const seen = new Applied();
      const reader = new Journal(ns, 64, 64);
      reader.open(seen, 1000 + <u32>round, T0);
      reader.sync(seen, 1000 + <u32>round, T0);
      // Whatever the page said, each event handed over is one the ring or the page holds whole:
      // its blocks within this journal's 64, its matched within its blocks.
      for (let i = 0; i < seen.seen.length; i++) {
        const parts = seen.seen[i].split("/");
        expect<bool>(I32.parseInt(parts[1]) <= 64).toBe(true);
        expect<bool>(I32.parseInt(parts[2]) <= I32.parseInt(parts[1])).toBe(true);
      }
      delivered += seen.seen.length;
      reader.free();
    }
    // The unmutated tail of the ring still reached readers in most rounds.
    expect<bool>(delivered > 0).toBe(true);
  });
});
