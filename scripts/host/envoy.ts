// The emulated Envoy process: its clock, `wasm` logger, stats store, shared data
// and shared queues (process-wide, keyed by vm_id), clusters for callouts, and
// the VMs it hosts: one base VM per vm_key (loaded, validated and _initialize'd
// once), a canary clone per plugin that must pass on_vm_start/on_configure or
// the config is rejected, and thread-local clones per thread, shared by the
// plugins with the same vm_key. Sources: cpp-host src/wasm.cc createWasm /
// canary / getOrCreateThreadLocalWasm / getOrCreateThreadLocalPlugin; envoy
// source/extensions/common/wasm/wasm.cc createWasm and PluginConfig.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Agent } from "node:http";
import { RealClock, type Clock } from "./clock.ts";
import { LOG_LEVELS, logLevelNumber, type LogLevelName } from "./enums.ts";
import { DEFAULT_BUFFER_LIMIT_BYTES, DEFAULT_RELOAD_BACKOFF_MS } from "./limits.ts";
import { loadModule, ModuleLoadError, type LoadedModule } from "./module.ts";
import { Vm } from "./vm.ts";
import type { Context } from "./context.ts";
import { Plugin, type FailurePolicy, type PluginHost } from "./plugin.ts";
import type { HostServices, LogEntry, PluginInfo } from "./services.ts";
import { SharedDataStore, SharedDataView } from "./shared-data.ts";
import { SharedQueues } from "./shared-queue.ts";
import { StatsStore, type StatsTagRule } from "./stats.ts";
import { CalloutDispatcher, type ClusterConfig, type PendingCallout } from "./callouts.ts";
import { SeededRandom } from "./random.ts";

export interface EnvoyOptions {
  /** Default: RealClock. */
  clock?: Clock;
  /** Level of Envoy's `wasm` logger (proxy_get_log_level); lower logs are not recorded. Default "info". */
  logLevel?: LogLevelName;
  /** Clusters proxy_http_call may name; any other name is BadArgument. */
  clusters?: Record<string, ClusterConfig>;
  /** bootstrap stats_config.stats_tags, applied before Envoy's default extractors. */
  statsTags?: StatsTagRule[];
  /** Per-stream buffer limit (listener per_connection_buffer_limit_bytes). Default 1 MiB. */
  bufferLimitBytes?: number;
  /** Seed for WASI random_get and backoff jitter. */
  seed?: number;
  /** Keep log entries in envoy.logs (default true). */
  recordLogs?: boolean;
  /** Called for every log entry at or above the level. */
  onLog?: (entry: LogEntry) => void;
}

export interface HttpFilterOptions {
  /** PluginConfig.name (stats prefix wasm.<name>., log prefix, plugin_name). */
  name: string;
  rootId?: string;
  vmId?: string;
  /** A .wasm path or its bytes. */
  wasm: string | Uint8Array;
  /** PluginConfig.configuration bytes (what on_configure reads). */
  configuration?: string | Uint8Array;
  /** vm_config.configuration bytes (what on_vm_start reads). */
  vmConfiguration?: string | Uint8Array;
  /** vm_config.environment_variables.key_values (WASI environ). */
  environment?: Record<string, string>;
  /** Worker threads, each with its own VM (default 1). A main-thread VM exists besides. */
  concurrency?: number;
  /** PluginConfig.allow_on_headers_stop_iteration (Envoy >= 1.35). */
  allowOnHeadersStopIteration?: boolean;
  /** PluginConfig.failure_policy; UNSPECIFIED means FAIL_CLOSED. */
  failurePolicy?: FailurePolicy;
  /** The deprecated PluginConfig.fail_open; exclusive with failurePolicy. */
  failOpenLegacy?: boolean;
  /** reload_config.backoff.base_interval in ms (FAIL_RELOAD). Default 1000. */
  reloadBackoffMs?: number;
}

/** Envoy refused the filter config (xDS NACK / startup failure), with the reason it logged. */
export class ConfigRejectedError extends Error {
  constructor(
    readonly pluginName: string,
    readonly reason: string,
    /** Error lines the wasm logger printed while loading. */
    readonly details: string[] = [],
  ) {
    super(`Unable to create Wasm plugin ${pluginName}: ${reason}${details.length ? ` (${details.join("; ")})` : ""}`);
    this.name = "ConfigRejectedError";
  }
}

interface BaseVm {
  module: LoadedModule;
  vm: Vm;
  vmId: string;
  vmConfiguration: Uint8Array;
  env: [string, string][];
  /** cpp-host WasmHandleBase::plugin_canary_cache_. */
  canary: Map<string, boolean>;
}

