// The one template: from an endpoint list and a few options it produces both
// the filter's JSON configuration and the Envoy bootstrap that hosts it, so the
// two can never disagree. Every value that both sides must agree on is derived
// here from a single field of the resolved config:
//   endpoints          → the filter's `endpoints` and the model cluster's hosts
//   destinationHeader  → the filter's header, override_host's header source
//                        (or ORIGINAL_DST's http_header_name) and the access log
//   maxBodyBytes       → the filter's limit and 2× that as Envoy's
//                        per_connection_buffer_limit_bytes (listener and cluster)
//   metrics            → the filter's `metrics.cluster` and the ORIGINAL_DST
//                        cluster of that name its scrapes go to
//   names              → plugin name, root_id and the shared vm_id
//   fallbackHosts      → the filter's list length after the pick and the
//                        route's num_retries (override_host tries the next
//                        entry on each retry); 0 for ORIGINAL_DST
//   eds                → instead of endpoints: the model cluster becomes EDS
//                        reading that file, and the filter's `discovery` follows
//                        the cluster through the admin guard (admin-guard.ts),
//                        whose path rule names the same cluster
// The dev gateway (dev-gateway.ts) takes the same resolved config, so it runs
// the filter with the very JSON text the YAML carries.
//
// Owns: validation of the inputs, the filter configuration, the bootstrap
// object and its YAML rendering (with comments citing why). Must not: do I/O
// or start anything (config.ts is the CLI, start.ts the launcher).
import { dirname } from "node:path";
import YAML from "yaml";
import { isLoopback, parseBindAddress, parseEndpointAddress, addressError, canonicalAddress, formatAddress, type SocketAddress } from "./address.ts";
import { envoyStatsTags } from "./stats-tags.ts";
import { ADMIN_GUARD_NAMES, adminClustersPath, adminGuardClusters, adminGuardListener, socketPathError, type AdminGuardOptions } from "./admin-guard.ts";
import {
  ENVOY_VERSION, FAILURE_POLICY_SINCE, ORIGINAL_DST_HEADER_NAME_SINCE, OVERRIDE_HOST_SINCE, STOP_ITERATION_SINCE,
  atLeast, isVersion,
} from "./envoy-version.ts";

/** Names shared by the filter config, the Envoy config, the dev gateway and the tests. */
export const NAMES = Object.freeze({
  /** PluginConfig.name: also the prefix of Envoy's own `wasm.<name>.` stats and of the filter's log lines. */
  plugin: "prefix_router",
  rootId: "prefix_router",
  /** vm_config.vm_id: proxy-wasm shared data is keyed by this string, so every worker VM shares one index. */
  vmId: "prefix_router",
  listener: "prefix_router",
  statPrefix: "prefix_router",
  /** The model servers. With override_host the filter's pick must be a host of this cluster. */
  modelCluster: "prefix_router_models",
  /** ORIGINAL_DST variant: the cluster that connects to the address in the destination header. */
  chosenCluster: "prefix_router_models_chosen",
  /** Where the filter's metrics scrapes go (proxy_http_call), one ORIGINAL_DST cluster for every endpoint. */
  metricsCluster: "prefix_router_metrics",
  /** peers.dns: the Envoy replicas, a STRICT_DNS cluster the filter follows through the admin guard. */
  peersCluster: "prefix_router_peers",
  /** Discovery: the filter's adminCluster, a listener on a Unix socket that lets only its GET through. */
  adminGuard: ADMIN_GUARD_NAMES.guard,
  /** Discovery: the admin address, reached only through the guard's route. */
  adminCluster: ADMIN_GUARD_NAMES.admin,
  /** bootstrap.node: a file subscription (EDS) needs the node's id and cluster. */
  node: "prefix_router",
});

export const DEFAULT_DESTINATION_HEADER = "x-gateway-destination-endpoint";
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;
export const DEFAULT_WASM_FILE = "build/prefix_router.wasm";
export const DEFAULT_LISTEN = "127.0.0.1:10000";
export const DEFAULT_ADMIN = "127.0.0.1:9901";
/** Where the admin guard listens with --eds: mode 0600, so only Envoy's user can connect. */
export const DEFAULT_ADMIN_GUARD_SOCKET = "/tmp/prefix_router_admin_guard.sock";

/** Filter fields with a dedicated option here, so that Envoy's side is derived from the same value. */
const OWNED_FILTER_FIELDS = ["endpoints", "discovery", "destinationHeader", "maxBodyBytes", "metrics", "fallbackHosts"] as const;

/**
 * The filter's defaults (assembly/router/config.ts) for the prefix index's
 * geometry: an entry every DEFAULT_INDEX_STRIDE blocks of 64 characters, at
 * most DEFAULT_MAX_PREFIX_BLOCKS blocks of a prompt. Benchmarks and tests that
 * size prompts or bounds by them read them here.
 */
export const DEFAULT_INDEX_STRIDE = 16;
export const DEFAULT_MAX_PREFIX_BLOCKS = 4096;

/** The filter's default (assembly/router/config.ts) and range of fallbackHosts. */
export const DEFAULT_FALLBACK_HOSTS = 2;
const MAX_FALLBACK_HOSTS = 3;

/**
 * Retried only where the model server cannot have started on the request, so a
 * retry never runs an inference twice: connect-failure (refused, or
 * connect_timeout passed: the chosen server is down), refused-stream (HTTP/2
 * REFUSED_STREAM: the server says it did not process the stream, RFC 9113
 * §8.7) and reset-before-request (a pooled connection reset before the request
 * was written: the keep-alive race with a server closing it). Not "reset",
 * "5xx" or "gateway-error": those can follow a request the server started, and
 * generation is neither idempotent in cost nor cheap
 * (envoy api/envoy/config/route/v3/route_components.proto, x-envoy-retry-on).
 */
export const RETRY_ON = "connect-failure,refused-stream,reset-before-request";
/**
 * Envoy's default circuit breaker allows 3 retries in flight per cluster
 * (cluster/v3/circuit_breaker.proto, max_retries): with one server down,
 * every request the filter sent there retries at once, and the fourth
 * concurrent one would get the 503 instead. One retry per request in flight,
 * at Envoy's default max_requests (1024), is the bound that does not bite.
 */
const MAX_CONCURRENT_RETRIES = 1024;
const DIALECTS = ["vllm", "sglang", "trtllm"];

