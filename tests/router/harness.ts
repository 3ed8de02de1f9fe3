// Helpers for driving the built router through the host emulator: a gateway
// with N worker VMs in front of fake endpoint addresses, and one-call requests
// that return where the filter sent them.
import { Envoy, VirtualClock } from "../../scripts/host/index.ts";
import type { Plugin } from "../../scripts/host/index.ts";

export const ROUTER_WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
export const DEST = "x-gateway-destination-endpoint";

export function addresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:8000`);
}

export interface GatewayOptions {
  endpoints?: number;
  vms?: number;
  config?: Record<string, unknown>;
  allowOnHeadersStopIteration?: boolean;
  vmId?: string;
}

export async function gateway(opts: GatewayOptions = {}) {
  const clock = new VirtualClock();
  const envoy = new Envoy({ clock, logLevel: "info" });
  const config = { endpoints: addresses(opts.endpoints ?? 4).map((address) => ({ address })), ...opts.config };
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router",
    rootId: "prefix_router",
    vmId: opts.vmId ?? "prefix_router",
    wasm: ROUTER_WASM,
    configuration: JSON.stringify(config),
    concurrency: opts.vms ?? 1,
    allowOnHeadersStopIteration: opts.allowOnHeadersStopIteration ?? true,
  });
  return { clock, envoy, plugin, config };
}

export type Gateway = Awaited<ReturnType<typeof gateway>>;

export function chatBody(messages: Array<[string, string]>, model = "llama"): string {
  return JSON.stringify({ model, messages: messages.map(([role, content]) => ({ role, content })), max_tokens: 16 });
}

export interface Sent {
  stream: ReturnType<Plugin["newStream"]>;
  /** The endpoint the filter chose: the first entry of the destination header. */
  destination: string | undefined;
  /** The entries after it, best first: where override_host sends each retry. */
  fallbacks: string[];
}

/** Sends one POST through the filter; the stream stays open unless `complete`. */
export function send(gw: { plugin: Plugin }, body: string, opts: { vm?: number; path?: string; complete?: boolean; chunks?: number; headers?: Record<string, string> } = {}): Sent {
  const stream = gw.plugin.newStream(opts.vm);
  stream.sendRequestHeaders({
    ":method": "POST",
    ":path": opts.path ?? "/v1/chat/completions",
    ":authority": "gateway",
    "content-type": "application/json",
    ...opts.headers,
  }, false);
  const bytes = Buffer.from(body);
  const chunks = Math.max(1, opts.chunks ?? 1);
  const size = Math.ceil(bytes.length / chunks);
  for (let i = 0; i < chunks; i++) {
    const last = i === chunks - 1;
    stream.sendRequestBody(bytes.subarray(i * size, last ? bytes.length : (i + 1) * size), last);
  }
  const list = destinationList(header(stream.requestHeaders, DEST));
  if (opts.complete) stream.complete();
  return { stream, destination: list[0], fallbacks: list.slice(1) };
}

/** A destination header value as override_host reads it: split on ",", trimmed, empty entries skipped. */
export function destinationList(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

export function header(headers: Array<[string, string]>, name: string): string | undefined {
  return headers.find(([k]) => k === name)?.[1];
}

/** A stat's value after the next tick (the filter flushes counters on its tick; 100 ms covers the default tickMs, 25). */
export function stat(gw: Gateway, name: string): number {
  gw.clock.advance(100);
  const value = gw.envoy.stats.get(`wasmcustom.${name}`);
  return typeof value === "number" ? value : Number(value ?? 0);
}

/** Deterministic filler text: `n` characters seeded by `seed`. */
export function text(seed: number, n: number): string {
  let out = "";
  let x = seed * 2654435761 >>> 0;
  while (out.length < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    out += "lorem ipsum dolor sit amet consectetur adipiscing elit sed do "[x % 61] ;
  }
  return out;
}
