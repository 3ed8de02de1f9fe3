// ABI enum values as numbers, and the Envoy-side status names the host converts
// VM return values into. Values follow the proxy-wasm spec v0.2.1 and
// proxy-wasm-cpp-sdk proxy_wasm_enums.h / proxy_wasm_common.h; statuses the spec
// does not list (BadExpression, ResultMismatch, BrokenConnection) are the ones
// cpp-host and Envoy really return. Nothing here has behaviour.

export const WasmResult = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  ParseFailure: 4,
  BadExpression: 5,
  InvalidMemoryAccess: 6,
  Empty: 7,
  CasMismatch: 8,
  ResultMismatch: 9,
  InternalFailure: 10,
  BrokenConnection: 11,
  Unimplemented: 12,
} as const;
export type WasmResultCode = (typeof WasmResult)[keyof typeof WasmResult];

/** spdlog levels as Envoy passes them through proxy_log / proxy_get_log_level. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "critical", "off"] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export function logLevelNumber(name: LogLevelName): number {
  return LOG_LEVELS.indexOf(name);
}

export const BufferType = {
  HttpRequestBody: 0,
  HttpResponseBody: 1,
  DownstreamData: 2,
  UpstreamData: 3,
  HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5,
  VmConfiguration: 6,
  PluginConfiguration: 7,
  CallData: 8,
  MAX: 8,
} as const;

export const MapType = {
  RequestHeaders: 0,
  RequestTrailers: 1,
  ResponseHeaders: 2,
  ResponseTrailers: 3,
  GrpcReceiveInitialMetadata: 4,
  GrpcReceiveTrailingMetadata: 5,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
  MAX: 7,
} as const;

export const StreamType = { Request: 0, Response: 1, Downstream: 2, Upstream: 3, MAX: 3 } as const;

export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2, MAX: 2 } as const;

/** Envoy Http::FilterHeadersStatus, in the order of its numeric values. */
export const HEADERS_STATUS = [
  "Continue",
  "StopIteration",
  "ContinueAndEndStream",
  "StopAllIterationAndBuffer",
  "StopAllIterationAndWatermark",
] as const;
export type HeadersStatus = (typeof HEADERS_STATUS)[number];

/** Envoy Http::FilterDataStatus. */
export const DATA_STATUS = [
  "Continue",
  "StopIterationAndBuffer",
  "StopIterationAndWatermark",
  "StopIterationNoBuffer",
] as const;
export type DataStatus = (typeof DATA_STATUS)[number];

/** Envoy Http::FilterTrailersStatus. */
export const TRAILERS_STATUS = ["Continue", "StopIteration"] as const;
export type TrailersStatus = (typeof TRAILERS_STATUS)[number];

/** What a driver call returns once the stream has ended (no filter ran). */
export type EndedStatus = "StreamEnded";

export type AbiVersion = "0.1.0" | "0.2.0" | "0.2.1";

/** WASI errno values cpp-host returns (src/exports.cc). */
export const WasiErrno = {
  SUCCESS: 0,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOENT: 44,
  NOSYS: 52,
  NOTSUP: 58,
  NOTCAPABLE: 76,
} as const;

/** gRPC status Envoy attaches to a failed stream's local reply (context.cc failStream). */
export const GRPC_UNAVAILABLE = 14;
