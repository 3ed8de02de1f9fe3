// Header-map host calls (cpp-host src/exports.cc *_header_map_*): reject a map
// type above 7, read the key/value/pairs from guest memory, delegate to
// maps.ts, copy the result back (empty pairs are written as 0/0).
import { MapType, WasmResult } from "../enums.ts";
import { decodePairs, encodePairs } from "../pairs.ts";
import * as maps from "../maps.ts";
import type { HostFunctions } from "./index.ts";
import { readBytes, readString } from "./memory.ts";

const encoder = new TextEncoder();

export const HEADER_FUNCTIONS: HostFunctions = {
  proxy_add_header_map_value(vm, type: number, keyPtr: number, keySize: number, valuePtr: number, valueSize: number) {
    if (type > MapType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const key = readString(vm, keyPtr, keySize);
    const value = readString(vm, valuePtr, valueSize);
    if (key === null || value === null) return WasmResult.InvalidMemoryAccess;
    return maps.addHeaderMapValue(context, type, key, value);
  },

  proxy_get_header_map_value(vm, type: number, keyPtr: number, keySize: number, valuePtrPtr: number, valueSizePtr: number) {
    if (type > MapType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const key = readString(vm, keyPtr, keySize);
    if (key === null) return WasmResult.InvalidMemoryAccess;
    const { result, value } = maps.getHeaderMapValue(context, type, key);
    if (result !== WasmResult.Ok) return result;
    return vm.copyToPointerSize(encoder.encode(value), valuePtrPtr, valueSizePtr) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_replace_header_map_value(vm, type: number, keyPtr: number, keySize: number, valuePtr: number, valueSize: number) {
    if (type > MapType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const key = readString(vm, keyPtr, keySize);
    const value = readString(vm, valuePtr, valueSize);
    if (key === null || value === null) return WasmResult.InvalidMemoryAccess;
    return maps.replaceHeaderMapValue(context, type, key, value);
  },

  proxy_remove_header_map_value(vm, type: number, keyPtr: number, keySize: number) {
    if (type > MapType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const key = readString(vm, keyPtr, keySize);
    if (key === null) return WasmResult.InvalidMemoryAccess;
    return maps.removeHeaderMapValue(context, type, key);
  },

  proxy_get_header_map_pairs(vm, type: number, ptrPtr: number, sizePtr: number) {
    if (type > MapType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const pairs = maps.getHeaderMapPairs(context, type);
    const bytes = pairs.length === 0 ? new Uint8Array(0) : encodePairs(pairs);
    return vm.copyToPointerSize(bytes, ptrPtr, sizePtr) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_set_header_map_pairs(vm, type: number, ptr: number, size: number) {
    if (type > MapType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const data = readBytes(vm, ptr, size);
    if (data === null) return WasmResult.InvalidMemoryAccess;
    return maps.setHeaderMapPairs(context, type, decodePairs(data));
  },

  proxy_get_header_map_size(vm, type: number, resultPtr: number) {
    if (type > MapType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const { result, size } = maps.getHeaderMapSize(context, type);
    if (result !== WasmResult.Ok) return result;
    return vm.setWord(resultPtr, size!) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },
};
