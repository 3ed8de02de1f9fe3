// One proxy-wasm context on the host side: cpp-host's ContextBase (identity,
// the calls into the module with their failure checks and return-value
// conversions, src/context.cc) joined with Envoy's HTTP filter Context (the
// header maps and body buffers it holds and when it lets go of them, the
// decode*/encode*/log/onDestroy glue, deferred continue/close/local reply,
// callout delivery; envoy source/extensions/common/wasm/context.cc).
// The filter manager around it is stream.ts; host-call argument handling is abi/.
import { DATA_STATUS, GRPC_UNAVAILABLE, HEADERS_STATUS, LOG_LEVELS, StreamType, TRAILERS_STATUS, WasmResult } from "./enums.ts";
import type { DataStatus, HeadersStatus, TrailersStatus } from "./enums.ts";
import type { HeaderMap } from "./header-map.ts";
import type { MutableBuffer } from "./buffers.ts";
import type { LogEntry, PluginInfo } from "./services.ts";
import type { Vm } from "./vm.ts";

/** What the filter manager offers the filter (Envoy StreamDecoder/EncoderFilterCallbacks). */
export interface FilterCallbacks {
  continueDecoding(): void;
  continueEncoding(): void;
  sendLocalReply(status: number, body: string | Uint8Array, modifyHeaders: ((h: HeaderMap) => void) | null, grpcStatus: number | null, details: string): void;
  resetStream(details: string): void;
  /** modifyDecodingBuffer: the filter manager's buffered request body. */
  decodingBuffer(): MutableBuffer | null;
  encodingBuffer(): MutableBuffer | null;
  addDecodedData(data: MutableBuffer): void;
  addEncodedData(data: MutableBuffer): void;
  addDecodedTrailers(): HeaderMap;
  addEncodedTrailers(): HeaderMap;
  readonly streamInfo: StreamInfo;
}

export interface StreamInfo {
  readonly protocol: string;
  readonly startTimeMs: number;
  readonly id: number;
  /**
   * Request body bytes received from the client so far, counted before the
   * filter sees them (envoy conn_manager_impl.cc ActiveStream::decodeData
   * adds each chunk to StreamInfo::bytesReceived first).
   */
  bytesReceived: number;
}

/** A completed callout response held by the root context during proxy_on_http_call_response. */
export interface HttpCallResponse {
  headers: HeaderMap;
  body: Uint8Array;
  trailers: HeaderMap | null;
}

export interface PendingHttpCall {
  cancel(): void;
}

export interface ContextInit {
  vm: Vm | null;
  id: number;
  parentId: number;
  plugin: PluginInfo | null;
}

export class Context {
  readonly vm: Vm | null;
  readonly id: number;
  readonly parentId: number;
  readonly plugin: PluginInfo | null;

  inVmContextCreated = false;
  destroyed = false;
  /** ContextBase::temp_plugin_: set while on_context_create (root) and on_configure run. */
  tempPlugin: PluginInfo | null = null;

  // Root-context state (Envoy Context: http_request_, http_call_response_, status_*).
  readonly httpCalls = new Map<number, PendingHttpCall>();
  httpCallResponse: HttpCallResponse | null = null;
  statusCode = 0;
  statusMessage = "";

  // Stream-context state (Envoy Context members of the same names).
  callbacks: FilterCallbacks | null = null;
  requestHeaders: HeaderMap | null = null;
  requestTrailers: HeaderMap | null = null;
  responseHeaders: HeaderMap | null = null;
  responseTrailers: HeaderMap | null = null;
  requestBodyBuffer: MutableBuffer | null = null;
  responseBodyBuffer: MutableBuffer | null = null;
  bufferingRequestBody = false;
  bufferingResponseBody = false;
  endOfStream = false;
  accessLogPhase = false;
  readonly accessLog = {
    requestHeaders: null as HeaderMap | null,
    responseHeaders: null as HeaderMap | null,
    responseTrailers: null as HeaderMap | null,
  };
  /** Filter state written by proxy_set_property ("wasm.<path>" CelState values). */
  readonly filterState = new Map<string, Uint8Array>();
  private streamFailed = false;
  private failureLocalReplySent = false;

