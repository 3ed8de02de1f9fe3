// One HTTP stream as Envoy's filter manager and connection manager drive it
// through a chain of [this Wasm filter, router]: headers, body and trailers in
// each direction, the iteration state a filter status leaves behind
// (StopIteration holds headers but still delivers data; StopAll* buffers data
// without calling the filter until it continues, then hands it the whole
// buffer at once), buffering limits (413/500), continuation, local replies
// (through the filter chain, or direct once response headers exist, or a reset
// once they were sent) and the end of the stream: access log (on_log) then
// filter destruction (on_done, on_delete), for completion and reset alike.
// Sources: envoy source/common/http/filter_manager.cc (commonContinue,
// commonHandleAfter*Callback, sendLocalReply), conn_manager_impl.cc
// (doEndStream, doDeferredStreamDestroy, onResetStream).
import type { Clock } from "./clock.ts";
import type { DataStatus, EndedStatus, HeadersStatus, TrailersStatus } from "./enums.ts";
import { HeaderMap, type HeaderInput, type HeaderList } from "./header-map.ts";
import { concat, MutableBuffer } from "./buffers.ts";
import type { Context, FilterCallbacks, StreamInfo } from "./context.ts";

export interface Message {
  headers: HeaderList;
  body: Uint8Array;
  trailers: HeaderList | null;
  /** The last frame has been passed on. */
  complete: boolean;
}

export interface DownstreamResponse extends Message {
  status: number;
}

export interface LocalResponse {
  status: number;
  details: string;
  /** The body as UTF-8 text (for tests and logs). */
  body: string;
  /** The body's bytes as sent: Envoy takes a local reply's body as bytes (a string_view), not text. */
  bodyBytes: Uint8Array;
  /** The local reply's headers as built by Envoy (before any filter saw them). */
  headers: HeaderList;
}

/** What a data frame did when the filter was not called: the filter manager buffered it. */
export type BufferedStatus = "Buffered";

type Direction = "request" | "response";
type Iteration = "Continue" | "StopSingle" | "StopAllBuffer" | "StopAllWatermark";

class DirectionState {
  headers: HeaderMap | null = null;
  iteration: Iteration = "Continue";
  headersContinued = false;
  /** The filter manager's buffered data for this filter (buffered_request_data_ …). */
  buffered: MutableBuffer | null = null;
  /** The peer has sent its last frame. */
  remoteComplete = false;
  trailers: HeaderMap | null = null;
  trailersSeenByFilter = false;
  /** What has passed the filter (to the router, or to the client). */
  out: Message | null = null;
  headersAction: HeadersStatus | null = null;
  lastBodyAction: DataStatus | null = null;
  trailersAction: TrailersStatus | null = null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface HttpStreamOptions {
  id: number;
  /** The Wasm filter's context, or null when the filter is not in the chain (fail open). */
  filter: Context | null;
  clock: Clock;
  bufferLimitBytes: number;
  warn: (message: string) => void;
}

export class HttpStream implements FilterCallbacks {
  readonly id: number;
  readonly filter: Context | null;
  readonly streamInfo: StreamInfo;
  /** Set once a local reply was requested (by the filter, a failure, or a limit). */
  localResponse: LocalResponse | null = null;
  /** Details of the reset that ended the stream, if it was reset. */
  resetDetails: string | null = null;
  ended = false;
  /** A local reply was sent while decoding: Envoy drops further request frames. */
  private requestAborted = false;
  /** Filter data callbacks on the stack (a local reply's body nests one; see destroy). */
  private dataCallbacks = 0;
  /** The stream ended inside a data callback; its filter is destroyed when the callback returns. */
  private destroyPending = false;

  private readonly req = new DirectionState();
  private readonly res = new DirectionState();
  private readonly bufferLimit: number;
  private readonly warn: (message: string) => void;

  constructor(options: HttpStreamOptions) {
    this.id = options.id;
    this.filter = options.filter;
    this.bufferLimit = options.bufferLimitBytes;
    this.warn = options.warn;
    this.streamInfo = { protocol: "HTTP/1.1", startTimeMs: options.clock.now(), id: options.id, bytesReceived: 0 };
    if (this.filter !== null) this.filter.callbacks = this;
  }

