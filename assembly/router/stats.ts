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
// Gauges are written when their value changes, not on every tick: with 64
// endpoints a tick set up to 6 gauges per endpoint, in every worker's VM,
// 40 times a second, mostly to the value they already had.
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
  export const NoEndpoint: i32 = 11;       // no member of the cluster may be picked (none known yet, or none healthy)
  export const Count: i32 = 12;
}

/** Kinds of sticky route (affinity.ts). */
export namespace Sticky {
  export const Response: i32 = 0;
  export const Session: i32 = 1;
}

const PASS_NAMES: string[] = [
  "not_inference", "no_body", "body_too_large", "not_json", "no_model",
  "no_prompt", "token_prompt", "aborted", "headers_not_held", "request_trailers",
  "body_timeout", "no_endpoint",
];

const DISCARDED: u32 = u32.MAX_VALUE;

/**
 * Counters by slot: a slot is an index into `ids` and `pending`. The hot
 * paths (a count per request, a flush of every counter per tick) read the
 * arrays' memory directly: an Array's accessors are calls, which the
 * incremental runtime's shadow stack kept from being inlined (the filter has
 * since moved to the minimal runtime, assembly/abi/collect.ts).
 */
@final
class CounterSet {
  ids: u32[] = [];
  pending: u64[] = [];
  private count: i32 = 0;

  define(name: string): i32 {
    return this.push(host.defineMetric(MetricType.Counter, name));
  }

  /** A slot that counts into nothing: what a free endpoint slot's stats point at. */
  discard(): i32 {
    return this.push(DISCARDED);
  }

  private push(id: u32): i32 {
    this.ids.push(id);
    this.pending.push(0);
    return this.count++;
  }

  // @ts-ignore: decorator
  @inline add(slot: i32, n: u64): void {
    const at = this.pending.dataStart + (<usize>slot << 3);
    store<u64>(at, load<u64>(at) + n);
  }

  flush(): void {
    const ids = this.ids.dataStart;
    const pending = this.pending.dataStart;
    for (let i = 0; i < this.count; i++) {
      const at = pending + (<usize>i << 3);
      const n = load<u64>(at);
      if (n == 0) continue;
      store<u64>(at, 0);
      const id = load<u32>(ids + (<usize>i << 2));
      if (id != DISCARDED) host.incrementMetric(id, <i64>n);
    }
  }
}

/**
 * Gauges by slot, each written to Envoy only when this VM's value differs
 * from the last it wrote. Every VM of the plugin writes the same gauges
 * (Envoy has one stat per name), so a gauge reads the last value any VM
 * wrote; a VM that keeps computing the same value does not write it again
 * over another VM's. All VMs derive them from the same shared state (the
 * journal, the scraped snapshot), so they write the same values, within a tick.
 */
@final
class GaugeSet {
  private ids: u32[] = [];
  private last: u64[] = [];
  private written: bool[] = [];

  define(name: string): i32 {
    return this.add(host.defineMetric(MetricType.Gauge, name));
  }

  /** A slot that writes nowhere: what a free endpoint slot's gauges point at (id 0 is never written). */
  discard(): i32 {
    return this.add(0);
  }

  private add(id: u32): i32 {
    this.ids.push(id);
    this.last.push(0);
    this.written.push(false);
    return this.ids.length - 1;
  }

  /** Raw reads and writes, for the reason CounterSet gives: every VM's tick sets every endpoint's gauges. */
  set(slot: i32, value: u64): void {
    const last = this.last.dataStart + (<usize>slot << 3);
    const written = this.written.dataStart + <usize>slot;
    if (load<bool>(written) && load<u64>(last) == value) return;
    store<u64>(last, value);
    store<bool>(written, true);
    host.recordMetric(load<u32>(this.ids.dataStart + (<usize>slot << 2)), value);
  }
}

/** One endpoint address's stats: counter and gauge slots. */
@final
export class EndpointStats {
  picks: i32 = 0;
  blocksMatched: i32 = 0;
  blocksTotal: i32 = 0;
  scrapeSuccesses: i32 = 0;
  scrapeFailures: i32 = 0;
  serverQueries: i32 = 0;
  serverHits: i32 = 0;
  restarts: i32 = 0;
  inFlight: i32 = 0;
  indexBlocks: i32 = 0;
  indexCapacity: i32 = 0;
  healthy: i32 = 0;
  queue: i32 = 0;
  running: i32 = 0;
  kvPermille: i32 = 0;
}