export type Variant = "override_host" | "original_dst";

export interface EndpointInput {
  /** "ip:port" or "[ipv6]:port" of the model server. */
  address: string;
  /** Where its Prometheus page is, if not at `address`. */
  metricsAddress?: string;
}

export interface MetricsInput {
  path?: string;
  intervalMs?: number;
  timeoutMs?: number;
  /** "vllm" | "sglang" | "trtllm", or an object of explicit metric names (see README). */
  dialect?: string | Record<string, string>;
}

/** The filter's discovery fields the generator does not derive (README "Endpoint discovery"). */
export interface DiscoveryInput {
  intervalMs?: number;
  timeoutMs?: number;
  maxEndpoints?: number;
  /** The port of each host's metrics page; absent or 0: the port it serves on. */
  metricsPort?: number;
}

/** Envoy replicas that trade routing decisions (README "Several Envoy replicas"; assembly/router/peers.ts). */
export interface PeersInput {
  /** Every replica's listener address as the others reach it, "ip:port"; this one's own may be among them. */
  addresses?: string[];
  /**
   * Instead of `addresses`: "name:port", a DNS name that resolves to every
   * replica (a Kubernetes headless Service) and their listener port. Envoy
   * resolves it (a STRICT_DNS cluster) and the filter follows the cluster's
   * hosts through the admin guard; needs a fixed admin port.
   */
  dns?: string;
  /** The secret all replicas share (16 or more characters); or `tokenEnv` instead. */
  token?: string;
  /**
   * Instead of `token`: the name of an environment variable of Envoy's that
   * holds it (a Kubernetes Secret, say). The Wasm VM sees it through
   * vm_config.environment_variables.host_env_keys, and the filter's
   * configuration names the variable, never the secret.
   */
  tokenEnv?: string;
  intervalMs?: number;
}

export interface GatewayConfigInput {
  /** A static list of model servers; or `eds` instead. */
  endpoints?: Array<string | EndpointInput>;
  /**
   * Instead of `endpoints`: the model cluster reads its hosts from this EDS
   * file (a DiscoveryResponse, eds-file.ts writes one), and the filter follows
   * the cluster through the admin API. Needs a fixed admin port.
   */
  eds?: string;
  /** With `eds`: the admin guard's Unix socket. Default DEFAULT_ADMIN_GUARD_SOCKET. */
  adminGuardSocket?: string;
  /** With `eds`: the filter's other discovery fields. */
  discovery?: DiscoveryInput;
  /** override_host (Envoy ≥ 1.35, the default) or original_dst (for Envoy without override_host). */
  variant?: Variant;
  /** The Envoy release the config is for (x.y.z); fields newer than it are left out. Default ENVOY_VERSION. */
  envoyVersion?: string;
  /** The .wasm path as Envoy will open it (relative paths are relative to Envoy's working directory). */
  wasmFile?: string;
  /** Listener address; port 0 picks a free port. Default 127.0.0.1:10000. */
  listen?: string;
  /** Admin address; must be loopback (the admin API can stop Envoy and dump its config). Default 127.0.0.1:9901. */
  admin?: string;
  destinationHeader?: string;
  maxBodyBytes?: number;
  /** Scrape the model servers' Prometheus pages (default: yes, vLLM names). false: route on in-flight counts only. */
  metrics?: false | MetricsInput;
  /** Further filter fields (weights, guard, tickMs, …) passed through; the filter validates them at on_configure. */
  filter?: Record<string, unknown>;
  /** Other Envoy replicas to trade decisions with; their asks go through the metrics cluster (ORIGINAL_DST). */
  peers?: PeersInput;
  /** Envoy access log on stdout naming the endpoint chosen and the host used. Default true. */
  accessLog?: boolean;
  /**
   * Endpoints the filter lists after its pick (0-3), and the route's retries on
   * connect failure that use them. Default 2 with override_host; the
   * original_dst variant needs 0 (its routes match one address exactly).
   */
  fallbackHosts?: number;
}

export interface ResolvedEndpoint {
  address: string;
  socket: SocketAddress;
  metricsAddress: string | null;
}

export interface ResolvedMetrics {
  path: string;
  intervalMs: number | null;
  timeoutMs: number;
  dialect: string | Record<string, string>;
}

export interface ResolvedDiscovery {
  /** The EDS file, as Envoy opens it. */
  edsFile: string;
  adminGuardSocket: string;
  intervalMs: number | null;
  timeoutMs: number | null;
  maxEndpoints: number | null;
  metricsPort: number | null;
}

export interface GatewayConfig {
  /** The static list; empty when `discovery` is set. */
  endpoints: ResolvedEndpoint[];
  /** Set with --eds: the model cluster is EDS and the filter follows it. */
  discovery: ResolvedDiscovery | null;
  variant: Variant;
  envoyVersion: string;
  wasmFile: string;
  listen: SocketAddress;
  admin: SocketAddress;
  destinationHeader: string;
  maxBodyBytes: number;
  /** 2 × maxBodyBytes: the filter buffers the whole body, and Envoy answers 413 once a buffer passes this. */
  bufferLimitBytes: number;
  metrics: ResolvedMetrics | null;
  peers: ResolvedPeers | null;
  filterExtra: Record<string, unknown>;
  accessLog: boolean;
  /** The filter's fallbackHosts, and num_retries of the override_host route. */
  fallbackHosts: number;
  /** Envoy ≥ 1.35: PluginConfig.allow_on_headers_stop_iteration exists. */
  holdsHeaders: boolean;
}

