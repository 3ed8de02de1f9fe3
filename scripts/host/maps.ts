// Which header map a map type names for a context at a given moment, and the
// header-map host-call semantics, following envoy source/extensions/common/wasm/
// context.cc getMap / getConstMap and the *HeaderMap* methods: reads use the
// const view (access-log maps during on_log, the root's callout response), edits
// use the mutable view; a map Envoy no longer holds is BadArgument (NotFound
// during on_log); keys are lower-cased; values are the first entry's.
import { MapType, WasmResult } from "./enums.ts";
import type { HeaderMap } from "./header-map.ts";
import type { Pair } from "./pairs.ts";
import type { Context } from "./context.ts";

/** envoy Context::getMap: maps a filter may modify now. */
export function getMap(ctx: Context, type: number): HeaderMap | null {
  switch (type) {
    case MapType.RequestHeaders:
      return ctx.requestHeaders;
    case MapType.RequestTrailers:
      if (ctx.requestTrailers === null && ctx.requestBodyBuffer !== null && ctx.endOfStream && ctx.callbacks !== null) {
        ctx.requestTrailers = ctx.callbacks.addDecodedTrailers();
      }
      return ctx.requestTrailers;
    case MapType.ResponseHeaders:
      return ctx.responseHeaders;
    case MapType.ResponseTrailers:
      if (ctx.responseTrailers === null && ctx.responseBodyBuffer !== null && ctx.endOfStream && ctx.callbacks !== null) {
        ctx.responseTrailers = ctx.callbacks.addEncodedTrailers();
      }
      return ctx.responseTrailers;
    default:
      return null;
  }
}

/** envoy Context::getConstMap: maps a filter may read now. */
export function getConstMap(ctx: Context, type: number): HeaderMap | null {
  switch (type) {
    case MapType.RequestHeaders:
      return ctx.accessLogPhase ? ctx.accessLog.requestHeaders : ctx.requestHeaders;
    case MapType.RequestTrailers:
      return ctx.accessLogPhase ? null : ctx.requestTrailers;
    case MapType.ResponseHeaders:
      return ctx.accessLogPhase ? ctx.accessLog.responseHeaders : ctx.responseHeaders;
    case MapType.ResponseTrailers:
      return ctx.accessLogPhase ? ctx.accessLog.responseTrailers : ctx.responseTrailers;
    case MapType.HttpCallResponseHeaders:
      return ctx.rootContext().httpCallResponse?.headers ?? null;
    case MapType.HttpCallResponseTrailers:
      return ctx.rootContext().httpCallResponse?.trailers ?? null;
    default:
      // gRPC metadata maps: no gRPC in the emulator.
      return null;
  }
}

export function getHeaderMapValue(ctx: Context, type: number, key: string): { result: number; value?: string } {
  const map = getConstMap(ctx, type);
  if (map === null) {
    // Maps might be absent in the access log phase; otherwise the map is not available now.
    return { result: ctx.accessLogPhase ? WasmResult.NotFound : WasmResult.BadArgument };
  }
  const value = map.get(key);
  return value === undefined ? { result: WasmResult.NotFound } : { result: WasmResult.Ok, value };
}

export function getHeaderMapPairs(ctx: Context, type: number): Pair[] {
  return getConstMap(ctx, type)?.toList() ?? [];
}

export function addHeaderMapValue(ctx: Context, type: number, key: string, value: string): number {
  const map = getMap(ctx, type);
  if (map === null) return WasmResult.BadArgument;
  map.add(key, value);
  return WasmResult.Ok;
}

export function replaceHeaderMapValue(ctx: Context, type: number, key: string, value: string): number {
  const map = getMap(ctx, type);
  if (map === null) return WasmResult.BadArgument;
  map.set(key, value);
  return WasmResult.Ok;
}

export function removeHeaderMapValue(ctx: Context, type: number, key: string): number {
  const map = getMap(ctx, type);
  if (map === null) return WasmResult.BadArgument;
  map.remove(key);
  return WasmResult.Ok;
}

/** Removes every entry (pseudo-headers included), then adds the pairs in order. */
export function setHeaderMapPairs(ctx: Context, type: number, pairs: readonly Pair[]): number {
  const map = getMap(ctx, type);
  if (map === null) return WasmResult.BadArgument;
  map.clear();
  for (const [k, v] of pairs) map.add(k, v);
  return WasmResult.Ok;
}

/** HeaderMap::byteSize() of the mutable map. */
export function getHeaderMapSize(ctx: Context, type: number): { result: number; size?: number } {
  const map = getMap(ctx, type);
  if (map === null) return { result: WasmResult.BadArgument };
  return { result: WasmResult.Ok, size: map.byteSize() };
}