@final
export class RouterStats {
  private counters: CounterSet = new CounterSet();
  private gauges: GaugeSet = new GaugeSet();
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
  placementsAtOnce: i32;
  placementsByTick: i32;
  staleVmsDropped: i32;
  serverQueries: i32;
  serverHits: i32;
  serverRestarts: i32;
  discoveryPolls: i32;
  discoveryPollFailures: i32;
  peerAsks: i32;
  peerAskFailures: i32;
  peerDecisionsImported: i32;
  peerAnswers: i32;
  peerAsksRefused: i32;
  peerMemberPollFailures: i32;
  endpointsAdded: i32;
  endpointsRemoved: i32;
  endpointsOverLimit: i32;
  passthrough: StaticArray<i32> = new StaticArray<i32>(Pass.Count);
  /** Sticky routes by kind (Sticky.Response, Sticky.Session): followed, unknown, known but not eligible. */
  stickyHits: StaticArray<i32> = new StaticArray<i32>(2);
  stickyMisses: StaticArray<i32> = new StaticArray<i32>(2);
  stickyDiverted: StaticArray<i32> = new StaticArray<i32>(2);
  responsesLearned: i32;
  // Gauge slots.
  indexMemoryBytes: i32;
  members: i32;
  pickable: i32;
  /** LoadView.visibleShare in thousandths: the share of the servers' requests this proxy has in flight. */
  visibleSharePermille: i32;
  /** Per endpoint slot: the stats of the address it holds. */
  private slots: StaticArray<EndpointStats>;
  /**
   * Stats by address, kept when an endpoint leaves: Envoy keeps a defined
   * stat for the plugin's life (there is no call to undefine one), so a
   * returning address (a pod rescheduled on the same IP, a host flapping
   * health) reuses its ids instead of defining them again.
   */
  private byAddress: Map<string, EndpointStats> = new Map<string, EndpointStats>();
  /** Slot stats of free slots point here; it is never flushed to any name. */
  private readonly unused: EndpointStats = new EndpointStats();

  constructor(capacity: i32) {
    this.slots = new StaticArray<EndpointStats>(capacity);
    for (let e = 0; e < capacity; e++) unchecked(this.slots[e] = this.unused);
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
    this.placementsAtOnce = c.define(p + "index.placements_written_at_once");
    this.placementsByTick = c.define(p + "index.placements_written_by_tick");
    this.staleVmsDropped = c.define(p + "index.stale_vms_dropped");
    this.serverQueries = c.define(p + "server_prefix_cache_queries");
    this.serverHits = c.define(p + "server_prefix_cache_hits");
    this.serverRestarts = c.define(p + "server_restarts");
    this.discoveryPolls = c.define(p + "discovery.polls");
    this.discoveryPollFailures = c.define(p + "discovery.poll_failures");
    this.peerAsks = c.define(p + "peers.asks_answered");
    this.peerAskFailures = c.define(p + "peers.ask_failures");
    this.peerDecisionsImported = c.define(p + "peers.decisions_imported");
    this.peerAnswers = c.define(p + "peers.answers_sent");
    this.peerAsksRefused = c.define(p + "peers.asks_refused");
    this.peerMemberPollFailures = c.define(p + "peers.member_poll_failures");
    this.endpointsAdded = c.define(p + "discovery.endpoints_added");
    this.endpointsRemoved = c.define(p + "discovery.endpoints_removed");
    this.endpointsOverLimit = c.define(p + "discovery.endpoints_over_limit");
    for (let r = 0; r < Pass.Count; r++) unchecked(this.passthrough[r] = c.define(p + "passthrough." + PASS_NAMES[r]));
    for (let k = 0; k < 2; k++) {
      const a = p + "affinity." + (k == Sticky.Response ? "response" : "session");
      unchecked(this.stickyHits[k] = c.define(a + "_hits"));
      unchecked(this.stickyMisses[k] = c.define(a + "_misses"));
      unchecked(this.stickyDiverted[k] = c.define(a + "_diverted"));
    }
    this.responsesLearned = c.define(p + "affinity.responses_learned");
    const g = this.gauges;
    this.indexMemoryBytes = g.define(p + "index.memory_bytes");
    this.members = g.define(p + "endpoints.members");
    this.pickable = g.define(p + "endpoints.pickable");
    this.visibleSharePermille = g.define(p + "visible_share_permille");
    // Per-endpoint stats are defined when an endpoint arrives (assign); until
    // then a slot's counters count into nothing and its gauges are never set.
    const nowhere = c.discard();
    const u = this.unused;
    u.picks = u.blocksMatched = u.blocksTotal = u.scrapeSuccesses = u.scrapeFailures = nowhere;
    u.serverQueries = u.serverHits = u.restarts = nowhere;
    const unset = g.discard();
    u.inFlight = u.indexBlocks = u.indexCapacity = u.healthy = u.queue = u.running = u.kvPermille = unset;
  }

