// The one list of what Envoy links and looks up, with wasm signatures:
// host functions by import module and ABI version (cpp-host src/wasm.cc
// registerCallbacks, include/proxy-wasm/exports.h FOR_ALL_HOST_FUNCTIONS /
// FOR_ALL_WASI_FUNCTIONS, envoy source/extensions/common/wasm/wasm.cc
// registerCallbacks for envoy_resolve_dns), and the module exports cpp-host
// type-checks (include/proxy-wasm/wasm.h WasmCallWord/WasmCallVoid,
// src/wasm.cc getFunctions). The loader validates against it and the VM
// registers exactly these; nothing else may name a host function.
//
// The WASI set is the 18 functions of cpp-host c4d7bb0..7a212bc (Envoy 1.33 to
// 1.36); see README "Reference versions".
import type { AbiVersion } from "../enums.ts";

export type ValType = "i32" | "i64";

export interface Signature {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

export interface HostFunctionSpec {
  readonly module: string;
  readonly name: string;
  readonly sig: Signature;
}

/** "iiI:i" = (i32, i32, i64) -> i32; Word arguments are i32, (u)int64_t are i64. */
function sig(spec: string): Signature {
  const [params, results] = spec.split(":");
  const map = (s: string): ValType[] => [...s].map((c) => (c === "I" ? "i64" : "i32"));
  return { params: map(params), results: map(results) };
}

/** proxy_* functions registered for every ABI version (exports.h FOR_ALL_HOST_FUNCTIONS). */
const PROXY_FUNCTIONS: Record<string, string> = {
  proxy_log: "iii:i",
  proxy_get_status: "iii:i",
  proxy_set_property: "iiii:i",
  proxy_get_property: "iiii:i",
  proxy_send_local_response: "iiiiiiii:i",
  proxy_get_shared_data: "iiiii:i",
  proxy_set_shared_data: "iiiii:i",
  proxy_register_shared_queue: "iii:i",
  proxy_resolve_shared_queue: "iiiii:i",
  proxy_dequeue_shared_queue: "iii:i",
  proxy_enqueue_shared_queue: "iii:i",
  proxy_get_header_map_value: "iiiii:i",
  proxy_add_header_map_value: "iiiii:i",
  proxy_replace_header_map_value: "iiiii:i",
  proxy_remove_header_map_value: "iii:i",
  proxy_get_header_map_pairs: "iii:i",
  proxy_set_header_map_pairs: "iii:i",
  proxy_get_header_map_size: "ii:i",
  proxy_get_buffer_status: "iii:i",
  proxy_get_buffer_bytes: "iiiii:i",
  proxy_set_buffer_bytes: "iiiii:i",
  proxy_http_call: "iiiiiiiiii:i",
  proxy_grpc_call: "iiiiiiiiiiii:i",
  proxy_grpc_stream: "iiiiiiiii:i",
  proxy_grpc_close: "i:i",
  proxy_grpc_cancel: "i:i",
  proxy_grpc_send: "iiii:i",
  proxy_set_tick_period_milliseconds: "i:i",
  proxy_get_current_time_nanoseconds: "i:i",
  proxy_define_metric: "iiii:i",
  proxy_increment_metric: "iI:i",
  proxy_record_metric: "iI:i",
  proxy_get_metric: "ii:i",
  proxy_set_effective_context: "i:i",
  proxy_done: ":i",
  proxy_call_foreign_function: "iiiiii:i",
};

/** ABI-specific proxy_* functions (src/wasm.cc registerCallbacks). */
const ABI_SPECIFIC: Record<AbiVersion, Record<string, string>> = {
  "0.1.0": {
    proxy_get_configuration: "ii:i",
    proxy_continue_request: ":i",
    proxy_continue_response: ":i",
    proxy_clear_route_cache: ":i",
  },
  "0.2.0": { proxy_continue_stream: "i:i", proxy_close_stream: "i:i" },
  "0.2.1": { proxy_continue_stream: "i:i", proxy_close_stream: "i:i", proxy_get_log_level: "i:i" },
};

/** Other "env" functions: cpp-host registerCallbacks, envoy Wasm::registerCallbacks. */
const ENV_EXTRAS: Record<string, string> = {
  pthread_equal: "ii:i",
  emscripten_notify_memory_growth: "i:",
  envoy_resolve_dns: "iii:i",
};

/** The WASI set of Envoy 1.33+ (cpp-host c4d7bb0 FOR_ALL_WASI_FUNCTIONS), under both module names. */
const WASI_FUNCTIONS: Record<string, string> = {
  fd_write: "iiii:i",
  fd_read: "iiii:i",
  fd_seek: "iIii:i",
  fd_close: "i:i",
  fd_fdstat_get: "ii:i",
  fd_fdstat_set_flags: "ii:i",
  environ_get: "ii:i",
  environ_sizes_get: "ii:i",
  args_get: "ii:i",
  args_sizes_get: "ii:i",
  clock_time_get: "iIi:i",
  random_get: "ii:i",
  sched_yield: ":i",
  poll_oneoff: "iiii:i",
  proc_exit: "i:",
  path_open: "iiiiiIIii:i",
  fd_prestat_get: "ii:i",
  fd_prestat_dir_name: "iii:i",
};
export const WASI_MODULES = ["wasi_snapshot_preview1", "wasi_unstable"] as const;

/** Every host function Envoy links for a module of `abi`, keyed "module.name". */
export function hostFunctionsFor(abi: AbiVersion): Map<string, HostFunctionSpec> {
  const out = new Map<string, HostFunctionSpec>();
  const add = (module: string, name: string, s: string) => out.set(`${module}.${name}`, { module, name, sig: sig(s) });
  for (const [name, s] of Object.entries(ENV_EXTRAS)) add("env", name, s);
  for (const module of WASI_MODULES) for (const [name, s] of Object.entries(WASI_FUNCTIONS)) add(module, name, s);
  for (const [name, s] of Object.entries(PROXY_FUNCTIONS)) add("env", name, s);
  for (const [name, s] of Object.entries(ABI_SPECIFIC[abi])) add("env", name, s);
  return out;
}

/**
 * Exports cpp-host looks up and type-checks, in getFunctions() order, for `abi`.
 * `when` narrows a lookup that depends on another export (main only with
 * _initialize, _start only without it, proxy_on_memory_allocate only without
 * malloc).
 */
export interface ExportSpec {
  readonly name: string;
  readonly sig: Signature;
  readonly when?: { present?: string; absent?: string };
}

export function moduleExportsFor(abi: AbiVersion): ExportSpec[] {
  const e = (name: string, s: string, when?: ExportSpec["when"]): ExportSpec => ({ name, sig: sig(s), when });
  const headers = abi === "0.1.0" ? "ii:i" : "iii:i";
  const list: ExportSpec[] = [
    e("_initialize", ":"),
    e("main", "ii:i", { present: "_initialize" }),
    e("_start", ":", { absent: "_initialize" }),
    e("malloc", "i:i"),
    e("proxy_on_memory_allocate", "i:i", { absent: "malloc" }),
    // FOR_ALL_MODULE_FUNCTIONS (include/proxy-wasm/wasm.h)
    e("proxy_validate_configuration", "ii:i"),
    e("proxy_on_vm_start", "ii:i"),
    e("proxy_on_configure", "ii:i"),
    e("proxy_on_tick", "i:"),
    e("proxy_on_context_create", "ii:"),
    e("proxy_on_new_connection", "i:i"),
    e("proxy_on_downstream_data", "iii:i"),
    e("proxy_on_upstream_data", "iii:i"),
    e("proxy_on_downstream_connection_close", "ii:"),
    e("proxy_on_upstream_connection_close", "ii:"),
    e("proxy_on_request_body", "iii:i"),
    e("proxy_on_request_trailers", "ii:i"),
    e("proxy_on_request_metadata", "ii:i"),
    e("proxy_on_response_body", "iii:i"),
    e("proxy_on_response_trailers", "ii:i"),
    e("proxy_on_response_metadata", "ii:i"),
    e("proxy_on_http_call_response", "iiiii:"),
    e("proxy_on_grpc_receive", "iii:"),
    e("proxy_on_grpc_close", "iii:"),
    e("proxy_on_grpc_receive_initial_metadata", "iii:"),
    e("proxy_on_grpc_receive_trailing_metadata", "iii:"),
    e("proxy_on_queue_ready", "ii:"),
    e("proxy_on_done", "i:i"),
    e("proxy_on_log", "i:"),
    e("proxy_on_delete", "i:"),
    e("proxy_on_request_headers", headers),
    e("proxy_on_response_headers", headers),
  ];
  if (abi !== "0.1.0") list.push(e("proxy_on_foreign_function", "iii:"));
  // envoy source/extensions/common/wasm/wasm.cc Wasm::getFunctions
  list.push(e("envoy_on_resolve_dns", "iii:"), e("envoy_on_stats_update", "ii:"));
  return list;
}

/** Export names that declare the ABI version (src/bytecode_util.cc getAbiVersion). */
export const ABI_MARKERS: Record<string, AbiVersion> = {
  proxy_abi_version_0_1_0: "0.1.0",
  proxy_abi_version_0_2_0: "0.2.0",
  proxy_abi_version_0_2_1: "0.2.1",
};

/** Host calls allowed while _initialize / _start / main run (cpp-host src/wasm.cc startVm). */
export const START_ALLOWED_HOST_CALLS: ReadonlySet<string> = new Set([
  "env.proxy_log",
  ...["fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get", "fd_prestat_get",
    "fd_prestat_dir_name", "clock_time_get", "random_get", "fd_fdstat_get", "fd_fdstat_set_flags"]
    .flatMap((n) => WASI_MODULES.map((m) => `${m}.${n}`)),
]);

/** Host calls allowed while the host runs the module's malloc (include/proxy-wasm/wasm.h allocMemory). */
export const MALLOC_ALLOWED_HOST_CALLS: ReadonlySet<string> = new Set([
  "env.proxy_log",
  ...["fd_write", "clock_time_get"].flatMap((n) => WASI_MODULES.map((m) => `${m}.${n}`)),
]);
