// One HTTP filter config (envoy source/extensions/common/wasm/wasm.cc
// PluginConfig): its thread-local VMs (the main thread's and one per worker,
// each with this plugin's root context), the choice of VM and context for a
// new stream, and the failure policy applied there: a failed VM gives new
// streams an empty context (503, FAIL_CLOSED), no filter at all (FAIL_OPEN), or
// after the backoff a freshly cloned VM (FAIL_RELOAD, runtime failures only;
// in-VM state is lost, shared data kept). Loading and the canary are envoy.ts's.
import type { Vm } from "./vm.ts";
import { Context } from "./context.ts";
import { HttpStream } from "./stream.ts";
import type { PluginInfo } from "./services.ts";
import type { Clock } from "./clock.ts";
import type { StatsStore } from "./stats.ts";
import type { SeededRandom } from "./random.ts";

export type FailurePolicy = "FAIL_CLOSED" | "FAIL_OPEN" | "FAIL_RELOAD";

/** A thread's SinglePluginHandle: the VM and this plugin's root context in it, or nothing if loading failed. */
interface ThreadHandle {
  vm: Vm | null;
  root: Context | null;
  /** Monotonic ms of the last (re)load, for the reload backoff. */
  lastLoadMs: number;
}

/** What the plugin needs from the process to (re)load a thread. */
export interface PluginHost {
  readonly clock: Clock;
  readonly stats: StatsStore;
  readonly random: SeededRandom;
  readonly bufferLimitBytes: number;
  /** getOrCreateThreadLocalPlugin: VM for the thread (cloned if needed), root started and configured. */
  loadThread(thread: number, plugin: Plugin): { vm: Vm; root: Context } | null;
  /** The plugin no longer uses `vm` (Envoy drops the handle). */
  release(vm: Vm, plugin: Plugin): void;
  nextStreamId(): number;
  warn(vm: number, message: string): void;
}

export interface PluginOptions {
  info: PluginInfo;
  vmKey: string;
  concurrency: number;
  failurePolicy: FailurePolicy;
  reloadBackoffMs: number;
}

export class Plugin {
  readonly info: PluginInfo;
  readonly vmKey: string;
  readonly failurePolicy: FailurePolicy;
  readonly concurrency: number;
  private readonly reloadBackoffMs: number;
  private readonly workers: ThreadHandle[] = [];
  private main: ThreadHandle | null = null;
  private nextWorker = 0;

  constructor(
    private readonly host: PluginHost,
    options: PluginOptions,
  ) {
    this.info = options.info;
    this.vmKey = options.vmKey;
    this.failurePolicy = options.failurePolicy;
    this.concurrency = options.concurrency;
    this.reloadBackoffMs = options.reloadBackoffMs;
  }

  /**
   * ThreadLocal::Slot::set runs the callback on the main thread first, then on
   * each worker (envoy source/common/thread_local/thread_local_impl.cc).
   */
  startThreads(): void {
    this.main = this.load(-1);
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.load(i));
  }

  private load(thread: number): ThreadHandle {
    const loaded = this.host.loadThread(thread, this);
    const now = Number(this.host.clock.monotonicNs() / 1_000_000n);
    return { vm: loaded?.vm ?? null, root: loaded?.root ?? null, lastLoadMs: now };
  }

  /** The worker VMs now (index i = worker i); null where loading failed. */
  get vms(): Vm[] {
    return this.workers.map((h) => h.vm).filter((vm): vm is Vm => vm !== null);
  }

  /** The worker's VM (null if its load failed). */
  vm(worker: number): Vm | null {
    return this.workers[worker]?.vm ?? null;
  }

  /** The main thread's VM: it ticks and makes callouts but never sees a stream. */
  get mainThreadVm(): Vm | null {
    return this.main?.vm ?? null;
  }

  /** This plugin's root context id in a worker's VM. */
  rootContextId(worker: number): number {
    return this.workers[worker]?.root?.id ?? 0;
  }

  /** Every VM this plugin holds, main thread first. */
  allVms(): Vm[] {
    return [this.main, ...this.workers].flatMap((h) => (h?.vm ? [h.vm] : []));
  }

  /**
   * A new HTTP stream on a worker (round-robin by default), with the filter
   * context PluginConfig::createContext would give it.
   */
  newStream(worker?: number): HttpStream {
    const index = worker ?? this.nextWorker++ % this.concurrency;
    const handle = this.workers[index];
    if (handle === undefined) throw new RangeError(`no worker ${index} (concurrency ${this.concurrency})`);
    const filter = this.createContext(index, handle);
    return new HttpStream({
      id: this.host.nextStreamId(),
      filter,
      clock: this.host.clock,
      bufferLimitBytes: this.host.bufferLimitBytes,
      warn: (m) => this.host.warn(index, m),
    });
  }

  /** envoy PluginConfig::createContext. */
  private createContext(index: number, handle: ThreadHandle): Context | null {
    // A thread whose load failed has a null handle: the filter is skipped, whatever the policy.
    if (handle.vm === null || handle.root === null) return null;
    const vm = this.maybeReload(index, handle);
    if (vm.failed) {
      if (this.failurePolicy === "FAIL_OPEN") return null;
      return new Context({ vm: null, id: 0, parentId: 0, plugin: this.info });
    }
    return new Context({ vm, id: vm.allocContextId(), parentId: handle.root!.id, plugin: this.info });
  }

  /** envoy PluginConfig::maybeReloadHandleIfNeeded. */
  private maybeReload(index: number, handle: ThreadHandle): Vm {
    const vm = handle.vm!;
    if (vm.failState !== "RuntimeError" || this.failurePolicy !== "FAIL_RELOAD") return vm;
    const stat = (name: string) => this.host.stats.counter(`wasm.${this.info.name}.${name}`).add(1n);
    // JitteredLowerBoundBackOffStrategy::nextBackOffMs: random in [base, 1.5 * base).
    const interval = (this.host.random.nextU32() % Math.max(1, this.reloadBackoffMs >> 1)) + this.reloadBackoffMs;
    const now = Number(this.host.clock.monotonicNs() / 1_000_000n);
    if (now - handle.lastLoadMs < interval) {
      stat("vm_reload_backoff");
      return vm;
    }
    handle.lastLoadMs = now;
    const loaded = this.host.loadThread(index, this);
    if (loaded === null || loaded.vm.failed) {
      stat("vm_reload_failure");
      return vm;
    }
    stat("vm_reload_success");
    handle.vm = loaded.vm;
    handle.root = loaded.root;
    this.host.release(vm, this);
    return loaded.vm;
  }

  /** Drops every thread handle (plugin removed or Envoy shutting down). */
  releaseAll(): void {
    for (const h of [this.main, ...this.workers]) if (h?.vm) this.host.release(h.vm, this);
  }
}