export class GatewayConfigError extends Error {
  constructor(readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`);
    this.name = "GatewayConfigError";
  }
}

/** RFC 9110 token characters, lower-case (Envoy lower-cases header names; so does the filter). */
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

function integer(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new GatewayConfigError(field, `must be a whole number between ${min} and ${max}`);
  }
  return v;
}

function endpointOf(e: string | EndpointInput, i: number): ResolvedEndpoint {
  const field = `endpoints[${i}]`;
  const input: EndpointInput = typeof e === "string" ? { address: e } : e;
  if (typeof input !== "object" || input === null || typeof input.address !== "string") {
    throw new GatewayConfigError(`${field}.address`, "required");
  }
  const bad = addressError(input.address);
  if (bad !== null) throw new GatewayConfigError(`${field}.address`, `"${input.address}": ${bad}`);
  let metricsAddress: string | null = null;
  if (input.metricsAddress !== undefined) {
    const badMetrics = addressError(input.metricsAddress);
    if (badMetrics !== null) throw new GatewayConfigError(`${field}.metricsAddress`, `"${input.metricsAddress}": ${badMetrics}`);
    if (canonicalAddress(input.metricsAddress) !== canonicalAddress(input.address)) metricsAddress = canonicalAddress(input.metricsAddress);
  }
  // As Envoy names the host (address.ts), in the filter's list and the cluster alike.
  return { address: canonicalAddress(input.address), socket: parseEndpointAddress(input.address), metricsAddress };
}

function metricsOf(m: false | MetricsInput | undefined): ResolvedMetrics | null {
  if (m === false) return null;
  const input = m ?? {};
  const path = input.path ?? "/metrics";
  if (typeof path !== "string" || !path.startsWith("/")) throw new GatewayConfigError("metrics.path", "must start with /");
  const intervalMs = input.intervalMs === undefined ? null : integer("metrics.intervalMs", input.intervalMs, 10, 3_600_000);
  const timeoutMs = integer("metrics.timeoutMs", input.timeoutMs ?? 1000, 1, 600_000);
  const dialect = input.dialect ?? "vllm";
  if (typeof dialect === "string" && !DIALECTS.includes(dialect)) {
    throw new GatewayConfigError("metrics.dialect", `"${dialect}" is not one of ${DIALECTS.join(", ")}, or an object of metric names`);
  }
  return { path, intervalMs, timeoutMs, dialect };
}

function optionalInteger(field: string, v: unknown, min: number, max: number): number | null {
  return v === undefined ? null : integer(field, v, min, max);
}

/** --eds: the file and the filter's discovery fields (ranges: assembly/router/config.ts readDiscovery). */
function discoveryOf(input: GatewayConfigInput): ResolvedDiscovery {
  const edsFile = input.eds!;
  if (typeof edsFile !== "string" || !edsFile.endsWith(".json")) {
    throw new GatewayConfigError("eds", `"${String(edsFile)}": the file name must end in .json (Envoy picks the parser by extension; eds-file.ts writes JSON)`);
  }
  if (input.endpoints !== undefined && input.endpoints.length > 0) {
    throw new GatewayConfigError("eds", "give either endpoints or eds, not both: with eds the cluster's hosts come from the file (write them with scripts/gateway/eds-file.ts)");
  }
  if (input.variant === "original_dst") {
    throw new GatewayConfigError("eds", "needs the override_host variant: the original_dst variant's routes list every endpoint, so they cannot follow a changing cluster");
  }
  const adminGuardSocket = input.adminGuardSocket ?? DEFAULT_ADMIN_GUARD_SOCKET;
  const socketError = socketPathError(adminGuardSocket);
  if (socketError !== null) throw new GatewayConfigError("adminGuardSocket", `"${adminGuardSocket}": ${socketError}`);
  const d = input.discovery ?? {};
  if (typeof d !== "object" || d === null) throw new GatewayConfigError("discovery", "must be an object");
  const metricsPort = optionalInteger("discovery.metricsPort", d.metricsPort, 0, 65535);
  return {
    edsFile,
    adminGuardSocket,
    intervalMs: optionalInteger("discovery.intervalMs", d.intervalMs, 100, 3_600_000),
    timeoutMs: optionalInteger("discovery.timeoutMs", d.timeoutMs, 1, 600_000),
    maxEndpoints: optionalInteger("discovery.maxEndpoints", d.maxEndpoints, 1, 4096),
    metricsPort: metricsPort === 0 ? null : metricsPort,
  };
}

/** Validates the inputs and fills in defaults. Throws GatewayConfigError naming the field. */
export function resolveConfig(input: GatewayConfigInput): GatewayConfig {
  const discovery = input.eds === undefined ? null : discoveryOf(input);
  if (discovery === null && input.adminGuardSocket !== undefined && input.peers?.dns === undefined) throw new GatewayConfigError("adminGuardSocket", "only with eds or peers.dns");
  if (discovery === null && input.discovery !== undefined) throw new GatewayConfigError("discovery", "only with eds");
  if (discovery === null && (!Array.isArray(input.endpoints) || input.endpoints.length === 0)) {
    throw new GatewayConfigError("endpoints", "at least one endpoint is required (or eds, to follow the cluster's hosts from a file)");
  }
  const endpointList = input.endpoints ?? [];
  // The filter's own bound (assembly/router/prefix_table.ts MAX_ENDPOINTS).
  if (endpointList.length > 65534) throw new GatewayConfigError("endpoints", "at most 65534 endpoints");
  const endpoints = endpointList.map(endpointOf);
  const seen = new Map<string, number>();
  endpoints.forEach((e, i) => {
    const j = seen.get(e.address);
    if (j !== undefined) throw new GatewayConfigError(`endpoints[${i}].address`, `duplicate of endpoints[${j}]`);
    seen.set(e.address, i);
  });

  const envoyVersion = input.envoyVersion ?? ENVOY_VERSION;
  if (!isVersion(envoyVersion)) throw new GatewayConfigError("envoyVersion", `"${envoyVersion}" is not x.y.z`);
  const variant = input.variant ?? "override_host";
  if (variant !== "override_host" && variant !== "original_dst") {
    throw new GatewayConfigError("variant", `"${String(variant)}" is not override_host or original_dst`);
  }
  if (variant === "override_host" && !atLeast(envoyVersion, OVERRIDE_HOST_SINCE)) {
    throw new GatewayConfigError("variant", `override_host needs Envoy >= ${OVERRIDE_HOST_SINCE} (this config is for ${envoyVersion}); use the original_dst variant`);
  }
  if (variant === "original_dst" && !atLeast(envoyVersion, ORIGINAL_DST_HEADER_NAME_SINCE)) {
    throw new GatewayConfigError("variant", `original_dst with a custom header needs Envoy >= ${ORIGINAL_DST_HEADER_NAME_SINCE} (OriginalDstLbConfig.http_header_name)`);
  }

  const destinationHeader = input.destinationHeader ?? DEFAULT_DESTINATION_HEADER;
  if (typeof destinationHeader !== "string" || !HEADER_NAME.test(destinationHeader)) {
    throw new GatewayConfigError("destinationHeader", `"${String(destinationHeader)}" is not a lower-case header name`);
  }
  // The filter's own range for maxBodyBytes (assembly/router/config.ts).
  const maxBodyBytes = integer("maxBodyBytes", input.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, 1024, 64 << 20);

  let listen: SocketAddress;
  let admin: SocketAddress;
  try {
    listen = parseBindAddress(input.listen ?? DEFAULT_LISTEN, "listen");
    admin = parseBindAddress(input.admin ?? DEFAULT_ADMIN, "admin");
  } catch (e) {
    const [field, ...rest] = (e as Error).message.split(": ");
    throw new GatewayConfigError(field, rest.join(": "));
  }
  if (!isLoopback(admin)) {
    throw new GatewayConfigError("admin", `"${formatAddress(admin)}" is not a loopback address; Envoy's admin API must not be reachable from other machines`);
  }
  if (discovery !== null && admin.port === 0) {
    throw new GatewayConfigError("admin", "port 0 with eds: the admin guard's cluster must name the admin port, so it cannot be picked at start; give a fixed port");
  }

