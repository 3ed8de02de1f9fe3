// proxy_http_call: the argument rules (envoy source/extensions/common/wasm/
// context.cc Context::httpCall), the clusters a call may target, and the life of
// each callout until its response reaches the root context that issued it:
// in-process handlers, real HTTP to loopback (static and original_dst clusters),
// the timeout as Envoy's router reports it (a normal 504 "upstream request
// timeout" response), connect failures and resets before headers (503 local
// replies), resets after headers (callback with 0,0,0 and status 11), and a
// request that fails inline (no host) as InternalFailure without a callback.
import type { Clock } from "./clock.ts";
import { WasmResult } from "./enums.ts";
import { HeaderMap, type HeaderInput, type HeaderList } from "./header-map.ts";
import type { Context, HttpCallResponse, PendingHttpCall } from "./context.ts";
import { sendHttp, type HttpOutcome, type HttpTarget } from "./upstream-http.ts";
import type { Agent } from "node:http";

export interface CalloutRequest {
  cluster: string;
  method: string;
  path: string;
  authority: string;
  /** Request headers as Envoy builds them (lower-cased, content-length added for a body). */
  headers: HeaderList;
  body: Uint8Array;
  trailers: HeaderList;
  /** null: no timeout (proxy_http_call with 0). */
  timeoutMs: number | null;
  vm: number;
  token: number;
}

/** What an in-process cluster answers: a response, or a reset after response headers. */
export type CalloutReply =
  | { status: number; headers?: HeaderInput; body?: string | Uint8Array; trailers?: HeaderInput }
  | { reset: true };

export type ClusterConfig =
  | { type: "static"; address: string }
  | { type: "original_dst"; /** default x-envoy-original-dst-host */ headerName?: string }
  | { type: "handler"; handle: (request: CalloutRequest) => CalloutReply | Promise<CalloutReply> };

export interface PendingCallout {
  vm: number;
  token: number;
  cluster: string;
  request: CalloutRequest;
  startedAtMs: number;
}

const encoder = new TextEncoder();

/** A response Envoy's router makes up (Utility::sendLocalReply inside the async client). */
function localReply(status: number, body: string): HttpCallResponse {
  const bytes = encoder.encode(body);
  return {
    headers: new HeaderMap([
      [":status", String(status)],
      ["content-length", String(bytes.length)],
      ["content-type", "text/plain"],
    ]),
    body: bytes,
    trailers: null,
  };
}

