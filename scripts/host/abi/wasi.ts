// The WASI functions Envoy 1.33+ provides, under both wasi_snapshot_preview1 and
// wasi_unstable, with cpp-host's behaviour (src/exports.cc wasi_unstable_*):
// stdout/stderr become info/error log lines, clocks read the Envoy time source,
// random_get is capped at 64 KiB, files do not exist, and proc_exit only logs
// (at trace, envoy Context::error) and returns: it does not trap.
import { WasiErrno } from "../enums.ts";
import { WASI_RANDOM_GET_MAX_BYTES } from "../limits.ts";
import type { Vm } from "../vm.ts";
import type { HostFunctions } from "./index.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** cpp-host writevImpl: the iovecs concatenated into one log line, a trailing newline dropped. */
function writev(vm: Vm, fd: number, iovs: number, iovsLen: number): { errno: number; written: number } {
  const context = vm.contextOrEffectiveContext();
  const level = fd === 1 ? 2 : fd === 2 ? 4 : -1;
  if (level < 0) return { errno: WasiErrno.BADF, written: 0 };
  const parts: Uint8Array[] = [];
  for (let i = 0; i < iovsLen; i++) {
    const iov = vm.getMemory(iovs + i * 8, 8);
    if (iov === null) return { errno: WasiErrno.FAULT, written: 0 };
    const view = new DataView(iov.buffer, iov.byteOffset, 8);
    const buf = view.getUint32(0, true);
    const len = view.getUint32(4, true);
    if (len !== 0) {
      const data = vm.getMemory(buf, len);
      if (data === null) return { errno: WasiErrno.FAULT, written: 0 };
      parts.push(data.slice());
    }
  }
  const bytes = Buffer.concat(parts);
  if (bytes.length > 0) {
    let text = decoder.decode(bytes);
    if (text.endsWith("\n")) text = text.slice(0, -1);
    context.logMessage(level, text);
  }
  return { errno: WasiErrno.SUCCESS, written: bytes.length };
}

export const WASI_FUNCTIONS: HostFunctions = {
  fd_write(vm, fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) {
    const { errno, written } = writev(vm, fd, iovs, iovsLen);
    if (errno !== WasiErrno.SUCCESS) return errno;
    return vm.setWord(nwrittenPtr, written) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
  },

  fd_read() {
    return WasiErrno.NOSYS;
  },

  fd_seek(vm) {
    vm.hostLog("trace", "wasi_unstable fd_seek");
    return WasiErrno.SUCCESS;
  },

  fd_close(vm) {
    vm.hostLog("trace", "wasi_unstable fd_close");
    return WasiErrno.SUCCESS;
  },

  fd_fdstat_get(vm, fd: number, statOut: number) {
    if (fd !== 1 && fd !== 2) return WasiErrno.BADF;
    // fs_filetype etc. zero, fs_rights_base = FD_WRITE (64); a bad pointer is ignored, as in cpp-host.
    const stat = new Uint8Array(24);
    new DataView(stat.buffer).setBigUint64(8, 64n, true);
    vm.setMemory(statOut, stat);
    return WasiErrno.SUCCESS;
  },

  fd_fdstat_set_flags() {
    return WasiErrno.NOSYS;
  },

  environ_get(vm, environPtr: number, environBuf: number) {
    let array = environPtr;
    let buf = environBuf;
    for (const [k, v] of vm.env) {
      if (!vm.setWord(array, buf)) return WasiErrno.FAULT;
      const data = encoder.encode(`${k}=${v}\0`);
      if (!vm.setMemory(buf, data)) return WasiErrno.FAULT;
      buf += data.length;
      array += 4;
    }
    return WasiErrno.SUCCESS;
  },

  environ_sizes_get(vm, countPtr: number, sizePtr: number) {
    if (!vm.setWord(countPtr, vm.env.length)) return WasiErrno.FAULT;
    let size = 0;
    for (const [k, v] of vm.env) size += encoder.encode(k).length + encoder.encode(v).length + 2;
    return vm.setWord(sizePtr, size) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
  },

  args_get() {
    return WasiErrno.SUCCESS;
  },

  args_sizes_get(vm, argcPtr: number, bufSizePtr: number) {
    if (!vm.setWord(argcPtr, 0)) return WasiErrno.FAULT;
    return vm.setWord(bufSizePtr, 0) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
  },

  clock_time_get(vm, clockId: number, _precision: bigint, resultPtr: number) {
    let ns: bigint;
    if (clockId === 0) ns = BigInt(Math.round(vm.services.clock.now() * 1e6));
    else if (clockId === 1) ns = vm.services.clock.monotonicNs();
    else return WasiErrno.NOTSUP;
    return vm.setU64(resultPtr, ns) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
  },

  random_get(vm, bufPtr: number, bufLen: number) {
    if (bufLen > WASI_RANDOM_GET_MAX_BYTES) return WasiErrno.INVAL;
    if (bufLen === 0) return WasiErrno.SUCCESS;
    const bytes = new Uint8Array(bufLen);
    vm.services.randomBytes(bytes);
    return vm.setMemory(bufPtr, bytes) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
  },

  sched_yield() {
    return WasiErrno.SUCCESS;
  },

  // cpp-host 7a212bc: ENOSYS (HEAD later writes nevents = 0 and returns success).
  poll_oneoff() {
    return WasiErrno.NOSYS;
  },

  proc_exit(vm) {
    vm.hostLog("trace", "wasi_unstable proc_exit");
  },

  path_open() {
    return WasiErrno.NOENT;
  },

  fd_prestat_get() {
    return WasiErrno.BADF;
  },

  fd_prestat_dir_name() {
    return WasiErrno.NOSYS;
  },
};
