// The router's Envoy stats. Envoy names each `wasmcustom.<name>`; its Prometheus
// output strips that prefix and turns every character outside [a-zA-Z0-9_] into
// '_' (envoy source/server/admin/prometheus_stats.cc), so
// `prefix_router.routed` appears as `prefix_router_routed`. Per-endpoint stats
// carry the address in the name (`prefix_router.endpoint.<address>.picks`); the
// Envoy config in envoy/ turns it into an `endpoint` label with stats_tags.
// README "Stats reference" lists every name.
//
// Counters are added up inside the VM and flushed to Envoy on each tick
// (flush()), so the per-request path makes no stats host calls; Envoy's own
// stats flush runs at second granularity, so a tick's delay is invisible.
import * as host from "../abi/host";
import { MetricType } from "../abi/enums";

/** Pass-through reasons; each has its own counter. */
export namespace Pass {
  export const NotInference: i32 = 0;      // another method or path
  export const NoBody: i32 = 1;            // headers ended the stream
  export const BodyTooLarge: i32 = 2;      // over maxBodyBytes
  export const NotJson: i32 = 3;
  export const NoModel: i32 = 4;
  export const NoPrompt: i32 = 5;
  export const TokenPrompt: i32 = 6;
  export const Aborted: i32 = 7;           // the stream ended before the body did
  export const HeadersNotHeld: i32 = 8;    // Envoy forwarded the headers before the body came
  export const Trailers: i32 = 9;          // request trailers: the body is unreadable then
  export const BodyTimeout: i32 = 10;      // Envoy held the headers, but the client sent no body within parkTimeoutMs
  export const Count: i32 = 11;
}

const PASS_NAMES: string[] = [
  "not_inference", "no_body", "body_too_large", "not_json", "no_model",
  "no_prompt", "token_prompt", "aborted", "headers_not_held", "request_trailers",
  "body_timeout",
];

/** Counters by slot: a slot is an index into `ids` and `pending`. */
@final
class CounterSet {
  ids: u32[] = [];
  pending: u64[] = [];

  define(name: string): i32 {
    this.ids.push(host.defineMetric(MetricType.Counter, name));
    this.pending.push(0);
    return this.ids.length - 1;
  }

  // @ts-ignore: decorator
  @inline add(slot: i32, n: u64): void {
    unchecked(this.pending[slot] += n);
  }

  flush(): void {
    for (let i = 0; i < this.ids.length; i++) {
      const n = unchecked(this.pending[i]);
      if (n == 0) continue;
      host.incrementMetric(unchecked(this.ids[i]), <i64>n);
      unchecked(this.pending[i] = 0);
    }
  }
}

@final
export class RouterStats {
  private counters: CounterSet = new CounterSet();
  // Counter slots.
  requests: i32;
  routed: i32;
  rendezvous: i32;
  guardDiversions: i32;
  blocksMatched: i32;
  blocksTotal: i32;
  journalGaps: i32;
  journalConflicts: i32;
  journalAppendFailures: i32;
  staleVmsDropped: i32;
  serverQueries: i32;
  serverHits: i32;
  passthrough: StaticArray<i32> = new StaticArray<i32>(Pass.Count);
  endpointPicks: StaticArray<i32>;
  endpointBlocksMatched: StaticArray<i32>;
  endpointBlocksTotal: StaticArray<i32>;
  scrapeSuccesses: StaticArray<i32>;
  scrapeFailures: StaticArray<i32>;
  endpointServerQueries: StaticArray<i32>;
  endpointServerHits: StaticArray<i32>;
  // Gauge ids (set directly, from the tick).
  indexMemoryBytes: u32;
  endpointInFlight: StaticArray<u32>;
  endpointIndexBlocks: StaticArray<u32>;
  endpointIndexCapacity: StaticArray<u32>;
  endpointHealthy: StaticArray<u32>;
  endpointQueue: StaticArray<u32>;
  endpointRunning: StaticArray<u32>;
  endpointKvPermille: StaticArray<u32>;

