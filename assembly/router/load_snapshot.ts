// The servers' load as the scraping VM publishes it in shared data for every
// VM of the vm_id, and as each VM reads it back.
//
//   <ns>load_version   u64, bumped on every publish (readers poll this 8-byte key)
//   <ns>load           header + one fixed-size entry per endpoint:
//
//   header: +0 version u64 | +8 count u32 | +12 pad
//   entry (ENTRY_BYTES):
//     +0 endpoint key u64 | +8 last good scrape ms i64 | +16 waiting f64 |
//     +24 running f64 | +32 KV utilization f64 | +40 block size tokens i64 |
//     +48 GPU blocks i64 | +56 consecutive failures u32 | +60 max_lora i32 |
//     +64 running adapter count u32 | +68 restarts seen u32 | +72 prefill tokens per ms f64 |
//     +80 MAX_ADAPTERS × adapter hash u64
//
// Unknown numbers are NaN (or 0 for the geometry). Entries are keyed by the
// endpoint's address hash, so VMs with differently ordered configurations agree.
// The offsets below name these fields; EndpointScrape.writeTo and writeHeader
// write them, and the readers at the end of this file read them.
import { MAX_ADAPTERS } from "./limits";

const HEADER_VERSION: usize = 0;
const HEADER_COUNT: usize = 8;
const HEADER_PAD: usize = 12;
export const SNAPSHOT_HEADER_BYTES: usize = 16;

const ENTRY_KEY: usize = 0;
const ENTRY_SCRAPED_AT: usize = 8;
const ENTRY_WAITING: usize = 16;
const ENTRY_RUNNING: usize = 24;
const ENTRY_KV: usize = 32;
const ENTRY_BLOCK_SIZE: usize = 40;
const ENTRY_GPU_BLOCKS: usize = 48;
const ENTRY_FAILURES: usize = 56;
const ENTRY_MAX_LORA: usize = 60;
const ENTRY_ADAPTER_COUNT: usize = 64;
const ENTRY_EPOCH: usize = 68;
const ENTRY_RATE: usize = 72;
const ENTRY_ADAPTERS: usize = 80;
export const ENTRY_BYTES: usize = ENTRY_ADAPTERS + (<usize>MAX_ADAPTERS << 3);

/** One endpoint's scrape state, kept by the VM holding the scrape lease. */
export class EndpointScrape {
  scrapedAtMs: i64 = 0;
  waiting: f64 = NaN;
  running: f64 = NaN;
  kv: f64 = NaN;
  blockSizeTokens: i64 = 0;
  gpuBlocks: i64 = 0;
  failures: u32 = 0;
  maxLora: i32 = -1;
  adapterCount: i32 = 0;
  adapters: StaticArray<u64> = new StaticArray<u64>(MAX_ADAPTERS);
  /** Prefill tokens per ms measured while the server had a queue (scraper.ts), NaN before. */
  prefillRate: f64 = NaN;
  /** Restarts (or prefix-cache resets) seen since the endpoint arrived: each empties its cache. */
  epoch: u32 = 0;
  // Holder-only bookkeeping (not published).
  token: u32 = 0;
  dispatchedAtMs: i64 = 0;
  lastQueries: f64 = -1;
  lastHits: f64 = -1;
  /** process_start_time_seconds at the last scrape, NaN when unknown. */
  lastStartTime: f64 = NaN;
  /** Busy intervals pooled toward the next prefill-rate sample (scraper.ts measureRate). */
  rateTokens: f64 = 0;
  rateMs: f64 = 0;

