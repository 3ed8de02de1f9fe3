// Buffer host calls (cpp-host src/exports.cc get_buffer_bytes / get_buffer_status /
// set_buffer_bytes): type above 8 is BadArgument, a buffer that does not exist
// now is NotFound, reads are clamped to the buffer and an empty range writes 0/0.
import { BufferType, WasmResult } from "../enums.ts";
import { bufferBytes, copyFrom, getBuffer } from "../buffers.ts";
import type { HostFunctions } from "./index.ts";
import { readBytes } from "./memory.ts";

export const BUFFER_FUNCTIONS: HostFunctions = {
  proxy_get_buffer_bytes(vm, type: number, start: number, length: number, ptrPtr: number, sizePtr: number) {
    if (type > BufferType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const buffer = getBuffer(context, type);
    if (buffer === null) return WasmResult.NotFound;
    // cpp-host checks start + length for 64-bit overflow; u32 arguments cannot overflow it.
    const bytes = bufferBytes(buffer);
    let n = length;
    if (start > bytes.length) n = 0;
    else if (start + n > bytes.length) n = bytes.length - start;
    if (n === 0) {
      return vm.setWord(ptrPtr, 0) && vm.setWord(sizePtr, 0) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
    }
    return vm.copyToPointerSize(bytes.slice(start, start + n), ptrPtr, sizePtr) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_get_buffer_status(vm, type: number, lengthPtr: number, flagsPtr: number) {
    if (type > BufferType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const buffer = getBuffer(context, type);
    if (buffer === null) return WasmResult.NotFound;
    if (!vm.setWord(lengthPtr, bufferBytes(buffer).length)) return WasmResult.InvalidMemoryAccess;
    // No flag (not even end of stream) is ever set.
    return vm.setWord(flagsPtr, 0) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_set_buffer_bytes(vm, type: number, start: number, length: number, dataPtr: number, dataSize: number) {
    if (type > BufferType.MAX) return WasmResult.BadArgument;
    const context = vm.contextOrEffectiveContext();
    const buffer = getBuffer(context, type);
    if (buffer === null) return WasmResult.NotFound;
    const data = readBytes(vm, dataPtr, dataSize);
    if (data === null) return WasmResult.InvalidMemoryAccess;
    return copyFrom(buffer, start, length, data);
  },
};
