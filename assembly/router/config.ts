// The plugin configuration: JSON in Envoy's PluginConfig.configuration, parsed
// and validated once per proxy_on_configure. Any error makes on_configure
// return false after one log line naming the field and the reason, so Envoy
// rejects the configuration (NACK, or refuses to start) instead of running a
// filter that half-works. Unknown fields are errors: a typo must not silently
// fall back to a default. See README "Configuration reference" for each field.
import { ByteSink } from "./bytes";
import { JsonReader, JsonKind } from "./json";
import { addressError, canonicalAddress } from "./address";
import { Dialect, dialectNamed, explicitDialect, MetricNames } from "../metrics/dialect";
import { MAX_INDEX_ENTRIES, HEARTBEAT_MS, MAX_ENDPOINTS, MAX_PEERS } from "./limits";

/** Scraping the model servers' Prometheus pages (absent: in-flight counts only). */
export class MetricsConfig {
  /** Envoy cluster the scrapes go to (an ORIGINAL_DST cluster serves every endpoint). */
  cluster: string = "";
  path: string = "/metrics";
  intervalMs: i32 = 200;
  timeoutMs: i32 = 1000;
  dialectName: string = "vllm";
  dialect: Dialect | null = null;
  /** Consecutive failed scrapes that mark an endpoint unhealthy. */
  unhealthyAfter: i32 = 3;
  /** Metrics older than this many intervals are stale: scoring ignores them. */
  staleAfterIntervals: i32 = 5;
}

/**
 * Following the routed cluster's membership from Envoy's admin API instead of
 * a static list (discovery.ts; README "Endpoint discovery").
 */
export class DiscoveryConfig {
  /** The Envoy cluster the filter routes over: override_host's cluster. */
  cluster: string = "";
  /** The cluster the filter's GET /clusters callouts go to (the generated admin guard). */
  adminCluster: string = "";
  intervalMs: i32 = 1000;
  timeoutMs: i32 = 1000;
  /** Endpoint slots: members beyond this many are not routed to (counted, logged). */
  maxEndpoints: i32 = 256;
  /** The port of each member's metrics page; 0: the port it serves on. */
  metricsPort: i32 = 0;
}

/**
 * Other Envoy replicas in front of the same servers, whose routing decisions
 * this filter takes into its index (peers.ts; README "Several Envoy replicas").
 */
export class PeersConfig {
  /** The replicas' listener addresses, "ip:port"; this Envoy's own may be among them (it is recognised and skipped). */
  addresses: string[] = [];
  /**
   * Instead of `addresses`: the replicas are the hosts of this Envoy cluster
   * (e.g. STRICT_DNS over a Kubernetes headless Service), followed through
   * Envoy's admin API as endpoint discovery follows the model cluster
   * (maxEndpoints: MAX_PEERS; metricsPort unused).
   */
  members: DiscoveryConfig | null = null;
  /** The cluster the asks go through: an ORIGINAL_DST cluster, as metrics.cluster. */
  cluster: string = "";
  /** The secret every replica shares: an ask without it is not answered. */
  token: string = "";
  /**
   * Instead of `token`: the name of the VM's environment variable that holds
   * it (Envoy: vm_config.environment_variables), so that the secret can come
   * from a Kubernetes Secret rather than sit in the configuration's text. The
   * root reads it at configuration (root.ts) and fills `token`.
   */
  tokenEnv: string = "";
  /** The path asks are sent to; never one of the inference paths. */
  path: string = "/.well-known/prefix-router/decisions";
  intervalMs: i32 = 100;
  timeoutMs: i32 = 1000;
}

/** A peer ask carries the shared token in this header (compared in constant time). */
export const PEER_TOKEN_HEADER = "x-prefix-router-peer-token";
/** The shortest token accepted: 16 characters of a random secret are beyond guessing. */
const MIN_PEER_TOKEN: i32 = 16;

/** What is wrong with a peers' token (it travels as a header value), or null. The message never quotes it. */
export function peerTokenError(v: string): string | null {
  if (v.length >= MIN_PEER_TOKEN && v.length <= 256 && isToken(v)) return null;
  return "must be " + MIN_PEER_TOKEN.toString() + " to 256 letters, digits or -._~!#$%&'*+^`| (a random secret)";
}

/** A portable environment variable name (POSIX.1-2017, 8.1), at most 128 characters. */
function isEnvironmentName(v: string): bool {
  if (v.length == 0 || v.length > 128) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    const letter = (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F;
    if (!letter && !(i > 0 && c >= 0x30 && c <= 0x39)) return false;
  }
  return true;
}

