// Shared data and shared queue host calls (cpp-host src/exports.cc
// get_shared_data / set_shared_data / *_shared_queue; src/context.cc for the
// vm_id scoping and the root context a queue notifies).
import { WasmResult } from "../enums.ts";
import type { HostFunctions } from "./index.ts";
import { readBytes, readKey, readString } from "./memory.ts";

export const SHARED_FUNCTIONS: HostFunctions = {
  proxy_get_shared_data(vm, keyPtr: number, keySize: number, valuePtrPtr: number, valueSizePtr: number, casPtr: number) {
    vm.contextOrEffectiveContext();
    const key = readKey(vm, keyPtr, keySize);
    if (key === null) return WasmResult.InvalidMemoryAccess;
    const entry = vm.services.sharedData.get(vm.vmId, key);
    if (entry === undefined) return WasmResult.NotFound;
    if (!vm.copyToPointerSize(entry.value, valuePtrPtr, valueSizePtr)) return WasmResult.InvalidMemoryAccess;
    return vm.setWord(casPtr, entry.cas) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_set_shared_data(vm, keyPtr: number, keySize: number, valuePtr: number, valueSize: number, cas: number) {
    vm.contextOrEffectiveContext();
    const key = readKey(vm, keyPtr, keySize);
    const value = readBytes(vm, valuePtr, valueSize);
    if (key === null || value === null) return WasmResult.InvalidMemoryAccess;
    vm.services.hooks.onBeforeSharedDataSet?.(vm.index, Buffer.from(key, "latin1").toString("utf8"));
    return vm.services.sharedData.set(vm.vmId, key, value, cas);
  },

  proxy_register_shared_queue(vm, namePtr: number, nameSize: number, tokenPtr: number) {
    const context = vm.contextOrEffectiveContext();
    const name = readString(vm, namePtr, nameSize);
    if (name === null) return WasmResult.InvalidMemoryAccess;
    // Notifications go to the root context (src/context.cc registerSharedQueue).
    const rootId = context.isRoot ? context.id : context.parentId;
    const token = vm.services.sharedQueues.register(vm.vmId, name, vm.index, vm.vmKey, rootId);
    return vm.setWord(tokenPtr, token) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_resolve_shared_queue(vm, vmIdPtr: number, vmIdSize: number, namePtr: number, nameSize: number, tokenPtr: number) {
    const context = vm.contextOrEffectiveContext();
    const vmId = readString(vm, vmIdPtr, vmIdSize);
    const name = readString(vm, namePtr, nameSize);
    if (vmId === null || name === null) return WasmResult.InvalidMemoryAccess;
    const token = vm.services.sharedQueues.resolve(vmId === "" ? vm.vmId : vmId, name);
    if (context.isFailed() || token === 0) return WasmResult.NotFound;
    return vm.setWord(tokenPtr, token) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_dequeue_shared_queue(vm, token: number, dataPtrPtr: number, dataSizePtr: number) {
    vm.contextOrEffectiveContext();
    const { result, data } = vm.services.sharedQueues.dequeue(token);
    if (result !== WasmResult.Ok) return result;
    return vm.copyToPointerSize(data!, dataPtrPtr, dataSizePtr) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_enqueue_shared_queue(vm, token: number, dataPtr: number, dataSize: number) {
    vm.contextOrEffectiveContext();
    const data = readBytes(vm, dataPtr, dataSize);
    if (data === null) return WasmResult.InvalidMemoryAccess;
    return vm.services.sharedQueues.enqueue(token, data);
  },
};
