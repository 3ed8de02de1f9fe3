// One Wasm VM instance as cpp-host's WasmBase + V8 WasmVm see it: its own
// linear memory and imports, its context registry and id counters (contexts,
// metrics, HTTP callouts), the "current context" of the executing call and the
// effective context set by proxy_set_effective_context, restricted callbacks
// during start-up and malloc, actions deferred until a VM call returns, tick
// timers per root context, and the failure state after a trap. It knows nothing
// about HTTP streams (context.ts, stream.ts) or the process (services.ts).
import type { AbiVersion } from "./enums.ts";
import { LOG_LEVELS } from "./enums.ts";
import type { TimerHandle } from "./clock.ts";
import type { LoadedModule } from "./module.ts";
import type { HostServices, PluginInfo } from "./services.ts";
import type { Stat } from "./stats.ts";
import { CALLOUT_ID_INCREMENT, CALLOUT_TYPE, METRIC_ID_INCREMENT } from "./limits.ts";
import { hostFunctionsFor, MALLOC_ALLOWED_HOST_CALLS, START_ALLOWED_HOST_CALLS, type HostFunctionSpec } from "./abi/signatures.ts";
import { HOST_FUNCTIONS, type HostFunction } from "./abi/index.ts";
import { Context } from "./context.ts";

/** cpp-host include/proxy-wasm/wasm_vm.h FailState (the ones the emulator produces). */
export type FailState = "UnableToInitializeCode" | "RuntimeError";

export type VmRole = "base" | "canary" | "main" | "worker";

/** Thrown from a host function to trap the calling module (V8 wasm::Trap). */
export class HostTrap extends Error {}

export interface VmOptions {
  services: HostServices;
  module: LoadedModule;
  role: VmRole;
  /** Thread index: workers 0..n-1, main thread -1; canary -2, base -3. */
  index: number;
  vmId: string;
  vmKey: string;
  vmConfiguration: Uint8Array;
  /** vm_config.environment_variables, served by WASI environ_get. */
  env: readonly (readonly [string, string])[];
}

const TRACE = 0;

export class Vm {
  readonly services: HostServices;
  readonly role: VmRole;
  readonly index: number;
  readonly vmId: string;
  readonly vmKey: string;
  readonly abiVersion: AbiVersion;
  readonly vmConfiguration: Uint8Array;
  readonly env: readonly (readonly [string, string])[];

  /** Live contexts by id, including the VM context 0 (cpp-host WasmBase::contexts_). */
  readonly contexts = new Map<number, Context>();
  /** Root contexts by plugin key (WasmBase::root_contexts_). */
  readonly rootContexts = new Map<string, Context>();
  /** Roots whose proxy_on_done returned false at shutdown (WasmBase::pending_done_). */
  readonly pendingDone = new Map<string, Context>();
  readonly vmContext: Context;

  failState: FailState | null = null;
  /** Metric id -> Envoy stat (Wasm::counters_ / gauges_ / histograms_). */
  readonly metrics = new Map<number, Stat>();

  /** Test-only hook: runs just before the host calls an export, with the context set. */
  beforeGuestCall?: (fn: string, args: readonly number[], context: Context) => void;
  /**
   * Benchmark hook: when true, time spent in exported calls (outermost only) and
   * in host functions is added up in guestCallMs / hostCallMs, so a benchmark can
   * tell the module's own work from the emulator's (Envoy's is C++ and cheaper).
   */
  profileTime = false;
  guestCallMs = 0;
  hostCallMs = 0;
  /** With profileTime: calls per host function ("env.proxy_get_shared_data": n), for a benchmark to report. */
  readonly hostCallCounts = new Map<string, number>();

