// Reading arguments out of guest memory for the host functions. A null result
// means the range is out of bounds (the caller answers InvalidMemoryAccess, or
// the WASI FAULT errno).
import type { Vm } from "../vm.ts";

const decoder = new TextDecoder();

/** A copy of [ptr, ptr+size). */
export function readBytes(vm: Vm, ptr: number, size: number): Uint8Array | null {
  return vm.getMemory(ptr, size)?.slice() ?? null;
}

/** [ptr, ptr+size) as UTF-8 text. */
export function readString(vm: Vm, ptr: number, size: number): string | null {
  const m = vm.getMemory(ptr, size);
  return m === null ? null : decoder.decode(m);
}

/** [ptr, ptr+size) as a byte-exact key ("binary" string: one char per byte). */
export function readKey(vm: Vm, ptr: number, size: number): string | null {
  const m = vm.getMemory(ptr, size);
  return m === null ? null : Buffer.from(m).toString("latin1");
}
