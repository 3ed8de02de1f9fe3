import { PeerAnswerWriter, PeerAnswerReader, ANSWER_HEADER_BYTES } from "../../assembly/router/peer_answer";
import { PEER_TAG, EVENT_HEADER_BYTES, eventTag, eventBlocks, eventRouted, eventMatched } from "../../assembly/router/journal";

// A journal event as the ring stores it (journal.ts): +0 seq u64 | +8 tag u32 |
// +12 releases u16 | +14 blocks u16 | +16 routed u64 | +24 matched u16 |
// +26 reserved | +32 blocks × hash u64 | releases × endpoint key u64.
// Hash i of an event is hashBase + i; its release keys are 0xEE00 + i, so a
// writer that copied them as hashes would be seen.
function event(tag: u32, blocks: i32, routed: u64, matched: i32, hashBase: u64, releases: i32 = 0): usize {
  const size = EVENT_HEADER_BYTES + (<usize>(blocks + releases) << 3);
  const p = heap.alloc(size);
  memory.fill(p, 0xAB, size); // nothing the writer must not read is zero by luck
  store<u64>(p, 77);
  store<u32>(p + 8, tag);
  store<u16>(p + 12, <u16>releases);
  store<u16>(p + 14, <u16>blocks);
  store<u64>(p + 16, routed);
  store<u16>(p + 24, <u16>matched);
  store<u16>(p + 26, 0);
  store<u32>(p + 28, 0);
  for (let i = 0; i < blocks; i++) store<u64>(p + EVENT_HEADER_BYTES + (<usize>i << 3), hashBase + <u64>i);
  for (let i = 0; i < releases; i++) store<u64>(p + EVENT_HEADER_BYTES + (<usize>(blocks + i) << 3), 0xEE00 + <u64>i);
  return p;
}

function eventSize(blocks: i32, releases: i32 = 0): usize {
  return EVENT_HEADER_BYTES + (<usize>(blocks + releases) << 3);
}

/** Bytes of a record holding `blocks` hashes. */
function recordBytes(blocks: i32): usize {
  return 16 + (<usize>blocks << 3);
}

/** The records as "blocks/matched@routed:firstHash..lastHash;" (hashes checked to run on by one). */
function recordsOf(r: PeerAnswerReader): string {
  let s = "";
  while (r.next()) {
    let consecutive = true;
    const first = load<u64>(r.hashes);
    for (let i = 1; i < r.blocks; i++) if (load<u64>(r.hashes + (<usize>i << 3)) != first + <u64>i) consecutive = false;
    s += r.blocks.toString() + "/" + r.matched.toString() + "@" + r.routed.toString() + ":" + first.toString() + ".." +
      load<u64>(r.hashes + (<usize>(r.blocks - 1) << 3)).toString() + (consecutive ? "" : "!") + ";";
  }
  return s;
}

/** A copy of [p, p + n) with room for `extra` more bytes after it (zeros). */
function copyOf(p: usize, n: usize, extra: usize = 0): usize {
  const q = heap.alloc(n + extra + 1);
  memory.copy(q, p, n);
  memory.fill(q + n, 0, extra);
  return q;
}

/** An answer with the given records (blocks, matched, routed), written by the writer. */
function answerOf(blocks: i32[], matched: i32[], routed: u64[]): PeerAnswerWriter {
  const w = new PeerAnswerWriter(1 << 16);
  w.begin();
  for (let i = 0; i < blocks.length; i++) {
    expect<bool>(w.take(event(3, blocks[i], routed[i], matched[i], 1000 * <u64>(i + 1)), eventSize(blocks[i]))).toBe(true);
  }
  w.finish(0x1122334455667788, 0x99AABBCCDDEEFF01, 42);
  return w;
}

describe("journal event field readers", () => {
  it("read the fields where the journal stores them", () => {
    const e = event(PEER_TAG, 5, 0xDEADBEEF00000001, 4, 10, 2);
    expect<u32>(eventTag(e)).toBe(PEER_TAG);
    expect<i32>(eventBlocks(e)).toBe(5);
    expect<u64>(eventRouted(e)).toBe(0xDEADBEEF00000001);
    expect<i32>(eventMatched(e)).toBe(4);
  });
});