  /**
   * `capacityBlocks` is each endpoint's index capacity before any server
   * reports its cache geometry.
   */
  constructor(addresses: string[], capacityBlocks: u64) {
    const n = addresses.length;
    this.endpointPicks = new StaticArray<i32>(n);
    this.endpointBlocksMatched = new StaticArray<i32>(n);
    this.endpointBlocksTotal = new StaticArray<i32>(n);
    this.scrapeSuccesses = new StaticArray<i32>(n);
    this.scrapeFailures = new StaticArray<i32>(n);
    this.endpointServerQueries = new StaticArray<i32>(n);
    this.endpointServerHits = new StaticArray<i32>(n);
    this.endpointInFlight = new StaticArray<u32>(n);
    this.endpointIndexBlocks = new StaticArray<u32>(n);
    this.endpointIndexCapacity = new StaticArray<u32>(n);
    this.endpointHealthy = new StaticArray<u32>(n);
    this.endpointQueue = new StaticArray<u32>(n);
    this.endpointRunning = new StaticArray<u32>(n);
    this.endpointKvPermille = new StaticArray<u32>(n);
    const c = this.counters;
    const p = "prefix_router.";
    this.requests = c.define(p + "requests");
    this.routed = c.define(p + "routed");
    this.rendezvous = c.define(p + "rendezvous_placements");
    this.guardDiversions = c.define(p + "guard_diversions");
    this.blocksMatched = c.define(p + "prefix_blocks_matched");
    this.blocksTotal = c.define(p + "prefix_blocks_total");
    this.journalGaps = c.define(p + "index.journal_gaps");
    this.journalConflicts = c.define(p + "index.journal_cas_conflicts");
    this.journalAppendFailures = c.define(p + "index.journal_append_failures");
    this.staleVmsDropped = c.define(p + "index.stale_vms_dropped");
    this.serverQueries = c.define(p + "server_prefix_cache_queries");
    this.serverHits = c.define(p + "server_prefix_cache_hits");
    for (let r = 0; r < Pass.Count; r++) unchecked(this.passthrough[r] = c.define(p + "passthrough." + PASS_NAMES[r]));
    this.indexMemoryBytes = host.defineMetric(MetricType.Gauge, p + "index.memory_bytes");
    for (let e = 0; e < n; e++) {
      const ep = p + "endpoint." + addresses[e] + ".";
      unchecked(this.endpointPicks[e] = c.define(ep + "picks"));
      unchecked(this.endpointBlocksMatched[e] = c.define(ep + "prefix_blocks_matched"));
      unchecked(this.endpointBlocksTotal[e] = c.define(ep + "prefix_blocks_total"));
      unchecked(this.scrapeSuccesses[e] = c.define(ep + "scrape_successes"));
      unchecked(this.scrapeFailures[e] = c.define(ep + "scrape_failures"));
      unchecked(this.endpointServerQueries[e] = c.define(ep + "server_prefix_cache_queries"));
      unchecked(this.endpointServerHits[e] = c.define(ep + "server_prefix_cache_hits"));
      unchecked(this.endpointInFlight[e] = host.defineMetric(MetricType.Gauge, ep + "in_flight"));
      unchecked(this.endpointIndexBlocks[e] = host.defineMetric(MetricType.Gauge, ep + "index_blocks"));
      unchecked(this.endpointIndexCapacity[e] = host.defineMetric(MetricType.Gauge, ep + "index_capacity_blocks"));
      unchecked(this.endpointHealthy[e] = host.defineMetric(MetricType.Gauge, ep + "healthy"));
      unchecked(this.endpointQueue[e] = host.defineMetric(MetricType.Gauge, ep + "queue"));
      unchecked(this.endpointRunning[e] = host.defineMetric(MetricType.Gauge, ep + "running"));
      unchecked(this.endpointKvPermille[e] = host.defineMetric(MetricType.Gauge, ep + "kv_cache_usage_permille"));
      // Only a scrape updates these two, so without metrics (or before the
      // first scrape) Envoy's gauges stayed 0: every endpoint read unhealthy,
      // with no capacity. Start them at the filter's own view: healthy, at the
      // configured capacity. Gauges are shared by all VMs, so a VM that starts
      // later (reload, new configuration) writes these once more; the next
      // snapshot it reads, within a tick, sets them back to the scraped values.
      host.recordMetric(unchecked(this.endpointHealthy[e]), 1);
      host.recordMetric(unchecked(this.endpointIndexCapacity[e]), capacityBlocks);
    }
  }

  // @ts-ignore: decorator
  @inline count(slot: i32): void { this.counters.add(slot, 1); }
  // @ts-ignore: decorator
  @inline add(slot: i32, n: u64): void { this.counters.add(slot, n); }
  /** Sets a gauge now. */
  // @ts-ignore: decorator
  @inline set(id: u32, value: u64): void { host.recordMetric(id, value); }

  pass(reason: i32): void {
    this.counters.add(unchecked(this.passthrough[reason]), 1);
  }

  /** Sends the counters accumulated since the last flush to Envoy. */
  flush(): void {
    this.counters.flush();
  }
}