  /**
   * Module time, the one definition every benchmark uses: time inside the
   * module's exported calls less the time inside the host functions they
   * called, in ms since profileTime was set. It is the filter's own work,
   * what runs in V8 under Envoy too (Envoy's host functions are C++, the
   * emulator's JavaScript, so host time is not comparable and is left out).
   * A host function's time is its whole import wrapper (linkHostFunction):
   * the emulator's argument conversion and checks are host work. Reports
   * made before this was so counted them as module time: 0.3 µs of a 16 KB
   * decision with one VM, 0.9 µs with 8 (13.7 host calls per request);
   * what is left in module time of a host call is V8's crossing into it.
   */
  moduleMs(): number {
    return this.guestCallMs - this.hostCallMs;
  }

  /** WasmBase::stop_iteration_: set by proxy_send_local_response for the running callback. */
  stopIteration = false;
  /** contextOrEffectiveContext state (cpp-host src/exports.cc current_context_ / effective_context_id_). */
  currentContext: Context | null = null;
  effectiveContextId = 0;

  private memory: WebAssembly.Memory | null = null;
  private cachedViews: { u8: Uint8Array; dv: DataView } | null = null;
  private fns: Record<string, (...args: (number | bigint)[]) => unknown> = {};
  private mallocName: string | null = null;
  private depth = 0;
  private restricted: ReadonlySet<string> | null = null;
  private afterCallActions: (() => void)[] = [];
  private nextContextId = 1;
  private nextMetricIds = [0, 1, 2];
  private nextHttpCallId: number = CALLOUT_TYPE.HttpCall;
  private timers = new Map<number, { period: number; handle: TimerHandle | null }>();
  private failListeners: ((state: FailState) => void)[] = [];
  private disposed = false;

  constructor(options: VmOptions) {
    this.services = options.services;
    this.role = options.role;
    this.index = options.index;
    this.vmId = options.vmId;
    this.vmKey = options.vmKey;
    this.abiVersion = options.module.abiVersion;
    this.vmConfiguration = options.vmConfiguration;
    this.env = options.env;
    this.vmContext = new Context({ vm: this, id: 0, parentId: 0, plugin: null });
    this.instantiate(options.module);
  }

  // ---- lifecycle ------------------------------------------------------------

  get failed(): boolean {
    return this.failState !== null;
  }

  /** Bytes of linear memory now. */
  memoryBytes(): number {
    return this.memory?.buffer.byteLength ?? 0;
  }

  /** Ids of live contexts (roots and streams), ascending; the VM context 0 is not listed. */
  liveContexts(): number[] {
    return [...this.contexts.keys()].filter((id) => id !== 0).sort((a, b) => a - b);
  }

  hasExport(name: string): boolean {
    return name in this.fns;
  }

  onFail(listener: (state: FailState) => void): void {
    this.failListeners.push(listener);
  }

  /** cpp-host WasmVm::fail: logs through the integration and marks the VM failed. */
  fail(state: FailState, message: string): void {
    this.hostLog("error", message);
    if (this.failState === null) this.failState = state;
    for (const listener of this.failListeners) listener(state);
  }