export class EndpointConfig {
  constructor(public address: string, public metricsAddress: string) {}
}

export class Weights {
  prefix: f64 = 3;
  queue: f64 = 3;
  kvCache: f64 = 2;
  inFlight: f64 = 2;
}

export class Config {
  endpoints: EndpointConfig[] = [];
  destinationHeader: string = "x-gateway-destination-endpoint";
  paths: string[] = ["/v1/completions", "/v1/chat/completions", "/v1/responses", "/v1/messages"];
  hashBlockSize: i32 = 64;
  /** Blocks hashed, matched and counted as work at most (256 KB of prompt). Past
   * it a prompt looks cheaper than it is to the scorer: 1024 under-counted the
   * trace's long prompts on the defaults grid (reports/eval/grid.md). */
  maxPrefixBlocks: i32 = 4096;
  /** The index records every indexStride-th chained block hash (a match on one
   * implies all blocks before it), so index work, memory and journal traffic
   * shrink by this factor while matches stay precise to indexStride blocks.
   * 16 blocks of 64 characters are about 256 tokens, finer than the
   * scorer's match band (50 ms at 20,000 tokens/s: 1,000 tokens); stride 4 routed no
   * better on the defaults grid at four times the index work
   * (reports/eval/grid.md). */
  indexStride: i32 = 16;
  lruCapacityPerServer: i32 = 31250;
  /** False when lruCapacityPerServer was not given: servers' cache geometry may size it. */
  lruCapacityExplicit: bool = false;
  maxIndexBlocks: i32 = 1 << 22;
  maxBodyBytes: i32 = 1 << 20;
  weights: Weights = new Weights();
  /** Bounded-load guard: an endpoint may take a request only while its load stays
   * within max(loadFactor × mean, mean + slack) (mean including this request). */
  guardLoadFactor: f64 = 1.5;
  guardSlack: f64 = 16;
  /** Rendezvous placement considers endpoints whose load score is within this
   * fraction of the load weights' sum of the best one (0: least loaded only). */
  coldBand: f64 = 0.02;
  /** A match shorter than this many blocks counts as no match (rendezvous placement). */
  minMatchBlocks: i32 = 1;
  /** In-flight requests that cost the full in-flight weight (the term keeps
   * falling past it, so more in flight always scores lower). */
  inFlightSaturation: f64 = 16;
  /** Weighted scoring: queued requests that cost the full queue weight (likewise
   * not capped), and how much longer than the shortest eligible queue makes an
   * endpoint saturated. */
  queueSaturation: f64 = 30;
  /** KV-cache usage at which the guard counts an endpoint as saturated; 1 = never
   * (the default: a saturation cut-off on metrics up to an interval old herds
   * requests onto the few endpoints below it, see reports/eval). */
  kvSaturation: f64 = 1;
  journalSlots: i32 = 4096;
  /** The housekeeping period. Short, because a tick writes every placement the
   * other VMs made since the last one into this VM's index, and the worker's
   * requests wait behind it: with 8 workers in real Envoy, 100 ms ticks added
   * 2.0-4.2 ms to p99 at a moderate rate, 25 ms ticks 0.8-1.4 (npm run
   * bench:envoy -- --router-config '{"tickMs":…}', README "Decision speed"). */
  tickMs: i32 = 25;
  parkTimeoutMs: i32 = 500;
  metrics: MetricsConfig | null = null;
  discovery: DiscoveryConfig | null = null;
  peers: PeersConfig | null = null;
  /** Requests with the same value of this header go to the same endpoint while it is eligible ("": no sessions). */
  sessionHeader: string = "";
  /** Sticky mappings (Responses ids, sessions) kept, shared by all VMs; the oldest fall out first (affinity.ts). */
  affinityEntries: i32 = 16384;
  /** Endpoints listed after the chosen one in the destination header, best
   * first: override_host moves to the next on each retry (README "Deploying"). */
  fallbackHosts: i32 = 2;
  /** How endpoints are scored: by estimated time to first token from the work
   * each holds (work.ts; "work") or by the weighted terms ("weights"). */
  workScoring: bool = true;
  /** Prefill rate assumed for every server (scaled by its measured relative speed when measuredSpeed is set). */
  prefillTokensPerSecond: f64 = 20000;
  /** Work scoring: scale each server's rate by its prefill speed relative to the others, as measured from its
   * counters ("prefillSpeed": "measured"). Off by default: in a fleet of equal servers the measured ratios
   * are noise, and acting on them cost 55% on mean TTFT (scripts/eval/README.md, "Work scoring"). */
  measuredSpeed: bool = false;

