// The raw proxy-wasm ABI 0.2.1 host functions, as @external declarations.
//
// We take the declarations from the maintained AssemblyScript SDK
// (@gcoredev/proxy-wasm-sdk-as) rather than writing them again; see README
// "Why we use only the SDK's ABI declarations" for what we bypass and why.
// AssemblyScript links only what is called, so the FastEdge-only and ABI 0.1.0
// declarations in that file (proxy_clear_route_cache, proxy_dictionary_get …)
// never become imports unless someone calls them; tests/host/module-shape.test.ts
// fails the build if one does.
//
// Nothing outside assembly/abi/ may import this file.
export {
  proxy_log,
  proxy_get_log_level,
  proxy_get_status,
  proxy_set_tick_period_milliseconds,
  proxy_get_current_time_nanoseconds,
  proxy_get_property,
  proxy_continue_stream,
  proxy_send_local_response,
  proxy_get_shared_data,
  proxy_set_shared_data,
  proxy_get_header_map_value,
  proxy_replace_header_map_value,
  proxy_remove_header_map_value,
  proxy_add_header_map_value,
  proxy_get_header_map_pairs,
  proxy_get_header_map_size,
  proxy_get_buffer_bytes,
  proxy_http_call,
  proxy_define_metric,
  proxy_increment_metric,
  proxy_record_metric,
  proxy_get_metric,
  proxy_set_effective_context,
} from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";

/**
 * WASI's clock, which the SDK does not declare. proxy-wasm-cpp-host serves it
 * (src/exports.cc wasi_unstable_clock_time_get) for the realtime clock (0)
 * and the monotonic one (1), the latter from the host's monotonic time
 * (Envoy: the dispatcher's steady clock, shared by all threads of the process).
 */
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function wasi_clock_time_get(clockId: u32, precision: u64, timePtr: usize): u16;

/**
 * WASI's random source, which the SDK does not declare either.
 * proxy-wasm-cpp-host serves it from BoringSSL's RAND_bytes, up to 64 KiB a
 * call (src/exports.cc wasi_unstable_random_get).
 */
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
export declare function wasi_random_get(bufPtr: usize, bufLen: usize): u16;

/**
 * WASI's environment, which the SDK does not declare either: the VM's
 * vm_config.environment_variables (Envoy: host_env_keys read from Envoy's own
 * environment, and key_values), written by proxy-wasm-cpp-host as one
 * "KEY=VALUE\0" per variable (src/exports.cc wasi_unstable_environ_get,
 * wasi_unstable_environ_sizes_get).
 */
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_sizes_get")
export declare function wasi_environ_sizes_get(countPtr: usize, bufSizePtr: usize): u16;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_get")
export declare function wasi_environ_get(environPtr: usize, bufPtr: usize): u16;
