// Learns each model server's load from its Prometheus page, with HTTP callouts
// from inside Envoy, and shares it with every VM of the vm_id.
//
// Exactly one VM scrapes per interval, however many worker threads Envoy runs:
// it holds the lease <ns>metrics_lease (lease.ts), renewed every interval; if
// its holder stops (trap, shutdown), the lease expires after three intervals
// and another VM's tick takes it. The holder sends one GET per endpoint to the
// metrics cluster with `:authority` and `x-envoy-original-dst-host` set to the
// endpoint's metrics address (so a single ORIGINAL_DST cluster reaches them
// all), parses each answer into its EndpointScrape, and publishes all entries
// once per tick (load_snapshot.ts). Every VM, the holder included, reads the
// published snapshot back and applies it to its load view.
//
// The holder also tells when a server restarted, which empties its prefix
// cache: its process start time changed, or its prefix-cache counters went
// back. It then bumps the endpoint's epoch in the snapshot, and every VM that
// sees the epoch move drops the endpoint's index entries (router.ts).
import * as host from "../abi/host";
import { WasmResult, MapType, BufferType, LogLevel } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import { encodePairs } from "../abi/pairs";
import { MetricsConfig } from "./config";
import { Dialect, ServerLoad, Signal, parseLoad, LOAD_SIGNALS } from "../metrics/dialect";
import { xxh64 } from "./hash";
import { EndpointKeys } from "./endpoint_keys";
import { Lease } from "./lease";
import { PublishedValue } from "./published";
import { EndpointScrape, snapshotBytes, snapshotEntries, writeHeader, entryAt, entryKey, entryPrefillRate, entryEpoch } from "./load_snapshot";
import { MAX_ADAPTERS, MAX_PAGE_BYTES } from "./limits";

/** Busy scrape intervals pooled into one prefill-rate sample, ms. */
const RATE_WINDOW_MS: f64 = 5000;
/** Weight of a new sample in the measured prefill rate, and the most one sample may move it (a factor). */
const RATE_ALPHA: f64 = 0.3;
const RATE_STEP: f64 = 2;
const LEASE_INTERVALS: i64 = 3;

/** What a finished scrape did, for the router's stats. */
export class ScrapeResult {
  endpoint: i32 = -1;
  ok: bool = false;
  queriesDelta: f64 = 0;
  hitsDelta: f64 = 0;
  /** The server restarted since its last scrape. */
  restarted: bool = false;
}

@final
export class Scraper {
  /** Per endpoint slot; a free slot's entry is never dispatched or published. */
  readonly entries: StaticArray<EndpointScrape>;
  private requestHeaders: StaticArray<ArrayBuffer | null>;
  private cluster: ArrayBuffer;
  private lease: Lease;
  /** The load snapshot in shared data: <ns>load, versioned by <ns>load_version. */
  private shared: PublishedValue;
  private dialect: Dialect;
  private page: ServerLoad = new ServerLoad();
  private buf: HostBuffer = new HostBuffer();
  private nextScrapeMs: i64 = 0;
  private holding: bool = false;
  private dirty: bool = false;
  private publishBuffer: usize;
  private reportedBrokenCluster: bool = false;
  /** The last snapshot read from shared data (owned; re-applied each tick as it ages). */
  readonly snapshot: HostBuffer = new HostBuffer();
  readonly result: ScrapeResult = new ScrapeResult();

  constructor(readonly config: MetricsConfig, namespace: string, readonly keys: EndpointKeys, readonly vmTag: u32) {
    const slots = keys.keys.length;
    this.cluster = String.UTF8.encode(config.cluster);
    this.lease = new Lease(namespace + "metrics_lease", vmTag);
    this.shared = new PublishedValue(namespace + "load", namespace + "load_version", vmTag);
    this.dialect = config.dialect!;
    this.entries = new StaticArray<EndpointScrape>(slots);
    this.requestHeaders = new StaticArray<ArrayBuffer | null>(slots);
    for (let e = 0; e < slots; e++) unchecked(this.entries[e] = new EndpointScrape());
    this.publishBuffer = heap.alloc(snapshotBytes(slots));
  }

  /** Slot e's endpoint arrived: scrape `metricsAddress` from the next interval, from a clean slate. */
  assign(e: i32, metricsAddress: string): void {
    unchecked(this.entries[e] = new EndpointScrape());
    unchecked(this.requestHeaders[e] = encodePairs(
      [":method", ":path", ":authority", "x-envoy-original-dst-host", "accept"],
      ["GET", this.config.path, metricsAddress, metricsAddress, "text/plain"]));
  }

  /** Slot e's endpoint left: stop scraping it; an answer still on its way is ignored. */
  clear(e: i32): void {
    unchecked(this.entries[e] = new EndpointScrape());
    unchecked(this.requestHeaders[e] = null);
    this.dirty = true;
  }

  isHolder(): bool { return this.holding; }