  /** Prefill-token equivalents one context token in flight costs (decode steps
   * read the whole context and share the batch with the next prefill). */
  decodeWeight: f64 = 0.1;
  /** Work scoring: how many times the prefill a cached prefix saves it counts once no eligible endpoint is free
   * (scaled down to once while one is; scorer.ts pickByWork). */
  affinity: f64 = 16;
  /** Work scoring: a request no endpoint holds is placed by rendezvous hashing
   * among endpoints whose estimated TTFT is within this many ms of the best. */
  coldBandMs: f64 = 50;
  /** Work scoring: likewise for a request some endpoint holds part of (0: the lowest estimate wins), so
   * that independent Envoy replicas, whose own in-flight work differs, agree on where a prefix lives. */
  matchBandMs: f64 = 50;
  /** Work scoring: how many Envoy replicas share the servers; 0 ("auto"): judged from the scrapes (LoadView.replicas). */
  replicas: i32 = 0;

  /** Prompt bytes hashed at most. */
  promptCap(): usize { return <usize>this.hashBlockSize * <usize>this.maxPrefixBlocks; }

  /** Endpoint slots: one per listed endpoint, or discovery's maxEndpoints. */
  slotCount(): i32 {
    const d = this.discovery;
    return d !== null ? d.maxEndpoints : this.endpoints.length;
  }

  /** Index entries a request can produce. */
  indexEntriesPerRequest(): i32 { return this.maxPrefixBlocks / this.indexStride; }

  /**
   * Index entries the table can hold at most, over all endpoints: with an
   * explicit lruCapacityPerServer, that times the endpoints (maxIndexBlocks
   * bounding it); otherwise servers' cache geometry may size each endpoint up
   * to maxIndexBlocks / endpoints (router.ts), so maxIndexBlocks itself.
   */
  maxIndexEntries(): u64 {
    const n = <u64>this.slotCount();
    const bound = <u64>this.maxIndexBlocks;
    const blocks = this.lruCapacityExplicit ? min<u64>(<u64>this.lruCapacityPerServer * n, bound) : bound;
    return blocks / <u64>this.indexStride;
  }

  /** Per-endpoint index capacity in blocks, after the global bound, with `members` endpoints. */
  capacityFor(members: i32): u32 {
    const n = <u64>max(members, 1);
    const wanted = <u64>this.lruCapacityPerServer;
    const total = <u64>this.maxIndexBlocks;
    return <u32>(wanted * n > total ? total / n : wanted);
  }

  /** Per-endpoint index capacity in blocks with the static list. */
  effectiveCapacity(): u32 {
    return this.capacityFor(this.endpoints.length);
  }
}

/** Parse result: a Config, or the error line to log. */
export class ConfigResult {
  constructor(public config: Config | null, public error: string) {}
}

const CLOSE_OBJECT: u32 = 0x7D;
const CLOSE_ARRAY: u32 = 0x5D;

class Reader {
  readonly r: JsonReader = new JsonReader();
  readonly text: ByteSink = new ByteSink(64 * 1024);
  error: string = "";

  fail(field: string, reason: string): bool {
    if (this.error.length == 0) this.error = field + ": " + reason;
    return false;
  }

  ok(): bool { return this.error.length == 0 && !this.r.failed; }

  key(): string {
    this.text.reset();
    this.r.decodeStringInto(this.text);
    return this.text.toString();
  }

  string(field: string): string | null {
    if (this.r.peekKind() != JsonKind.String) {
      this.fail(field, "expected a string");
      return null;
    }
    // A string cut short (the text ends inside it) leaves a stale span behind:
    // decoding it read up to 64 KiB past the input, and a dialect name made of
    // those bytes went into the error log.
    if (!this.r.readString()) return null;
    this.text.reset();
    this.r.decodeStringInto(this.text);
    if (this.text.dropped > 0) {
      this.fail(field, "string too long");
      return null;
    }
    return this.text.toString();
  }

  number(field: string, min: f64, max: f64): f64 {
    if (this.r.peekKind() != JsonKind.Number) {
      this.fail(field, "expected a number");
      return NaN;
    }
    // "-" or "1." fail here with a stale span; the reader's failure reports the error.
    if (!this.r.readNumber()) return NaN;
    const value = F64.parseFloat(String.UTF8.decodeUnsafe(this.r.strStart, this.r.strEnd - this.r.strStart));
    if (!isFinite(value) || value < min || value > max) {
      this.fail(field, "must be between " + min.toString() + " and " + max.toString());
      return NaN;
    }
    return value;
  }

