// One HTTP stream through the router: the per-request state machine.
//
//   headers ──not inference──────────────────────────────▶ Passed
//      │ POST to a configured path with a body: StopIteration
//      ▼
//   Parked ──body chunk──▶ Buffering ──end of body──▶ Routed (header set) or Passed
//      │                        └── over maxBodyBytes / trailers ──▶ Passed
//      └── parkTimeoutMs without a body callback (Envoy is not holding the headers):
//          continued from the root's tick ──▶ Passed
//
// Every request that passes the filter first loses any client-sent destination
// header, so a client can never choose its upstream. Whatever happens the
// request continues: the filter never fails it or rewrites a body, and
// answers none itself but another replica's ask that carries the peers'
// shared token (peers.ts).
import { StreamContext } from "../abi/contexts";
import { HeadersAction, DataAction, MapType, BufferType, WasmResult } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import * as host from "../abi/host";
import { Router } from "./router";
import { Api, responseIdHash } from "./request";
import { RequestHead } from "./request_head";
import { StreamHost } from "./stream_host";
import { Pass } from "./stats";
import { RESPONSE_ID_WINDOW } from "./limits";

export namespace StreamState {
  export const Passed: i32 = 0;
  export const Parked: i32 = 1;
  export const Buffering: i32 = 2;
  export const Routed: i32 = 3;
}

/** Shared per-VM scratch for header reads, and what was read: the stream callbacks never nest. */
const scratch = new HostBuffer();
const head = new RequestHead();

@final
export class RouterStream extends StreamContext {
  state: i32 = StreamState.Passed;
  /** The API of the path the request was sent to (request.ts Api). */
  api: i32 = 0;
  endpoint: i32 = -1;
  /** The endpoint slot's generation at the pick: the slot may change hands before the stream ends. */
  generation: u32 = 0;
  /** The routed request's prompt tokens, held at the endpoint until the stream ends (work.ts). */
  contextTokens: f64 = 0;
  /** Its uncached prompt tokens, prefill work until the response starts. */
  uncachedTokens: f64 = 0;
  /**
   * When the root's tick first found this stream parked, -1 before: a body
   * nearly always comes before any tick, so parking costs a request no clock
   * reading (root.ts failOpenStuckStreams).
   */
  parkSeenAtMs: i64 = -1;
  /** The root's count of body callbacks when this stream parked (root.ts). */
  bodiesSeenAtPark: u32 = 0;
  /** The hash of the session header's value, 0 without one. */
  session: u64 = 0;
  /** A routed Responses request whose answer's id is still to be read. */
  private awaitingResponseId: bool = false;
  private responseBytesSeen: u32 = 0;

  private get router(): Router | null {
    return changetype<StreamHost>(this.root).router;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    const router = this.router;
    if (router === null) return HeadersAction.Continue;
    const s = router.stats;
    // Always, and first: a client must not choose its upstream. The call is
    // cheap (nothing is copied back into the module), and it is made even when
    // the header_mutation filter before this one has removed the header
    // already: Envoy clears the route cache when a 0.2.1 module changes request
    // headers (ENVOY_HOST.md §13, from Envoy 1.33's change log), and the original_dst
    // variant's routes match on this header. The HCM chose the route before any
    // filter ran, with the client's header present, and header_mutation does
    // not clear it; without this call such a request would follow that route.
    host.removeHeader(MapType.RequestHeaders, router.destinationHeader);
    const read = host.getHeaderPairs(MapType.RequestHeaders, scratch) == WasmResult.Ok &&
      head.read(scratch.ptr, scratch.size, router.paths, router.sessionHeader);
    // Another replica asking for this Envoy's decisions (peers.ts): answered here, never forwarded.
    const peers = router.peers;
    if (read && head.isGet && peers !== null && peers.answer(head.pathPtr, head.pathLength, scratch.ptr, scratch.size)) {
      scratch.release();
      return HeadersAction.StopIteration;
    }
    scratch.release();
    // Peers' asks are not requests: routed plus passed through stays equal to requests.
    s.count(s.requests);
    if (!read || !head.isPost || head.pathIndex < 0) {
      s.pass(Pass.NotInference);
      return HeadersAction.Continue;
    }
    if (endOfStream) {
      s.pass(Pass.NoBody);
      return HeadersAction.Continue;
    }
    if (head.declaredLength > <i64>router.config.maxBodyBytes) {
      s.pass(Pass.BodyTooLarge);
      return HeadersAction.Continue;
    }
    const root = changetype<StreamHost>(this.root);
    if (!root.mayHoldHeaders()) {
      s.pass(Pass.HeadersNotHeld);
      return HeadersAction.Continue;
    }
    this.api = router.apiOf(head.pathIndex);
    this.session = head.session;
    this.state = StreamState.Parked;
    root.park(this);
    return HeadersAction.StopIteration;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): u32 {
    const router = this.router;
    if (router === null) return DataAction.Continue;
    if (this.state == StreamState.Parked) {
      // A body callback while our headers stop is in force: Envoy holds headers.
      changetype<StreamHost>(this.root).unpark(this, true);
      this.state = StreamState.Buffering;
    }
    if (this.state != StreamState.Buffering) return DataAction.Continue;
    if (bodySize > <u32>router.config.maxBodyBytes) {
      router.stats.pass(Pass.BodyTooLarge);
      this.state = StreamState.Passed;
      return DataAction.Continue;
    }
    if (!endOfStream) return DataAction.StopIterationAndBuffer;
    this.route(router, bodySize);
    return DataAction.Continue;
  }

  onRequestTrailers(trailerCount: u32): u32 {
    const router = this.router;
    if (router !== null && (this.state == StreamState.Buffering || this.state == StreamState.Parked)) {
      changetype<StreamHost>(this.root).unpark(this, false);
      router.stats.pass(Pass.Trailers);
      this.state = StreamState.Passed;
    }
    return 0;
  }