  const filterExtra = input.filter ?? {};
  if (typeof filterExtra !== "object" || filterExtra === null || Array.isArray(filterExtra)) {
    throw new GatewayConfigError("filter", "must be an object of filter configuration fields");
  }
  for (const key of OWNED_FILTER_FIELDS) {
    if (key in filterExtra) throw new GatewayConfigError(`filter.${key}`, "set it through its own option, so Envoy's side follows it");
  }

  // ORIGINAL_DST connects to the header's one address, and its routes match
  // each endpoint exactly: a list would match no route (round robin instead)
  // and name no address ORIGINAL_DST can parse.
  const fallbackHosts = integer("fallbackHosts", input.fallbackHosts ?? (variant === "override_host" ? DEFAULT_FALLBACK_HOSTS : 0), 0, MAX_FALLBACK_HOSTS);
  if (variant === "original_dst" && fallbackHosts > 0) {
    throw new GatewayConfigError("fallbackHosts", "must be 0 with the original_dst variant: its routes match one address exactly, and ORIGINAL_DST connects to the one address the header names");
  }

  const wasmFile = input.wasmFile ?? DEFAULT_WASM_FILE;
  if (typeof wasmFile !== "string" || wasmFile.length === 0) throw new GatewayConfigError("wasmFile", "required");

  return {
    endpoints,
    discovery,
    variant,
    envoyVersion,
    wasmFile,
    listen,
    admin,
    destinationHeader,
    maxBodyBytes,
    bufferLimitBytes: 2 * maxBodyBytes,
    metrics: metricsOf(input.metrics),
    peers: peersOf(input.peers, input, admin),
    filterExtra: { ...filterExtra },
    accessLog: input.accessLog ?? true,
    fallbackHosts,
    holdsHeaders: atLeast(envoyVersion, STOP_ITERATION_SINCE),
  };
}

export interface ResolvedPeers {
  addresses: string[] | null;
  /** With `dns`: the STRICT_DNS cluster's name and port, and the admin guard's socket. */
  dns: { host: string; port: number; adminGuardSocket: string } | null;
  /** Exactly one of token and tokenEnv is set. */
  token: string | null;
  tokenEnv: string | null;
  intervalMs: number | null;
}

function peersOf(p: PeersInput | undefined, input: GatewayConfigInput, admin: SocketAddress): ResolvedPeers | null {
  if (p === undefined) return null;
  if ((p.token === undefined) === (p.tokenEnv === undefined)) throw new GatewayConfigError("peers", "give either token or tokenEnv");
  if (p.token !== undefined && (typeof p.token !== "string" || p.token.length < 16)) throw new GatewayConfigError("peers.token", "at least 16 characters of a random secret");
  if (p.tokenEnv !== undefined && !ENVIRONMENT_NAME.test(String(p.tokenEnv))) throw new GatewayConfigError("peers.tokenEnv", `"${p.tokenEnv}": not an environment variable's name (a letter or _, then letters, digits or _)`);
  const secret = { token: p.token ?? null, tokenEnv: p.tokenEnv ?? null };
  const intervalMs = optionalInteger("peers.intervalMs", p.intervalMs, 10, 3_600_000);
  if ((p.addresses === undefined) === (p.dns === undefined)) throw new GatewayConfigError("peers", "give either addresses or dns");
  if (p.addresses !== undefined) {
    if (!Array.isArray(p.addresses) || p.addresses.length === 0) throw new GatewayConfigError("peers.addresses", "at least one address is required");
    return { addresses: [...p.addresses], dns: null, ...secret, intervalMs };
  }
  const m = /^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(String(p.dns));
  const port = m === null ? 0 : Number(m[3]);
  if (m === null || port < 1 || port > 65535) throw new GatewayConfigError("peers.dns", `"${p.dns}": expected name:port, e.g. prefix-router-peers.gateway.svc.cluster.local:10000`);
  if (admin.port === 0) throw new GatewayConfigError("admin", "port 0 with peers.dns: the admin guard's cluster must name the admin port, so it cannot be picked at start; give a fixed port");
  const adminGuardSocket = input.adminGuardSocket ?? DEFAULT_ADMIN_GUARD_SOCKET;
  const socketError = socketPathError(adminGuardSocket);
  if (socketError !== null) throw new GatewayConfigError("adminGuardSocket", `"${adminGuardSocket}": ${socketError}`);
  return { addresses: null, dns: { host: m[1], port, adminGuardSocket }, ...secret, intervalMs };
}

/** A portable environment variable name (POSIX.1-2017, 8.1), as the filter accepts for peers.tokenEnv. */
const ENVIRONMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

// ---- the filter's configuration ------------------------------------------------------------

