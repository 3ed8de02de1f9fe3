// Property host calls (cpp-host src/exports.cc get_property / set_property).
import { WasmResult } from "../enums.ts";
import { getProperty, setProperty } from "../properties.ts";
import type { HostFunctions } from "./index.ts";
import { readBytes } from "./memory.ts";

export const PROPERTY_FUNCTIONS: HostFunctions = {
  proxy_get_property(vm, pathPtr: number, pathSize: number, valuePtrPtr: number, valueSizePtr: number) {
    const context = vm.contextOrEffectiveContext();
    const path = readBytes(vm, pathPtr, pathSize);
    if (path === null) return WasmResult.InvalidMemoryAccess;
    const { result, value } = getProperty(context, path);
    if (result !== WasmResult.Ok) return result;
    return vm.copyToPointerSize(value!, valuePtrPtr, valueSizePtr) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_set_property(vm, keyPtr: number, keySize: number, valuePtr: number, valueSize: number) {
    const context = vm.contextOrEffectiveContext();
    const key = readBytes(vm, keyPtr, keySize);
    const value = readBytes(vm, valuePtr, valueSize);
    if (key === null || value === null) return WasmResult.InvalidMemoryAccess;
    return setProperty(context, key, value);
  },
};
