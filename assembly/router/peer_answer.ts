// What one Envoy's filter answers a peer that asks for its routing decisions
// (peers.ts), and how the asker reads it. Binary, little-endian:
//
//   answer: +0 magic u32 "PRP1" | +4 records u32 | +8 instance u64 |
//           +16 format u64 | +24 next u64 | +32 records, back to back
//   record: +0 blocks u16 | +2 matched u16 | +4 reserved u32 (zero) |
//           +8 routed endpoint key u64 | +16 blocks × index entry (block hash) u64
//
// `instance` names the answering Envoy's journal (peers.ts instanceId): a new
// one means it restarted and its seqs began again. `format` is a hash of what
// makes index entries comparable (the shared-data format, block size, stride):
// entries from a peer whose filter hashes differently would never match, so
// such an answer is refused whole. `next` is the seq to ask from next time.
// A record is one of the answering Envoy's own routing decisions, as its
// journal holds it (journal.ts): the endpoint it chose, the index entries of
// the prompt, and how many of them that endpoint held already.
import { StoredEventSink, PEER_TAG, EVENT_HEADER_BYTES, eventTag, eventBlocks, eventRouted, eventMatched } from "./journal";

const ANSWER_MAGIC: u32 = 0x31505250; // "PRP1"
const ANSWER_RECORDS: usize = 4;
const ANSWER_INSTANCE: usize = 8;
const ANSWER_FORMAT: usize = 16;
const ANSWER_NEXT: usize = 24;
export const ANSWER_HEADER_BYTES: usize = 32;

const RECORD_BLOCKS: usize = 0;
const RECORD_MATCHED: usize = 2;
const RECORD_RESERVED: usize = 4;
const RECORD_ROUTED: usize = 8;
const RECORD_HEADER_BYTES: usize = 16;

/**
 * Builds an answer from journal events (Journal.scan hands them over): this
 * Envoy's own routing decisions only. Events taken in from peers are left
 * out, so that decisions never echo between Envoys; releases and heartbeats
 * carry no placement.
 */
@final
export class PeerAnswerWriter extends StoredEventSink {
  readonly ptr: usize;
  len: usize = ANSWER_HEADER_BYTES;
  private records: u32 = 0;

  constructor(readonly capacity: usize) {
    super();
    this.ptr = heap.alloc(capacity);
  }

  begin(): void {
    this.len = ANSWER_HEADER_BYTES;
    this.records = 0;
  }

  take(event: usize, size: usize): bool {
    const blocks = eventBlocks(event);
    const routed = eventRouted(event);
    if (eventTag(event) == PEER_TAG || routed == 0 || blocks == 0) return true;
    const bytes = RECORD_HEADER_BYTES + (<usize>blocks << 3);
    if (this.len + bytes > this.capacity) return false;
    const r = this.ptr + this.len;
    store<u16>(r + RECORD_BLOCKS, <u16>blocks);
    store<u16>(r + RECORD_MATCHED, <u16>eventMatched(event));
    store<u32>(r + RECORD_RESERVED, 0);
    store<u64>(r + RECORD_ROUTED, routed);
    memory.copy(r + RECORD_HEADER_BYTES, event + EVENT_HEADER_BYTES, <usize>blocks << 3);
    this.len += bytes;
    this.records++;
    return true;
  }

  /** Writes the header; the answer is [ptr, ptr + len). */
  finish(instance: u64, format: u64, next: u64): void {
    const p = this.ptr;
    store<u32>(p, ANSWER_MAGIC);
    store<u32>(p + ANSWER_RECORDS, this.records);
    store<u64>(p + ANSWER_INSTANCE, instance);
    store<u64>(p + ANSWER_FORMAT, format);
    store<u64>(p + ANSWER_NEXT, next);
  }

  free(): void {
    heap.free(this.ptr);
  }
}

/**
 * Reads an answer: `open` checks the whole of it (every record inside the
 * body, nothing left over, matched ≤ blocks) before anything is used, so a
 * truncated or corrupt answer is refused whole, never half-applied. Then
 * `next()` walks the records.
 */
@final
export class PeerAnswerReader {
  instance: u64 = 0;
  format: u64 = 0;
  nextSeq: u64 = 0;
  records: u32 = 0;
  // The current record (after next()).
  blocks: i32 = 0;
  matched: i32 = 0;
  routed: u64 = 0;
  hashes: usize = 0;
  private at: usize = 0;
  private end: usize = 0;

  open(p: usize, n: usize): bool {
    if (n < ANSWER_HEADER_BYTES || load<u32>(p) != ANSWER_MAGIC) return false;
    const records = load<u32>(p + ANSWER_RECORDS);
    const end = p + n;
    let r = p + ANSWER_HEADER_BYTES;
    for (let i: u32 = 0; i < records; i++) {
      if (end - r < RECORD_HEADER_BYTES) return false;
      const blocks = <usize>load<u16>(r + RECORD_BLOCKS);
      if (blocks == 0 || <usize>load<u16>(r + RECORD_MATCHED) > blocks || load<u64>(r + RECORD_ROUTED) == 0) return false;
      const bytes = RECORD_HEADER_BYTES + (blocks << 3);
      if (end - r < bytes) return false;
      r += bytes;
    }
    if (r != end) return false;
    this.records = records;
    this.instance = load<u64>(p + ANSWER_INSTANCE);
    this.format = load<u64>(p + ANSWER_FORMAT);
    this.nextSeq = load<u64>(p + ANSWER_NEXT);
    this.at = p + ANSWER_HEADER_BYTES;
    this.end = end;
    return true;
  }

  /** Moves to the next record; false after the last. */
  next(): bool {
    const r = this.at;
    if (r >= this.end) return false;
    this.blocks = <i32>load<u16>(r + RECORD_BLOCKS);
    this.matched = <i32>load<u16>(r + RECORD_MATCHED);
    this.routed = load<u64>(r + RECORD_ROUTED);
    this.hashes = r + RECORD_HEADER_BYTES;
    this.at = r + RECORD_HEADER_BYTES + (<usize>this.blocks << 3);
    return true;
  }
}