/** Filter configuration fields given as JSON on a command line (the tools' --router-config): an object, or an error naming the option. */
export function filterFieldsFromJson(option: string, text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${option} must be a JSON object of filter configuration fields, got ${text}`);
  return value as Record<string, unknown>;
}

/** The filter's `discovery`: the model cluster, read through the admin guard; defaults left to the filter. */
function discoveryConfiguration(d: ResolvedDiscovery): Record<string, unknown> {
  const out: Record<string, unknown> = { cluster: NAMES.modelCluster, adminCluster: NAMES.adminGuard };
  if (d.intervalMs !== null) out.intervalMs = d.intervalMs;
  if (d.timeoutMs !== null) out.timeoutMs = d.timeoutMs;
  if (d.maxEndpoints !== null) out.maxEndpoints = d.maxEndpoints;
  if (d.metricsPort !== null) out.metricsPort = d.metricsPort;
  return out;
}

/** The filter's configuration object (README "Configuration reference"). */
export function filterConfiguration(c: GatewayConfig): Record<string, unknown> {
  const out: Record<string, unknown> = c.discovery === null
    ? { endpoints: c.endpoints.map((e) => (e.metricsAddress === null ? { address: e.address } : { address: e.address, metricsAddress: e.metricsAddress })) }
    : { discovery: discoveryConfiguration(c.discovery) };
  Object.assign(out, {
    destinationHeader: c.destinationHeader,
    maxBodyBytes: c.maxBodyBytes,
    fallbackHosts: c.fallbackHosts,
  });
  if (c.metrics !== null) {
    const m: Record<string, unknown> = { cluster: NAMES.metricsCluster, path: c.metrics.path };
    if (c.metrics.intervalMs !== null) m.intervalMs = c.metrics.intervalMs;
    m.timeoutMs = c.metrics.timeoutMs;
    m.dialect = c.metrics.dialect;
    out.metrics = m;
  }
  // The asks go through the metrics cluster: ORIGINAL_DST on x-envoy-original-dst-host, as the scrapes.
  const p = c.peers;
  if (p !== null) {
    out.peers = {
      ...(p.addresses !== null ? { addresses: p.addresses } : { members: { cluster: NAMES.peersCluster, adminCluster: NAMES.adminGuard } }),
      cluster: NAMES.metricsCluster,
      ...(p.token !== null ? { token: p.token } : { tokenEnv: p.tokenEnv }),
      ...(p.intervalMs === null ? {} : { intervalMs: p.intervalMs }),
    };
  }
  return { ...out, ...c.filterExtra };
}

/** JSON on one line with a space after each "," and ":" between tokens (never inside strings). */
function compact(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(compact).join(", ")}]`;
  if (typeof v === "object" && v !== null) {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${compact(x)}`).join(", ")}}`;
  }
  return JSON.stringify(v);
}

/**
 * The exact bytes the filter reads in on_configure: Envoy's StringValue and the
 * dev gateway both carry this text. One top-level field per line and one
 * endpoint per line, so the generated YAML stays readable and diffs well.
 */
export function filterConfigurationText(c: GatewayConfig): string {
  const fields = Object.entries(filterConfiguration(c)).map(([k, v]) => {
    if (k === "endpoints" && Array.isArray(v)) return `  "endpoints": [\n${v.map((e) => `    ${compact(e)}`).join(",\n")}\n  ]`;
    return `  ${JSON.stringify(k)}: ${compact(v)}`;
  });
  return `{\n${fields.join(",\n")}\n}`;
}

// ---- the Envoy bootstrap --------------------------------------------------------------------

/** A protobuf Duration in JSON/YAML form ("1s", "0.25s"); "1000ms" is not one. */
function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

function socketAddress(a: SocketAddress): Record<string, unknown> {
  return { socket_address: { address: a.ip, port_value: a.port } };
}

const typed = (type: string, body: Record<string, unknown> = {}) => ({ "@type": `type.googleapis.com/${type}`, ...body });

function wasmFilter(c: GatewayConfig): Record<string, unknown> {
  const pluginConfig: Record<string, unknown> = {
    name: NAMES.plugin,
    root_id: NAMES.rootId,
    vm_config: {
      vm_id: NAMES.vmId,
      runtime: "envoy.wasm.runtime.v8",
      code: { local: { filename: c.wasmFile } },
      // peers.tokenEnv: Envoy hands the VM this variable of its own environment (absent there, absent here).
      ...(c.peers?.tokenEnv != null ? { environment_variables: { host_env_keys: [c.peers.tokenEnv] } } : {}),
    },
    configuration: typed("google.protobuf.StringValue", { value: filterConfigurationText(c) }),
  };
  if (atLeast(c.envoyVersion, FAILURE_POLICY_SINCE)) pluginConfig.failure_policy = "FAIL_OPEN";
  else pluginConfig.fail_open = true;
  if (c.holdsHeaders) pluginConfig.allow_on_headers_stop_iteration = true;
  return {
    name: "envoy.filters.http.wasm",
    typed_config: typed("envoy.extensions.filters.http.wasm.v3.Wasm", { config: pluginConfig }),
  };
}

function accessLog(c: GatewayConfig): unknown[] {
  const format =
    `[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ` +
    `chosen=%REQ(${c.destinationHeader.toUpperCase()})% upstream=%UPSTREAM_HOST% %DURATION%ms\n`;
  return [
    {
      name: "envoy.access_loggers.stdout",
      typed_config: typed("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", {
        log_format: { text_format_source: { inline_string: format } },
      }),
    },
  ];
}

function routes(c: GatewayConfig): unknown[] {
  // Streamed completions can run for minutes: no route timeout (Envoy's default
  // is 15 s); the connection manager's stream_idle_timeout (5 min) still ends
  // a stream on which nothing moves.
  const to = (cluster: string) => ({ cluster, timeout: "0s" });
  if (c.variant === "override_host") {
    const route: Record<string, unknown> = to(NAMES.modelCluster);
    if (c.fallbackHosts > 0) route.retry_policy = retryPolicy(c);
    return [{ match: { prefix: "/" }, route }];
  }
  // ORIGINAL_DST variant: a destination header naming one of the configured
  // endpoints goes to the ORIGINAL_DST cluster; anything else (pass-through,
  // or a header naming something else) to the round-robin cluster. Exact
  // matches, one route per endpoint, confine ORIGINAL_DST to the endpoint list
  // even if the filter is skipped (FAIL_OPEN) and a client sends the header.
  return [
    ...c.endpoints.map((e) => ({
      match: { prefix: "/", headers: [{ name: c.destinationHeader, string_match: { exact: e.address } }] },
      route: to(NAMES.chosenCluster),
    })),
    { match: { prefix: "/" }, route: to(NAMES.modelCluster) },
  ];
}

