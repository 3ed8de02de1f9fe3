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
import { MAX_ADAPTERS } from "./limits";

export const SNAPSHOT_HEADER_BYTES: usize = 16;
export const ENTRY_BYTES: usize = 80 + (<usize>MAX_ADAPTERS << 3);
export const EPOCH_OFFSET: usize = 68;
export const RATE_OFFSET: usize = 72;
export const ADAPTERS_OFFSET: usize = 80;

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
    store<u64>(p, key);
    store<i64>(p, this.scrapedAtMs, 8);
    store<f64>(p, this.waiting, 16);
    store<f64>(p, this.running, 24);
    store<f64>(p, this.kv, 32);
    store<i64>(p, this.blockSizeTokens, 40);
    store<i64>(p, this.gpuBlocks, 48);
    store<u32>(p, this.failures, 56);
    store<i32>(p, this.maxLora, 60);
    store<u32>(p, <u32>this.adapterCount, 64);
    store<u32>(p, this.epoch, EPOCH_OFFSET);
    store<f64>(p, this.prefillRate, RATE_OFFSET);
    for (let i = 0; i < MAX_ADAPTERS; i++) store<u64>(p + ADAPTERS_OFFSET + (<usize>i << 3), unchecked(this.adapters[i]));
  }
}

/** Snapshot size for `count` endpoints. */
export function snapshotBytes(count: i32): usize {
  return SNAPSHOT_HEADER_BYTES + <usize>count * ENTRY_BYTES;
}

/** Number of entries in a snapshot of `size` bytes, or -1 if it is malformed. */
export function snapshotEntries(p: usize, size: usize): i32 {
  if (size < SNAPSHOT_HEADER_BYTES) return -1;
  const count = load<u32>(p, 8);
  return snapshotBytes(<i32>count) == size ? <i32>count : -1;
}
