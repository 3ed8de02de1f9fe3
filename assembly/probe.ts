// ABI probe: a small filter that walks every proxy-wasm path the router relies
// on, so the host emulator can be tested against a real module built by the same
// toolchain. It is test equipment, built as build/abi_probe.wasm; it never ships.
//
// Plugin configuration: `key=value` pairs separated by ';' (no JSON on purpose,
// so the probe depends on nothing but assembly/abi/):
//   tick=MS              set a tick period; each tick continues parked streams
//                        and, with cluster=, dispatches one HTTP call
//   cluster=NAME         HTTP callout target cluster
//   authority=HOST:PORT  callout :authority (default "probe")
//   calloutPath=/p       callout :path (default "/metrics")
//   timeoutMs=N          callout timeout (default 1000)
//   failConfigure=1      proxy_on_configure returns 0
//
// At load: logs "probe: initialize" from top-level code (it runs in _initialize,
// so it appears once per VM instance: base, canary and every clone).
//
// Per request: counts `probe.requests`, sets `x-probe-seen: 1`, and:
//   header x-probe-trap        → traps (unreachable) in on_request_headers
//   header x-probe-local: CODE → proxy_send_local_response(CODE, "probe local",
//                                body "local from probe", header
//                                x-probe-local-reply: 1) and returns Continue
//                                (the host must still stop the stream)
//   header x-probe-close       → proxy_close_stream(HTTP_REQUEST), returns Continue
//   :path starting with /stop  → StopIteration from headers; the body is
//                                buffered to end of stream, then its size goes to
//                                header x-probe-body-bytes and the shared counter
//                                `probe.count` is CAS-incremented (x-probe-count).
//                                A stream parked by the headers stop is continued
//                                by the next tick.
// Per response: sets response header `x-probe-response: 1`.
//
// The two raw host calls the router's safe layer does not wrap (local response,
// close stream) are declared here, not in abi/: the probe exercises ABI paths
// the router must not depend on.
export * from "./abi/exports";
export * from "./abi/exports_observing";
import { RootContext, StreamContext, RootContextFactory } from "./abi/contexts";
import { setRootContextFactory } from "./abi/registry";
import { HostBuffer } from "./abi/memory";
import { WasmResult, LogLevel, HeadersAction, DataAction, BufferType, MapType, MetricType } from "./abi/enums";
import * as host from "./abi/host";
import { encodePairs } from "./abi/pairs";

const PATH = String.UTF8.encode(":path");
const STATUS = String.UTF8.encode(":status");
const TRAP = String.UTF8.encode("x-probe-trap");
const SEEN = String.UTF8.encode("x-probe-seen");
const BODY_BYTES = String.UTF8.encode("x-probe-body-bytes");
const COUNT = String.UTF8.encode("x-probe-count");
const SHARED_KEY = String.UTF8.encode("probe.count");
const LOCAL = String.UTF8.encode("x-probe-local");
const CLOSE = String.UTF8.encode("x-probe-close");
const RESPONSE_MARK = String.UTF8.encode("x-probe-response");

// @ts-ignore: decorator
@external("env", "proxy_send_local_response")
declare function proxy_send_local_response(status: u32, detailsPtr: usize, detailsSize: usize, bodyPtr: usize,
  bodySize: usize, headersPtr: usize, headersSize: usize, grpcStatus: i32): u32;
// @ts-ignore: decorator
@external("env", "proxy_close_stream")
declare function proxy_close_stream(streamType: u32): u32;

host.log(LogLevel.Info, "probe: initialize");

function setHeaderString(key: ArrayBuffer, value: string): u32 {
  const v = String.UTF8.encode(value);
  return host.replaceHeader(MapType.RequestHeaders, key, changetype<usize>(v), v.byteLength);
}

class ProbeRoot extends RootContext {
  requests: u32 = 0;
  lastBodyBytes: u32 = 0;
  bodyBytes: u32 = 0;
  calloutBytes: u32 = 0;
  tickMs: u32 = 0;
  cluster: string = "";
  authority: string = "probe";
  calloutPath: string = "/metrics";
  timeoutMs: u32 = 1000;
  parked: u32[] = [];
  scratch: HostBuffer = new HostBuffer();