/**
 * One retry per fallback host the filter lists. override_host takes the next
 * entry of the destination header on every host selection, retries included
 * (override_host/load_balancer.cc getEndpoint; override_host_filter_state.h
 * consumeNextHost), so the retries go down the filter's ranking, not to round
 * robin. previous_hosts matters once the list is used up or was shorter (fewer
 * eligible endpoints): the fallback round robin then skips hosts this request
 * already tried (retry/host/previous_hosts). The default back-off (25 ms base,
 * jittered) applies between attempts.
 */
function retryPolicy(c: GatewayConfig): Record<string, unknown> {
  return {
    retry_on: RETRY_ON,
    num_retries: c.fallbackHosts,
    retry_host_predicate: [
      {
        name: "envoy.retry_host_predicates.previous_hosts",
        typed_config: typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
      },
    ],
    host_selection_retry_max_attempts: 3,
  };
}

function roundRobinPolicy(): Record<string, unknown> {
  return {
    policies: [
      {
        typed_extension_config: {
          name: "envoy.load_balancing_policies.round_robin",
          typed_config: typed("envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"),
        },
      },
    ],
  };
}

/**
 * The model cluster's hosts from a file. Envoy reacts only to a rename into
 * the watched directory (a file replaced in place is not seen:
 * source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc
 * watches the directory for IN_MOVED_TO when watched_directory is set), so
 * the file is always replaced by a rename (eds-file.ts writeEdsFile).
 */
function edsClusterConfig(d: ResolvedDiscovery): Record<string, unknown> {
  return {
    eds_config: {
      resource_api_version: "V3",
      path_config_source: { path: d.edsFile, watched_directory: { path: dirname(d.edsFile) } },
    },
  };
}

function modelClusters(c: GatewayConfig): unknown[] {
  const hosts = {
    cluster_name: NAMES.modelCluster,
    endpoints: [{ lb_endpoints: c.endpoints.map((e) => ({ endpoint: { address: socketAddress(e.socket) } })) }],
  };
  const base = {
    name: NAMES.modelCluster,
    type: c.discovery === null ? "STATIC" : "EDS",
    connect_timeout: "2s",
    per_connection_buffer_limit_bytes: c.bufferLimitBytes,
    ...(c.discovery === null ? { load_assignment: hosts } : { eds_cluster_config: edsClusterConfig(c.discovery) }),
  };
  if (c.variant === "override_host") {
    return [
      {
        ...base,
        ...(c.fallbackHosts > 0 ? { circuit_breakers: { thresholds: [{ priority: "DEFAULT", max_retries: MAX_CONCURRENT_RETRIES }] } } : {}),
        load_balancing_policy: {
          policies: [
            {
              typed_extension_config: {
                name: "envoy.load_balancing_policies.override_host",
                typed_config: typed("envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost", {
                  override_host_sources: [{ header: c.destinationHeader }],
                  fallback_policy: roundRobinPolicy(),
                }),
              },
            },
          ],
        },
      },
    ];
  }
  return [
    { ...base, lb_policy: "ROUND_ROBIN" },
    {
      name: NAMES.chosenCluster,
      type: "ORIGINAL_DST",
      lb_policy: "CLUSTER_PROVIDED",
      connect_timeout: "2s",
      per_connection_buffer_limit_bytes: c.bufferLimitBytes,
      original_dst_lb_config: { use_http_header: true, http_header_name: c.destinationHeader },
    },
  ];
}

/** The admin guard, when the filter follows a cluster through it: the model cluster (eds), the replicas' (peers.dns), or both. */
function adminGuardOf(c: GatewayConfig): AdminGuardOptions | null {
  const dns = c.peers?.dns ?? null;
  const clusters = [...(c.discovery === null ? [] : [NAMES.modelCluster]), ...(dns === null ? [] : [NAMES.peersCluster])];
  if (clusters.length === 0) return null;
  return { clusters, socketPath: c.discovery?.adminGuardSocket ?? dns!.adminGuardSocket, admin: c.admin };
}

/** peers.dns: Envoy resolves the name to every replica; the filter reads the hosts through the admin guard. */
function peersCluster(c: GatewayConfig): unknown[] {
  const dns = c.peers?.dns ?? null;
  if (dns === null) return [];
  return [
    {
      name: NAMES.peersCluster,
      type: "STRICT_DNS",
      connect_timeout: "1s",
      load_assignment: {
        cluster_name: NAMES.peersCluster,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: dns.host, port_value: dns.port } } } }] }],
      },
    },
  ];
}

function metricsCluster(c: GatewayConfig): unknown[] {
  if (c.metrics === null && c.peers === null) return [];
  return [
    {
      name: NAMES.metricsCluster,
      type: "ORIGINAL_DST",
      lb_policy: "CLUSTER_PROVIDED",
      connect_timeout: seconds(Math.min(1000, c.metrics?.timeoutMs ?? 1000)),
      // No http_header_name: the default x-envoy-original-dst-host, which the
      // filter puts on every scrape, names the endpoint's metrics address.
      original_dst_lb_config: { use_http_header: true },
    },
  ];
}

/**
 * Removes any client-sent destination header before the Wasm filter runs.
 * The filter removes it too, but with failure_policy FAIL_OPEN a failed VM is
 * skipped, and the header would then reach the override_host policy and let
 * the client choose among the endpoints (reports/hardening.md, "failure
 * policy"). Envoy's own header_mutation filter does not depend on the VM.
 */
function stripDestinationFilter(c: GatewayConfig): Record<string, unknown> {
  return {
    name: "envoy.filters.http.header_mutation",
    typed_config: typed("envoy.extensions.filters.http.header_mutation.v3.HeaderMutation", {
      mutations: { request_mutations: [{ remove: c.destinationHeader }] },
    }),
  };
}

/** The Envoy bootstrap (envoy.config.bootstrap.v3.Bootstrap) as a plain object. */
export function envoyBootstrap(c: GatewayConfig): Record<string, unknown> {
  const hcm: Record<string, unknown> = {
    stat_prefix: NAMES.statPrefix,
    route_config: {
      name: "prefix_router_routes",
      virtual_hosts: [{ name: "models", domains: ["*"], routes: routes(c) }],
    },
    http_filters: [
      stripDestinationFilter(c),
      wasmFilter(c),
      { name: "envoy.filters.http.router", typed_config: typed("envoy.extensions.filters.http.router.v3.Router") },
    ],
  };
  if (c.accessLog) hcm.access_log = accessLog(c);
  const guard = adminGuardOf(c);
  return {
    ...(c.discovery === null ? {} : { node: { id: NAMES.node, cluster: NAMES.node } }),
    admin: { address: socketAddress(c.admin) },
    stats_config: { stats_tags: envoyStatsTags() },
    static_resources: {
      listeners: [
        {
          name: NAMES.listener,
          address: socketAddress(c.listen),
          per_connection_buffer_limit_bytes: c.bufferLimitBytes,
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", hcm),
                },
              ],
            },
          ],
        },
        // After the model listener: the launcher reads the first listener's address.
        ...(guard === null ? [] : [adminGuardListener(guard)]),
      ],
      clusters: [...modelClusters(c), ...metricsCluster(c), ...peersCluster(c), ...(guard === null ? [] : adminGuardClusters(guard))],
    },
  };
}

