// Every host function implementation, by import name; vm.ts binds them to the
// names abi/signatures.ts lists for the module's ABI (WASI functions serve both
// wasi_snapshot_preview1 and wasi_unstable). One file per concern, one function
// per host call, each shaped like cpp-host src/exports.cc: find the context,
// reject out-of-range enums, read guest memory, delegate, copy results back.
import type { Vm } from "../vm.ts";
import { GENERAL_FUNCTIONS } from "./general.ts";
import { HEADER_FUNCTIONS } from "./headers.ts";
import { BUFFER_FUNCTIONS } from "./buffers.ts";
import { STREAM_FUNCTIONS } from "./stream.ts";
import { SHARED_FUNCTIONS } from "./shared.ts";
import { HTTP_FUNCTIONS } from "./http.ts";
import { METRIC_FUNCTIONS } from "./metrics.ts";
import { TIMER_FUNCTIONS } from "./timers.ts";
import { PROPERTY_FUNCTIONS } from "./properties.ts";
import { WASI_FUNCTIONS } from "./wasi.ts";

/** i32 arguments arrive as u32 numbers, i64 arguments as u64 bigints; the result is a Word. */
export type HostFunction = (vm: Vm, ...args: any[]) => number | void;
export type HostFunctions = Record<string, HostFunction>;

export const HOST_FUNCTIONS: HostFunctions = {
  ...GENERAL_FUNCTIONS,
  ...HEADER_FUNCTIONS,
  ...BUFFER_FUNCTIONS,
  ...STREAM_FUNCTIONS,
  ...SHARED_FUNCTIONS,
  ...HTTP_FUNCTIONS,
  ...METRIC_FUNCTIONS,
  ...TIMER_FUNCTIONS,
  ...PROPERTY_FUNCTIONS,
  ...WASI_FUNCTIONS,
};