  constructor(init: ContextInit) {
    this.vm = init.vm;
    this.id = init.id;
    this.parentId = init.parentId;
    this.plugin = init.plugin;
    this.vm?.contexts.set(this.id, this);
  }

  /** Root contexts (and the VM context) have no parent. */
  get isRoot(): boolean {
    return this.parentId === 0;
  }

  rootContext(): Context {
    if (this.isRoot || this.vm === null) return this;
    return this.vm.contexts.get(this.parentId) ?? this;
  }

  /** cpp-host ContextBase::log_prefix: root " <root_id> <vm_id>", stream the plugin's prefix. */
  logPrefix(): string {
    if (this.plugin === null) return "";
    if (!this.isRoot) return this.plugin.logPrefix;
    return (this.plugin.rootId ? ` ${this.plugin.rootId}` : "") + (this.plugin.vmId ? ` ${this.plugin.vmId}` : "");
  }

  isFailed(): boolean {
    return this.vm === null || this.vm.failed;
  }

  /** ~Context: leaves the VM's context table and cancels its outstanding callouts. */
  release(): void {
    this.cancelHttpCalls();
    if (this.vm !== null && this.id !== 0 && this.vm.contexts.get(this.id) === this) this.vm.contexts.delete(this.id);
  }

  cancelHttpCalls(): void {
    for (const call of this.httpCalls.values()) call.cancel();
    this.httpCalls.clear();
  }

  private has(fn: string): boolean {
    return this.vm !== null && this.vm.hasExport(fn);
  }

  /** A module call inside a DeferAfterCallActions scope (cpp-host src/context.cc). */
  private call(fn: string, args: readonly number[]): number {
    const vm = this.vm!;
    return vm.withAfterCallActions(() => vm.callGuest(this, fn, args));
  }

  // ---- root lifecycle (cpp-host ContextBase::onStart / onConfigure) ---------------

  onStart(plugin: PluginInfo): boolean {
    const vm = this.vm!;
    return vm.withAfterCallActions(() => {
      if (this.has("proxy_on_context_create")) {
        this.tempPlugin = plugin;
        vm.callGuest(this, "proxy_on_context_create", [this.id, 0]);
        this.inVmContextCreated = true;
        this.tempPlugin = null;
      }
      if (this.has("proxy_on_vm_start")) {
        // on_vm_start is independent of the plugin: no temp_plugin_ here.
        return vm.callGuest(this, "proxy_on_vm_start", [this.id, vm.vmConfiguration.length]) !== 0;
      }
      return true;
    });
  }

  onConfigure(plugin: PluginInfo): boolean {
    if (this.isFailed()) return true;
    if (!this.inVmContextCreated && this.has("proxy_on_context_create")) this.call("proxy_on_context_create", [this.id, 0]);
    this.inVmContextCreated = true;
    if (!this.has("proxy_on_configure")) return true;
    const vm = this.vm!;
    return vm.withAfterCallActions(() => {
      this.tempPlugin = plugin;
      const ok = vm.callGuest(this, "proxy_on_configure", [this.id, plugin.configuration.length]) !== 0;
      this.tempPlugin = null;
      return ok;
    });
  }

  /** ContextBase::onCreate: the in-VM stream context, created lazily at first use. */
  onCreate(): void {
    if (!this.isFailed() && !this.inVmContextCreated && this.has("proxy_on_context_create")) {
      this.call("proxy_on_context_create", [this.id, this.isRoot ? 0 : this.parentId]);
    }
    this.inVmContextCreated = true;
  }

  onTick(): void {
    if (!this.isFailed() && this.has("proxy_on_tick")) this.call("proxy_on_tick", [this.id]);
  }

  onQueueReady(token: number): void {
    if (!this.isFailed() && this.has("proxy_on_queue_ready")) this.call("proxy_on_queue_ready", [this.id, token]);
  }

  /** ContextBase::onDone: the return value matters only for root contexts. */
  onDone(): boolean {
    if (!this.isFailed() && this.has("proxy_on_done")) return this.call("proxy_on_done", [this.id]) !== 0;
    return true;
  }