const encoder = new TextEncoder();
const toBytes = (v: string | Uint8Array | undefined): Uint8Array => (v === undefined ? new Uint8Array(0) : typeof v === "string" ? encoder.encode(v) : v);
const sha256 = (...parts: (string | Uint8Array)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

export class Envoy {
  readonly clock: Clock;
  readonly stats: StatsStore;
  /** Recorded `wasm` logger output (see LogEntry). */
  readonly logs: LogEntry[] = [];
  readonly plugins: Plugin[] = [];
  /** Test hook: runs inside proxy_set_shared_data before the write (see EnvoyHooks). */
  onBeforeSharedDataSet?: (vmIndex: number, key: string) => void;

  private level: number;
  private readonly recordLogs: boolean;
  /** See errorsDuring. */
  private readonly errorSinks: string[][] = [];
  private readonly onLog?: (entry: LogEntry) => void;
  private readonly bufferLimitBytes: number;
  private readonly random: SeededRandom;
  private readonly shared = new SharedDataStore();
  private readonly queues: SharedQueues;
  private readonly callouts: CalloutDispatcher;
  private readonly agent = new Agent({ keepAlive: true });
  private readonly services: HostServices;
  private readonly bases = new Map<string, BaseVm>();
  /** Thread-local VMs: thread (-1 main, 0.. workers) -> vm_key -> VM. */
  private readonly threads = new Map<number, Map<string, Vm>>();
  private readonly vmUsers = new Map<Vm, Set<Plugin>>();
  private pendingPosts = 0;
  private postsRun = 0;
  private streamIds = 0;
  private pluginSerial = 0;
  private closed = false;

  constructor(options: EnvoyOptions = {}) {
    this.clock = options.clock ?? new RealClock();
    this.level = logLevelNumber(options.logLevel ?? "info");
    this.recordLogs = options.recordLogs ?? true;
    this.onLog = options.onLog;
    this.bufferLimitBytes = options.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT_BYTES;
    this.random = new SeededRandom(options.seed ?? 0x5eed);
    this.stats = new StatsStore(options.statsTags ?? []);
    this.callouts = new CalloutDispatcher(options.clusters ?? {}, this.clock, this.agent, (request, error) => {
      const message = `cluster ${request.cluster} handler failed: ${String(error)}`;
      this.log({ level: "error", vm: request.vm, context: 0, message, line: message, source: "host" });
    });
    this.queues = new SharedQueues((thread, vmKey, contextId, token) =>
      this.post(() => this.threads.get(thread)?.get(vmKey)?.getContext(contextId)?.onQueueReady(token)),
    );
    const self = this;
    this.services = {
      clock: this.clock,
      get logLevel() {
        return self.level;
      },
      log: (e) => this.log(e),
      stats: this.stats,
      sharedData: this.shared,
      sharedQueues: this.queues,
      callouts: this.callouts,
      hooks: this,
      post: (task) => this.post(task),
      randomBytes: (out) => this.random.fill(out),
      threadLocalVm: (thread, vmKey) => this.threads.get(thread)?.get(vmKey),
    };
  }

  /** The `wasm` logger level; Envoy can change it at runtime (admin /logging). */
  get logLevel(): LogLevelName {
    return LOG_LEVELS[this.level];
  }
  set logLevel(level: LogLevelName) {
    this.level = logLevelNumber(level);
  }

  // ---- configure ---------------------------------------------------------------------

  /**
   * Adds an HTTP filter config: loads and validates the module (once per
   * vm_key), runs the canary, then starts the main-thread VM and the workers.
   * Throws ConfigRejectedError when Envoy would reject the config.
   */
  async addHttpFilter(options: HttpFilterOptions): Promise<Plugin> {
    if (this.closed) throw new Error("envoy is shut down");
    if (options.failOpenLegacy && options.failurePolicy !== undefined) {
      throw new ConfigRejectedError(options.name, "only one of fail_open or failure_policy can be set");
    }
    const code = typeof options.wasm === "string" ? new Uint8Array(await readFile(options.wasm)) : options.wasm;
    const vmId = options.vmId ?? "";
    const rootId = options.rootId ?? "";
    const vmConfiguration = toBytes(options.vmConfiguration);
    const configuration = toBytes(options.configuration);
    const vmKey = sha256(vmId, "||", vmConfiguration, "||", code);
    const info: PluginInfo = {
      name: options.name,
      rootId,
      vmId,
      configuration,
      // Each addHttpFilter is its own filter config (Envoy would share a root for identical configs).
      key: sha256(rootId, "||", configuration, "||", options.name, "||", String(this.pluginSerial++)),
      failOpen: options.failOpenLegacy ?? false,
      allowOnHeadersStopIteration: options.allowOnHeadersStopIteration ?? false,
      logPrefix: [options.name, rootId, vmId].filter((p) => p !== "").map((p) => ` ${p}`).join(""),
    };
    const base = await this.baseVm(info, vmKey, code, vmConfiguration, Object.entries(options.environment ?? {}));
    this.canary(base, info);
    const plugin = new Plugin(this.pluginHost(base), {
      info,
      vmKey,
      concurrency: Math.max(1, options.concurrency ?? 1),
      failurePolicy: options.failOpenLegacy ? "FAIL_OPEN" : (options.failurePolicy ?? "FAIL_CLOSED"),
      reloadBackoffMs: options.reloadBackoffMs ?? DEFAULT_RELOAD_BACKOFF_MS,
    });
    plugin.startThreads();
    this.plugins.push(plugin);
    return plugin;
  }

  /** cpp-host createWasm: the base VM per vm_key, loaded and started once (no on_vm_start on it). */
  private async baseVm(info: PluginInfo, vmKey: string, code: Uint8Array, vmConfiguration: Uint8Array, env: [string, string][]): Promise<BaseVm> {
    const existing = this.bases.get(vmKey);
    if (existing !== undefined) return existing;
    let module: LoadedModule;
    try {
      module = await loadModule(code);
    } catch (e) {
      if (!(e instanceof ModuleLoadError)) throw e;
      for (const p of e.problems) this.log({ level: "error", vm: -3, context: 0, message: p, line: p, source: "host" });
      throw new ConfigRejectedError(info.name, "Failed to load Wasm code", e.problems);
    }
    const vm = this.newVm(module, "base", -3, info.vmId, vmKey, vmConfiguration, env);
    const errors = this.errorsDuring(() => vm.startVm());
    if (vm.failed) throw new ConfigRejectedError(info.name, "Failed to initialize Wasm code", errors);
    const base: BaseVm = { module, vm, vmId: info.vmId, vmConfiguration, env, canary: new Map() };
    this.bases.set(vmKey, base);
    return base;
  }

  /** cpp-host WasmHandleBase::canary: a throw-away clone must start and configure. */
  private canary(base: BaseVm, info: PluginInfo): void {
    const cached = base.canary.get(info.key);
    if (cached === true) return;
    if (cached === false) throw new ConfigRejectedError(info.name, "Failed to configure base Wasm plugin");
    const vm = this.newVm(base.module, "canary", -2, base.vmId, base.vm.vmKey, base.vmConfiguration, base.env);
    let reason: string | null = null;
    const errors = this.errorsDuring(() => {
      if (!vm.startVm()) {
        reason = "Failed to initialize Wasm code";
        return;
      }
      const root = vm.start(info);
      if (root === null) {
        reason = "Failed to start base Wasm";
        return;
      }
      if (!vm.configure(root, info)) {
        reason = "Failed to configure base Wasm plugin";
        base.canary.set(info.key, false);
      }
    });
    // kill(): the canary is dropped without on_done / on_delete.
    vm.dispose();
    if (reason === "Failed to configure base Wasm plugin") {
      // What Envoy 1.40 prints after the filter's own lines, in this order
      // (tests/differential/config.test.ts): cpp-host's fail() through Envoy's
      // error() ("Wasm VM failed <reason>", source/extensions/common/wasm/wasm.cc),
      // createWasm's "Plugin <name> failed to load", then the thread-local slot's
      // "fail closed" line, which depends on the deprecated fail_open only:
      // failure_policy FAIL_OPEN still prints it.
      const host = (level: LogEntry["level"], message: string) => this.log({ level, vm: -2, context: 0, message, line: message, source: "host" });
      host("error", `Wasm VM failed ${reason}`);
      host("critical", `Plugin ${info.name} failed to load`);
      if (!info.failOpen) host("critical", "Plugin configured to fail closed failed to load");
    }
    if (reason !== null) throw new ConfigRejectedError(info.name, reason, errors);
    base.canary.set(info.key, true);
  }

  private newVm(module: LoadedModule, role: Vm["role"], index: number, vmId: string, vmKey: string, vmConfiguration: Uint8Array, env: [string, string][]): Vm {
    return new Vm({ services: this.services, module, role, index, vmId, vmKey, vmConfiguration, env });
  }

  /**
   * The error lines logged while `body` runs, collected apart from `logs`: with
   * recordLogs off (the dev gateway) a refused configuration must still carry
   * the filter's own line ("prefix-router: invalid configuration: …"), which
   * Envoy prints whatever is kept (tests/differential/config.test.ts).
   */
  private errorsDuring(body: () => void): string[] {
    const errors: string[] = [];
    this.errorSinks.push(errors);
    try {
      body();
    } finally {
      this.errorSinks.pop();
    }
    return errors;
  }

  /** What a plugin needs to load its threads (cpp-host getOrCreateThreadLocalPlugin). */
  private pluginHost(base: BaseVm): PluginHost {
    return {
      clock: this.clock,
      stats: this.stats,
      random: this.random,
      bufferLimitBytes: this.bufferLimitBytes,
      nextStreamId: () => ++this.streamIds,
      warn: (vm, message) => this.log({ level: "warn", vm, context: 0, message, line: message, source: "host" }),
      loadThread: (thread, plugin) => this.loadThread(base, thread, plugin),
      release: (vm, plugin) => this.release(vm, plugin),
    };
  }

  private loadThread(base: BaseVm, thread: number, plugin: Plugin): { vm: Vm; root: Context } | null {
    const vmKey = base.vm.vmKey;
    let perThread = this.threads.get(thread);
    if (perThread === undefined) this.threads.set(thread, (perThread = new Map()));
    let vm = perThread.get(vmKey);
    if (vm === undefined) {
      vm = this.newVm(base.module, thread === -1 ? "main" : "worker", thread, base.vmId, vmKey, base.vmConfiguration, base.env);
      if (!vm.startVm()) {
        vm.hostLog("error", "Failed to initialize Wasm code");
        vm.dispose();
        return null;
      }
      perThread.set(vmKey, vm);
      const cached = vm;
      // A VM that fails at runtime is evicted so the next load clones a fresh one.
      vm.onFail((state) => {
        if (state === "RuntimeError" && perThread!.get(vmKey) === cached) perThread!.delete(vmKey);
      });
    }
    const root = vm.start(plugin.info);
    if (root === null) {
      vm.hostLog("error", "Failed to start thread-local Wasm");
      return null;
    }
    if (!vm.configure(root, plugin.info)) {
      vm.hostLog("error", "Failed to configure thread-local Wasm plugin");
      return null;
    }
    let users = this.vmUsers.get(vm);
    if (users === undefined) this.vmUsers.set(vm, (users = new Set()));
    users.add(plugin);
    return { vm, root };
  }

  /** ~PluginHandle: the plugin's root shuts down; the last user of a VM disposes of it. */
  private release(vm: Vm, plugin: Plugin): void {
    vm.startShutdown(plugin.info.key);
    const users = this.vmUsers.get(vm);
    users?.delete(plugin);
    if (users === undefined || users.size === 0) {
      this.vmUsers.delete(vm);
      const perThread = this.threads.get(vm.index);
      if (perThread?.get(vm.vmKey) === vm) perThread.delete(vm.vmKey);
      vm.dispose();
    }
  }

  // ---- inspect ------------------------------------------------------------------------

  /** Shared data of one vm_id, read-only. */
  sharedData(vmId: string): SharedDataView {
    return new SharedDataView(this.shared, vmId);
  }

  /** Callouts that have not completed yet. */
  pendingCallouts(): PendingCallout[] {
    return this.callouts.pending();
  }

  /** Logs whose message matches, optionally at one level. */
  logsMatching(pattern: RegExp | string, level?: LogEntry["level"]): LogEntry[] {
    return this.logs.filter((l) => (level === undefined || l.level === level) && (typeof pattern === "string" ? l.message.includes(pattern) : pattern.test(l.message)));
  }

  // ---- drive ----------------------------------------------------------------------------

  /**
   * Lets everything that is ready happen: callout responses from handlers,
   * real HTTP exchanges (awaited until they finish), posted work such as queue
   * notifications. Work waiting on virtual time stays pending.
   */
  async settle(): Promise<void> {
    for (;;) {
      const before = this.callouts.progress + this.postsRun;
      await new Promise<void>((resolve) => setImmediate(resolve));
      const io = this.callouts.inflightIo();
      if (io.length > 0) {
        await Promise.race(io);
        continue;
      }
      if (this.callouts.progress + this.postsRun === before && this.pendingPosts === 0) return;
    }
  }

  /** Stops everything: root contexts shut down (on_done/on_delete), timers and callouts end. */
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const plugin of this.plugins) plugin.releaseAll();
    for (const base of this.bases.values()) base.vm.dispose();
    for (const perThread of this.threads.values()) for (const vm of perThread.values()) vm.dispose();
    this.agent.destroy();
  }

  // ---- internals --------------------------------------------------------------------------

  private log(entry: LogEntry): void {
    if (LOG_LEVELS.indexOf(entry.level) < this.level) return;
    if (this.recordLogs) this.logs.push(entry);
    if (entry.level === "error" || entry.level === "critical") for (const sink of this.errorSinks) sink.push(entry.message);
    this.onLog?.(entry);
  }

  /** Dispatcher::post: runs soon, outside any VM call. */
  private post(task: () => void): void {
    this.pendingPosts++;
    queueMicrotask(() => {
      this.pendingPosts--;
      this.postsRun++;
      if (!this.closed) task();
    });
  }
}
