// The router's Envoy stats. Envoy names each `wasmcustom.<name>`; its Prometheus
// output strips that prefix and turns every character outside [a-zA-Z0-9_] into
// '_' (envoy source/server/admin/prometheus_stats.cc), so
// `prefix_router.routed` appears as `prefix_router_routed`. Per-endpoint stats
// carry the address in the name (`prefix_router.endpoint.<address>.picks`); the
// Envoy config in envoy/ turns it into an `endpoint` label with stats_tags.
// README "Stats reference" lists every name.
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
  export const Count: i32 = 10;
}

const PASS_NAMES: string[] = [
  "not_inference", "no_body", "body_too_large", "not_json", "no_model",
  "no_prompt", "token_prompt", "aborted", "headers_not_held", "request_trailers",
];

export function passReasonName(reason: i32): string {
  return PASS_NAMES[reason];
}

@final
export class RouterStats {
  requests: u32;
  routed: u32;
  rendezvous: u32;
  guardDiversions: u32;
  blocksMatched: u32;
  blocksTotal: u32;
  journalGaps: u32;
  journalConflicts: u32;
  journalAppendFailures: u32;
  staleVmsDropped: u32;
  indexMemoryBytes: u32;
  passthrough: StaticArray<u32> = new StaticArray<u32>(Pass.Count);
  endpointPicks: StaticArray<u32>;
  endpointInFlight: StaticArray<u32>;
  endpointIndexBlocks: StaticArray<u32>;
  endpointIndexCapacity: StaticArray<u32>;
  endpointBlocksMatched: StaticArray<u32>;
  endpointBlocksTotal: StaticArray<u32>;
  // From the metrics scrapes.
  serverQueries: u32;
  serverHits: u32;
  scrapeSuccesses: StaticArray<u32>;
  scrapeFailures: StaticArray<u32>;
  endpointHealthy: StaticArray<u32>;
  endpointQueue: StaticArray<u32>;
  endpointRunning: StaticArray<u32>;
  endpointKvPermille: StaticArray<u32>;
  endpointServerQueries: StaticArray<u32>;
  endpointServerHits: StaticArray<u32>;

  constructor(addresses: string[]) {
    const n = addresses.length;
    this.endpointPicks = new StaticArray<u32>(n);
    this.endpointInFlight = new StaticArray<u32>(n);
    this.endpointIndexBlocks = new StaticArray<u32>(n);
    this.endpointIndexCapacity = new StaticArray<u32>(n);
    this.endpointBlocksMatched = new StaticArray<u32>(n);
    this.endpointBlocksTotal = new StaticArray<u32>(n);
    this.scrapeSuccesses = new StaticArray<u32>(n);
    this.scrapeFailures = new StaticArray<u32>(n);
    this.endpointHealthy = new StaticArray<u32>(n);
    this.endpointQueue = new StaticArray<u32>(n);
    this.endpointRunning = new StaticArray<u32>(n);
    this.endpointKvPermille = new StaticArray<u32>(n);
    this.endpointServerQueries = new StaticArray<u32>(n);
    this.endpointServerHits = new StaticArray<u32>(n);
    const p = "prefix_router.";
    this.serverQueries = host.defineMetric(MetricType.Counter, p + "server_prefix_cache_queries");
    this.serverHits = host.defineMetric(MetricType.Counter, p + "server_prefix_cache_hits");
    this.requests = host.defineMetric(MetricType.Counter, p + "requests");
    this.routed = host.defineMetric(MetricType.Counter, p + "routed");
    this.rendezvous = host.defineMetric(MetricType.Counter, p + "rendezvous_placements");
    this.guardDiversions = host.defineMetric(MetricType.Counter, p + "guard_diversions");
    this.blocksMatched = host.defineMetric(MetricType.Counter, p + "prefix_blocks_matched");
    this.blocksTotal = host.defineMetric(MetricType.Counter, p + "prefix_blocks_total");
    this.journalGaps = host.defineMetric(MetricType.Counter, p + "index.journal_gaps");
    this.journalConflicts = host.defineMetric(MetricType.Counter, p + "index.journal_cas_conflicts");
    this.journalAppendFailures = host.defineMetric(MetricType.Counter, p + "index.journal_append_failures");
    this.staleVmsDropped = host.defineMetric(MetricType.Counter, p + "index.stale_vms_dropped");
    this.indexMemoryBytes = host.defineMetric(MetricType.Gauge, p + "index.memory_bytes");
    for (let r = 0; r < Pass.Count; r++) {
      unchecked(this.passthrough[r] = host.defineMetric(MetricType.Counter, p + "passthrough." + PASS_NAMES[r]));
    }
    for (let e = 0; e < n; e++) {
      const ep = p + "endpoint." + addresses[e] + ".";
      unchecked(this.endpointPicks[e] = host.defineMetric(MetricType.Counter, ep + "picks"));
      unchecked(this.endpointInFlight[e] = host.defineMetric(MetricType.Gauge, ep + "in_flight"));
      unchecked(this.endpointIndexBlocks[e] = host.defineMetric(MetricType.Gauge, ep + "index_blocks"));
      unchecked(this.endpointIndexCapacity[e] = host.defineMetric(MetricType.Gauge, ep + "index_capacity_blocks"));
      unchecked(this.endpointBlocksMatched[e] = host.defineMetric(MetricType.Counter, ep + "prefix_blocks_matched"));
      unchecked(this.endpointBlocksTotal[e] = host.defineMetric(MetricType.Counter, ep + "prefix_blocks_total"));
      unchecked(this.scrapeSuccesses[e] = host.defineMetric(MetricType.Counter, ep + "scrape_successes"));
      unchecked(this.scrapeFailures[e] = host.defineMetric(MetricType.Counter, ep + "scrape_failures"));
      unchecked(this.endpointHealthy[e] = host.defineMetric(MetricType.Gauge, ep + "healthy"));
      unchecked(this.endpointQueue[e] = host.defineMetric(MetricType.Gauge, ep + "queue"));
      unchecked(this.endpointRunning[e] = host.defineMetric(MetricType.Gauge, ep + "running"));
      unchecked(this.endpointKvPermille[e] = host.defineMetric(MetricType.Gauge, ep + "kv_cache_usage_permille"));
      unchecked(this.endpointServerQueries[e] = host.defineMetric(MetricType.Counter, ep + "server_prefix_cache_queries"));
      unchecked(this.endpointServerHits[e] = host.defineMetric(MetricType.Counter, ep + "server_prefix_cache_hits"));
    }
  }

  // @ts-ignore: decorator
  @inline count(id: u32): void { host.incrementMetric(id, 1); }
  // @ts-ignore: decorator
  @inline add(id: u32, n: u64): void { if (n > 0) host.incrementMetric(id, <i64>n); }
  // @ts-ignore: decorator
  @inline set(id: u32, value: u64): void { host.recordMetric(id, value); }

  pass(reason: i32): void {
    host.incrementMetric(unchecked(this.passthrough[reason]), 1);
  }
}