  /** The handle's owner dropped this VM (Envoy ~WasmBase): timers stop, callouts are cancelled. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.timers.values()) t.handle?.cancel();
    this.timers.clear();
    for (const ctx of this.contexts.values()) ctx.cancelHttpCalls();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** cpp-host src/v8/v8.cc link + WasmBase::getFunctions (types were checked by module.ts). */
  private instantiate(module: LoadedModule): void {
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    for (const spec of hostFunctionsFor(this.abiVersion).values()) {
      (imports[spec.module] ??= {})[spec.name] = this.linkHostFunction(spec);
    }
    if (module.memoryImport !== null) {
      const { module: m, name, limits } = module.memoryImport;
      (imports[m] ??= {})[name] = new WebAssembly.Memory({ initial: limits.min, maximum: limits.max });
    }
    for (const t of module.tableImports) {
      (imports[t.module] ??= {})[t.name] = new WebAssembly.Table({ element: "anyfunc", initial: t.limits.min, maximum: t.limits.max });
    }
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module.compiled, imports);
    } catch (e) {
      this.fail("UnableToInitializeCode", `Failed to create new Wasm instance: ${(e as Error).message}`);
      return;
    }
    for (const [name, value] of Object.entries(instance.exports)) {
      if (typeof value === "function") this.fns[name] = value as (...args: (number | bigint)[]) => unknown;
      else if (value instanceof WebAssembly.Memory && this.memory === null) this.memory = value;
    }
    if (this.memory === null && module.memoryImport !== null) {
      this.memory = imports[module.memoryImport.module][module.memoryImport.name] as WebAssembly.Memory;
    }
    this.mallocName = "malloc" in this.fns ? "malloc" : "proxy_on_memory_allocate" in this.fns ? "proxy_on_memory_allocate" : null;
    if ("_initialize" in this.fns) delete this.fns._start;
    else delete this.fns.main;
  }

  /** cpp-host src/wasm.cc WasmBase::startVm: _initialize (+ main) or _start, under restricted callbacks. */
  startVm(): boolean {
    if (this.failed) return false;
    this.restricted = START_ALLOWED_HOST_CALLS;
    try {
      if (this.hasExport("_initialize")) {
        this.callGuest(this.vmContext, "_initialize", []);
        if (this.hasExport("main")) this.callGuest(this.vmContext, "main", [0, 0]);
      } else if (this.hasExport("_start")) {
        this.callGuest(this.vmContext, "_start", []);
      }
    } finally {
      this.restricted = null;
    }
    return !this.failed;
  }

  // ---- contexts ---------------------------------------------------------------

  /** cpp-host WasmBase::allocContextId: ids are never reused while a context is alive. */
  allocContextId(): number {
    for (;;) {
      const id = this.nextContextId++;
      if (!this.contexts.has(id)) return id;
    }
  }

  getContext(id: number): Context | undefined {
    return this.contexts.get(id);
  }

  /** cpp-host src/exports.cc contextOrEffectiveContext. */
  contextOrEffectiveContext(): Context {
    const current = this.currentContext;
    if (current === null) throw new HostTrap("host function called with no current context");
    if (this.effectiveContextId === 0) return current;
    return this.contexts.get(this.effectiveContextId) ?? current;
  }

  /** cpp-host WasmBase::start: a root context per plugin, on_context_create + on_vm_start. */
  start(plugin: PluginInfo): Context | null {
    let root = this.rootContexts.get(plugin.key);
    if (root !== undefined) {
      root.onStart(plugin);
      return root;
    }
    root = new Context({ vm: this, id: this.allocContextId(), parentId: 0, plugin });
    this.rootContexts.set(plugin.key, root);
    return root.onStart(plugin) ? root : null;
  }

  /** cpp-host WasmBase::configure. */
  configure(root: Context, plugin: PluginInfo): boolean {
    return root.onConfigure(plugin);
  }

  /**
   * cpp-host WasmBase::startShutdown(plugin_key): the plugin's root gets on_done,
   * then on_delete, or waits for proxy_done if on_done returned false.
   */
  startShutdown(pluginKey: string): void {
    const root = this.rootContexts.get(pluginKey);
    if (root === undefined) return;
    this.rootContexts.delete(pluginKey);
    if (root.onDone()) {
      root.onDelete();
      root.release();
    } else {
      this.pendingDone.set(pluginKey, root);
    }
  }

  /** cpp-host WasmBase::done (proxy_done): the root is deleted after the current VM call. */
  done(root: Context): boolean {
    const key = root.plugin?.key;
    if (key === undefined || this.pendingDone.get(key) !== root) return false;
    this.pendingDone.delete(key);
    this.addAfterVmCallAction(() => {
      root.onDelete();
      root.release();
    });
    return true;
  }

  // ---- calls into the module ---------------------------------------------------

  /**
   * Calls an export with `context` current and the effective context reset, as
   * cpp-host's WasmCall wrappers do (include/proxy-wasm/wasm_vm.h
   * SaveRestoreContext). A trap fails the VM and yields 0 (R{}), like
   * src/v8/v8.cc getModuleFunctionImpl. Word results are read as u32.
   */
  callGuest(context: Context, fn: string, args: readonly number[]): number {
    const f = this.fns[fn];
    if (f === undefined) return 0;
    const savedContext = this.currentContext;
    const savedEffective = this.effectiveContextId;
    this.currentContext = context;
    this.effectiveContextId = 0;
    this.depth++;
    try {
      this.beforeGuestCall?.(fn, args, context);
      const trace = this.tracing();
      if (trace) this.hostLog("trace", `[host->vm] ${fn}(${args.join(", ")})`);
      const t0 = this.profileTime && this.depth === 1 ? performance.now() : 0;
      const result = f(...args);
      if (t0 !== 0) this.guestCallMs += performance.now() - t0;
      const word = typeof result === "number" ? result >>> 0 : 0;
      if (trace) this.hostLog("trace", `[host<-vm] ${fn} return: ${typeof result === "number" ? word : "void"}`);
      return word;
    } catch (e) {
      if (!isTrap(e)) throw e;
      this.fail("RuntimeError", failMessage(fn, e));
      return 0;
    } finally {
      this.depth--;
      this.currentContext = savedContext;
      this.effectiveContextId = savedEffective;
    }
  }

  /** True while any export of this VM is executing. */
  get busy(): boolean {
    return this.depth > 0;
  }

  /** WasmBase::addAfterVmCallAction. */
  addAfterVmCallAction(action: () => void): void {
    this.afterCallActions.push(action);
  }

  /**
   * Runs `body` the way cpp-host's DeferAfterCallActions scopes a callback: when
   * it ends, stop_iteration_ is cleared and every deferred action runs, including
   * ones queued by the actions themselves.
   */
  withAfterCallActions<T>(body: () => T): T {
    try {
      return body();
    } finally {
      this.stopIteration = false;
      while (this.afterCallActions.length > 0) this.afterCallActions.shift()!();
    }
  }

  // ---- memory -------------------------------------------------------------------

  /** Views over the current memory buffer, renewed when memory.grow replaces it. */
  private views(): { u8: Uint8Array; dv: DataView } {
    if (this.memory === null) throw new HostTrap("module has no memory");
    const buffer = this.memory.buffer;
    if (this.cachedViews === null || this.cachedViews.dv.buffer !== buffer) {
      this.cachedViews = { u8: new Uint8Array(buffer), dv: new DataView(buffer) };
    }
    return this.cachedViews;
  }

  /** cpp-host V8::getMemory: a view of [ptr, ptr+size), or null when out of bounds. */
  getMemory(ptr: number, size: number): Uint8Array | null {
    const { u8 } = this.views();
    if (ptr + size > u8.length) return null;
    return u8.subarray(ptr, ptr + size);
  }

  setMemory(ptr: number, bytes: Uint8Array): boolean {
    const { u8 } = this.views();
    if (ptr + bytes.length > u8.length) return false;
    u8.set(bytes, ptr);
    return true;
  }

  /** V8::setWord: a u32, little-endian. */
  setWord(ptr: number, value: number): boolean {
    const { dv } = this.views();
    if (ptr + 4 > dv.byteLength) return false;
    dv.setUint32(ptr, value >>> 0, true);
    return true;
  }

  /** WasmBase::setDatatype<uint64_t>. */
  setU64(ptr: number, value: bigint): boolean {
    const { dv } = this.views();
    if (ptr + 8 > dv.byteLength) return false;
    dv.setBigUint64(ptr, BigInt.asUintN(64, value), true);
    return true;
  }

  /**
   * cpp-host include/proxy-wasm/wasm.h WasmBase::allocMemory: the module's malloc
   * runs in the VM context under restricted callbacks; 0 or an out-of-bounds
   * block is a failure (null).
   */
  allocMemory(size: number): number | null {
    if (this.mallocName === null) return null;
    this.restricted = MALLOC_ALLOWED_HOST_CALLS;
    let address: number;
    try {
      address = this.callGuest(this.vmContext, this.mallocName, [size]);
    } finally {
      // cpp-host clears the restriction outright, not back to a previous state.
      this.restricted = null;
    }
    if (address === 0 || this.getMemory(address, size) === null) return null;
    return address;
  }

  /** WasmBase::copyToPointerSize: empty data writes 0/0 without calling malloc. */
  copyToPointerSize(data: Uint8Array, ptrPtr: number, sizePtr: number): boolean {
    let pointer = 0;
    if (data.length > 0) {
      const p = this.allocMemory(data.length);
      if (p === null) return false;
      pointer = p;
      this.setMemory(pointer, data);
    }
    return this.setWord(ptrPtr, pointer) && this.setWord(sizePtr, data.length);
  }

  // ---- ids ------------------------------------------------------------------------

  /** WasmBase::nextCounterMetricId etc.: (n * 4) | type, one counter per type. */
  nextMetricId(type: number): number {
    this.nextMetricIds[type] += METRIC_ID_INCREMENT;
    return this.nextMetricIds[type] >>> 0;
  }

  /** WasmBase::nextHttpCallId: 4, 8, 12, … per VM. */
  allocHttpCallId(): number {
    this.nextHttpCallId = (this.nextHttpCallId + CALLOUT_ID_INCREMENT) >>> 0;
    return this.nextHttpCallId;
  }

  // ---- timers -----------------------------------------------------------------------

  /** envoy source/extensions/common/wasm/wasm.cc Wasm::setTimerPeriod. */
  setTimerPeriod(rootId: number, periodMs: number): void {
    const existing = this.timers.get(rootId);
    existing?.handle?.cancel();
    const entry = { period: periodMs, handle: null as TimerHandle | null };
    this.timers.set(rootId, entry);
    if (periodMs > 0 && !this.disposed) entry.handle = this.services.clock.setTimer(periodMs, () => this.tickHandler(rootId));
  }

  /** The tick period of a root context, 0 when none. */
  tickPeriod(rootId: number): number {
    return this.timers.get(rootId)?.period ?? 0;
  }

  /** Wasm::tickHandler: tick the root (skipped if failed), then re-arm for one more period. */
  private tickHandler(rootId: number): void {
    const entry = this.timers.get(rootId);
    if (entry === undefined || this.disposed || !this.hasExport("proxy_on_tick")) return;
    entry.handle = null;
    const tick = () => this.contexts.get(rootId)?.onTick();
    // A tick never runs inside another call on the same VM thread.
    if (this.busy) this.addAfterVmCallAction(tick);
    else tick();
    const current = this.timers.get(rootId);
    if (current !== undefined && current.period > 0 && !this.disposed) {
      current.handle?.cancel();
      current.handle = this.services.clock.setTimer(current.period, () => this.tickHandler(rootId));
    }
  }

  // ---- host functions -------------------------------------------------------------

  /** True when host functions may be called now (V8 isHostFunctionAllowed). */
  private allowed(key: string): boolean {
    return this.restricted === null || this.restricted.has(key);
  }

  tracing(): boolean {
    return this.services.logLevel <= TRACE;
  }

  /** A message from cpp-host / Envoy itself (not the module) on the `wasm` logger. */
  hostLog(level: "trace" | "debug" | "info" | "warn" | "error" | "critical", message: string): void {
    if (LOG_LEVELS.indexOf(level) < this.services.logLevel) return;
    const context = this.currentContext;
    this.services.log({ level, vm: this.index, context: context?.id ?? 0, message, line: message, source: "host" });
  }

  /**
   * The function a module import is bound to: u32 view of i32 arguments, the
   * restricted-callback check (V8 traps with "restricted_callback"), trace logs.
   */
  private linkHostFunction(spec: HostFunctionSpec): (...raw: (number | bigint)[]) => number | undefined {
    const key = `${spec.module}.${spec.name}`;
    const impl: HostFunction | undefined = HOST_FUNCTIONS[spec.name];
    if (impl === undefined) throw new Error(`emulator bug: no implementation for host function ${key}`);
    const kinds = spec.sig.params;
    const returnsVoid = spec.sig.results.length === 0;
    return (...raw) => {
      const t0 = this.profileTime ? performance.now() : 0;
      try {
        if (!this.allowed(key)) throw new HostTrap("restricted_callback");
        const args = raw.map((a, i) => (kinds[i] === "i64" ? BigInt.asUintN(64, BigInt(a)) : Number(a) >>> 0));
        const trace = this.tracing();
        if (trace) this.hostLog("trace", `[vm->host] ${key}(${args.join(", ")})`);
        if (t0 !== 0) this.hostCallCounts.set(key, (this.hostCallCounts.get(key) ?? 0) + 1);
        const result = impl(this, ...args);
        if (trace) this.hostLog("trace", `[vm<-host] ${key} return: ${returnsVoid ? "void" : result}`);
        return returnsVoid ? undefined : (result ?? 0);
      } finally {
        if (t0 !== 0) this.hostCallMs += performance.now() - t0;
      }
    };
  }

  /**
   * Test hook: runs `body` as if the module were executing a callback on
   * `contextId`: current context set, effective context reset, deferred
   * actions run at the end (unless a real callback is already running).
   * `call` invokes host functions by name exactly as an import would
   * (restrictions, u32/u64 arguments, trace logs).
   */
  runAsGuest<T>(contextId: number, body: (call: (name: string, ...args: (number | bigint)[]) => number) => T): T {
    const context = this.contexts.get(contextId);
    if (context === undefined) throw new Error(`no context ${contextId} in VM ${this.index}`);
    const specs = hostFunctionsFor(this.abiVersion);
    const call = (name: string, ...args: (number | bigint)[]) => {
      const spec = specs.get(`env.${name}`) ?? specs.get(`wasi_snapshot_preview1.${name}`);
      if (spec === undefined) throw new Error(`${name} is not a host function of ABI ${this.abiVersion}`);
      return (this.linkHostFunction(spec)(...args) ?? 0) >>> 0;
    };
    const run = () => {
      const saved = [this.currentContext, this.effectiveContextId] as const;
      this.currentContext = context;
      this.effectiveContextId = 0;
      this.depth++;
      try {
        return body(call);
      } finally {
        this.depth--;
        [this.currentContext, this.effectiveContextId] = saved;
      }
    };
    // Nested inside a running callback (e.g. from beforeGuestCall), deferred actions wait for that callback.
    return this.busy ? run() : this.withAfterCallActions(run);
  }

  /** Test hook: one host call as if made by the module from `contextId` (see runAsGuest). */
  hostCall(name: string, args: readonly (number | bigint)[], contextId = 0): number {
    return this.runAsGuest(contextId, (call) => call(name, ...args));
  }

  /** Test hook: memory for hostCall arguments, from the module's own malloc. */
  alloc(bytes: Uint8Array | number): number {
    const data = typeof bytes === "number" ? new Uint8Array(bytes) : bytes;
    const p = this.allocMemory(Math.max(1, data.length));
    if (p === null) throw new Error("module malloc failed");
    this.setMemory(p, data);
    return p;
  }

  /** Test hook: a copy of guest memory. */
  read(ptr: number, size: number): Uint8Array {
    const m = this.getMemory(ptr, size);
    if (m === null) throw new Error(`read out of bounds: ${ptr}+${size}`);
    return m.slice();
  }
}

function isTrap(e: unknown): e is Error {
  return e instanceof WebAssembly.RuntimeError || e instanceof HostTrap || e instanceof RangeError;
}

/** src/v8/v8.cc getFailMessage, with the in-VM backtrace taken from the JS stack. */
function failMessage(fn: string, e: Error): string {
  const what = e instanceof HostTrap ? `Uncaught Error: ${e.message}` : `Uncaught ${e.name}: ${e.message}`;
  const frames = (e.stack ?? "")
    .split("\n")
    .filter((l) => l.includes("wasm://"))
    .map((l, i) => `${String(i).padStart(3, " ")}:  ${l.trim().replace(/^at /, "")}`);
  return `Function: ${fn} failed: ${what}` + (frames.length > 0 ? `\nProxy-Wasm plugin in-VM backtrace:\n${frames.join("\n")}` : "");
}