// ---- YAML with comments ---------------------------------------------------------------------

type Path = Array<string | number>;

/** Puts a comment above the key at `path` (a map key) or above the sequence item at `path`. */
function comment(doc: YAML.Document, path: Path, text: string): void {
  const last = path[path.length - 1];
  const parent = doc.getIn(path.slice(0, -1), true) as unknown;
  if (YAML.isSeq(parent) && typeof last === "number") {
    const item = parent.items[last] as YAML.Node | undefined;
    if (item) item.commentBefore = text;
    return;
  }
  if (YAML.isMap(parent)) {
    const pair = parent.items.find((p) => YAML.isScalar(p.key) && p.key.value === last);
    if (pair && YAML.isScalar(pair.key)) pair.key.commentBefore = text;
  }
}

export interface RenderOptions {
  /** The command that regenerates this file, for the header. */
  generatedBy?: string;
}

/** The bootstrap as YAML, with a header saying what it is for and comments saying why. */
export function renderEnvoyYaml(c: GatewayConfig, options: RenderOptions = {}): string {
  const doc = new YAML.Document(envoyBootstrap(c));
  const listener = ["static_resources", "listeners", 0];
  const hcm = [...listener, "filter_chains", 0, "filters", 0, "typed_config"];
  const wasm = [...hcm, "http_filters", 1, "typed_config", "config"];
  const cluster0 = ["static_resources", "clusters", 0];

  comment(doc, ["admin"], " Loopback only: the admin API can stop Envoy and dump its configuration.");
  comment(doc, ["stats_config"],
    " Per-endpoint and pass-through filter stats become Prometheus labels:\n" +
    " wasmcustom.prefix_router.endpoint.<ip:port>.picks -> prefix_router_endpoint_picks{endpoint=\"<ip:port>\"}.\n" +
    " Envoy cuts the first capture group out of the name and takes the second as the value\n" +
    " (source/common/stats/tag_extractor_impl.cc). Same rules as scripts/gateway/stats-tags.ts.");
  comment(doc, [...listener, "per_connection_buffer_limit_bytes"],
    ` 2 x maxBodyBytes (${c.maxBodyBytes}): the filter buffers the whole request body before it routes;\n` +
    " past this limit Envoy answers 413 instead of letting the filter pass the request through.");
  comment(doc, [...hcm, "http_filters", 0],
    " Drops any client-sent destination header, whether or not the Wasm VM is alive (FAIL_OPEN\n" +
    " skips a failed VM, and the header would then choose the upstream).");
  comment(doc, [...hcm, "http_filters", 1],
    " prefix-router: reads the body, sets the destination header. Keep it before the router.");
  comment(doc, [...wasm, "vm_config", "vm_id"],
    " One vm_id for every worker's VM: proxy-wasm shared data is keyed by vm_id,\n" +
    " and the filter replicates its prefix index between workers through it.");
  comment(doc, [...wasm, "vm_config", "code"],
    " Relative paths are opened relative to Envoy's working directory (run it from the repository root).");
  comment(doc, [...wasm, "configuration"],
    " The filter's JSON configuration (README \"Configuration reference\"), generated with this file.");
  if (atLeast(c.envoyVersion, FAILURE_POLICY_SINCE)) {
    comment(doc, [...wasm, "failure_policy"],
      " A failed VM must not take traffic down: new requests skip the filter and go to the\n" +
      " fallback policy (no prefix affinity until the VM is back). FAIL_CLOSED would answer 503.");
  } else {
    comment(doc, [...wasm, "fail_open"],
      ` Envoy < ${FAILURE_POLICY_SINCE} has no failure_policy; the deprecated fail_open is its FAIL_OPEN.`);
  }
  if (c.holdsHeaders) {
    comment(doc, [...wasm, "allow_on_headers_stop_iteration"],
      " Required (Envoy >= 1.35.0): the filter holds the headers, reads the body, then sets the\n" +
      " header. Without it Envoy delivers no body until the filter continues, and the filter\n" +
      " passes every request through (passthrough.headers_not_held) after logging an error.");
  }
  if (c.variant === "override_host") {
    comment(doc, [...cluster0, "load_balancing_policy"],
      ` override_host (Envoy >= ${OVERRIDE_HOST_SINCE}): ${c.destinationHeader} is a comma-separated list\n` +
      " (the filter's pick, then its fallbacks); each host selection, retries included, takes the next\n" +
      " entry that is one of this cluster's hosts, healthy or not. With no header (the filter passed\n" +
      " the request through), or the list used up, the fallback policy picks. Envoy reads the header at\n" +
      " host selection, after the filter set it (source/extensions/load_balancing_policies/override_host/\n" +
      " load_balancer.cc getEndpoint, override_host_filter_state.h consumeNextHost).");
    if (c.fallbackHosts > 0) {
      comment(doc, [...hcm, "route_config", "virtual_hosts", 0, "routes", 0, "route", "retry_policy"],
        ` A server that refuses the connection costs a retry on the filter's next choice, not an error:\n` +
        ` one retry per fallback host listed (${c.fallbackHosts}), only where the server cannot have started on\n` +
        " the request (connect-failure, refused-stream, reset-before-request), so no inference runs twice.\n" +
        " previous_hosts keeps round robin off hosts already tried once the list is used up.");
      comment(doc, [...cluster0, "circuit_breakers"],
        ` Envoy's default allows 3 retries in flight per cluster: with a server down, every request sent\n` +
        " there retries at once, and past 3 the rest would fail. One per request in flight is enough.");
    }
  } else {
    comment(doc, [...hcm, "route_config", "virtual_hosts", 0, "routes"],
      " ORIGINAL_DST variant: a destination header naming a configured endpoint routes to the\n" +
      " ORIGINAL_DST cluster, anything else to round robin. The filter sets the header in its body\n" +
      " callback; a Wasm filter of ABI 0.2.1 that changes request headers clears the route cache,\n" +
      " so the router matches again on the new header (envoy changelogs/1.33.0.yaml, wasm).");
    comment(doc, ["static_resources", "clusters", 1, "original_dst_lb_config"],
      ` Connects to the ip:port in ${c.destinationHeader}. Envoy does not sanitize this header:\n` +
      " the filter strips client copies, and the routes above only send configured endpoints here.");
  }
  comment(doc, [...cluster0, "per_connection_buffer_limit_bytes"], " Same limit upstream: the buffered body is sent on in one piece.");
  if (c.discovery !== null) commentDiscovery(doc, c, c.discovery);
  if (c.metrics !== null) {
    const index = c.variant === "override_host" ? 1 : 2;
    comment(doc, ["static_resources", "clusters", index],
      " The filter's metrics scrapes (proxy_http_call) carry x-envoy-original-dst-host = the endpoint's\n" +
      " metrics address, so this one ORIGINAL_DST cluster reaches every endpoint. No route points here.");
  }
  const configNode = doc.getIn([...wasm, "configuration", "value"], true);
  if (YAML.isScalar(configNode)) configNode.type = "BLOCK_LITERAL";
  // IPv6 addresses such as ::1 are valid plain YAML 1.2 scalars, but a leading
  // ":" trips older parsers; quote every string value that starts with one.
  YAML.visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === "string" && node.value.startsWith(":")) node.type = "QUOTE_DOUBLE";
    },
  });

  doc.commentBefore = header(c, options);
  return doc.toString({ lineWidth: 0 });
}

