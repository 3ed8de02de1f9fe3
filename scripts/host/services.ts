// The seams between the process-wide Envoy (envoy.ts) and what runs inside it:
// what a VM may ask of the process (HostServices), what a plugin's contexts know
// about their filter config (PluginInfo), and the shape of a log entry. Types
// only, so that vm.ts, context.ts and the abi/ files never import envoy.ts.
import type { Clock } from "./clock.ts";
import type { SharedDataStore } from "./shared-data.ts";
import type { SharedQueues } from "./shared-queue.ts";
import type { StatsStore } from "./stats.ts";
import type { CalloutDispatcher } from "./callouts.ts";
import type { Vm } from "./vm.ts";

/** What Envoy's PluginBase / Plugin carry for one filter config (cpp-host include/proxy-wasm/context.h). */
export interface PluginInfo {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly configuration: Uint8Array;
  /** cpp-host PluginBase::key(): root contexts are keyed by it within a VM. */
  readonly key: string;
  /** PluginBase::fail_open_, set only by the deprecated `fail_open` field. */
  readonly failOpen: boolean;
  /** PluginConfig.allow_on_headers_stop_iteration (Envoy >= 1.35). */
  readonly allowOnHeadersStopIteration: boolean;
  /** cpp-host PluginBase::makeLogPrefix: " <name> <root_id> <vm_id>", empty parts skipped. */
  readonly logPrefix: string;
}

export interface LogEntry {
  /** spdlog level name. */
  level: "trace" | "debug" | "info" | "warn" | "error" | "critical";
  /** VM index: worker 0..n-1, -1 main thread, -2 canary, -3 base. */
  vm: number;
  /** Context the call was made from (contextOrEffectiveContext), 0 for the VM context. */
  context: number;
  /** What the module (or the host) said. */
  message: string;
  /** The line as Envoy's `wasm` logger prints it after the [level][wasm] prefix. */
  line: string;
  /** "plugin": proxy_log / WASI fd_write; "host": cpp-host / Envoy messages (traps, traces). */
  source: "plugin" | "host";
}

export interface EnvoyHooks {
  /**
   * Test-only: called inside proxy_set_shared_data before the store is touched,
   * so a test can run another VM's get/set in between (a real cross-thread race).
   */
  onBeforeSharedDataSet?: (vmIndex: number, key: string) => void;
}

/** What a VM may ask of the Envoy process. */
export interface HostServices {
  readonly clock: Clock;
  /** spdlog level of Envoy's `wasm` logger (6 = off). */
  readonly logLevel: number;
  log(entry: LogEntry): void;
  readonly stats: StatsStore;
  readonly sharedData: SharedDataStore;
  readonly sharedQueues: SharedQueues;
  readonly callouts: CalloutDispatcher;
  readonly hooks: EnvoyHooks;
  /** Envoy dispatcher post(): runs `task` soon, outside the current call stack. */
  post(task: () => void): void;
  /** Fills `out` with random bytes (WASI random_get; seeded for reproducible runs). */
  randomBytes(out: Uint8Array): void;
  /** The current thread-local VM for (thread, vm_key), for deferred work such as queue notifications. */
  threadLocalVm(thread: number, vmKey: string): Vm | undefined;
}