  integer(field: string, min: i32, max: i32): i32 {
    const value = this.number(field, <f64>min, <f64>max);
    if (isNaN(value)) return 0;
    if (value != Math.floor(value)) {
      this.fail(field, "must be a whole number");
      return 0;
    }
    return <i32>value;
  }

  beginObject(field: string): bool {
    if (this.r.peekKind() != JsonKind.Object) return this.fail(field, "expected an object");
    return this.r.beginObject();
  }

  beginArray(field: string): bool {
    if (this.r.peekKind() != JsonKind.Array) return this.fail(field, "expected an array");
    return this.r.beginArray();
  }
}

export function parseConfig(ptr: usize, len: usize): ConfigResult {
  const rd = new Reader();
  const result = parseWith(rd, ptr, len);
  // The scratch sink is raw heap memory the collector does not see: without
  // this every configuration (each xDS update) leaked 64 KiB.
  rd.text.free();
  return result;
}

function parseWith(rd: Reader, ptr: usize, len: usize): ConfigResult {
  const c = new Config();
  rd.r.reset(ptr, len);
  if (len == 0) return new ConfigResult(null, "configuration: empty; at least {\"endpoints\":[{\"address\":\"ip:port\"}]} is required");
  if (!rd.beginObject("configuration")) return new ConfigResult(null, rd.error);
  let first = true;
  while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
    first = false;
    if (!rd.r.readKey()) break;
    const key = rd.key();
    if (key == "endpoints") readEndpoints(rd, c);
    else if (key == "destinationHeader") {
      const v = rd.string(key);
      if (v !== null) {
        const lower = v.toLowerCase();
        if (!isToken(lower)) rd.fail(key, "must be a header name");
        else c.destinationHeader = lower;
      }
    } else if (key == "sessionHeader") {
      const v = rd.string(key);
      if (v !== null) {
        const lower = v.toLowerCase();
        if (!isToken(lower) || lower.startsWith(":")) rd.fail(key, "must be a header name");
        else c.sessionHeader = lower;
      }
    } else if (key == "affinityEntries") c.affinityEntries = rd.integer(key, 16, 1 << 20);
    else if (key == "paths") readPaths(rd, c);
    else if (key == "hashBlockSize") c.hashBlockSize = rd.integer(key, 8, 4096);
    else if (key == "maxPrefixBlocks") c.maxPrefixBlocks = rd.integer(key, 1, 4096);
    else if (key == "indexStride") c.indexStride = rd.integer(key, 1, 64);
    else if (key == "lruCapacityPerServer") {
      c.lruCapacityPerServer = rd.integer(key, 1, 100000000);
      c.lruCapacityExplicit = true;
    } else if (key == "maxIndexBlocks") c.maxIndexBlocks = rd.integer(key, 1024, 1 << 26);
    else if (key == "maxBodyBytes") c.maxBodyBytes = rd.integer(key, 1024, 64 << 20);
    else if (key == "weights") readWeights(rd, c.weights);
    else if (key == "guard") readGuard(rd, c);
    else if (key == "minMatchBlocks") c.minMatchBlocks = rd.integer(key, 1, 4096);
    else if (key == "coldBand") c.coldBand = rd.number(key, 0, 1);
    else if (key == "inFlightSaturation") c.inFlightSaturation = rd.number(key, 1, 1e6);
    else if (key == "queueSaturation") c.queueSaturation = rd.number(key, 1, 1e6);
    else if (key == "kvSaturation") c.kvSaturation = rd.number(key, 0.01, 1);
    else if (key == "journalSlots") c.journalSlots = rd.integer(key, 16, 1 << 16);
    else if (key == "tickMs") c.tickMs = rd.integer(key, 10, 60000);
    else if (key == "parkTimeoutMs") c.parkTimeoutMs = rd.integer(key, 10, 60000);
    else if (key == "metrics") c.metrics = readMetrics(rd);
    else if (key == "discovery") c.discovery = readDiscovery(rd, "discovery", 0);
    else if (key == "peers") c.peers = readPeers(rd);
    else if (key == "fallbackHosts") c.fallbackHosts = rd.integer(key, 0, 3);
    else if (key == "scoring") c.workScoring = readEither(rd, key, "work", "weights", c.workScoring ? 0 : 1) == 0;
    else if (key == "prefillSpeed") c.measuredSpeed = readEither(rd, key, "equal", "measured", c.measuredSpeed ? 1 : 0) == 1;
    else if (key == "prefillTokensPerSecond") c.prefillTokensPerSecond = rd.number(key, 100, 1e8);
    else if (key == "affinity") c.affinity = rd.number(key, 1, 100);
    else if (key == "decodeWeight") c.decodeWeight = rd.number(key, 0, 1);
    else if (key == "coldBandMs") c.coldBandMs = rd.number(key, 0, 60000);
    else if (key == "matchBandMs") c.matchBandMs = rd.number(key, 0, 60000);
    else if (key == "replicas") c.replicas = readReplicas(rd);
    else rd.fail(key, "unknown field");
  }
  if (rd.error.length == 0 && (rd.r.failed || !rd.r.atEnd())) rd.fail("configuration", "not valid JSON");
  if (rd.error.length == 0 && c.discovery !== null && c.endpoints.length > 0) {
    rd.fail("discovery", "give either endpoints or discovery, not both");
  }
  if (rd.error.length == 0 && c.discovery === null && c.endpoints.length == 0) {
    rd.fail("endpoints", "at least one endpoint is required (or discovery, to follow a cluster)");
  }
  if (rd.error.length == 0 && c.paths.length == 0) rd.fail("paths", "at least one path is required");
  if (rd.error.length == 0 && c.sessionHeader.length > 0 && c.sessionHeader == c.destinationHeader) {
    rd.fail("sessionHeader", "must not be the destination header");
  }
  if (rd.error.length == 0 && c.peers !== null && c.paths.includes(c.peers!.path)) {
    rd.fail("peers.path", "must not be one of the inference paths");
  }
  if (rd.error.length == 0 && c.indexStride > c.maxPrefixBlocks) rd.fail("indexStride", "must not exceed maxPrefixBlocks");
  if (rd.error.length == 0) checkTimings(rd, c);
  if (rd.error.length == 0 && c.maxIndexEntries() > MAX_INDEX_ENTRIES) {
    rd.fail("maxIndexBlocks", "at most " + (MAX_INDEX_ENTRIES * <u64>c.indexStride).toString() + " with indexStride " +
      c.indexStride.toString() + " (" + MAX_INDEX_ENTRIES.toString() + " index entries): a configuration update runs two " +
      "indexes in one VM, whose memory V8 caps at 1 GiB");
  }
  if (rd.error.length > 0) return new ConfigResult(null, rd.error);
  return new ConfigResult(c, "");
}