/** Why the discovery parts are as they are (admin-guard.ts, eds-file.ts). */
function commentDiscovery(doc: YAML.Document, c: GatewayConfig, d: ResolvedDiscovery): void {
  const clusters = ["static_resources", "clusters"];
  const index = (name: string) => (doc.getIn(clusters, true) as YAML.YAMLSeq).items.findIndex((item) => YAML.isMap(item) && item.get("name") === name);
  comment(doc, ["node"], " EDS from a file is an xDS subscription: Envoy requires the node's id and cluster for it.");
  comment(doc, [...clusters, index(NAMES.modelCluster), "eds_cluster_config"],
    ` The hosts come from ${d.edsFile}.\n` +
    " Envoy applies a new version when a file is renamed into its directory (scripts/gateway/eds-file.ts\n" +
    " writes it so); a file it cannot parse is rejected and the hosts stay. Envoy does not start while\n" +
    " the file is missing. health_status (DRAINING, UNHEALTHY, ...) shows in the admin API's health_flags,\n" +
    " which the filter reads.");
  comment(doc, [...clusters, index(NAMES.adminGuard)],
    " The filter's discovery.adminCluster: its GET /clusters callouts connect to the guard's socket.");
  comment(doc, [...clusters, index(NAMES.adminCluster)],
    ` The admin API (${formatAddress(c.admin)}), which only the guard's route reaches. A cluster names the\n` +
    " admin port, so it is fixed: port 0 would be picked at start.");
  comment(doc, ["static_resources", "listeners", 1],
    ` The admin guard: the filter polls GET ${adminClustersPath(NAMES.modelCluster)} through it; any\n` +
    " other method, path or query is answered 403 here, so a callout cannot reach the admin API's\n" +
    " state-changing endpoints (POST /quitquitquit, /healthcheck/fail, ...). The :path match is raw and\n" +
    " whole (no path normalization is configured). Mode 0600 (384): only Envoy's user may connect.\n" +
    " It confines mistakes, not a malicious module, which could name the admin cluster itself.");
}

function header(c: GatewayConfig, options: RenderOptions): string {
  const n = c.endpoints.length;
  const what = c.discovery === null
    ? `${n} endpoint${n === 1 ? "" : "s"}`
    : `the hosts in ${c.discovery.edsFile} (EDS, followed by the filter through the admin API)`;
  const lines = [
    ` prefix-router: Envoy bootstrap for ${what} (${c.variant}). Generated; do not edit.`,
    options.generatedBy ? ` Regenerate: ${options.generatedBy}` : ` Generated by scripts/gateway/envoy-config.ts.`,
    ` Written for Envoy ${c.envoyVersion}.`,
  ];
  if (c.variant === "override_host") {
    lines.push(
      ` Needs Envoy >= ${OVERRIDE_HOST_SINCE}: the override_host load-balancing policy and the Wasm filter's`,
      ` allow_on_headers_stop_iteration both arrived in 1.35.0 (envoyproxy/envoy changelogs/1.35.0.yaml).`,
      ` Envoy ${ENVOY_VERSION} is the version \`npm start\` runs (scripts/gateway/envoy-version.ts).`,
    );
  } else {
    lines.push(
      ` Cut-over: Envoy < ${OVERRIDE_HOST_SINCE} has no override_host, so this variant routes with an ORIGINAL_DST`,
      ` cluster reading ${c.destinationHeader} (needs >= ${ORIGINAL_DST_HEADER_NAME_SINCE}). From ${OVERRIDE_HOST_SINCE} on, use the override_host config.`,
    );
    if (!c.holdsHeaders) {
      lines.push(
        ` On Envoy < ${STOP_ITERATION_SINCE} a Wasm filter cannot hold the request headers while it reads the body`,
        ` (allow_on_headers_stop_iteration does not exist), so prefix-router CANNOT ROUTE here: it logs an`,
        ` error and passes every request to round robin (passthrough.headers_not_held). See README`,
        ` "Envoy older than 1.35".`,
      );
    }
  }
  lines.push(` Run from the repository root after \`npm run build\`: func-e run -c <this file>`);
  return lines.join("\n");
}

/**
 * Parses "ip:port[=metricsIp:port],…" (the CLI's --endpoints and the launcher's
 * ENDPOINTS). Validation happens in resolveConfig.
 */
export function parseEndpointList(list: string): EndpointInput[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const eq = s.indexOf("=");
      return eq < 0 ? { address: s } : { address: s.substring(0, eq), metricsAddress: s.substring(eq + 1) };
    });
}
