// Logging, status, effective context, proxy_done, foreign functions and the
// small "env" helpers (cpp-host src/exports.cc log / get_log_level / get_status /
// set_effective_context / done / call_foreign_function / pthread_equal /
// emscripten_notify_memory_growth; envoy wasm.cc resolve_dns; ABI 0.1.0
// get_configuration / continue_request / continue_response / clear_route_cache).
import { StreamType, WasmResult } from "../enums.ts";
import type { Vm } from "../vm.ts";
import type { HostFunctions } from "./index.ts";
import { readBytes, readString } from "./memory.ts";

const encoder = new TextEncoder();
const LOG_LEVEL_MAX = 5;

/** Foreign functions Envoy registers that the emulator implements (envoy source/extensions/common/wasm/foreign.cc). */
const FOREIGN_FUNCTIONS: Record<string, (vm: Vm, args: Uint8Array) => { result: number; data: Uint8Array }> = {
  // Envoy >= 1.33: clears the route cache; the emulator has no route cache.
  clear_route_cache: () => ({ result: WasmResult.Ok, data: new Uint8Array(0) }),
};

export const GENERAL_FUNCTIONS: HostFunctions = {
  proxy_log(vm, level: number, ptr: number, size: number) {
    if (level > LOG_LEVEL_MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const message = readString(vm, ptr, size);
    if (message === null) return WasmResult.InvalidMemoryAccess;
    context.logMessage(level, message);
    return WasmResult.Ok;
  },

  proxy_get_log_level(vm, levelPtr: number) {
    vm.contextOrEffectiveContext();
    // envoy context.cc getLogLevel: the `wasm` logger's spdlog level as an int.
    return vm.setWord(levelPtr, vm.services.logLevel) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_get_status(vm, codePtr: number, messagePtrPtr: number, messageSizePtr: number) {
    const root = vm.contextOrEffectiveContext().rootContext();
    if (!vm.setWord(codePtr, root.statusCode)) return WasmResult.InvalidMemoryAccess;
    if (!vm.copyToPointerSize(encoder.encode(root.statusMessage), messagePtrPtr, messageSizePtr)) return WasmResult.InvalidMemoryAccess;
    return WasmResult.Ok;
  },

  proxy_set_effective_context(vm, contextId: number) {
    vm.contextOrEffectiveContext();
    if (vm.getContext(contextId) === undefined) return WasmResult.BadArgument;
    vm.effectiveContextId = contextId;
    return WasmResult.Ok;
  },

  proxy_done(vm) {
    const context = vm.contextOrEffectiveContext();
    return vm.done(context) ? WasmResult.Ok : WasmResult.NotFound;
  },

  proxy_call_foreign_function(vm, namePtr: number, nameSize: number, argsPtr: number, argsSize: number, resultsPtr: number, resultsSizePtr: number) {
    vm.contextOrEffectiveContext();
    const name = readString(vm, namePtr, nameSize);
    if (name === null) return WasmResult.InvalidMemoryAccess;
    const args = readBytes(vm, argsPtr, argsSize);
    if (args === null) return WasmResult.InvalidMemoryAccess;
    const f = FOREIGN_FUNCTIONS[name];
    if (f === undefined) return WasmResult.NotFound;
    const { result, data } = f(vm, args);
    let address = 0;
    if (resultsPtr !== 0 && data.length > 0) {
      const p = vm.allocMemory(data.length);
      if (p !== null) {
        address = p;
        vm.setMemory(p, data);
      }
    }
    if (resultsPtr !== 0 && !vm.setWord(resultsPtr, address)) return WasmResult.InvalidMemoryAccess;
    if (resultsSizePtr !== 0 && !vm.setWord(resultsSizePtr, data.length)) return WasmResult.InvalidMemoryAccess;
    return result;
  },

  pthread_equal(_vm, left: number, right: number) {
    return left === right ? 1 : 0;
  },

  emscripten_notify_memory_growth() {},

  envoy_resolve_dns(vm) {
    vm.contextOrEffectiveContext();
    vm.hostLog("warn", "envoy_resolve_dns is not emulated");
    return WasmResult.Unimplemented;
  },

  // ---- ABI 0.1.0 only ----

  proxy_get_configuration(vm, ptrPtr: number, sizePtr: number) {
    const context = vm.contextOrEffectiveContext();
    // envoy context.cc getConfiguration: the plugin configuration while configuring, else the VM's.
    const value = context.tempPlugin?.configuration ?? vm.vmConfiguration;
    return vm.copyToPointerSize(value, ptrPtr, sizePtr) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_continue_request(vm) {
    return vm.contextOrEffectiveContext().continueStream(StreamType.Request);
  },

  proxy_continue_response(vm) {
    return vm.contextOrEffectiveContext().continueStream(StreamType.Response);
  },

  proxy_clear_route_cache(vm) {
    vm.contextOrEffectiveContext();
    return WasmResult.Ok;
  },
};
