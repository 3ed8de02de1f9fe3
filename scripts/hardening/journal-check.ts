// Reads the shared prefix-index journal back out of the emulator's shared data
// and checks it against what the requests should have written: every slot
// well formed (its seq in the slot it belongs to, sizes consistent), the open
// page's events in seq order and each the same bytes as its slot, every
// routed endpoint key one of the configured endpoints, and every routing
// event's block hashes exactly the chained hashes of the request it records.
// The expected hashes are computed by the router's own extractor and xxHash64
// in build/fuzz.wasm, independently of the filter's run. Event layout:
// assembly/router/journal.ts.
import type { SharedDataView } from "../host/index.ts";
import type { FuzzModule } from "./fuzz-module.ts";

/** A journal event's header (journal.ts): what every event's size bound starts with. */
export const HEADER_BYTES = 32;
/** The journal page's header (journal.ts): first seq, count, event bytes. */
const PAGE_HEADER_BYTES = 16;
/** Released in-flight counts one event carries at most (limits.ts MAX_RELEASES). */
const MAX_RELEASES = 64;

/** The largest journal event: its header, then 8 bytes per release and per index entry of one prompt. */
export function journalEventBound(maxPrefixBlocks: number, indexStride: number): number {
  return HEADER_BYTES + 8 * (MAX_RELEASES + Math.floor(maxPrefixBlocks / indexStride));
}

export interface JournalLayout {
  rootId: string;
  hashBlockSize: number;
  indexStride: number;
  maxPrefixBlocks: number;
  journalSlots: number;
}

export interface ExpectedEvent {
  /** Index entries (every stride-th chained block hash). */
  entries: bigint[];
  endpointKey: bigint;
  request: number;
}

export interface JournalCheck {
  head: number;
  slotsRead: number;
  routingEvents: number;
  releaseOnlyEvents: number;
  /** Routing events matched to the request they record, hashes and endpoint equal. */
  matched: number;
  /** Slots that are malformed, hold the wrong seq, name an unknown endpoint or differ from their request. */
  corrupt: number;
  problems: string[];
}

/** Endpoint key: xxHash64 of the address (0 remapped to 1), as endpoint_keys.ts computes it. */
export function endpointKey(fm: FuzzModule, address: string): bigint {
  const bytes = new TextEncoder().encode(address);
  const k = BigInt.asUintN(64, fm.exports.fuzz_xxh64(fm.place(bytes), bytes.length, 0n));
  return k === 0n ? 1n : k;
}

/** The index entries the router writes for a chat body (router.ts decide()). */
export function indexEntries(fm: FuzzModule, body: Uint8Array, layout: JournalLayout): bigint[] {
  const e = fm.exports;
  const outcome = e.fuzz_body(fm.place(body), body.length, 1);
  if (outcome !== 0) return [];
  const model = e.fuzz_body_model_ptr(), modelLen = e.fuzz_body_model_len();
  const prompt = e.fuzz_body_prompt_ptr(), promptLen = e.fuzz_body_prompt_len();
  e.fuzz_chain_start(e.fuzz_xxh64(model, modelLen, 0n));
  const blocks = Math.min(Math.floor(promptLen / layout.hashBlockSize), layout.maxPrefixBlocks);
  const out: bigint[] = [];
  for (let i = 0, k = 1; i < blocks; i++, k++) {
    const h = e.fuzz_chain_next(prompt + i * layout.hashBlockSize, layout.hashBlockSize) as bigint;
    if (k === layout.indexStride) {
      out.push(BigInt.asUintN(64, h));
      k = 0;
    }
  }
  return out;
}

/**
 * Checks every slot of the ring. `expected` maps a routing event's last
 * entry (hex; requests share leading blocks, not the last) to the request
 * that must have written it.
 */