/**
 * Every timer runs on the root's tick, so the periods that depend on it are
 * checked together: a VM writes a heartbeat at least every HEARTBEAT_MS (from
 * the tick) and is presumed gone after 5 × that, so the tick must come at
 * least once per heartbeat; a scrape or a discovery poll is sent from the
 * tick, so an interval shorter than it would silently become the tick.
 */
function checkTimings(rd: Reader, c: Config): void {
  const tick = c.tickMs;
  if (tick > HEARTBEAT_MS) {
    rd.fail("tickMs", "at most " + HEARTBEAT_MS.toString() + ": each VM tells the others it is alive from its tick, and one silent for " +
      (5 * HEARTBEAT_MS).toString() + " ms is presumed gone");
    return;
  }
  const m = c.metrics;
  if (m !== null && m.intervalMs < tick) {
    rd.fail("metrics.intervalMs", "at least tickMs (" + tick.toString() + "): scrapes are sent from the tick");
    return;
  }
  const d = c.discovery;
  if (d !== null && d.intervalMs < tick) {
    rd.fail("discovery.intervalMs", "at least tickMs (" + tick.toString() + "): polls are sent from the tick");
    return;
  }
  const p = c.peers;
  if (p !== null && p.intervalMs < tick) {
    rd.fail("peers.intervalMs", "at least tickMs (" + tick.toString() + "): asks are sent from the tick");
    return;
  }
  const pm = p !== null ? p.members : null;
  if (pm !== null && pm.intervalMs < tick) {
    rd.fail("peers.members.intervalMs", "at least tickMs (" + tick.toString() + "): polls are sent from the tick");
  }
}

/** A field that names one of two words: 0 for `a`, 1 for `b`; `current` when it names neither (rd has failed). */
function readEither(rd: Reader, field: string, a: string, b: string, current: i32): i32 {
  const v = rd.string(field);
  if (v === null) return current;
  if (v == a) return 0;
  if (v == b) return 1;
  rd.fail(field, "\"" + v + "\" is not " + a + " or " + b);
  return current;
}

/**
 * An HTTP header name: a token of RFC 9110 §5.6.2, which is what Envoy's
 * header maps accept. Anything else (NUL, CR/LF, ':', spaces, non-ASCII)
 * could make the filter set a header Envoy rejects or a codec mangles.
 */