/** envoy router: per-try/global timeout. */
const timeoutResponse = () => localReply(504, "upstream request timeout");
/** envoy router: connection refused before any response. */
const connectFailureResponse = () =>
  localReply(503, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused");
/** envoy router: the upstream closed or reset before response headers. */
const resetBeforeHeadersResponse = () =>
  localReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination");

function replyToOutcome(reply: CalloutReply): HttpOutcome {
  if ("reset" in reply) return { kind: "reset" };
  const headers = new HeaderMap([[":status", String(reply.status)]]);
  for (const [k, v] of new HeaderMap(reply.headers).toList()) headers.add(k, v);
  const body = reply.body === undefined ? new Uint8Array(0) : typeof reply.body === "string" ? encoder.encode(reply.body) : reply.body;
  const trailers = reply.trailers === undefined ? null : new HeaderMap(reply.trailers);
  return { kind: "response", response: { headers, body, trailers: trailers?.size ? trailers : null } };
}

function parseTarget(address: string | undefined): HttpTarget | null {
  if (address === undefined) return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(address.split(",")[0].trim());
  if (m === null) return null;
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

export class CalloutDispatcher {
  private readonly pendingCalls = new Set<PendingCallout & { cancel(): void }>();
  private readonly io = new Set<Promise<void>>();
  /** Bumped whenever a callout completes, so settle() can tell progress from idleness. */
  progress = 0;

  constructor(
    private readonly clusters: Readonly<Record<string, ClusterConfig>>,
    private readonly clock: Clock,
    private readonly agent: Agent,
    private readonly onHandlerError: (request: CalloutRequest, error: unknown) => void,
  ) {}

  hasCluster(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.clusters, name);
  }

  pending(): PendingCallout[] {
    return [...this.pendingCalls].map(({ vm, token, cluster, request, startedAtMs }) => ({ vm, token, cluster, request, startedAtMs }));
  }

  /** Real HTTP exchanges in flight (settle() waits for them). */
  inflightIo(): Promise<void>[] {
    return [...this.io];
  }

  /**
   * Starts a callout for `root`; null when it fails inline (Envoy's
   * AsyncClient::send returns nullptr, e.g. an original_dst cluster with no
   * usable destination header).
   */
  start(root: Context, request: CalloutRequest): PendingHttpCall | null {
    const cluster = this.clusters[request.cluster];
    let target: HttpTarget | null = null;
    if (cluster.type === "static") target = parseTarget(cluster.address);
    if (cluster.type === "original_dst") {
      const header = (cluster.headerName ?? "x-envoy-original-dst-host").toLowerCase();
      target = parseTarget(new HeaderMap(request.headers).get(header));
      if (target === null) return null;
    }
    if (cluster.type === "static" && target === null) throw new Error(`cluster ${request.cluster}: bad address ${cluster.address}`);

    let done = false;
    let timer: { cancel(): void } | null = null;
    let cancelIo: (() => void) | null = null;
    const record = {
      vm: request.vm,
      token: request.token,
      cluster: request.cluster,
      request,
      startedAtMs: this.clock.now(),
      cancel: () => {
        done = true;
        timer?.cancel();
        cancelIo?.();
        this.pendingCalls.delete(record);
      },
    };
    const deliver = (outcome: HttpOutcome) => {
      if (done) return;
      done = true;
      timer?.cancel();
      this.pendingCalls.delete(record);
      this.progress++;
      if (root.vm === null || root.vm.isDisposed) return;
      if (outcome.kind === "response") root.onHttpCallSuccess(request.token, outcome.response);
      else if (outcome.kind === "reset") root.onHttpCallFailure(request.token);
      else if (outcome.kind === "connect-failure") root.onHttpCallSuccess(request.token, connectFailureResponse());
      else root.onHttpCallSuccess(request.token, resetBeforeHeadersResponse());
    };

    if (request.timeoutMs !== null) {
      timer = this.clock.setTimer(request.timeoutMs, () => {
        cancelIo?.();
        deliver({ kind: "response", response: timeoutResponse() });
      });
    }
    if (cluster.type === "handler") {
      Promise.resolve()
        .then(() => cluster.handle(request))
        .then(
          (reply) => deliver(replyToOutcome(reply)),
          (error) => {
            this.onHandlerError(request, error);
            deliver({ kind: "reset-before-headers" });
          },
        );
    } else {
      const exchange = sendHttp(target!, onTheWire(request), this.agent, deliver);
      cancelIo = exchange.cancel;
      this.io.add(exchange.finished);
      exchange.finished.finally(() => this.io.delete(exchange.finished));
    }
    this.pendingCalls.add(record);
    return record;
  }
}

/**
 * The callout as Envoy sends it: its async client marks every request
 * internal (x-envoy-internal: true, source/common/http/async_client_impl.cc
 * AsyncStreamImpl::sendHeaders) and its router states a timeout it was given
 * (x-envoy-expected-rq-timeout-ms, source/common/router/router.cc
 * FilterUtility::setTimeoutHeaders). Seen by a metrics server behind real
 * Envoy 1.40 (tests/differential/ and tests/host/callouts.test.ts).
 */
function onTheWire(request: CalloutRequest): CalloutRequest {
  const added: [string, string][] = [["x-envoy-internal", "true"]];
  if (request.timeoutMs !== null) added.push(["x-envoy-expected-rq-timeout-ms", String(request.timeoutMs)]);
  const names = new Set(added.map(([k]) => k));
  return { ...request, headers: [...request.headers.filter(([k]) => !names.has(k)), ...added] };
}

/** envoy Context::httpCall, on the root context. */
export function httpCall(
  root: Context,
  dispatcher: CalloutDispatcher,
  cluster: string,
  headerPairs: [string, string][],
  body: Uint8Array,
  trailerPairs: [string, string][],
  timeoutMs: number,
): { result: number; token: number } {
  const vm = root.vm!;
  // The Word is cast to int: values >= 2^31 are negative.
  if ((timeoutMs | 0) < 0) return { result: WasmResult.BadArgument, token: 0 };
  if (!dispatcher.hasCluster(cluster)) return { result: WasmResult.BadArgument, token: 0 };
  const headers = new HeaderMap(headerPairs);
  const path = headers.get(":path");
  const method = headers.get(":method");
  const authority = headers.get(":authority");
  if (path === undefined || method === undefined || authority === undefined) return { result: WasmResult.BadArgument, token: 0 };
  if (body.length > 0) headers.set("content-length", String(body.length));
  const token = vm.allocHttpCallId();
  const handle = dispatcher.start(root, {
    cluster,
    method,
    path,
    authority,
    headers: headers.toList(),
    body,
    trailers: trailerPairs,
    timeoutMs: timeoutMs > 0 ? timeoutMs : null,
    vm: vm.index,
    token,
  });
  if (handle === null) return { result: WasmResult.InternalFailure, token: 0 };
  root.httpCalls.set(token, handle);
  return { result: WasmResult.Ok, token };
}