  onVmStart(size: u32): bool {
    host.log(LogLevel.Info, "probe: vm_start size=" + size.toString());
    return true;
  }

  onConfigure(size: u32): bool {
    host.refreshLogLevel();
    host.getBufferBytes(BufferType.PluginConfiguration, 0, size, this.scratch);
    const config = this.scratch.toString();
    this.scratch.release();
    let fail = false;
    const parts = config.split(";");
    for (let i = 0; i < parts.length; i++) {
      const eq = parts[i].indexOf("=");
      if (eq < 0) continue;
      const key = parts[i].substring(0, eq);
      const value = parts[i].substring(eq + 1);
      if (key == "tick") this.tickMs = <u32>I32.parseInt(value);
      else if (key == "cluster") this.cluster = value;
      else if (key == "authority") this.authority = value;
      else if (key == "calloutPath") this.calloutPath = value;
      else if (key == "timeoutMs") this.timeoutMs = <u32>I32.parseInt(value);
      else if (key == "failConfigure") fail = value == "1";
    }
    host.getProperty("plugin_root_id", this.scratch);
    const rootId = this.scratch.toString();
    host.getProperty("plugin_vm_id", this.scratch);
    const vmId = this.scratch.toString();
    this.scratch.release();
    this.requests = host.defineMetric(MetricType.Counter, "probe.requests");
    this.lastBodyBytes = host.defineMetric(MetricType.Gauge, "probe.last_body_bytes");
    this.bodyBytes = host.defineMetric(MetricType.Histogram, "probe.body_bytes");
    this.calloutBytes = host.defineMetric(MetricType.Gauge, "probe.callout_bytes");
    if (this.tickMs > 0) host.setTickPeriodMs(this.tickMs);
    host.log(LogLevel.Info, "probe: configured root_id=" + rootId + " vm_id=" + vmId + " config=" + config);
    return !fail;
  }

  onTick(): void {
    for (let i = 0; i < this.parked.length; i++) {
      const id = this.parked[i];
      host.setEffectiveContext(id);
      const status = host.continueRequest();
      host.log(LogLevel.Info, "probe: continued stream " + id.toString() + " from tick status=" + status.toString());
    }
    this.parked.length = 0;
    if (this.cluster.length == 0) return;
    const pairs = encodePairs([":method", ":path", ":authority"], ["GET", this.calloutPath, this.authority]);
    const token = host.httpCall(String.UTF8.encode(this.cluster), pairs, this.timeoutMs);
    host.log(LogLevel.Info, "probe: callout dispatched token=" + token.toString());
  }

  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    if (headerCount == 0) {
      host.log(LogLevel.Warn, "probe: callout failed token=" + token.toString());
      return;
    }
    host.getHeader(MapType.HttpCallResponseHeaders, STATUS, this.scratch);
    const status = this.scratch.toString();
    host.getBufferBytes(BufferType.HttpCallResponseBody, 0, bodySize, this.scratch);
    const body = this.scratch.toString();
    this.scratch.release();
    host.recordMetric(this.calloutBytes, bodySize);
    host.log(LogLevel.Info, "probe: callout token=" + token.toString() + " status=" + status +
      " bytes=" + bodySize.toString() + " body=" + body.substring(0, 64));
  }

  newStream(id: u32): StreamContext {
    return new ProbeStream(id, this);
  }
}

class ProbeStream extends StreamContext {
  buf: HostBuffer = new HostBuffer();
  stopped: bool = false;

