// Shared equipment for the host emulator tests: the ABI probe (built on demand
// when missing or older than its sources), hand-assembled WAT modules for load
// and start-up checks, and small helpers to pass arguments through guest memory
// when a test plays the module's part with vm.runAsGuest.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Envoy, VirtualClock, encodePairs, type EnvoyOptions, type HttpFilterOptions, type Plugin, type Vm, type LogEntry } from "../../scripts/host/index.ts";
import wabtInit from "wabt";

export const PROBE = "build/abi_probe.wasm";
export const ROUTER = "build/prefix_router.wasm";

/** build/abi_probe.wasm, rebuilt with the documented command if missing or stale. */
export function probePath(): string {
  const sources = ["assembly/probe.ts", ...readdirSync("assembly/abi").map((f) => join("assembly/abi", f))];
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (!existsSync(PROBE) || statSync(PROBE).mtimeMs < newest) {
    execFileSync("npx", ["asc", "assembly/probe.ts", "--target", "probe"], { stdio: "inherit" });
  }
  return PROBE;
}

const wabtPromise = wabtInit();

/** Assembles WAT text to a module binary. */
export async function wat(text: string): Promise<Uint8Array> {
  const wabt = await wabtPromise;
  const module = wabt.parseWat("test.wat", text, { mutable_globals: true, bulk_memory: true });
  try {
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

/** The smallest module Envoy loads: ABI marker, memory, malloc. `body` adds imports/functions. */
export function minimalModule(body = "", { abi = "0_2_1", malloc = true } = {}): string {
  return `(module
  ${body}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_${abi}"))
  ${
    malloc
      ? `(func (export "malloc") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)`
      : ""
  }
)`;
}

export interface ProbeSetup {
  clock: VirtualClock;
  envoy: Envoy;
  plugin: Plugin;
}

/** An Envoy on a VirtualClock with the probe loaded. */
export async function probeEnvoy(
  filter: Partial<HttpFilterOptions> = {},
  options: EnvoyOptions = {},
): Promise<ProbeSetup> {
  const clock = options.clock instanceof VirtualClock ? options.clock : new VirtualClock();
  const envoy = new Envoy({ logLevel: "info", ...options, clock });
  const plugin = await envoy.addHttpFilter({
    name: "probe_plugin",
    rootId: "probe_root",
    vmId: "probe_vm",
    wasm: probePath(),
    concurrency: 1,
    ...filter,
  });
  return { clock, envoy, plugin };
}

/** Request headers for a probe request on `path`. */
export function request(path: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ":method": "POST", ":path": path, ":authority": "gw", ":scheme": "http", ...extra };
}

export const utf8 = (s: string) => new TextEncoder().encode(s);
export const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Writes `data` into guest memory (the module's own malloc) and returns [ptr, len]. */
export function put(vm: Vm, data: string | Uint8Array): [number, number] {
  const bytes = typeof data === "string" ? utf8(data) : data;
  return [vm.alloc(bytes), bytes.length];
}

/** A pair of u32 return slots in guest memory. */
export function slots(vm: Vm): { ptr: number; size: number; read(): Uint8Array; ptrValue(): number; sizeValue(): number } {
  const ptr = vm.alloc(8);
  const size = ptr + 4;
  const u32 = (at: number) => new DataView(vm.read(at, 4).buffer).getUint32(0, true);
  return {
    ptr,
    size,
    ptrValue: () => u32(ptr),
    sizeValue: () => u32(size),
    read: () => (u32(size) === 0 ? new Uint8Array(0) : vm.read(u32(ptr), u32(size))),
  };
}

export function u32At(vm: Vm, ptr: number): number {
  return new DataView(vm.read(ptr, 4).buffer).getUint32(0, true);
}

export function u64At(vm: Vm, ptr: number): bigint {
  return new DataView(vm.read(ptr, 8).buffer).getBigUint64(0, true);
}

/** Pairs bytes in guest memory. */
export function putPairs(vm: Vm, pairs: [string, string][]): [number, number] {
  return put(vm, encodePairs(pairs));
}

/** The module calls traced at trace level ("[host->vm] name(args)"), as "name(args)". */
export function guestCalls(logs: LogEntry[], vm?: number): string[] {
  return logs
    .filter((l) => l.source === "host" && l.message.startsWith("[host->vm] ") && (vm === undefined || l.vm === vm))
    .map((l) => l.message.slice("[host->vm] ".length));
}

/** Messages the module logged (proxy_log), optionally of one VM. */
export function pluginMessages(logs: LogEntry[], vm?: number): string[] {
  return logs.filter((l) => l.source === "plugin" && (vm === undefined || l.vm === vm)).map((l) => l.message);
}