describe("peer answer", () => {
  it("round-trips records with various block counts and matches, in order", () => {
    const w = new PeerAnswerWriter(1 << 16);
    w.begin();
    expect<bool>(w.take(event(1, 1, 0x0101, 0, 100), eventSize(1))).toBe(true);
    expect<bool>(w.take(event(2, 3, 0x0202, 2, 200, 2), eventSize(3, 2))).toBe(true); // with releases: only the hashes go
    expect<bool>(w.take(event(1, 16, 0xFFFFFFFFFFFFFFFF, 16, 300), eventSize(16))).toBe(true);
    expect<bool>(w.take(event(7, 4096, 0x0404, 1000, 1 << 40), eventSize(4096))).toBe(true);
    w.finish(0x1122334455667788, 0x99AABBCCDDEEFF01, 123456789);
    expect<usize>(w.len).toBe(ANSWER_HEADER_BYTES + recordBytes(1) + recordBytes(3) + recordBytes(16) + recordBytes(4096));
    // The documented header: "PRP1", records, instance, format, next.
    expect<string>(String.UTF8.decodeUnsafe(w.ptr, 4)).toBe("PRP1");
    expect<u32>(load<u32>(w.ptr + 4)).toBe(4);
    const r = new PeerAnswerReader();
    expect<bool>(r.open(w.ptr, w.len)).toBe(true);
    expect<u32>(r.records).toBe(4);
    expect<u64>(r.instance).toBe(0x1122334455667788);
    expect<u64>(r.format).toBe(0x99AABBCCDDEEFF01);
    expect<u64>(r.nextSeq).toBe(123456789);
    expect<string>(recordsOf(r)).toBe("1/0@257:100..100;3/2@514:200..202;16/16@18446744073709551615:300..315;4096/1000@1028:1099511627776..1099511631871;");
    expect<bool>(r.next()).toBe(false);
  });

  it("leaves out decisions taken in from peers, events without an endpoint, and events without blocks", () => {
    const w = new PeerAnswerWriter(4096);
    w.begin();
    expect<bool>(w.take(event(PEER_TAG, 4, 0x0505, 1, 500), eventSize(4))).toBe(true);
    expect<bool>(w.take(event(3, 4, 0, 0, 600, 1), eventSize(4, 1))).toBe(true);   // releases only, no pick
    expect<bool>(w.take(event(3, 0, 0x0707, 0, 700, 2), eventSize(0, 2))).toBe(true); // a heartbeat or release
    expect<bool>(w.take(event(3, 0, 0, 0, 0), eventSize(0))).toBe(true);
    expect<usize>(w.len).toBe(ANSWER_HEADER_BYTES);
    expect<bool>(w.take(event(4, 2, 0x0808, 1, 800), eventSize(2))).toBe(true);
    w.finish(1, 2, 3);
    const r = new PeerAnswerReader();
    expect<bool>(r.open(w.ptr, w.len)).toBe(true);
    expect<u32>(r.records).toBe(1);
    expect<string>(recordsOf(r)).toBe("2/1@2056:800..801;");
  });

  it("an empty answer is valid and has no records", () => {
    const w = new PeerAnswerWriter(ANSWER_HEADER_BYTES);
    w.begin();
    w.finish(5, 6, 7);
    expect<usize>(w.len).toBe(ANSWER_HEADER_BYTES);
    const r = new PeerAnswerReader();
    expect<bool>(r.open(w.ptr, w.len)).toBe(true);
    expect<u32>(r.records).toBe(0);
    expect<u64>(r.nextSeq).toBe(7);
    expect<bool>(r.next()).toBe(false);
  });

  it("stops taking when the next record does not fit, and the answer stays whole", () => {
    // Room for the header and records of 2 and 1 blocks exactly.
    const w = new PeerAnswerWriter(ANSWER_HEADER_BYTES + recordBytes(2) + recordBytes(1));
    w.begin();
    expect<bool>(w.take(event(1, 2, 0x0909, 0, 900), eventSize(2))).toBe(true);
    expect<bool>(w.take(event(1, 2, 0x0A0A, 0, 950), eventSize(2))).toBe(false); // one byte per hash too many
    const before = w.len;
    expect<bool>(w.take(event(1, 1, 0x0B0B, 1, 990), eventSize(1))).toBe(true); // fills it exactly
    expect<usize>(w.len).toBe(before + recordBytes(1));
    expect<bool>(w.take(event(1, 1, 0x0C0C, 0, 999), eventSize(1))).toBe(false);
    // Skipped kinds still pass when full: they take no room.
    expect<bool>(w.take(event(PEER_TAG, 1, 0x0D0D, 0, 1), eventSize(1))).toBe(true);
    w.finish(1, 2, 17);
    const r = new PeerAnswerReader();
    expect<bool>(r.open(w.ptr, w.len)).toBe(true);
    expect<u32>(r.records).toBe(2);
    expect<string>(recordsOf(r)).toBe("2/0@2313:900..901;1/1@2827:990..990;");
  });

  it("begins afresh for the next answer", () => {
    const w = new PeerAnswerWriter(4096);
    w.begin();
    w.take(event(1, 3, 0x0E0E, 0, 10), eventSize(3));
    w.take(event(1, 3, 0x0E0F, 0, 20), eventSize(3));
    w.finish(1, 1, 2);
    w.begin();
    w.take(event(1, 1, 0x0F0F, 0, 30), eventSize(1));
    w.finish(1, 1, 3);
    const r = new PeerAnswerReader();
    expect<bool>(r.open(w.ptr, w.len)).toBe(true);
    expect<u32>(r.records).toBe(1);
    expect<string>(recordsOf(r)).toBe("1/0@3855:30..30;");
  });

  it("refuses an answer that is not whole and well-formed", () => {
    const w = answerOf([2, 3], [1, 3], [0x11, 0x22]);
    const n = w.len;
    expect<usize>(n).toBe(ANSWER_HEADER_BYTES + recordBytes(2) + recordBytes(3));
    const r = new PeerAnswerReader();
    expect<bool>(r.open(w.ptr, n)).toBe(true);
    // Wrong magic.
    let p = copyOf(w.ptr, n);
    store<u8>(p, 0x51); // "QRP1"
    expect<bool>(r.open(p, n)).toBe(false);
    const page = String.UTF8.encode("# HELP vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 0\n");
    expect<bool>(r.open(changetype<usize>(page), page.byteLength)).toBe(false);
    // A header cut short, and nothing at all.
    expect<bool>(r.open(w.ptr, ANSWER_HEADER_BYTES - 1)).toBe(false);
    expect<bool>(r.open(w.ptr, 4)).toBe(false);
    expect<bool>(r.open(w.ptr, 0)).toBe(false);
    // A record running past the end: the last hash, the last record's header, or a record the count promises.
    expect<bool>(r.open(w.ptr, n - 8)).toBe(false);
    expect<bool>(r.open(w.ptr, n - 1)).toBe(false);
    expect<bool>(r.open(w.ptr, ANSWER_HEADER_BYTES + recordBytes(2) + 8)).toBe(false);
    expect<bool>(r.open(w.ptr, ANSWER_HEADER_BYTES + recordBytes(2))).toBe(false);
    p = copyOf(w.ptr, n);
    store<u32>(p + 4, 3);
    expect<bool>(r.open(p, n)).toBe(false);
    // A block count that runs far past the end.
    p = copyOf(w.ptr, n);
    store<u16>(p + ANSWER_HEADER_BYTES, 0xFFFF);
    expect<bool>(r.open(p, n)).toBe(false);
    // Bytes after the last record, or fewer records than the body holds.
    p = copyOf(w.ptr, n, 8);
    expect<bool>(r.open(p, n + 8)).toBe(false);
    expect<bool>(r.open(p, n + 1)).toBe(false);
    p = copyOf(w.ptr, n);
    store<u32>(p + 4, 1);
    expect<bool>(r.open(p, n)).toBe(false);
    // matched > blocks (in the second record), blocks 0, routed 0.
    p = copyOf(w.ptr, n);
    store<u16>(p + ANSWER_HEADER_BYTES + recordBytes(2) + 2, 4);
    expect<bool>(r.open(p, n)).toBe(false);
    store<u16>(p + ANSWER_HEADER_BYTES + recordBytes(2) + 2, 3);
    expect<bool>(r.open(p, n)).toBe(true);
    p = copyOf(w.ptr, ANSWER_HEADER_BYTES + 16);
    store<u32>(p + 4, 1);
    store<u16>(p + ANSWER_HEADER_BYTES, 0);
    store<u16>(p + ANSWER_HEADER_BYTES + 2, 0);
    store<u64>(p + ANSWER_HEADER_BYTES + 8, 0x33);
    expect<bool>(r.open(p, ANSWER_HEADER_BYTES + 16)).toBe(false);
    p = copyOf(w.ptr, n);
    store<u64>(p + ANSWER_HEADER_BYTES + 8, 0);
    expect<bool>(r.open(p, n)).toBe(false);
  });

  it("a refused answer does not take the place of the last one read", () => {
    const good = answerOf([1], [0], [0x44]);
    const r = new PeerAnswerReader();
    expect<bool>(r.open(good.ptr, good.len)).toBe(true);
    const bad = copyOf(good.ptr, good.len);
    store<u64>(bad + 8, 999);  // another instance …
    store<u32>(bad, 0);        // … in an answer that is refused
    expect<bool>(r.open(bad, good.len)).toBe(false);
    expect<u64>(r.instance).toBe(0x1122334455667788);
    expect<string>(recordsOf(r)).toBe("1/0@68:1000..1000;");
  });
});
