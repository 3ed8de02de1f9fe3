// Safe wrappers over the raw host calls: each marshals arguments into linear
// memory, calls the host once, and turns the status into what the caller needs.
// An expected status (NotFound for a missing header or key, CasMismatch on a
// contended write) is returned for the caller to decide on; nothing here traps
// or throws on a host status, because Envoy returns non-Ok codes in ordinary
// operation (e.g. BadArgument for request headers once they have been forwarded,
// envoy source/extensions/common/wasm/context.cc `getMap`).
import * as raw from "./imports";
import { WasmResult, LogLevel } from "./enums";
import { HostBuffer, clearReturnSlots, returnPtrSlot, returnSizeSlot, returnValueSlot } from "./memory";

// ---- logging -------------------------------------------------------------

/** Envoy's `wasm` logger level, refreshed by refreshLogLevel() (on tick) so
 * that logs below it cost no UTF-8 encoding and no host call. */
let currentLogLevel: i32 = LogLevel.Info;

export function refreshLogLevel(): void {
  if (raw.proxy_get_log_level(returnValueSlot()) == WasmResult.Ok) {
    currentLogLevel = <i32>load<u32>(returnValueSlot());
  }
}

export function log(level: i32, message: string): void {
  if (level < currentLogLevel) return;
  const utf8 = String.UTF8.encode(message);
  raw.proxy_log(level, changetype<usize>(utf8), utf8.byteLength);
}

// ---- time and timers -----------------------------------------------------

/**
 * Monotonic time in nanoseconds, from an arbitrary origin: what every timer,
 * lease, timeout and staleness check uses, so that the wall clock stepping
 * (NTP, a VM migration, an operator) neither stops nor rushes them. 0 if the
 * host refuses the clock (no known host does).
 */
export function monotonicNanos(): u64 {
  store<u64>(returnValueSlot(), 0);
  if (raw.wasi_clock_time_get(1, 1, returnValueSlot()) != 0) return 0;
  return load<u64>(returnValueSlot());
}

/** Wall-clock time in nanoseconds since the epoch; only where a wall time is wanted (a salt, a fallback tag). */
export function nowNanos(): u64 {
  store<u64>(returnValueSlot(), 0);
  raw.proxy_get_current_time_nanoseconds(returnValueSlot());
  return load<u64>(returnValueSlot());
}

/** 64 random bits from the host (WASI random_get), 0 if it refuses (no known host does). */
export function randomU64(): u64 {
  store<u64>(returnValueSlot(), 0);
  if (raw.wasi_random_get(returnValueSlot(), 8) != 0) return 0;
  return load<u64>(returnValueSlot());
}

/** More variables or bytes than this in the VM's environment are taken for a host error. */
const MAX_ENVIRONMENT_COUNT: u32 = 4096;
const MAX_ENVIRONMENT_BYTES: u32 = 1 << 20;

/**
 * The value of the VM's environment variable `name`, or null if it has none
 * (Envoy leaves out a host_env_keys entry its own environment lacks). For
 * secrets that must not sit in the filter's configuration text; read at
 * configuration, never per request.
 */
export function environmentVariable(name: string): string | null {
  clearReturnSlots();
  if (raw.wasi_environ_sizes_get(returnPtrSlot(), returnSizeSlot()) != 0) return null;
  const count = load<u32>(returnPtrSlot());
  const bytes = load<u32>(returnSizeSlot());
  if (count == 0 || bytes == 0 || count > MAX_ENVIRONMENT_COUNT || bytes > MAX_ENVIRONMENT_BYTES) return null;
  const pointers = heap.alloc(<usize>count << 2);
  const text = heap.alloc(<usize>bytes);
  const end = text + <usize>bytes;
  const prefix = String.UTF8.encode(name + "=");
  const prefixLength = <usize>prefix.byteLength;
  let value: string | null = null;
  if (raw.wasi_environ_get(pointers, text) == 0) {
    for (let i: u32 = 0; i < count && value === null; i++) {
      const start = <usize>load<u32>(pointers + (<usize>i << 2));
      if (start < text || start >= end) continue;
      let stop = start;
      while (stop < end && load<u8>(stop) != 0) stop++;
      if (stop - start >= prefixLength && memory.compare(start, changetype<usize>(prefix), prefixLength) == 0) {
        value = String.UTF8.decodeUnsafe(start + prefixLength, stop - start - prefixLength);
      }
    }
  }
  heap.free(pointers);
  heap.free(text);
  return value;
}