function isToken(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A)) continue;
    switch (c) {
      case 0x21: case 0x23: case 0x24: case 0x25: case 0x26: case 0x27: case 0x2A: case 0x2B:
      case 0x2D: case 0x2E: case 0x5E: case 0x5F: case 0x60: case 0x7C: case 0x7E: continue;
      default: return false;
    }
  }
  return true;
}

/** A path sent as a callout's :path must not carry spaces, controls or DEL. */
function hasControlOrSpace(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c == 0x7F) return true;
  }
  return false;
}

function readEndpoints(rd: Reader, c: Config): void {
  if (!rd.beginArray("endpoints")) return;
  // Index by address: comparing each endpoint with every earlier one took
  // ~30 s per VM at the 65534-endpoint limit.
  const seen = new Map<string, i32>();
  for (let j = 0; j < c.endpoints.length; j++) seen.set(c.endpoints[j].address, j);
  let i = 0;
  while (rd.ok() && rd.r.more(CLOSE_ARRAY, i == 0)) {
    const field = "endpoints[" + i.toString() + "]";
    if (i >= MAX_ENDPOINTS) {
      rd.fail("endpoints", "at most " + MAX_ENDPOINTS.toString() + " endpoints");
      return;
    }
    if (!rd.beginObject(field)) return;
    let address: string | null = null;
    let metricsAddress: string | null = null;
    let first = true;
    while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
      first = false;
      if (!rd.r.readKey()) return;
      const key = rd.key();
      if (key == "address") address = rd.string(field + ".address");
      else if (key == "metricsAddress") metricsAddress = rd.string(field + ".metricsAddress");
      else rd.fail(field + "." + key, "unknown field");
    }
    if (!rd.ok()) return;
    if (address === null) {
      rd.fail(field + ".address", "required");
      return;
    }
    const bad = addressError(address);
    if (bad !== null) {
      rd.fail(field + ".address", "\"" + address + "\": " + bad);
      return;
    }
    if (metricsAddress !== null) {
      const badMetrics = addressError(metricsAddress);
      if (badMetrics !== null) {
        rd.fail(field + ".metricsAddress", "\"" + metricsAddress + "\": " + badMetrics);
        return;
      }
      metricsAddress = canonicalAddress(metricsAddress);
    }
    // Envoy's text for the host, so the header matches it (address.ts); and
    // [::1]:80 and [0::1]:80 are then the duplicates they are.
    address = canonicalAddress(address);
    if (seen.has(address)) {
      rd.fail(field + ".address", "duplicate of endpoints[" + seen.get(address).toString() + "]");
      return;
    }
    seen.set(address, c.endpoints.length);
    c.endpoints.push(new EndpointConfig(address, metricsAddress !== null ? metricsAddress : address));
    i++;
  }
}

function readPaths(rd: Reader, c: Config): void {
  if (!rd.beginArray("paths")) return;
  const paths: string[] = [];
  let i = 0;
  while (rd.ok() && rd.r.more(CLOSE_ARRAY, i == 0)) {
    const field = "paths[" + i.toString() + "]";
    const p = rd.string(field);
    if (p === null) return;
    if (!p.startsWith("/") || p.indexOf("?") >= 0) {
      rd.fail(field, "must be a path starting with / and without a query");
      return;
    }
    paths.push(p);
    i++;
  }
  c.paths = paths;
}

function readWeights(rd: Reader, w: Weights): void {
  if (!rd.beginObject("weights")) return;
  let first = true;
  while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
    first = false;
    if (!rd.r.readKey()) return;
    const key = rd.key();
    const field = "weights." + key;
    if (key == "prefix") w.prefix = rd.number(field, 0, 1000);
    else if (key == "queue") w.queue = rd.number(field, 0, 1000);
    else if (key == "kvCache") w.kvCache = rd.number(field, 0, 1000);
    else if (key == "inFlight") w.inFlight = rd.number(field, 0, 1000);
    else rd.fail(field, "unknown field");
  }
  if (rd.ok() && w.prefix + w.queue + w.kvCache + w.inFlight <= 0) rd.fail("weights", "at least one weight must be positive");
}

function readGuard(rd: Reader, c: Config): void {
  if (!rd.beginObject("guard")) return;
  let first = true;
  while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
    first = false;
    if (!rd.r.readKey()) return;
    const key = rd.key();
    const field = "guard." + key;
    if (key == "loadFactor") c.guardLoadFactor = rd.number(field, 1, 100);
    else if (key == "slack") c.guardSlack = rd.number(field, 0, 1e6);
    else rd.fail(field, "unknown field");
  }
}

