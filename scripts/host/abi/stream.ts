// Stream control host calls (cpp-host src/exports.cc continue_stream /
// close_stream / send_local_response). The effects are deferred by the context
// until the VM call returns; a local response also forces the running
// callback's status to "stop" (WasmBase::stopNextIteration).
import { StreamType, WasmResult } from "../enums.ts";
import { decodePairs } from "../pairs.ts";
import type { HostFunctions } from "./index.ts";
import { readBytes, readString } from "./memory.ts";

export const STREAM_FUNCTIONS: HostFunctions = {
  proxy_continue_stream(vm, type: number) {
    const context = vm.contextOrEffectiveContext();
    if (type > StreamType.MAX) return WasmResult.BadArgument;
    return context.continueStream(type);
  },

  proxy_close_stream(vm, type: number) {
    const context = vm.contextOrEffectiveContext();
    if (type > StreamType.MAX) return WasmResult.BadArgument;
    return context.closeStream(type);
  },

  proxy_send_local_response(
    vm,
    status: number,
    detailsPtr: number,
    detailsSize: number,
    bodyPtr: number,
    bodySize: number,
    headersPtr: number,
    headersSize: number,
    grpcStatus: number,
  ) {
    const context = vm.contextOrEffectiveContext();
    const details = readString(vm, detailsPtr, detailsSize);
    const body = readBytes(vm, bodyPtr, bodySize);
    const headers = readBytes(vm, headersPtr, headersSize);
    if (details === null || body === null || headers === null) return WasmResult.InvalidMemoryAccess;
    context.sendLocalResponse(status, body, decodePairs(headers), grpcStatus, details);
    vm.stopIteration = true;
    return WasmResult.Ok;
  },
};