  /**
   * The response began: a streaming server sends its headers with the first
   * token, so this request's prefill is done (a non-streaming one answers at
   * the end, when its prefill has long been worked off anyway).
   */
  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 {
    const router = this.router;
    if (router !== null && this.state == StreamState.Routed && this.uncachedTokens > 0) {
      router.prefillDone(this.endpoint, this.generation, this.uncachedTokens);
      this.uncachedTokens = 0;
    }
    // A Responses answer's id, for follow-ups that name it (affinity.ts); only a 200 carries one.
    this.awaitingResponseId = router !== null && this.state == StreamState.Routed && this.api == Api.Responses &&
      !endOfStream && host.statusIs200(MapType.ResponseHeaders, scratch);
    return HeadersAction.Continue;
  }

  /**
   * Looks for the response's id in the first RESPONSE_ID_WINDOW bytes of a
   * Responses answer, chunk by chunk, without holding or changing anything:
   * the first `"id":"…"` is the response's, in a JSON body (`{"id":"resp_…"`)
   * as in a stream (the response.created event's response object). An id
   * split across two chunks is missed.
   */
  onResponseBody(bodySize: u32, endOfStream: bool): u32 {
    if (!this.awaitingResponseId) return DataAction.Continue;
    const router = this.router;
    const take = min(bodySize, RESPONSE_ID_WINDOW - this.responseBytesSeen);
    if (router === null || take == 0) {
      this.awaitingResponseId = false;
      return DataAction.Continue;
    }
    this.responseBytesSeen += take;
    if (host.getBufferBytes(BufferType.HttpResponseBody, 0, take, scratch) == WasmResult.Ok) {
      const id = findId(scratch.ptr, scratch.size);
      if (id != 0) {
        router.learnResponse(this.endpoint, this.generation, id);
        this.awaitingResponseId = false;
      }
    }
    scratch.release();
    if (endOfStream || this.responseBytesSeen >= RESPONSE_ID_WINDOW) this.awaitingResponseId = false;
    return DataAction.Continue;
  }

  onDone(): void {
    const router = this.router;
    if (router === null) return;
    if (this.state == StreamState.Routed) {
      router.release(this.endpoint, this.generation, this.contextTokens, this.uncachedTokens);
    } else if (this.state == StreamState.Parked || this.state == StreamState.Buffering) {
      changetype<StreamHost>(this.root).unpark(this, false);
      router.stats.pass(Pass.Aborted);
    }
    this.state = StreamState.Passed;
  }

  /**
   * Called from the root's tick when no body callback came within
   * parkTimeoutMs. Returns the body bytes Envoy had already received for this
   * stream without giving them to us (> 0 only when Envoy is not holding the
   * headers for us: StopAllIteration buffers the body unseen), 0 when the
   * client has sent none yet, -1 when the host cannot say. Read before
   * continuing: continuing drops Envoy's hold on the request headers.
   */
  failOpen(reason: i32): void {
    this.state = StreamState.Passed;
    host.setEffectiveContext(this.id);
    host.continueRequest();
    const router = this.router;
    if (router !== null) router.stats.pass(reason);
  }

  /** Request body bytes Envoy has received for this stream, delivered or not; -1 if the host cannot say. */
  bodyBytesReceived(): i64 {
    host.setEffectiveContext(this.id);
    return host.requestBodyBytesReceived();
  }

  private route(router: Router, bodySize: u32): void {
    this.state = StreamState.Passed;
    host.getBufferBytes(BufferType.HttpRequestBody, 0, bodySize, scratch);
    const e = router.decide(scratch.ptr, scratch.size, this.api, this.session);
    scratch.release();
    if (e < 0) return;
    // The pick, then its fallbacks for override_host's retries (router.ts).
    const length = router.writeDestination();
    const status = host.replaceHeader(MapType.RequestHeaders, router.destinationHeader, router.destination, length);
    if (status != WasmResult.Ok) {
      router.stats.pass(Pass.HeadersNotHeld);
      return;
    }
    router.commit(e);
    this.endpoint = e;
    this.generation = router.generationOf(e);
    this.contextTokens = router.promptTokens;
    this.uncachedTokens = router.chosenUncachedTokens;
    this.state = StreamState.Routed;
  }
}

const ID_KEY = String.UTF8.encode("\"id\"");

/**
 * The hash of the first `"id"` string value in [p, p+n) (whitespace allowed
 * around the colon), or 0. The value's bytes up to its closing quote are
 * hashed as the request's previous_response_id is (request.ts responseIdHash).
 */
function findId(p: usize, n: usize): u64 {
  const key = changetype<usize>(ID_KEY);
  const end = p + n;
  for (let at = p; at + 4 <= end; at++) {
    if (load<u32>(at) != load<u32>(key)) continue;
    let q = at + 4;
    while (q < end && (load<u8>(q) == 0x20 || load<u8>(q) == 0x0A || load<u8>(q) == 0x0D || load<u8>(q) == 0x09)) q++;
    if (q >= end || load<u8>(q) != 0x3A) continue;
    q++;
    while (q < end && (load<u8>(q) == 0x20 || load<u8>(q) == 0x0A || load<u8>(q) == 0x0D || load<u8>(q) == 0x09)) q++;
    if (q >= end || load<u8>(q) != 0x22) continue;
    const start = q + 1;
    let close = start;
    while (close < end && load<u8>(close) != 0x22 && load<u8>(close) != 0x5C) close++;
    if (close >= end || load<u8>(close) != 0x22) return 0;
    return responseIdHash(start, close - start);
  }
  return 0;
}