  onLog(): void {
    if (!this.isFailed() && this.has("proxy_on_log")) this.call("proxy_on_log", [this.id]);
  }

  onDelete(): void {
    if (this.inVmContextCreated && !this.isFailed() && this.has("proxy_on_delete")) this.call("proxy_on_delete", [this.id]);
  }

  // ---- HTTP callbacks with CHECK_FAIL and conversions (cpp-host src/context.cc) ----

  /** CHECK_FAIL: a failed VM fails the stream once (503) unless the legacy fail_open is set. */
  private checkFail<T>(open: T, closed: T): T | null {
    if (!this.isFailed()) return null;
    if (this.plugin?.failOpen) return open;
    if (!this.streamFailed) {
      // failStream(Request) then failStream(Response): one filter manager here, so one reply.
      this.failStream();
      this.streamFailed = true;
    }
    return closed;
  }

  /** envoy Context::failStream: 503 "wasm_fail_stream", sent at most once. */
  private failStream(): void {
    if (this.callbacks !== null && !this.failureLocalReplySent) {
      this.callbacks.sendLocalReply(503, "", null, GRPC_UNAVAILABLE, "wasm_fail_stream");
      this.failureLocalReplySent = true;
    }
  }

  /**
   * convertVmCallResultToFilterHeadersStatus, then Envoy's convertFilterHeadersStatus
   * (ContinueAndEndStream falls into its default branch: Continue).
   */
  private convertHeaders(result: number): HeadersStatus {
    let status: HeadersStatus;
    if (this.vm!.stopIteration || result > 4) status = "StopAllIterationAndWatermark";
    else if (result === 1 && !this.plugin?.allowOnHeadersStopIteration) status = "StopAllIterationAndWatermark";
    else status = HEADERS_STATUS[result];
    return status === "ContinueAndEndStream" ? "Continue" : status;
  }

  private convertData(result: number): DataStatus {
    if (this.vm!.stopIteration || result > 3) return "StopIterationNoBuffer";
    return DATA_STATUS[result];
  }

  private convertTrailers(result: number): TrailersStatus {
    if (this.vm!.stopIteration || result > 1) return "StopIteration";
    return TRAILERS_STATUS[result];
  }

  /**
   * ContextBase::onRequestHeaders and siblings: CHECK_FAIL before and after the
   * call (a trap inside it fails the stream now), `open` when the module does
   * not export the callback, else the converted result.
   */
  private streamCallback<T>(fn: string, args: number[], open: T, closed: T, convert: (result: number) => T): T {
    const failed = this.checkFail(open, closed);
    if (failed !== null) return failed;
    if (!this.has(fn)) return open;
    const vm = this.vm!;
    return vm.withAfterCallActions(() => {
      const result = vm.callGuest(this, fn, args);
      return this.checkFail(open, closed) ?? convert(result);
    });
  }

  private headersCallback(fn: string, size: number, eos: boolean): HeadersStatus {
    return this.streamCallback<HeadersStatus>(fn, [this.id, size, eos ? 1 : 0], "Continue", "StopAllIterationAndWatermark", (r) => this.convertHeaders(r));
  }

  private dataCallback(fn: string, size: number, eos: boolean): DataStatus {
    return this.streamCallback<DataStatus>(fn, [this.id, size, eos ? 1 : 0], "Continue", "StopIterationNoBuffer", (r) => this.convertData(r));
  }

  private trailersCallback(fn: string, count: number): TrailersStatus {
    return this.streamCallback<TrailersStatus>(fn, [this.id, count], "Continue", "StopIteration", (r) => this.convertTrailers(r));
  }

  // ---- Envoy StreamFilter glue (envoy context.cc decode*/encode*) -----------------

  decodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus {
    this.onCreate();
    this.requestHeaders = headers;
    this.endOfStream = endStream;
    const result = this.headersCallback("proxy_on_request_headers", headers.size, endStream);
    if (result === "Continue") this.requestHeaders = null;
    return result;
  }