  // ---- inspection ------------------------------------------------------------------

  /** The request header list as Envoy holds it now (what it forwards, or has forwarded, upstream). */
  get requestHeaders(): HeaderList {
    return this.req.headers?.toList() ?? [];
  }

  /** null until the request headers are released upstream; then what the router has sent. */
  get upstreamRequest(): Message | null {
    return this.req.out;
  }

  /** null until response headers are released to the client; then what the client got. */
  get downstreamResponse(): DownstreamResponse | null {
    const out = this.res.out;
    if (out === null) return null;
    return { ...out, status: Number(new HeaderMap(out.headers).get(":status") ?? 0) };
  }

  get headersAction(): HeadersStatus | null {
    return this.req.headersAction;
  }
  get lastBodyAction(): DataStatus | null {
    return this.req.lastBodyAction;
  }
  get trailersAction(): TrailersStatus | null {
    return this.req.trailersAction;
  }
  get responseHeadersAction(): HeadersStatus | null {
    return this.res.headersAction;
  }
  get lastResponseBodyAction(): DataStatus | null {
    return this.res.lastBodyAction;
  }

  // ---- driving the stream (the client and the upstream) --------------------------------

  sendRequestHeaders(headers: HeaderInput, endOfStream: boolean): HeadersStatus | EndedStatus {
    if (this.ended) return "StreamEnded";
    this.checkDrivable();
    if (this.req.headers !== null) throw new Error("request headers were already sent");
    this.req.headers = new HeaderMap(headers);
    this.req.remoteComplete = endOfStream;
    return this.runHeaders("request");
  }

  sendRequestBody(chunk: string | Uint8Array, endOfStream: boolean): DataStatus | BufferedStatus | EndedStatus {
    if (this.ended || this.requestAborted) return "StreamEnded";
    this.checkDrivable();
    this.checkOpen(this.req, "request");
    this.req.remoteComplete = endOfStream;
    const bytes = toBytes(chunk);
    this.streamInfo.bytesReceived += bytes.length;
    return this.runData("request", new MutableBuffer(bytes), endOfStream);
  }

  sendRequestTrailers(trailers: HeaderInput): TrailersStatus | BufferedStatus | EndedStatus {
    if (this.ended || this.requestAborted) return "StreamEnded";
    this.checkDrivable();
    this.checkOpen(this.req, "request");
    this.req.trailers = new HeaderMap(trailers);
    this.req.remoteComplete = true;
    return this.receiveTrailers("request");
  }

  sendResponseHeaders(headers: HeaderInput, endOfStream: boolean): HeadersStatus | EndedStatus {
    if (this.ended) return "StreamEnded";
    this.checkDrivable();
    if (this.req.out === null) throw new Error("the upstream cannot respond before the request was released to it");
    if (this.res.headers !== null) throw new Error("response headers were already sent");
    this.res.headers = new HeaderMap(headers);
    this.res.remoteComplete = endOfStream;
    return this.runHeaders("response");
  }

  sendResponseBody(chunk: string | Uint8Array, endOfStream: boolean): DataStatus | BufferedStatus | EndedStatus {
    if (this.ended) return "StreamEnded";
    this.checkDrivable();
    this.checkOpen(this.res, "response");
    this.res.remoteComplete = endOfStream;
    return this.runData("response", new MutableBuffer(toBytes(chunk)), endOfStream);
  }

  sendResponseTrailers(trailers: HeaderInput): TrailersStatus | BufferedStatus | EndedStatus {
    if (this.ended) return "StreamEnded";
    this.checkDrivable();
    this.checkOpen(this.res, "response");
    this.res.trailers = new HeaderMap(trailers);
    this.res.remoteComplete = true;
    return this.receiveTrailers("response");
  }

  /** The connection manager ends the stream now: on_log, on_done, on_delete. No-op once ended. */
  complete(): void {
    if (!this.ended) this.destroy();
  }

