// HTTP and gRPC callout host calls (cpp-host src/exports.cc http_call /
// grpc_*). Callouts always belong to the root context of the caller, so the
// response arrives as proxy_on_http_call_response(root_id, token, …).
import { WasmResult } from "../enums.ts";
import { CALLOUT_TYPE, CALLOUT_TYPE_MASK } from "../limits.ts";
import { decodePairs } from "../pairs.ts";
import { httpCall } from "../callouts.ts";
import type { Vm } from "../vm.ts";
import type { HostFunctions } from "./index.ts";
import { readBytes, readString } from "./memory.ts";

/** envoy context.cc grpcCall / grpcStream, up to the point where a client would be created. */
function grpcStart(vm: Vm, servicePtr: number, serviceSize: number): number {
  vm.contextOrEffectiveContext();
  const service = readString(vm, servicePtr, serviceSize);
  if (service === null) return WasmResult.InvalidMemoryAccess;
  if (!vm.services.callouts.hasCluster(service)) return WasmResult.ParseFailure;
  vm.hostLog("warn", "gRPC is not emulated");
  return WasmResult.InternalFailure;
}

/** envoy context.cc grpcClose / grpcCancel. */
function grpcEnd(vm: Vm, token: number): number {
  vm.contextOrEffectiveContext();
  const type = token & CALLOUT_TYPE_MASK;
  return type === CALLOUT_TYPE.GrpcCall || type === CALLOUT_TYPE.GrpcStream ? WasmResult.NotFound : WasmResult.BadArgument;
}

export const HTTP_FUNCTIONS: HostFunctions = {
  proxy_http_call(
    vm,
    uriPtr: number,
    uriSize: number,
    headersPtr: number,
    headersSize: number,
    bodyPtr: number,
    bodySize: number,
    trailersPtr: number,
    trailersSize: number,
    timeoutMs: number,
    tokenPtr: number,
  ) {
    const root = vm.contextOrEffectiveContext().rootContext();
    const cluster = readString(vm, uriPtr, uriSize);
    const body = readBytes(vm, bodyPtr, bodySize);
    const headers = readBytes(vm, headersPtr, headersSize);
    const trailers = readBytes(vm, trailersPtr, trailersSize);
    if (cluster === null || body === null || headers === null || trailers === null) return WasmResult.InvalidMemoryAccess;
    // The token is written once first, to validate the pointer before starting anything.
    if (!vm.setWord(tokenPtr, 0)) return WasmResult.InvalidMemoryAccess;
    const { result, token } = httpCall(root, vm.services.callouts, cluster, decodePairs(headers), body, decodePairs(trailers), timeoutMs);
    vm.setWord(tokenPtr, token);
    return result;
  },

  // gRPC is not emulated: an unknown cluster is ParseFailure as in Envoy; a known one cannot be served.
  proxy_grpc_call: grpcStart,
  proxy_grpc_stream: grpcStart,

  proxy_grpc_send(vm, token: number) {
    vm.contextOrEffectiveContext();
    return (token & CALLOUT_TYPE_MASK) === CALLOUT_TYPE.GrpcStream ? WasmResult.NotFound : WasmResult.BadArgument;
  },

  // No gRPC call or stream ever exists: a gRPC token is NotFound, anything else BadArgument.
  proxy_grpc_close: grpcEnd,
  proxy_grpc_cancel: grpcEnd,
};