  get probe(): ProbeRoot { return changetype<ProbeRoot>(this.root); }

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    host.incrementMetric(this.probe.requests, 1);
    if (host.getHeader(MapType.RequestHeaders, TRAP, this.buf) == WasmResult.Ok) unreachable();
    if (host.getHeader(MapType.RequestHeaders, LOCAL, this.buf) == WasmResult.Ok) {
      const status = <u32>I32.parseInt(this.buf.toString());
      this.buf.release();
      const details = String.UTF8.encode("probe local");
      const body = String.UTF8.encode("local from probe");
      const headers = encodePairs(["x-probe-local-reply"], ["1"]);
      proxy_send_local_response(status, changetype<usize>(details), details.byteLength, changetype<usize>(body),
        body.byteLength, changetype<usize>(headers), headers.byteLength, -1);
      return HeadersAction.Continue;
    }
    if (host.getHeader(MapType.RequestHeaders, CLOSE, this.buf) == WasmResult.Ok) {
      this.buf.release();
      proxy_close_stream(0);
      return HeadersAction.Continue;
    }
    setHeaderString(SEEN, "1");
    host.getHeader(MapType.RequestHeaders, PATH, this.buf);
    const path = this.buf.toString();
    this.buf.release();
    host.log(LogLevel.Debug, "probe: headers id=" + this.id.toString() + " count=" + headerCount.toString() + " path=" + path);
    if (path.startsWith("/stop") && !endOfStream) {
      this.stopped = true;
      this.probe.parked.push(this.id);
      return HeadersAction.StopIteration;
    }
    return HeadersAction.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): u32 {
    host.log(LogLevel.Debug, "probe: body id=" + this.id.toString() + " size=" + bodySize.toString() + " eos=" + (endOfStream ? "1" : "0"));
    if (!this.stopped) return DataAction.Continue;
    if (!endOfStream) return DataAction.StopIterationAndBuffer;
    // A body that arrives means the stream is no longer parked on a tick.
    const parked = this.probe.parked;
    const at = parked.indexOf(this.id);
    if (at >= 0) parked.splice(at, 1);
    host.getBufferBytes(BufferType.HttpRequestBody, 0, bodySize, this.buf);
    const got = <u32>this.buf.size;
    this.buf.release();
    host.recordMetric(this.probe.lastBodyBytes, got);
    host.recordMetric(this.probe.bodyBytes, got);
    const setStatus = setHeaderString(BODY_BYTES, got.toString());
    const count = this.bumpSharedCounter();
    setHeaderString(COUNT, count.toString());
    host.log(LogLevel.Info, "probe: body complete id=" + this.id.toString() + " bytes=" + got.toString() +
      " header_status=" + setStatus.toString() + " count=" + count.toString());
    return DataAction.Continue;
  }

  /** Read-modify-write with CAS, retried on CasMismatch. */
  bumpSharedCounter(): u64 {
    for (let attempt = 0; attempt < 16; attempt++) {
      let value: u64 = 0;
      let cas: u32 = 0;
      if (host.getSharedData(changetype<usize>(SHARED_KEY), SHARED_KEY.byteLength, this.buf) == WasmResult.Ok) {
        cas = this.buf.cas;
        if (this.buf.size == 8) value = load<u64>(this.buf.ptr);
      }
      this.buf.release();
      const next = memory.data(8);
      store<u64>(next, value + 1);
      if (host.setSharedData(changetype<usize>(SHARED_KEY), SHARED_KEY.byteLength, next, 8, cas) == WasmResult.Ok) return value + 1;
    }
    return 0;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 {
    host.getHeader(MapType.ResponseHeaders, STATUS, this.buf);
    host.log(LogLevel.Debug, "probe: response id=" + this.id.toString() + " status=" + this.buf.toString());
    this.buf.release();
    const mark = String.UTF8.encode("1");
    host.replaceHeader(MapType.ResponseHeaders, RESPONSE_MARK, changetype<usize>(mark), mark.byteLength);
    return HeadersAction.Continue;
  }

  onLog(): void {
    host.log(LogLevel.Info, "probe: log id=" + this.id.toString());
  }

  onDone(): void {
    host.log(LogLevel.Info, "probe: done id=" + this.id.toString());
  }
}

class ProbeFactory extends RootContextFactory {
  create(id: u32): RootContext { return new ProbeRoot(id); }
}

setRootContextFactory(new ProbeFactory());