export function checkJournal(shared: SharedDataView, layout: JournalLayout, endpointKeys: Set<bigint>, expected: Map<string, ExpectedEvent>): JournalCheck {
  const ns = `prefix-router/${layout.rootId}/f5/b${layout.hashBlockSize}x${layout.indexStride}/`;
  const report: JournalCheck = { head: 0, slotsRead: 0, routingEvents: 0, releaseOnlyEvents: 0, matched: 0, corrupt: 0, problems: [] };
  const bad = (m: string) => {
    report.corrupt++;
    if (report.problems.length < 20) report.problems.push(m);
  };
  const page = shared.get(ns + "page");
  const pv = page?.value;
  const pd = pv === undefined ? undefined : new DataView(pv.buffer, pv.byteOffset, pv.length);
  if (pv === undefined || pd === undefined || pv.length < PAGE_HEADER_BYTES || pd.getUint32(12, true) !== pv.length - PAGE_HEADER_BYTES) {
    bad("no journal page");
    return report;
  }
  const first = pd.getBigUint64(0, true);
  const count = pd.getUint32(8, true);
  const headSeq = first + BigInt(count);
  report.head = Number(headSeq);
  const slots = BigInt(layout.journalSlots);
  // The page: its events back to back from seq first, each the same bytes as the slot still holding that seq.
  let at = PAGE_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const size = at + HEADER_BYTES <= pv.length ? HEADER_BYTES + 8 * (pd.getUint16(at + 12, true) + pd.getUint16(at + 14, true)) : Infinity;
    if (at + size > pv.length || pd.getBigUint64(at, true) !== first + BigInt(i)) {
      bad(`page: event ${i} of ${count} out of place`);
      return report;
    }
    const seq = first + BigInt(i);
    const slot = shared.get(`${ns}slot/${seq % slots}`)?.value;
    const event = pv.subarray(at, at + size);
    if (slot !== undefined && slot.length >= 8 && new DataView(slot.buffer, slot.byteOffset, 8).getBigUint64(0, true) === seq && Buffer.compare(slot, event) !== 0) {
      bad(`page: event ${seq} differs from its slot`);
    }
    at += size;
  }
  if (at !== pv.length) bad(`page: ${pv.length - at} bytes after its ${count} events`);
  for (let k = 0n; k < slots; k++) {
    const entry = shared.get(`${ns}slot/${k}`);
    if (entry === undefined) continue;
    report.slotsRead++;
    const v = entry.value;
    if (v.length < HEADER_BYTES) {
      bad(`slot ${k}: ${v.length} bytes`);
      continue;
    }
    const d = new DataView(v.buffer, v.byteOffset, v.length);
    const seq = d.getBigUint64(0, true);
    const releases = d.getUint16(12, true);
    const blocks = d.getUint16(14, true);
    const routed = d.getBigUint64(16, true);
    const matched = d.getUint16(24, true);
    if (v.length !== HEADER_BYTES + 8 * (releases + blocks)) {
      bad(`slot ${k}: size ${v.length} for ${blocks} blocks and ${releases} releases`);
      continue;
    }
    if (matched > blocks) {
      bad(`slot ${k}: ${matched} matched of ${blocks} blocks`);
      continue;
    }
    if (seq % slots !== k || seq >= headSeq) {
      bad(`slot ${k}: seq ${seq} (head ${headSeq})`);
      continue;
    }
    for (let r = 0; r < releases; r++) {
      const key = d.getBigUint64(HEADER_BYTES + 8 * (blocks + r), true);
      if (!endpointKeys.has(key)) bad(`slot ${k}: release of unknown endpoint ${key.toString(16)}`);
    }
    if (routed === 0n) {
      report.releaseOnlyEvents++;
      if (blocks !== 0) bad(`slot ${k}: ${blocks} blocks without a route`);
      continue;
    }
    report.routingEvents++;
    if (!endpointKeys.has(routed)) {
      bad(`slot ${k}: routed to unknown endpoint ${routed.toString(16)}`);
      continue;
    }
    if (blocks === 0) continue; // a prompt shorter than one stride: nothing to match on
    const last = d.getBigUint64(HEADER_BYTES + 8 * (blocks - 1), true);
    const want = expected.get(last.toString(16));
    if (want === undefined) {
      bad(`slot ${k}: last entry ${last.toString(16)} matches no request`);
      continue;
    }
    if (want.endpointKey !== routed || want.entries.length !== blocks || want.entries.some((h, i) => d.getBigUint64(HEADER_BYTES + 8 * i, true) !== h)) {
      bad(`slot ${k}: request ${want.request} recorded differently`);
      continue;
    }
    report.matched++;
  }
  return report;
}