export function setTickPeriodMs(ms: u32): void {
  raw.proxy_set_tick_period_milliseconds(ms);
}

// ---- buffers -------------------------------------------------------------

/** Copies [start, start+maxSize) of a host buffer into `out` (which then owns it). */
export function getBufferBytes(bufferType: i32, start: u32, maxSize: u32, out: HostBuffer): u32 {
  out.release();
  clearReturnSlots();
  const status = raw.proxy_get_buffer_bytes(bufferType, start, maxSize, out.ptrSlot(), out.sizeSlot());
  out.takeFromReturnSlots();
  return status;
}

// ---- header maps -----------------------------------------------------------

/** Reads the first value of `key` into `out`. NotFound when absent. */
export function getHeader(mapType: i32, key: ArrayBuffer, out: HostBuffer): u32 {
  out.release();
  clearReturnSlots();
  const status = raw.proxy_get_header_map_value(
    mapType, changetype<usize>(key), key.byteLength, out.ptrSlot(), out.sizeSlot());
  out.takeFromReturnSlots();
  return status;
}

/**
 * Reads a whole header map, serialized as pairs (pairs.ts PairsReader), into
 * `out`: one host call, and one copy into the module, however many headers
 * are read from it. An empty or missing map comes back Ok with size 0.
 */
export function getHeaderPairs(mapType: i32, out: HostBuffer): u32 {
  out.release();
  clearReturnSlots();
  const status = raw.proxy_get_header_map_pairs(mapType, out.ptrSlot(), out.sizeSlot());
  out.takeFromReturnSlots();
  return status;
}

export function replaceHeader(mapType: i32, key: ArrayBuffer, valuePtr: usize, valueLen: usize): u32 {
  return raw.proxy_replace_header_map_value(mapType, changetype<usize>(key), key.byteLength, valuePtr, valueLen);
}

export function removeHeader(mapType: i32, key: ArrayBuffer): u32 {
  return raw.proxy_remove_header_map_value(mapType, changetype<usize>(key), key.byteLength);
}

// ---- shared data -------------------------------------------------------------

/** Reads a shared-data value and its CAS token (out.cas) into `out`; NotFound when the key was never set. */
export function getSharedData(keyPtr: usize, keyLen: usize, out: HostBuffer): u32 {
  out.release();
  clearReturnSlots();
  store<u32>(returnValueSlot(), 0);
  const status = raw.proxy_get_shared_data(keyPtr, keyLen, out.ptrSlot(), out.sizeSlot(), returnValueSlot());
  out.takeFromReturnSlots();
  out.cas = status == WasmResult.Ok ? load<u32>(returnValueSlot()) : 0;
  return status;
}

/** Writes a shared-data value; cas 0 is unconditional, else CasMismatch if the key changed. */
export function setSharedData(keyPtr: usize, keyLen: usize, valuePtr: usize, valueLen: usize, cas: u32): u32 {
  return raw.proxy_set_shared_data(keyPtr, keyLen, valuePtr, valueLen, cas);
}

/** No gRPC status for proxy_send_local_response: Envoy uses one only in 0..16 (context.cc sendLocalResponse; ENVOY_HOST.md). */
const NO_GRPC_STATUS: u32 = u32.MAX_VALUE;

/**
 * Answers the current stream from the filter instead of the upstream (Envoy
 * sends it once the callback returns). The body is bytes, any bytes: Envoy
 * takes it as a string_view.
 */
export function sendLocalResponse(status: u32, bodyPtr: usize, bodyLen: usize, headerPairs: ArrayBuffer, details: ArrayBuffer): u32 {
  return raw.proxy_send_local_response(status, changetype<usize>(details), details.byteLength, bodyPtr, bodyLen,
    changetype<usize>(headerPairs), headerPairs.byteLength, NO_GRPC_STATUS);
}

