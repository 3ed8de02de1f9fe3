// Named limits and id-allocation constants, each with the source that fixes it.
// Decoders and allocators read them from here only.

/** cpp-host include/proxy-wasm/limits.h PROXY_WASM_HOST_PAIRS_MAX_BYTES. */
export const PAIRS_MAX_BYTES = 1024 * 1024;
/** cpp-host include/proxy-wasm/limits.h PROXY_WASM_HOST_PAIRS_MAX_COUNT. */
export const PAIRS_MAX_COUNT = 1024;
/** cpp-host include/proxy-wasm/limits.h PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES. */
export const WASI_RANDOM_GET_MAX_BYTES = 64 * 1024;

/** cpp-host include/proxy-wasm/wasm.h kMetricTypeMask / kMetricIdIncrement. */
export const METRIC_TYPE_MASK = 0x3;
export const METRIC_ID_INCREMENT = 0x4;
/** cpp-host include/proxy-wasm/wasm.h kCalloutTypeMask / kCalloutIncrement; HTTP calls are type 0. */
export const CALLOUT_TYPE_MASK = 0x3;
export const CALLOUT_ID_INCREMENT = 0x4;
export const CALLOUT_TYPE = { HttpCall: 0, GrpcCall: 1, GrpcStream: 2 } as const;

/** envoy source/extensions/common/wasm/wasm.cc PluginConfig: reload_config.backoff.base_interval default. */
export const DEFAULT_RELOAD_BACKOFF_MS = 1000;

/**
 * Envoy's per-stream buffer limit comes from the listener's
 * per_connection_buffer_limit_bytes, 1 MiB by default (envoy api listener.proto).
 * Buffering past it gives 413 (request) / 500 (response) local replies.
 */
export const DEFAULT_BUFFER_LIMIT_BYTES = 1024 * 1024;

/** Envoy stats namespace for Wasm custom metrics (source/extensions/common/wasm/stats_handler.h). */
export const CUSTOM_STAT_NAMESPACE = "wasmcustom";

/**
 * Envoy's default histogram buckets (source/common/stats/histogram_impl.cc
 * defaultBuckets), used by the Prometheus rendering of histograms.
 */
export const DEFAULT_HISTOGRAM_BUCKETS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];
