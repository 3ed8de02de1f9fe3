// The built filter (build/prefix_router.wasm) in the host emulator, set up the
// way the hardening scenarios need it: N worker VMs in front of configured
// endpoint addresses, optional metrics clusters, a failure policy; plus
// one-call requests and the few readings every scenario takes (destination,
// stats, in-flight totals). It owns no scenario logic.
import { readFileSync } from "node:fs";
import { Envoy, RealClock, VirtualClock, type ClusterConfig, type FailurePolicy, type HttpStream, type Plugin } from "../host/index.ts";

export const ROUTER_WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
export const DEST = "x-gateway-destination-endpoint";

export function routerWasm(): Uint8Array {
  return new Uint8Array(readFileSync(ROUTER_WASM));
}

/** n endpoint addresses 10.0.0.1:8000 … (10.0.1.x past 254). */
export function addresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.0.${Math.floor(i / 254)}.${(i % 254) + 1}:8000`);
}

export interface GatewayOptions {
  endpoints?: number;
  /** Endpoint entries as configured (default: addresses(endpoints) without metricsAddress). */
  endpointEntries?: Array<{ address: string; metricsAddress?: string }>;
  vms?: number;
  config?: Record<string, unknown>;
  clusters?: Record<string, ClusterConfig>;
  failurePolicy?: FailurePolicy;
  reloadBackoffMs?: number;
  bufferLimitBytes?: number;
  wasm?: Uint8Array;
  vmId?: string;
  seed?: number;
  /** Real time (timers, callout timeouts) instead of a virtual clock. */
  realTime?: boolean;
}

export interface Gateway {
  clock: VirtualClock | RealClock;
  envoy: Envoy;
  plugin: Plugin;
  endpoints: string[];
  config: Record<string, unknown>;
}

export async function gateway(o: GatewayOptions = {}): Promise<Gateway> {
  const clock = o.realTime ? new RealClock() : new VirtualClock();
  const envoy = new Envoy({ clock, logLevel: "warn", clusters: o.clusters, bufferLimitBytes: o.bufferLimitBytes, seed: o.seed, recordLogs: true });
  const entries = o.endpointEntries ?? addresses(o.endpoints ?? 4).map((address) => ({ address }));
  const config = { endpoints: entries, ...o.config };
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router",
    rootId: "prefix_router",
    vmId: o.vmId ?? "prefix_router",
    wasm: o.wasm ?? routerWasm(),
    configuration: JSON.stringify(config),
    concurrency: o.vms ?? 1,
    allowOnHeadersStopIteration: true,
    failurePolicy: o.failurePolicy,
    reloadBackoffMs: o.reloadBackoffMs,
  });
  return { clock, envoy, plugin, endpoints: entries.map((e) => e.address), config };
}

export interface RequestOptions {
  vm?: number;
  path?: string;
  method?: string;
  headers?: Array<[string, string]>;
  /** Body frames (default: one). */
  chunks?: number;
  /** End the stream with trailers instead of the last body frame. */
  trailers?: boolean;
  /** Send headers only (end of stream on headers). */
  noBody?: boolean;
}

export interface Sent {
  stream: HttpStream;
  /** The chosen endpoint of every destination header Envoy now holds for the request (its first entry). */
  destinations: string[];
  /** Every entry of those headers: the chosen endpoints and their fallbacks. */
  listed: string[];
}

/** One request through the filter; the stream stays open (complete() or reset() it). */
export function send(gw: Gateway, body: Uint8Array | string, o: RequestOptions = {}): Sent {
  const stream = gw.plugin.newStream(o.vm);
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  const headers: Array<[string, string]> = [
    [":method", o.method ?? "POST"],
    [":path", o.path ?? "/v1/chat/completions"],
    [":authority", "gateway"],
    ["content-type", "application/json"],
    ...(o.headers ?? []),
  ];
  stream.sendRequestHeaders(headers, o.noBody === true);
  if (!o.noBody) {
    const chunks = Math.max(1, Math.min(o.chunks ?? 1, Math.max(1, bytes.length)));
    const size = Math.ceil(bytes.length / chunks);
    for (let i = 0; i < chunks; i++) {
      const last = i === chunks - 1;
      stream.sendRequestBody(bytes.subarray(i * size, last ? bytes.length : (i + 1) * size), last && !o.trailers);
    }
    if (o.trailers) stream.sendRequestTrailers({ "x-trailer": "1" });
  }
  return { stream, destinations: destinationsOf(stream), listed: listedOf(stream) };
}

function destinationValues(stream: HttpStream): string[] {
  const list = stream.upstreamRequest?.headers ?? stream.requestHeaders;
  return list.filter(([k]) => k === DEST).map(([, v]) => v);
}

/**
 * A destination header's entries as Envoy's override_host reads them: split on
 * ",", whitespace trimmed, empty entries skipped (the filter lists the chosen
 * endpoint, then its fallbacks).
 */
export function entriesOf(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The chosen endpoint (first entry) of each destination header. */
export function destinationsOf(stream: HttpStream): string[] {
  return destinationValues(stream).map((v) => entriesOf(v)[0] ?? v);
}

/** Every entry of every destination header. */
export function listedOf(stream: HttpStream): string[] {
  return destinationValues(stream).flatMap(entriesOf);
}

/** A counter or gauge (wasmcustom. prefix added), 0 when absent. */
export function stat(gw: Gateway, name: string): number {
  const v = gw.envoy.stats.get(`wasmcustom.${name}`);
  return typeof v === "number" ? v : v === undefined ? 0 : Number(v);
}

/** Sum of the per-endpoint in-flight gauges (flushed on ticks). */
export function inFlightTotal(gw: Gateway): number {
  return gw.endpoints.reduce((sum, a) => sum + stat(gw, `prefix_router.endpoint.${a}.in_flight`), 0);
}

/** Advances virtual time in tick-sized steps, so every VM ticks on the way. */
export function advance(gw: Gateway, ms: number, step = 100): void {
  const clock = gw.clock;
  if (!(clock instanceof VirtualClock)) throw new Error("advance() needs a virtual clock");
  for (let t = 0; t < ms; t += step) clock.advance(Math.min(step, ms - t));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function chatBody(messages: Array<[string, string]>, model = "llama-3.1-8b"): string {
  return JSON.stringify({ model, messages: messages.map(([role, content]) => ({ role, content })), max_tokens: 16 });
}

/** Deterministic filler text of n characters. */
export function filler(seed: number, n: number): string {
  const words = ["the", "model", "cache", "prefix", "token", "route", "envoy", "server", "block", "hash", "query", "answer"];
  let x = (seed * 2654435761) >>> 0;
  let s = "";
  while (s.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += words[x % words.length] + " ";
  }
  return s.slice(0, n);
}