  /** The client resets the stream. Envoy still completes the request info, so on_log runs too. */
  reset(): void {
    this.resetStream("downstream_reset");
  }

  private checkDrivable(): void {
    if (this.filter?.vm?.busy) throw new Error("cannot drive a stream while its VM is executing (Envoy runs one call at a time per thread)");
  }

  private checkOpen(s: DirectionState, what: Direction): void {
    if (s.headers === null) throw new Error(`${what} headers have not been sent`);
    if (s.remoteComplete) throw new Error(`the ${what} is already complete`);
  }

  // ---- the filter chain ------------------------------------------------------------------

  private state(d: Direction): DirectionState {
    return d === "request" ? this.req : this.res;
  }

  private runHeaders(d: Direction): HeadersStatus {
    const s = this.state(d);
    if (this.filter === null) {
      this.forwardHeaders(d, s.remoteComplete);
      return "Continue";
    }
    const status = d === "request" ? this.filter.decodeHeaders(s.headers!, s.remoteComplete) : this.filter.encodeHeaders(s.headers!, s.remoteComplete);
    s.headersAction = status;
    if (this.ended || s.headersContinued) return status;
    if (status === "Continue") {
      s.iteration = "Continue";
      this.forwardHeaders(d, s.remoteComplete && s.buffered === null && s.trailers === null);
    } else {
      s.iteration = status === "StopIteration" ? "StopSingle" : status === "StopAllIterationAndBuffer" ? "StopAllBuffer" : "StopAllWatermark";
    }
    return status;
  }

  private runData(d: Direction, data: MutableBuffer, endOfStream: boolean): DataStatus | BufferedStatus {
    const s = this.state(d);
    if (this.filter === null) {
      this.forwardData(d, data.bytes, endOfStream);
      return "Continue";
    }
    if (s.iteration === "StopAllBuffer" || s.iteration === "StopAllWatermark") {
      // The filter stopped all iteration: Envoy buffers without calling it.
      this.bufferData(d, data, s.iteration === "StopAllBuffer");
      return "Buffered";
    }
    let status: DataStatus;
    this.dataCallbacks++;
    try {
      status = d === "request" ? this.filter.decodeData(data, endOfStream) : this.filter.encodeData(data, endOfStream);
    } finally {
      this.dataCallbacks--;
    }
    s.lastBodyAction = status;
    if (this.destroyPending && this.dataCallbacks === 0) {
      this.destroyPending = false;
      this.destroyFilter();
    }
    if (this.ended) return status;
    switch (status) {
      case "Continue":
        if (s.iteration === "StopSingle") {
          this.bufferData(d, data, false);
          this.commonContinue(d);
        } else {
          const pending = s.buffered;
          s.buffered = null;
          const bytes = pending === null ? data.bytes : concat(pending.bytes, data.bytes);
          this.forwardData(d, bytes, endOfStream && s.trailers === null);
          if (endOfStream && s.trailers !== null) this.forwardTrailers(d);
        }
        break;
      case "StopIterationAndBuffer":
      case "StopIterationAndWatermark":
        s.iteration = "StopSingle";
        this.bufferData(d, data, status === "StopIterationAndBuffer");
        break;
      case "StopIterationNoBuffer":
        s.iteration = "StopSingle";
        // An empty buffer keeps the end of stream for when the filter continues.
        if (endOfStream && s.trailers === null && s.buffered === null) s.buffered = new MutableBuffer();
        break;
    }
    return status;
  }

  private receiveTrailers(d: Direction): TrailersStatus | BufferedStatus {
    const s = this.state(d);
    if (this.filter === null) {
      this.forwardTrailers(d);
      return "Continue";
    }
    if (s.iteration === "StopAllBuffer" || s.iteration === "StopAllWatermark") return "Buffered";
    return this.runTrailers(d);
  }