// ---- HTTP callouts -------------------------------------------------------------

/** Dispatches an HTTP call; returns the token, or 0 when the host refused it. */
export function httpCall(cluster: ArrayBuffer, headerPairs: ArrayBuffer, timeoutMs: u32): u32 {
  store<u32>(returnValueSlot(), 0);
  const status = raw.proxy_http_call(
    changetype<usize>(cluster), cluster.byteLength,
    changetype<usize>(headerPairs), headerPairs.byteLength,
    0, 0, 0, 0, timeoutMs, returnValueSlot());
  return status == WasmResult.Ok ? load<u32>(returnValueSlot()) : 0;
}

// ---- metrics -------------------------------------------------------------

/** Defines a stat (Envoy names it `wasmcustom.<name>`); returns its id, 0 on failure. */
export function defineMetric(metricType: i32, name: string): u32 {
  const utf8 = String.UTF8.encode(name);
  store<u32>(returnValueSlot(), 0);
  const status = raw.proxy_define_metric(metricType, changetype<usize>(utf8), utf8.byteLength, returnValueSlot());
  return status == WasmResult.Ok ? load<u32>(returnValueSlot()) : 0;
}

export function incrementMetric(id: u32, delta: i64): void {
  if (id != 0) raw.proxy_increment_metric(id, delta);
}

export function recordMetric(id: u32, value: u64): void {
  if (id != 0) raw.proxy_record_metric(id, value);
}

// ---- streams and contexts ------------------------------------------------------

export function continueRequest(): u32 {
  return raw.proxy_continue_stream(0);
}

export function setEffectiveContext(contextId: u32): u32 {
  return raw.proxy_set_effective_context(contextId);
}

/**
 * Body bytes Envoy has received so far on the effective stream, whether or not
 * it has handed them to the filter; -1 when the host cannot say. The
 * `request.total_size` attribute is the stream's bytesReceived (counted as the
 * codec hands over data, before any filter sees it: source/common/http/
 * conn_manager_impl.cc, ActiveStream::decodeData) plus the request
 * header map's byteSize() (envoy source/extensions/filters/common/expr/context.cc,
 * RequestWrapper), and proxy_get_header_map_size returns that same byteSize()
 * (source/extensions/common/wasm/context.cc, getHeaderMapSize). Both need the
 * request headers still held: call before continuing the stream.
 */
export function requestBodyBytesReceived(): i64 {
  store<u32>(returnValueSlot(), 0);
  if (raw.proxy_get_header_map_size(0 /* request headers */, returnValueSlot()) != WasmResult.Ok) return -1;
  const headerBytes = <i64>load<u32>(returnValueSlot());
  const buf = new HostBuffer();
  const status = getProperty("request\0total_size", buf);
  const total: i64 = status == WasmResult.Ok && buf.size == 8 ? load<i64>(buf.ptr) : -1;
  buf.release();
  return total < headerBytes ? -1 : total - headerBytes;
}

/** Reads a property; `path` segments are joined by "\0" (e.g. "plugin_root_id"). */
export function getProperty(path: string, out: HostBuffer): u32 {
  const utf8 = String.UTF8.encode(path);
  out.release();
  clearReturnSlots();
  const status = raw.proxy_get_property(changetype<usize>(utf8), utf8.byteLength, out.ptrSlot(), out.sizeSlot());
  out.takeFromReturnSlots();
  return status;
}

const STATUS_NAME = String.UTF8.encode(":status");

/** Whether the `:status` of header map `map` (a response's, or a callout answer's) is exactly "200". */
export function statusIs200(map: i32, scratch: HostBuffer): bool {
  const ok = getHeader(map, STATUS_NAME, scratch) == WasmResult.Ok &&
    scratch.size == 3 && load<u8>(scratch.ptr) == 0x32 && load<u16>(scratch.ptr, 1) == 0x3030;
  scratch.release();
  return ok;
}