/** An Envoy cluster name: non-empty, printable ASCII without spaces (it goes into a callout and a regex). */
function readClusterName(rd: Reader, field: string): string {
  const v = rd.string(field);
  if (v === null) return "";
  if (v.length == 0 || v.length > 255) {
    rd.fail(field, "must be 1 to 255 characters");
    return "";
  }
  for (let i = 0; i < v.length; i++) {
    const ch = v.charCodeAt(i);
    if (ch <= 0x20 || ch >= 0x7F) {
      rd.fail(field, "must be printable ASCII without spaces");
      return "";
    }
  }
  return v;
}

/**
 * A cluster followed through the admin API: `discovery`, or with `maxHosts`
 * (> 0) the replicas' `peers.members`, whose host limit is fixed and whose
 * metrics port means nothing.
 */
function readDiscovery(rd: Reader, name: string, maxHosts: i32): DiscoveryConfig | null {
  const d = new DiscoveryConfig();
  if (maxHosts > 0) d.maxEndpoints = maxHosts;
  if (!rd.beginObject(name)) return null;
  let first = true;
  while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
    first = false;
    if (!rd.r.readKey()) return null;
    const key = rd.key();
    const field = name + "." + key;
    if (key == "cluster") d.cluster = readClusterName(rd, field);
    else if (key == "adminCluster") d.adminCluster = readClusterName(rd, field);
    else if (key == "intervalMs") d.intervalMs = rd.integer(field, 100, 3600000);
    else if (key == "timeoutMs") d.timeoutMs = rd.integer(field, 1, 600000);
    else if (key == "maxEndpoints" && maxHosts == 0) d.maxEndpoints = rd.integer(field, 1, 4096);
    else if (key == "metricsPort" && maxHosts == 0) d.metricsPort = rd.integer(field, 0, 65535);
    else rd.fail(field, "unknown field");
  }
  if (!rd.ok()) return null;
  if (d.cluster.length == 0) rd.fail(name + ".cluster", "required");
  else if (d.adminCluster.length == 0) rd.fail(name + ".adminCluster", "required");
  return rd.ok() ? d : null;
}

function readPeers(rd: Reader): PeersConfig | null {
  const p = new PeersConfig();
  if (!rd.beginObject("peers")) return null;
  let first = true;
  while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
    first = false;
    if (!rd.r.readKey()) return null;
    const key = rd.key();
    const field = "peers." + key;
    if (key == "addresses") readPeerAddresses(rd, p);
    else if (key == "members") p.members = readDiscovery(rd, "peers.members", MAX_PEERS);
    else if (key == "cluster") p.cluster = readClusterName(rd, field);
    else if (key == "token") {
      const v = rd.string(field);
      if (v === null) return null;
      const bad = peerTokenError(v);
      if (bad !== null) rd.fail(field, bad);
      else p.token = v;
    } else if (key == "tokenEnv") {
      const v = rd.string(field);
      if (v === null) return null;
      if (!isEnvironmentName(v)) rd.fail(field, "must be an environment variable's name: a letter or _, then letters, digits or _, at most 128");
      else p.tokenEnv = v;
    } else if (key == "path") {
      const v = rd.string(field);
      if (v !== null && (!v.startsWith("/") || v.indexOf("?") >= 0 || hasControlOrSpace(v))) {
        rd.fail(field, "must start with / and hold no query, spaces or control characters");
      } else if (v !== null) p.path = v;
    } else if (key == "intervalMs") p.intervalMs = rd.integer(field, 10, 3600000);
    else if (key == "timeoutMs") p.timeoutMs = rd.integer(field, 1, 600000);
    else rd.fail(field, "unknown field");
  }
  if (!rd.ok()) return null;
  if (p.addresses.length > 0 && p.members !== null) rd.fail("peers", "give either addresses or members, not both");
  else if (p.addresses.length == 0 && p.members === null) rd.fail("peers.addresses", "at least one address is required (or members, to follow a cluster)");
  else if (p.cluster.length == 0) rd.fail("peers.cluster", "required");
  else if (p.token.length > 0 && p.tokenEnv.length > 0) rd.fail("peers", "give either token or tokenEnv, not both");
  else if (p.token.length == 0 && p.tokenEnv.length == 0) rd.fail("peers.token", "required (or tokenEnv, the environment variable that holds it)");
  return rd.ok() ? p : null;
}