  private runTrailers(d: Direction): TrailersStatus {
    const s = this.state(d);
    s.trailersSeenByFilter = true;
    const status = d === "request" ? this.filter!.decodeTrailers(s.trailers!) : this.filter!.encodeTrailers(s.trailers!);
    s.trailersAction = status;
    if (this.ended) return status;
    if (status === "Continue") {
      if (s.iteration === "StopSingle") this.commonContinue(d);
      else this.forwardTrailers(d);
    } else {
      s.iteration = "StopSingle";
    }
    return status;
  }

  /** Buffers `data` for the filter; past the limit, unless streaming (watermark), the request gets 413 / the response 500. */
  private bufferData(d: Direction, data: MutableBuffer, enforceLimit: boolean): void {
    const s = this.state(d);
    if (s.buffered === null) s.buffered = new MutableBuffer();
    s.buffered.moveFrom(data);
    if (enforceLimit && s.buffered.length > this.bufferLimit) this.dataTooLarge(d);
  }

  private dataTooLarge(d: Direction): void {
    if (d === "request") {
      this.sendLocalReply(413, "Payload Too Large", null, null, "request_payload_too_large");
    } else if (!this.res.headersContinued) {
      this.directLocalReply(500, encoder.encode("Internal Server Error"), "response_payload_too_large");
    } else {
      this.resetStream("response_payload_too_large");
    }
  }

  /** envoy ActiveStreamFilterBase::commonContinue. */
  private commonContinue(d: Direction): void {
    if (this.ended) return;
    const s = this.state(d);
    if (s.iteration === "Continue") {
      this.warn(`continue${d === "request" ? "Decoding" : "Encoding"}() on stream ${this.id} while not stopped: ignored`);
      return;
    }
    const fromCurrent = s.iteration === "StopAllBuffer" || s.iteration === "StopAllWatermark";
    s.iteration = "Continue";
    if (!s.headersContinued) this.forwardHeaders(d, s.remoteComplete && s.buffered === null && s.trailers === null);
    const hadTrailers = s.trailers !== null;
    if (s.buffered !== null && !this.ended) {
      const data = s.buffered;
      s.buffered = null;
      const endOfStream = s.remoteComplete && !hadTrailers;
      // Data buffered while the filter had stopped all iteration is handed to the filter itself.
      if (fromCurrent) this.runData(d, data, endOfStream);
      else this.forwardData(d, data.bytes, endOfStream);
    }
    if (hadTrailers && !this.ended) {
      if (fromCurrent && !s.trailersSeenByFilter) this.runTrailers(d);
      else if (s.iteration === "Continue" && s.remoteComplete && !s.out?.complete) this.forwardTrailers(d);
    }
  }

  private forwardHeaders(d: Direction, endOfStream: boolean): void {
    const s = this.state(d);
    s.headersContinued = true;
    s.out = { headers: s.headers!.toList(), body: new Uint8Array(0), trailers: null, complete: endOfStream };
    if (endOfStream) this.passedEnd(d);
  }

  private forwardData(d: Direction, bytes: Uint8Array, endOfStream: boolean): void {
    const out = this.state(d).out!;
    out.body = concat(out.body, bytes);
    if (endOfStream) {
      out.complete = true;
      this.passedEnd(d);
    }
  }

  private forwardTrailers(d: Direction): void {
    const s = this.state(d);
    s.out!.trailers = s.trailers!.toList();
    s.out!.complete = true;
    this.passedEnd(d);
  }

  /** The response's last frame reached the client: the connection manager ends the stream. */
  private passedEnd(d: Direction): void {
    if (d === "response") this.destroy();
  }

  // ---- FilterCallbacks ------------------------------------------------------------------

  continueDecoding(): void {
    this.commonContinue("request");
  }

  continueEncoding(): void {
    this.commonContinue("response");
  }

  decodingBuffer(): MutableBuffer | null {
    return this.req.buffered;
  }

  encodingBuffer(): MutableBuffer | null {
    return this.res.buffered;
  }

  addDecodedData(data: MutableBuffer): void {
    this.bufferData("request", data, true);
  }

  addEncodedData(data: MutableBuffer): void {
    this.bufferData("response", data, true);
  }

  addDecodedTrailers(): HeaderMap {
    this.req.trailers = new HeaderMap();
    this.req.trailersSeenByFilter = true;
    return this.req.trailers;
  }