  /** Returns the raw buffers to the heap when the router goes away; unusable afterwards. */
  free(): void {
    heap.free(this.publishBuffer);
    this.publishBuffer = 0;
    this.shared.free();
    this.lease.free();
    this.snapshot.release();
    this.buf.release();
  }

  /** Lease, dispatch and publish; returns true when a new snapshot was read. */
  tick(now: i64): bool {
    if (now >= this.nextScrapeMs) {
      // The next deadline follows the schedule, not the tick that noticed this
      // one: deadlines are only seen on a tick, so `now + interval` stretched
      // every interval to the next tick (in real Envoy at tickMs 100, 250 ms
      // became 300). A tick late by a whole interval restarts the schedule
      // rather than scraping twice to catch up.
      const interval = <i64>this.config.intervalMs;
      const next = this.nextScrapeMs + interval;
      this.nextScrapeMs = next > now ? next : now + interval;
      const held = this.holding;
      this.holding = this.lease.acquire(now, now + LEASE_INTERVALS * <i64>this.config.intervalMs);
      if (this.holding && !held) this.forgetCounterBaselines();
      if (this.holding) this.dispatchAll(now);
    }
    if (this.dirty && this.holding) this.publish();
    this.dirty = false;
    return this.shared.readIfChanged(this.snapshot);
  }

  /**
   * A VM that takes the lease starts its prefix-cache deltas afresh. Its last
   * values are from before the holders in between, which counted that span
   * already: in real Envoy, stalled past the lease a few times (SIGSTOP), the
   * lease moved between threads and 7,700 queries were counted for 4,000.
   * The first scrape after taking the lease only sets the baseline, so a
   * handover can lose one interval's delta but never count one twice. The
   * measured prefill rates are taken over from the last published snapshot,
   * so a handover does not forget what the previous holder learned.
   */
  private forgetCounterBaselines(): void {
    for (let e = 0; e < this.entries.length; e++) {
      const entry = unchecked(this.entries[e]);
      entry.lastQueries = -1;
      entry.lastHits = -1;
      entry.lastStartTime = NaN;
      entry.rateTokens = 0;
      entry.rateMs = 0;
    }
    const snap = this.snapshot;
    const count = snapshotEntries(snap.ptr, snap.size);
    for (let i = 0; i < count; i++) {
      const p = entryAt(snap.ptr, i);
      const e = this.keys.indexOf(entryKey(p));
      if (e < 0) continue;
      const entry = unchecked(this.entries[e]);
      entry.prefillRate = entryPrefillRate(p);
      entry.epoch = entryEpoch(p);
    }
  }

  private dispatchAll(now: i64): void {
    const timeout = <i64>this.config.timeoutMs;
    for (let e = 0; e < this.entries.length; e++) {
      const headers = unchecked(this.requestHeaders[e]);
      if (headers === null) continue;
      const entry = unchecked(this.entries[e]);
      // One scrape in flight per endpoint; Envoy always answers (a timeout is a
      // 504), but do not wait forever on a lost one.
      if (entry.token != 0 && now - entry.dispatchedAtMs < timeout + <i64>this.config.intervalMs) continue;
      if (entry.token != 0) entry.failures++;
      const token = host.httpCall(this.cluster, headers, <u32>this.config.timeoutMs);
      entry.token = token;
      entry.dispatchedAtMs = now;
      if (token == 0) {
        entry.failures++;
        this.dirty = true;
        if (!this.reportedBrokenCluster) {
          this.reportedBrokenCluster = true;
          host.log(LogLevel.Error, "prefix-router: metrics scrape refused by Envoy: is cluster \"" +
            this.config.cluster + "\" defined (and does each request carry :authority)?");
        }
      }
    }
  }

  /**
   * Handles a callout answer if the token is one of ours; fills `result`.
   * Returns false for a token this scraper did not send.
   */
  onResponse(token: u32, headerCount: u32, bodySize: u32, now: i64): bool {
    if (token == 0) return false;
    let e = -1;
    for (let i = 0; i < this.entries.length; i++) {
      if (unchecked(this.entries[i]).token == token) {
        e = i;
        break;
      }
    }
    if (e < 0) return false;
    const entry = unchecked(this.entries[e]);
    entry.token = 0;
    const r = this.result;
    r.endpoint = e;
    r.ok = headerCount > 0 && host.statusIs200(MapType.HttpCallResponseHeaders, this.buf) && bodySize <= MAX_PAGE_BYTES && this.parse(bodySize);
    r.queriesDelta = 0;
    r.hitsDelta = 0;
    r.restarted = false;
    if (r.ok) {
      this.take(entry, now, r);
    } else {
      entry.failures++;
    }
    this.dirty = true;
    return true;
  }



  private parse(bodySize: u32): bool {
    if (host.getBufferBytes(BufferType.HttpCallResponseBody, 0, bodySize, this.buf) != WasmResult.Ok) {
      this.buf.release();
      return false;
    }
    const outcome = parseLoad(this.buf.ptr, this.buf.size, this.dialect, this.page);
    this.buf.release();
    // A cut page could under-report; a page with none of our metrics is the wrong dialect.
    return !outcome.truncated && (this.page.present & LOAD_SIGNALS) != 0;
  }

