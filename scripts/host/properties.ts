// proxy_get_property / proxy_set_property semantics for the attributes the
// emulator knows (envoy source/extensions/common/wasm/context.cc findValue /
// getProperty / setProperty / serializeValue, and the CEL activation in
// source/extensions/filters/common/expr/context.cc). Paths are segments joined
// by NUL. request.* reads the request headers Envoy still holds (or, during
// on_log, the access-log headers); once the filter has let them go, header
// attributes are NotFound. Values: strings raw, integers and timestamps 8 bytes
// little-endian, maps in the pairs format. Filter-state values written by
// proxy_set_property ("wasm.<path>") are returned raw. Everything else is
// NotFound (see README "What we could not confirm").
import { WasmResult } from "./enums.ts";
import type { HeaderMap } from "./header-map.ts";
import { encodePairs } from "./pairs.ts";
import type { Context } from "./context.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Value =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "map"; get(key: string): Value | undefined; entries(): [string, string][] };

const str = (s: string): Value => ({ kind: "bytes", bytes: encoder.encode(s) });
const int64 = (n: bigint): Value => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, n, true);
  return { kind: "bytes", bytes: b };
};

/** CEL HeadersWrapper: values of a repeated header joined by ","; a missing map is empty. */
function headersValue(map: HeaderMap | null): Value {
  return {
    kind: "map",
    get(key) {
      if (map === null) return undefined;
      const all = map.getAll(key);
      return all.length === 0 ? undefined : str(all.join(","));
    },
    entries() {
      if (map === null) return [];
      const keys = [...new Set(map.toList().map(([k]) => k))];
      return keys.map((k) => [k, map.getAll(k).join(",")]);
    },
  };
}

function requestValue(ctx: Context, headers: HeaderMap | null): Value {
  const path = () => headers?.get(":path");
  const fields: Record<string, () => Value | undefined> = {
    path: () => (path() === undefined ? undefined : str(path()!)),
    url_path: () => (path() === undefined ? undefined : str(path()!.split("?")[0])),
    query: () => (path() === undefined ? undefined : str(path()!.includes("?") ? path()!.slice(path()!.indexOf("?") + 1) : "")),
    host: () => opt(headers?.get(":authority")),
    scheme: () => opt(headers?.get(":scheme")),
    method: () => opt(headers?.get(":method")),
    referer: () => opt(headers?.get("referer")),
    useragent: () => opt(headers?.get("user-agent")),
    id: () => opt(headers?.get("x-request-id")),
    headers: () => headersValue(headers),
    protocol: () => str(ctx.callbacks!.streamInfo.protocol),
    // CEL RequestWrapper (expr/context.cc): size is content-length when the
    // request has one, else the body bytes received; total_size is the body
    // bytes received plus the header map's byteSize(). Both need the headers.
    size: () => {
      if (headers === null) return undefined;
      const length = headers.get("content-length");
      return int64(length !== undefined && /^\d+$/.test(length) ? BigInt(length) : BigInt(ctx.callbacks!.streamInfo.bytesReceived));
    },
    total_size: () => (headers === null ? undefined : int64(BigInt(ctx.callbacks!.streamInfo.bytesReceived + headers.byteSize()))),
    time: () => int64(BigInt(Math.round(ctx.callbacks!.streamInfo.startTimeMs)) * 1_000_000n),
  };
  return { kind: "map", get: (k) => fields[k]?.(), entries: () => [] };
}

function responseValue(headers: HeaderMap | null, trailers: HeaderMap | null): Value {
  const fields: Record<string, () => Value | undefined> = {
    code: () => {
      const s = headers?.get(":status");
      return s === undefined ? undefined : int64(BigInt(s));
    },
    headers: () => headersValue(headers),
    trailers: () => headersValue(trailers),
  };
  return { kind: "map", get: (k) => fields[k]?.(), entries: () => [] };
}

const opt = (s: string | undefined): Value | undefined => (s === undefined ? undefined : str(s));

/** envoy Context::findValue for the top-level identifier. */
function findValue(ctx: Context, name: string): Value | undefined {
  const stream = ctx.callbacks;
  if (stream !== null) {
    if (name === "request") return requestValue(ctx, ctx.requestHeaders ?? ctx.accessLog.requestHeaders);
    if (name === "response") {
      return responseValue(ctx.responseHeaders ?? ctx.accessLog.responseHeaders, ctx.responseTrailers ?? ctx.accessLog.responseTrailers);
    }
    if (name === "connection_id") return int64(BigInt(stream.streamInfo.id));
  }
  const plugin = ctx.plugin;
  if (name === "plugin_name") return plugin === null ? undefined : str(plugin.name);
  if (name === "plugin_root_id") return str(plugin?.rootId ?? "");
  if (name === "plugin_vm_id") return str(ctx.vm?.vmId ?? "");
  if (stream !== null) {
    const state = ctx.filterState.get(`wasm.${name}`);
    if (state !== undefined) return { kind: "bytes", bytes: state };
  }
  return undefined;
}

/** envoy serializeValue: maps become pairs of their entries. */
function serialize(v: Value): Uint8Array {
  return v.kind === "bytes" ? v.bytes : encodePairs(v.entries());
}

export function getProperty(ctx: Context, path: Uint8Array): { result: number; value?: Uint8Array } {
  const text = decoder.decode(path);
  let value: Value | undefined;
  let start = 0;
  let first = true;
  while (start < text.length) {
    let end = text.indexOf("\0", start);
    if (end < 0) end = text.length;
    const part = text.slice(start, end);
    start = end + 1;
    if (first) {
      first = false;
      value = findValue(ctx, part);
    } else if (value?.kind === "map") {
      value = value.get(part);
    } else {
      value = undefined;
    }
    if (value === undefined) return { result: WasmResult.NotFound };
  }
  if (value === undefined) return { result: WasmResult.SerializationFailure };
  return { result: WasmResult.Ok, value: serialize(value) };
}

/** envoy Context::setProperty: needs stream info (a stream context); the default prototype takes any bytes. */
export function setProperty(ctx: Context, path: Uint8Array, value: Uint8Array): number {
  if (ctx.callbacks === null) return WasmResult.NotFound;
  ctx.filterState.set(`wasm.${decoder.decode(path)}`, value);
  return WasmResult.Ok;
}