  /** The stats of the endpoint in slot e. */
  // @ts-ignore: decorator
  @inline of(e: i32): EndpointStats { return unchecked(this.slots[e]); }

  /**
   * Slot e now holds `address`: its stats (defined on the address's first
   * arrival) start at the filter's own view, healthy with `capacityBlocks` of
   * index. Only a scrape updates those two, so without metrics (or before the
   * first scrape) Envoy's gauges stayed 0: every endpoint read unhealthy, with
   * no capacity. Gauges are shared by all VMs, so a VM that starts later
   * (reload, new configuration) writes these once more; the next snapshot it
   * reads, within a tick, sets them back to the scraped values.
   */
  assign(e: i32, address: string, capacityBlocks: u64): void {
    let es: EndpointStats;
    if (this.byAddress.has(address)) {
      es = this.byAddress.get(address);
    } else {
      es = new EndpointStats();
      const c = this.counters;
      const ep = "prefix_router.endpoint." + address + ".";
      es.picks = c.define(ep + "picks");
      es.blocksMatched = c.define(ep + "prefix_blocks_matched");
      es.blocksTotal = c.define(ep + "prefix_blocks_total");
      es.scrapeSuccesses = c.define(ep + "scrape_successes");
      es.scrapeFailures = c.define(ep + "scrape_failures");
      es.serverQueries = c.define(ep + "server_prefix_cache_queries");
      es.serverHits = c.define(ep + "server_prefix_cache_hits");
      es.restarts = c.define(ep + "server_restarts");
      const g = this.gauges;
      es.inFlight = g.define(ep + "in_flight");
      es.indexBlocks = g.define(ep + "index_blocks");
      es.indexCapacity = g.define(ep + "index_capacity_blocks");
      es.healthy = g.define(ep + "healthy");
      es.queue = g.define(ep + "queue");
      es.running = g.define(ep + "running");
      es.kvPermille = g.define(ep + "kv_cache_usage_permille");
      this.byAddress.set(address, es);
    }
    unchecked(this.slots[e] = es);
    this.set(es.healthy, 1);
    this.set(es.indexCapacity, capacityBlocks);
  }

  /** Slot e's endpoint left the cluster: its gauges read empty and unhealthy until it returns. */
  vacate(e: i32): void {
    const es = unchecked(this.slots[e]);
    if (es === this.unused) return;
    this.set(es.inFlight, 0);
    this.set(es.indexBlocks, 0);
    this.set(es.healthy, 0);
    this.set(es.queue, 0);
    this.set(es.running, 0);
    this.set(es.kvPermille, 0);
    unchecked(this.slots[e] = this.unused);
  }

  // @ts-ignore: decorator
  @inline count(slot: i32): void { this.counters.add(slot, 1); }
  // @ts-ignore: decorator
  @inline add(slot: i32, n: u64): void { this.counters.add(slot, n); }
  /** Sets a gauge (written to Envoy now if it changed). */
  // @ts-ignore: decorator
  @inline set(slot: i32, value: u64): void { this.gauges.set(slot, value); }

  pass(reason: i32): void {
    this.counters.add(unchecked(this.passthrough[reason]), 1);
  }

  /** Sends the counters accumulated since the last flush to Envoy. */
  flush(): void {
    this.counters.flush();
  }
}