  private take(entry: EndpointScrape, now: i64, r: ScrapeResult): void {
    const p = this.page;
    const previousAt = entry.scrapedAtMs;
    const previousWaiting = entry.waiting;
    entry.scrapedAtMs = now;
    entry.failures = 0;
    entry.waiting = p.has(Signal.Queue) ? p.waiting : NaN;
    entry.running = p.has(Signal.Running) ? p.running : NaN;
    entry.kv = p.has(Signal.KvUtilization) ? p.kvUtilization : NaN;
    entry.blockSizeTokens = p.has(Signal.BlockSize) ? p.blockSizeTokens : 0;
    entry.gpuBlocks = p.has(Signal.NumBlocks) ? p.numGpuBlocks : 0;
    if (p.has(Signal.Lora)) {
      const list = p.runningAdapters;
      const n = min(list.count, MAX_ADAPTERS);
      for (let i = 0; i < n; i++) {
        unchecked(entry.adapters[i] = xxh64(list.namePtr(i), <usize>list.nameLength(i), 0));
      }
      entry.adapterCount = n;
      entry.maxLora = p.maxLora;
    } else {
      entry.adapterCount = 0;
      entry.maxLora = -1;
    }
    if (p.has(Signal.StartTime)) {
      const started = p.startTimeSeconds;
      if (!isNaN(entry.lastStartTime) && started != entry.lastStartTime) r.restarted = true;
      entry.lastStartTime = started;
    }
    if (p.has(Signal.PrefixQueries) && p.has(Signal.PrefixHits)) {
      // Counters restart from zero when a server restarts: then the new value is the delta.
      if (entry.lastQueries >= 0 && (p.prefixQueries < entry.lastQueries || p.prefixHits < entry.lastHits)) r.restarted = true;
      if (entry.lastQueries >= 0) {
        r.queriesDelta = p.prefixQueries >= entry.lastQueries ? p.prefixQueries - entry.lastQueries : p.prefixQueries;
        r.hitsDelta = p.prefixHits >= entry.lastHits ? p.prefixHits - entry.lastHits : p.prefixHits;
      }
      const known = entry.lastQueries >= 0 && p.prefixQueries >= entry.lastQueries && p.prefixHits >= entry.lastHits;
      if (known && previousAt > 0 && now > previousAt && previousWaiting > 0 && entry.waiting > 0) {
        this.measureRate(entry, (r.queriesDelta - r.hitsDelta) * this.counterTokens(entry), <f64>(now - previousAt));
      }
      entry.lastQueries = p.prefixQueries;
      entry.lastHits = p.prefixHits;
    }
    if (r.restarted) entry.epoch++;
  }

  /**
   * The server's prefill rate: prompt tokens it computed (looked up in its
   * prefix cache and missed) per ms, over intervals that began and ended with
   * requests waiting, when it was working as fast as it can rather than as
   * fast as requests came. The counters move when the scheduler admits a
   * request, not as its prefill runs, so one interval can hold a whole burst:
   * intervals are pooled until RATE_WINDOW_MS of them, and a window moves the
   * estimate at most by a factor RATE_STEP.
   */
  private measureRate(entry: EndpointScrape, computedTokens: f64, elapsedMs: f64): void {
    if (!(computedTokens >= 0)) return;
    entry.rateTokens += computedTokens;
    entry.rateMs += elapsedMs;
    if (entry.rateMs < RATE_WINDOW_MS) return;
    const sample = entry.rateTokens / entry.rateMs;
    entry.rateTokens = 0;
    entry.rateMs = 0;
    if (!(sample > 0)) return;
    const current = entry.prefillRate;
    if (isNaN(current)) {
      entry.prefillRate = sample;
      return;
    }
    const bounded = min(max(sample, current / RATE_STEP), current * RATE_STEP);
    entry.prefillRate = current + RATE_ALPHA * (bounded - current);
  }

  /** Tokens per unit of the prefix-cache counters: vLLM and SGLang count tokens, trtllm-serve blocks. */
  private counterTokens(entry: EndpointScrape): f64 {
    if (this.config.dialectName != "trtllm") return 1;
    return entry.blockSizeTokens > 0 ? <f64>entry.blockSizeTokens : NaN;
  }

  private publish(): void {
    const out = this.publishBuffer;
    let n = 0;
    for (let e = 0; e < this.entries.length; e++) {
      if (unchecked(this.requestHeaders[e]) === null) continue;
      const key = unchecked(this.keys.keys[e]);
      unchecked(this.entries[e]).writeTo(entryAt(out, n), key);
      n++;
    }
    writeHeader(out, (<u64>this.vmTag << 32) | (this.shared.nextVersion & 0xFFFFFFFF), n);
    this.shared.publish(out, snapshotBytes(n));
  }

}