  addEncodedTrailers(): HeaderMap {
    this.res.trailers = new HeaderMap();
    this.res.trailersSeenByFilter = true;
    return this.res.trailers;
  }

  /**
   * envoy FilterManager::sendLocalReply: through the encoder filters if no
   * response has started, directly if upstream response headers are being
   * processed, a reset if the client already has response headers.
   */
  sendLocalReply(status: number, body: string | Uint8Array, modifyHeaders: ((h: HeaderMap) => void) | null, _grpcStatus: number | null, details: string): void {
    if (this.ended) return;
    if (this.res.out !== null) {
      this.resetStream(details);
      return;
    }
    const bytes = toBytes(body);
    const headers = localReplyHeaders(status, bytes, modifyHeaders);
    this.localResponse = localResponseOf(status, details, bytes, headers);
    if (this.res.headers !== null) {
      this.directLocalReply(status, bytes, details, headers);
      return;
    }
    // Decoding stops; the reply goes through this filter's encoder callbacks.
    this.requestAborted = true;
    this.res.headers = headers;
    this.res.remoteComplete = bytes.length === 0;
    this.runHeaders("response");
    if (bytes.length > 0 && !this.ended && this.res.headers !== null) {
      this.res.remoteComplete = true;
      this.runData("response", new MutableBuffer(bytes), true);
    }
  }

  /** Utility::sendLocalReply straight to the client, skipping the encoder filters. */
  private directLocalReply(status: number, body: Uint8Array, details: string, headers = localReplyHeaders(status, body, null)): void {
    this.localResponse ??= localResponseOf(status, details, body, headers);
    this.res.headersContinued = true;
    this.res.out = { headers: headers.toList(), body, trailers: null, complete: true };
    this.destroy();
  }

  resetStream(details: string): void {
    if (this.ended) return;
    this.resetDetails = details;
    this.destroy();
  }

  /**
   * envoy ConnectionManagerImpl::doDeferredStreamDestroy: completeRequest()
   * marks the request complete, the filter manager logs (on_log), then the
   * filters are destroyed (on_done, on_delete).
   */
  private destroy(): void {
    if (this.ended) return;
    this.ended = true;
    // A stream that ends inside the filter's data callback (the buffer limit's
    // 413, raised by the Wasm filter's own addDecodedData) keeps its filter
    // until that callback returns: Envoy 1.40 still calls the VM's
    // on_request_body with the over-limit buffer, and on_log / on_done come
    // after it. Its connection manager ends such a stream as a zombie whose
    // filters are destroyed once the codec is done with it
    // (source/common/http/conn_manager_impl.cc doDeferredStreamDestroy,
    // is_zombie_stream_), not while the filter is still on the stack; observed
    // in tests/differential/http.test.ts ("the buffer limit while buffering").
    if (this.dataCallbacks > 0) {
      this.destroyPending = true;
      return;
    }
    this.destroyFilter();
  }

  private destroyFilter(): void {
    const filter = this.filter;
    if (filter === null) return;
    filter.log(true, { requestHeaders: this.req.headers, responseHeaders: this.res.headers, responseTrailers: this.res.trailers });
    filter.onDestroy();
    filter.release();
  }
}

function localReplyHeaders(status: number, body: Uint8Array, modify: ((h: HeaderMap) => void) | null): HeaderMap {
  const headers = new HeaderMap([[":status", String(status)]]);
  modify?.(headers);
  if (body.length > 0) {
    headers.set("content-length", String(body.length));
    if (headers.get("content-type") === undefined) headers.set("content-type", "text/plain");
  }
  return headers;
}

function localResponseOf(status: number, details: string, body: Uint8Array, headers: HeaderMap): LocalResponse {
  return { status, details, body: decoder.decode(body), bodyBytes: body, headers: headers.toList() };
}

function toBytes(chunk: string | Uint8Array): Uint8Array {
  return typeof chunk === "string" ? encoder.encode(chunk) : chunk;
}

/** Body bytes as text (for tests and logs). */
export function bodyText(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