  decodeData(data: MutableBuffer, endStream: boolean): DataStatus {
    if (!this.inVmContextCreated) return "Continue";
    if (this.bufferingRequestBody) {
      this.callbacks!.addDecodedData(data);
      // Adding data may have triggered a local reply (413). Envoy checks destroyed_
      // here, but its stream outlives the callback (stream.ts destroy), so the VM
      // is still called with the over-limit buffer; the check guards the rest.
      if (this.destroyed) return "StopIterationAndBuffer";
    }
    this.requestBodyBuffer = data;
    this.endOfStream = endStream;
    const size = this.bufferingRequestBody ? (this.callbacks!.decodingBuffer()?.length ?? 0) : data.length;
    const result = this.dataCallback("proxy_on_request_body", size, endStream);
    this.bufferingRequestBody = false;
    if (result === "Continue") this.requestBodyBuffer = null;
    else if (result === "StopIterationAndBuffer") this.bufferingRequestBody = true;
    return result;
  }

  decodeTrailers(trailers: HeaderMap): TrailersStatus {
    if (!this.inVmContextCreated) return "Continue";
    this.requestTrailers = trailers;
    const result = this.trailersCallback("proxy_on_request_trailers", trailers.size);
    if (result === "Continue") this.requestTrailers = null;
    return result;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus {
    // Once the failure reply is out, the VM is not called for the response.
    if (!this.inVmContextCreated || this.failureLocalReplySent) return "Continue";
    this.responseHeaders = headers;
    this.endOfStream = endStream;
    const result = this.headersCallback("proxy_on_response_headers", headers.size, endStream);
    if (result === "Continue") this.responseHeaders = null;
    return result;
  }

  encodeData(data: MutableBuffer, endStream: boolean): DataStatus {
    if (!this.inVmContextCreated || this.failureLocalReplySent) return "Continue";
    if (this.bufferingResponseBody) {
      this.callbacks!.addEncodedData(data);
      if (this.destroyed) return "StopIterationAndBuffer";
    }
    this.responseBodyBuffer = data;
    this.endOfStream = endStream;
    const size = this.bufferingResponseBody ? (this.callbacks!.encodingBuffer()?.length ?? 0) : data.length;
    const result = this.dataCallback("proxy_on_response_body", size, endStream);
    this.bufferingResponseBody = false;
    if (result === "Continue") this.responseBodyBuffer = null;
    else if (result === "StopIterationAndBuffer") this.bufferingResponseBody = true;
    return result;
  }

  encodeTrailers(trailers: HeaderMap): TrailersStatus {
    if (!this.inVmContextCreated || this.failureLocalReplySent) return "Continue";
    this.responseTrailers = trailers;
    const result = this.trailersCallback("proxy_on_response_trailers", trailers.size);
    if (result === "Continue") this.responseTrailers = null;
    return result;
  }

  /** envoy Context::log (AccessLog::Instance): only for completed requests. */
  log(requestComplete: boolean, maps: { requestHeaders: HeaderMap | null; responseHeaders: HeaderMap | null; responseTrailers: HeaderMap | null }): void {
    if (!requestComplete) return;
    if (!this.inVmContextCreated) this.onCreate();
    this.accessLogPhase = true;
    Object.assign(this.accessLog, maps);
    this.onLog();
    this.accessLogPhase = false;
    Object.assign(this.accessLog, { requestHeaders: null, responseHeaders: null, responseTrailers: null });
  }

  /** envoy Context::onDestroy: on_done then on_delete, once, if the in-VM context exists. */
  onDestroy(): void {
    if (this.destroyed || !this.inVmContextCreated) return;
    this.destroyed = true;
    this.onDone();
    this.onDelete();
  }

  // ---- host-call semantics that act on the stream (envoy context.cc) ---------------

  /** envoy Context::continueStream: deferred until the VM call returns; forgets the request maps. */
  continueStream(type: number): number {
    const vm = this.vm!;
    switch (type) {
      case StreamType.Request:
        if (this.callbacks !== null) {
          const cb = this.callbacks;
          vm.addAfterVmCallAction(() => cb.continueDecoding());
        }
        break;
      case StreamType.Response:
        if (this.callbacks !== null) {
          const cb = this.callbacks;
          vm.addAfterVmCallAction(() => cb.continueEncoding());
        }
        break;
      case StreamType.Downstream:
        return WasmResult.Ok;
      case StreamType.Upstream:
        return WasmResult.Unimplemented;
      default:
        return WasmResult.BadArgument;
    }
    this.requestHeaders = null;
    this.requestBodyBuffer = null;
    this.requestTrailers = null;
    return WasmResult.Ok;
  }

  /** envoy Context::closeStream: a deferred stream reset with details "wasm_close_stream". */
  closeStream(type: number): number {
    const vm = this.vm!;
    switch (type) {
      case StreamType.Request:
      case StreamType.Response:
        if (this.callbacks !== null) {
          const cb = this.callbacks;
          vm.addAfterVmCallAction(() => cb.resetStream("wasm_close_stream"));
        }
        return WasmResult.Ok;
      case StreamType.Downstream:
      case StreamType.Upstream:
        return WasmResult.Ok;
      default:
        return WasmResult.BadArgument;
    }
  }

  /** envoy Context::sendLocalResponse: deferred; whitespace in details becomes '_'. */
  sendLocalResponse(status: number, body: Uint8Array, headers: [string, string][], grpcStatus: number, details: string): number {
    if (this.callbacks !== null) {
      const cb = this.callbacks;
      const grpc = grpcStatus <= 16 ? grpcStatus : null;
      const cleanDetails = details.replace(/\s/g, "_");
      this.vm!.addAfterVmCallAction(() =>
        cb.sendLocalReply(status, body, (h) => headers.forEach(([k, v]) => h.add(k, v)), grpc, cleanDetails),
      );
    }
    return WasmResult.Ok;
  }

  /** envoy Context::log (proxy_log): "wasm log<prefix>: <message>" on the `wasm` logger. */
  logMessage(level: number, message: string): void {
    const vm = this.vm!;
    if (level < vm.services.logLevel) return;
    vm.services.log({
      level: LOG_LEVELS[level] as LogEntry["level"],
      vm: vm.index,
      context: this.id,
      message,
      line: `wasm log${this.logPrefix()}: ${message}`,
      source: "plugin",
    });
  }

  // ---- callout delivery (envoy Context::onHttpCallSuccess / onHttpCallFailure) ------

  /** A callout finished: deliver it now, or after the running VM call returns. */
  onHttpCallSuccess(token: number, response: HttpCallResponse): void {
    const vm = this.vm!;
    if (vm.busy) {
      vm.addAfterVmCallAction(() => this.onHttpCallSuccess(token, response));
      return;
    }
    if (!this.httpCalls.has(token)) return;
    this.httpCallResponse = response;
    vm.addAfterVmCallAction(() => {
      this.httpCallResponse = null;
      this.httpCalls.delete(token);
    });
    this.onHttpCallResponse(token, response.headers.size, response.body.length, response.trailers?.size ?? 0);
  }

  onHttpCallFailure(token: number): void {
    const vm = this.vm!;
    if (vm.busy) {
      vm.addAfterVmCallAction(() => this.onHttpCallFailure(token));
      return;
    }
    if (!this.httpCalls.has(token)) return;
    this.statusCode = WasmResult.BrokenConnection;
    this.statusMessage = "reset";
    vm.addAfterVmCallAction(() => {
      this.statusMessage = "";
      this.httpCalls.delete(token);
    });
    this.onHttpCallResponse(token, 0, 0, 0);
  }

  /** ContextBase::onHttpCallResponse. */
  private onHttpCallResponse(token: number, headers: number, bodySize: number, trailers: number): void {
    const vm = this.vm!;
    if (this.isFailed() || !this.has("proxy_on_http_call_response")) {
      // Envoy runs the queued cleanup at the next VM call's end; nothing observable differs.
      return;
    }
    vm.withAfterCallActions(() => vm.callGuest(this, "proxy_on_http_call_response", [this.id, token, headers, bodySize, trailers]));
  }
}