function readPeerAddresses(rd: Reader, p: PeersConfig): void {
  if (!rd.beginArray("peers.addresses")) return;
  let i = 0;
  while (rd.ok() && rd.r.more(CLOSE_ARRAY, i == 0)) {
    const field = "peers.addresses[" + i.toString() + "]";
    if (i >= MAX_PEERS) {
      rd.fail("peers.addresses", "at most " + MAX_PEERS.toString() + " peers");
      return;
    }
    const a = rd.string(field);
    if (a === null) return;
    const bad = addressError(a);
    if (bad !== null) {
      rd.fail(field, "\"" + a + "\": " + bad);
      return;
    }
    const address = canonicalAddress(a);
    if (p.addresses.includes(address)) {
      rd.fail(field, "\"" + a + "\" is listed twice");
      return;
    }
    p.addresses.push(address);
    i++;
  }
}

function readMetrics(rd: Reader): MetricsConfig | null {
  const m = new MetricsConfig();
  if (!rd.beginObject("metrics")) return null;
  let first = true;
  while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
    first = false;
    if (!rd.r.readKey()) return null;
    const key = rd.key();
    const field = "metrics." + key;
    if (key == "cluster") {
      const v = rd.string(field);
      if (v !== null && v.length == 0) rd.fail(field, "must not be empty");
      else if (v !== null) m.cluster = v;
    } else if (key == "path") {
      const v = rd.string(field);
      if (v !== null && (!v.startsWith("/") || hasControlOrSpace(v))) rd.fail(field, "must start with / and hold no spaces or control characters");
      else if (v !== null) m.path = v;
    } else if (key == "intervalMs") m.intervalMs = rd.integer(field, 10, 3600000);
    else if (key == "timeoutMs") m.timeoutMs = rd.integer(field, 1, 600000);
    else if (key == "unhealthyAfter") m.unhealthyAfter = rd.integer(field, 1, 1000);
    else if (key == "staleAfterIntervals") m.staleAfterIntervals = rd.integer(field, 1, 1000);
    else if (key == "dialect") readDialect(rd, m);
    else rd.fail(field, "unknown field");
  }
  if (!rd.ok()) return null;
  if (m.cluster.length == 0) {
    rd.fail("metrics.cluster", "required");
    return null;
  }
  if (m.dialect === null) m.dialect = dialectNamed(m.dialectName);
  return m;
}

/** "auto" (0: judged from the scrapes) or how many replicas share the servers, 1–64. */
function readReplicas(rd: Reader): i32 {
  if (rd.r.peekKind() == JsonKind.String) {
    const word = rd.string("replicas");
    if (word !== null && word != "auto") rd.fail("replicas", "must be \"auto\" or a whole number from 1 to 64");
    return 0;
  }
  return rd.integer("replicas", 1, 64);
}

/** "vllm" | "sglang" | "trtllm", or an object of explicit metric names. */
function readDialect(rd: Reader, m: MetricsConfig): void {
  if (rd.r.peekKind() == JsonKind.String) {
    const name = rd.string("metrics.dialect");
    if (name === null) return;
    const d = dialectNamed(name);
    if (d === null) {
      rd.fail("metrics.dialect", "\"" + name + "\" is not one of vllm, sglang, trtllm, or an object of metric names");
      return;
    }
    m.dialectName = name;
    m.dialect = d;
    return;
  }
  if (!rd.beginObject("metrics.dialect")) return;
  const names = new MetricNames();
  let first = true;
  while (rd.ok() && rd.r.more(CLOSE_OBJECT, first)) {
    first = false;
    if (!rd.r.readKey()) return;
    const key = rd.key();
    const field = "metrics.dialect." + key;
    const v = rd.string(field);
    if (v === null) return;
    if (key == "queue") names.queue = v;
    else if (key == "running") names.running = v;
    else if (key == "kvUtilization") names.kvUtilization = v;
    else if (key == "blockSize") names.blockSize = v;
    else if (key == "numBlocks") names.numBlocks = v;
    else if (key == "cacheInfo") names.cacheInfo = v;
    else if (key == "cacheBlockSizeLabel") names.cacheBlockSizeLabel = v;
    else if (key == "cacheNumBlocksLabel") names.cacheNumBlocksLabel = v;
    else if (key == "prefixQueries") names.prefixQueries = v;
    else if (key == "prefixHits") names.prefixHits = v;
    else if (key == "lora") names.lora = v;
    else rd.fail(field, "unknown field");
  }
  if (!rd.ok()) return;
  const choice = explicitDialect(names);
  if (choice.dialect === null) {
    rd.fail("metrics.dialect", choice.error.length > 0 ? choice.error : "names no metric");
    return;
  }
  m.dialectName = "explicit";
  m.dialect = choice.dialect;
}