  writeTo(p: usize, key: u64): void {
    store<u64>(p + ENTRY_KEY, key);
    store<i64>(p + ENTRY_SCRAPED_AT, this.scrapedAtMs);
    store<f64>(p + ENTRY_WAITING, this.waiting);
    store<f64>(p + ENTRY_RUNNING, this.running);
    store<f64>(p + ENTRY_KV, this.kv);
    store<i64>(p + ENTRY_BLOCK_SIZE, this.blockSizeTokens);
    store<i64>(p + ENTRY_GPU_BLOCKS, this.gpuBlocks);
    store<u32>(p + ENTRY_FAILURES, this.failures);
    store<i32>(p + ENTRY_MAX_LORA, this.maxLora);
    store<u32>(p + ENTRY_ADAPTER_COUNT, <u32>this.adapterCount);
    store<u32>(p + ENTRY_EPOCH, this.epoch);
    store<f64>(p + ENTRY_RATE, this.prefillRate);
    for (let i = 0; i < MAX_ADAPTERS; i++) store<u64>(p + ENTRY_ADAPTERS + (<usize>i << 3), unchecked(this.adapters[i]));
  }
}

/** Writes a snapshot's header: the publisher's version and the entries that follow it. */
export function writeHeader(p: usize, version: u64, count: i32): void {
  store<u64>(p + HEADER_VERSION, version);
  store<u32>(p + HEADER_COUNT, <u32>count);
  store<u32>(p + HEADER_PAD, 0);
}

/** Snapshot size for `count` endpoints. */
export function snapshotBytes(count: i32): usize {
  return SNAPSHOT_HEADER_BYTES + <usize>count * ENTRY_BYTES;
}

/** Number of entries in a snapshot of `size` bytes, or -1 if it is malformed. */
export function snapshotEntries(p: usize, size: usize): i32 {
  if (size < SNAPSHOT_HEADER_BYTES) return -1;
  const count = load<u32>(p + HEADER_COUNT);
  return snapshotBytes(<i32>count) == size ? <i32>count : -1;
}

// ---- reading an entry (p: from entryAt) ---------------------------------------------

/** Entry i of a snapshot at `snapshot` (i below snapshotEntries). */
// @ts-ignore: decorator
@inline export function entryAt(snapshot: usize, i: i32): usize { return snapshot + SNAPSHOT_HEADER_BYTES + <usize>i * ENTRY_BYTES; }
// @ts-ignore: decorator
@inline export function entryKey(p: usize): u64 { return load<u64>(p + ENTRY_KEY); }
// @ts-ignore: decorator
@inline export function entryScrapedAtMs(p: usize): i64 { return load<i64>(p + ENTRY_SCRAPED_AT); }
// @ts-ignore: decorator
@inline export function entryWaiting(p: usize): f64 { return load<f64>(p + ENTRY_WAITING); }
// @ts-ignore: decorator
@inline export function entryRunning(p: usize): f64 { return load<f64>(p + ENTRY_RUNNING); }
// @ts-ignore: decorator
@inline export function entryKv(p: usize): f64 { return load<f64>(p + ENTRY_KV); }
// @ts-ignore: decorator
@inline export function entryBlockSizeTokens(p: usize): i64 { return load<i64>(p + ENTRY_BLOCK_SIZE); }
// @ts-ignore: decorator
@inline export function entryGpuBlocks(p: usize): i64 { return load<i64>(p + ENTRY_GPU_BLOCKS); }
// @ts-ignore: decorator
@inline export function entryFailures(p: usize): u32 { return load<u32>(p + ENTRY_FAILURES); }
// @ts-ignore: decorator
@inline export function entryMaxLora(p: usize): i32 { return load<i32>(p + ENTRY_MAX_LORA); }
// @ts-ignore: decorator
@inline export function entryAdapterCount(p: usize): i32 { return <i32>load<u32>(p + ENTRY_ADAPTER_COUNT); }
/** The adapter hashes (entryAdapterCount of them), in place. */
// @ts-ignore: decorator
@inline export function entryAdapters(p: usize): usize { return p + ENTRY_ADAPTERS; }
// @ts-ignore: decorator
@inline export function entryEpoch(p: usize): u32 { return load<u32>(p + ENTRY_EPOCH); }
// @ts-ignore: decorator
@inline export function entryPrefillRate(p: usize): f64 { return load<f64>(p + ENTRY_RATE); }
