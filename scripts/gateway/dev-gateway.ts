// The dev gateway: the same .wasm and the same generated configuration as the
// Envoy bootstrap, run in the host emulator behind a real HTTP server on
// loopback, so the quick start and the end-to-end scenarios work wherever Node
// runs. It plays the parts of Envoy the filter does not see:
//
//   client ──HTTP──▶ listener (node:http) ──headers, body chunks──▶ emulated stream
//                                                        (prefix-router filter)
//             released upstream? ──▶ destination header names a configured
//                                    endpoint → that endpoint (override_host);
//                                    otherwise round robin (its fallback policy)
//   upstream response ──▶ through the filter's encoder side ──▶ client
//   admin (node:http): /stats/prometheus and /stats from the emulator's store,
//   tagged with the same stats_tags as the Envoy config; /ready; /listeners.
//
// The filter's metrics scrapes go to the emulator's original_dst cluster, which
// makes real HTTP requests to each endpoint's metrics address. Time is real
// (RealClock): ticks and scrape timeouts run on Node timers.
//
// Owns: the two HTTP servers and the forwarding. Must not: decide anything the
// filter or Envoy's load balancer decides, other than mimicking override_host.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Envoy, RealClock, type HttpStream, type LogEntry, type Plugin, type LogLevelName } from "../host/index.ts";
import { GatewayConfigError, NAMES, filterConfigurationText, type GatewayConfig } from "./envoy-config.ts";
import { STATS_TAGS } from "./stats-tags.ts";
import { formatAddress } from "./address.ts";
import { OverrideHostSelection, RoundRobin } from "./override-host.ts";

export interface DevGatewayOptions {
  /** From resolveConfig: the same endpoints, header, buffer limit and filter JSON as the Envoy config. */
  config: GatewayConfig;
  /** The .wasm to run (a path, or its bytes). Default: the config's wasmFile. */
  wasm?: string | Uint8Array;
  /** Worker VMs (Envoy's --concurrency). Default 2. */
  concurrency?: number;
  /** The emulated `wasm` logger's level. Default info. */
  logLevel?: LogLevelName;
  /** Every log line of the filter (and of the emulated host). Default: dropped. */
  onLog?: (entry: LogEntry) => void;
}

/**
 * Hop-by-hop headers: the connection manager drops them on the way in and
 * Node writes its own framing on the way out (RFC 9110 §7.6.1).
 */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);

const EMPTY = new Uint8Array(0);

/** HttpConnectionManager.max_request_headers_kb's default (60 KiB). */
const MAX_REQUEST_HEADERS_BYTES = 60 * 1024;
/** HttpProtocolOptions.max_headers_count's default: one more header is a 431. */
const MAX_HEADERS_COUNT = 100;

/** How often open requests are checked for progress made by the filter's timers (see DevGateway.watch). */
const WATCH_MS = 10;

export class DevGateway {
  readonly envoy: Envoy;
  readonly plugin: Plugin;
  readonly config: GatewayConfig;
  /** http://ip:port of the listener. */
  readonly url: string;
  /** http://ip:port of the admin server. */
  readonly adminUrl: string;
  /** ip:port the listener is bound to (the real port when the config asked for 0). */
  readonly listenerAddress: string;

  private readonly endpoints: Set<string>;
  private readonly roundRobin: RoundRobin;
  /** See workerOf. */
  private readonly connectionWorkers = new WeakMap<Socket, number>();
  private nextWorker = 0;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly exchanges = new Set<Exchange>();
  /** See watch(): runs while any exchange is open. */
  private watcher: NodeJS.Timeout | null = null;
  private stopped = false;

  private constructor(
    envoy: Envoy,
    plugin: Plugin,
    config: GatewayConfig,
    private readonly server: http.Server,
    private readonly admin: http.Server,
  ) {
    this.envoy = envoy;
    this.plugin = plugin;
    this.config = config;
    const order = config.endpoints.map((e) => e.address);
    this.endpoints = new Set(order);
    this.roundRobin = new RoundRobin(order);
    const listen = server.address() as AddressInfo;
    const adm = admin.address() as AddressInfo;
    this.listenerAddress = formatAddress(config.listen, listen.port);
    this.url = `http://${this.listenerAddress}`;
    this.adminUrl = `http://${formatAddress(config.admin, adm.port)}`;
  }

  static async start(options: DevGatewayOptions): Promise<DevGateway> {
    const c = options.config;
    // It has no EDS subscription and no admin API to poll: the filter would wait for members forever.
    if (c.discovery !== null) throw new GatewayConfigError("eds", "the dev gateway does not serve EDS or Envoy's admin /clusters; run real Envoy (npm run envoy:install)");
    if (c.peers?.dns != null) throw new GatewayConfigError("peers.dns", "the dev gateway does not resolve a replicas' cluster or serve Envoy's admin /clusters; list the replicas with --peers");
    // peers.tokenEnv: as vm_config.environment_variables.host_env_keys, the variable from this process's environment, if set.
    const tokenEnv = c.peers?.tokenEnv ?? null;
    const environment = tokenEnv !== null && process.env[tokenEnv] !== undefined ? { [tokenEnv]: process.env[tokenEnv]! } : {};
    const envoy = new Envoy({
      clock: new RealClock(),
      logLevel: options.logLevel ?? "info",
      statsTags: [...STATS_TAGS],
      // The listener's per_connection_buffer_limit_bytes, as in the Envoy config.
      bufferLimitBytes: c.bufferLimitBytes,
      // Scrapes and peer asks go through it, as in the Envoy config (envoy-config.ts metricsCluster).
      clusters: c.metrics === null && c.peers === null ? {} : { [NAMES.metricsCluster]: { type: "original_dst" } },
      recordLogs: false,
      onLog: options.onLog,
    });
    let plugin: Plugin;
    try {
      plugin = await envoy.addHttpFilter({
        name: NAMES.plugin,
        rootId: NAMES.rootId,
        vmId: NAMES.vmId,
        wasm: options.wasm ?? c.wasmFile,
        configuration: filterConfigurationText(c),
        concurrency: options.concurrency ?? 2,
        allowOnHeadersStopIteration: c.holdsHeaders,
        failurePolicy: "FAIL_OPEN",
        environment,
      });
    } catch (e) {
      envoy.shutdown();
      throw e;
    }
    // The servers need the gateway for their handlers; the gateway needs their ports.
    let gateway: DevGateway | null = null;
    // Envoy's connection manager takes up to 60 KiB of request headers
    // (max_request_headers_kb, default 60, http_connection_manager.proto); Node's
    // default is 16 KiB, which refused with 431 requests Envoy hands the filter.
    const server = http.createServer({ maxHeaderSize: MAX_REQUEST_HEADERS_BYTES }, (req, res) => gateway?.handle(req, res));
    // Requests Node's parser refuses (headers past the limit, content-length with
    // chunked, garbage) get the answer Envoy's codec sends for its protocol
    // errors: the status text as a text/plain body, then the connection closes
    // (source/common/http/http1/codec_impl.cc sendProtocolError). Node's default
    // answer has no body.
    server.on("clientError", (e: NodeJS.ErrnoException, socket) => {
      const [status, text] = e.code === "HPE_HEADER_OVERFLOW" ? [431, "Request Header Fields Too Large"] : [400, "Bad Request"];
      if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-length: ${text.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${text}`);
      else socket.destroy();
    });
    const admin = http.createServer((req, res) => gateway?.handleAdmin(req, res));
    try {
      await listen(server, c.listen.ip, c.listen.port);
      await listen(admin, c.admin.ip, c.admin.port);
    } catch (e) {
      server.close();
      admin.close();
      envoy.shutdown();
      throw e;
    }
    gateway = new DevGateway(envoy, plugin, c, server, admin);
    return gateway;
  }

  /** Stops listening, ends every exchange, shuts the emulated Envoy down. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const x of this.exchanges) x.abort();
    if (this.watcher !== null) clearInterval(this.watcher);
    await Promise.all([close(this.server), close(this.admin)]);
    this.agent.destroy();
    this.envoy.shutdown();
  }

  /**
   * Envoy's host choice for a request the filter released: override_host
   * walks the destination header's list, one entry per attempt, then round
   * robin (override-host.ts).
   */
  selectHosts(headers: [string, string][]): OverrideHostSelection {
    const value = headers.find(([k]) => k === this.config.destinationHeader)?.[1];
    return new OverrideHostSelection(value, this.endpoints, this.roundRobin);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.stopped) {
      res.writeHead(503).end();
      return;
    }
    // Envoy's HTTP/1 codec answers anything but HTTP/1.1 with 426 before any
    // filter runs, unless http_protocol_options.accept_http_10 is set, which
    // the generated config does not set (source/common/http/http1/codec_impl.cc
    // ServerConnectionImpl::checkProtocolVersion; tests/differential/http.test.ts).
    if (req.httpVersion !== "1.1") {
      codecError(res, 426, "Upgrade Required");
      return;
    }
    // More than max_headers_count header fields: Envoy's codec answers 431
    // before any filter (source/common/http/http1/codec_impl.cc
    // completeLastHeader, TooManyHeaders). Node keeps going (its maxHeadersCount
    // silently drops the rest), so count them here.
    if (req.rawHeaders.length / 2 > MAX_HEADERS_COUNT) {
      codecError(res, 431, "Request Header Fields Too Large");
      return;
    }
    const exchange = new Exchange(this, this.workerOf(req.socket), req, res, this.agent, () => {
      this.exchanges.delete(exchange);
      if (this.exchanges.size === 0 && this.watcher !== null) {
        clearInterval(this.watcher);
        this.watcher = null;
      }
    });
    this.exchanges.add(exchange);
    exchange.start();
    this.watch();
  }

  /**
   * The filter can move a stream outside any request event: its tick continues
   * a request whose body never came (parkTimeoutMs, when Envoy does not hold
   * the headers), and a failed VM fails streams at their next callback. The
   * emulator has no change notification, so while requests are open they are
   * looked at every WATCH_MS as well as after each event.
   */
  private watch(): void {
    if (this.watcher !== null) return;
    this.watcher = setInterval(() => {
      for (const x of this.exchanges) x.pump();
    }, WATCH_MS);
  }

  /**
   * The worker VM that serves every stream of a client connection. Envoy hands
   * each accepted connection to one worker, whose dispatcher runs all of its
   * streams (source/common/listener_manager/connection_handler_impl.cc), so
   * requests kept alive on one connection meet one VM; round robin per stream
   * spread them (tests/differential/http.test.ts, "kept alive on one connection").
   */
  private workerOf(socket: Socket): number {
    let worker = this.connectionWorkers.get(socket);
    if (worker === undefined) {
      worker = this.nextWorker++ % this.plugin.vms.length;
      this.connectionWorkers.set(socket, worker);
    }
    return worker;
  }

  private handleAdmin(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://admin");
    const text = (status: number, body: string, type = "text/plain; charset=UTF-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-cache, max-age=0" }).end(body);
    };
    switch (url.pathname) {
      case "/stats/prometheus":
        return text(200, this.envoy.stats.prometheus(), "text/plain; version=0.0.4; charset=UTF-8");
      case "/stats": {
        const filter = url.searchParams.get("filter");
        let re: RegExp | null = null;
        try {
          re = filter ? new RegExp(filter) : null;
        } catch {
          return text(400, `Invalid re2 regex\n`);
        }
        const names = this.envoy.stats.names().filter((n) => re === null || re.test(n));
        if (url.searchParams.get("format") === "json") {
          // Envoy's /stats?format=json: {"stats":[{"name","value"}…]} for counters and gauges
          // (source/server/admin/stats_render.cc StatsJsonRender); histograms are left out here.
          const stats = names.flatMap((name) => {
            const value = this.envoy.stats.get(name);
            return typeof value === "number" ? [{ name, value }] : [];
          });
          return text(200, JSON.stringify({ stats }), "application/json");
        }
        const lines = names.map((n) => {
          const v = this.envoy.stats.get(n);
          return typeof v === "object" && v !== null ? `${n}: count=${v.count} p50=${v.p50} p90=${v.p90} p99=${v.p99}` : `${n}: ${v ?? 0}`;
        });
        return text(200, lines.length ? `${lines.join("\n")}\n` : "");
      }
      case "/ready":
        return text(this.stopped ? 503 : 200, this.stopped ? "DRAINING\n" : "LIVE\n");
      case "/listeners": {
        const [ip, port] = [this.config.listen.ip, Number(new URL(this.url).port)];
        if (url.searchParams.get("format") === "json") {
          const body = { listener_statuses: [{ name: NAMES.listener, local_address: { socket_address: { address: ip, port_value: port } } }] };
          return text(200, JSON.stringify(body), "application/json");
        }
        return text(200, `${NAMES.listener}::${this.listenerAddress}\n`);
      }
      case "/server_info":
        return text(200, JSON.stringify({ state: this.stopped ? "DRAINING" : "LIVE", version: "prefix-router dev gateway (host emulator)" }), "application/json");
      default:
        return text(404, "dev gateway admin: /stats, /stats/prometheus, /ready, /listeners, /server_info\n");
    }
  }
}

/** One request: client ↔ emulated filter ↔ upstream. */
class Exchange {
  private readonly stream: HttpStream;
  private upstream: http.ClientRequest | null = null;
  private upstreamWritten = 0;
  private upstreamEnded = false;
  /** Set on the first attempt; each retry takes its next host. */
  private hosts: OverrideHostSelection | null = null;
  /** The route's num_retries (the filter's fallbackHosts) not yet spent. */
  private retriesLeft: number;
  /** A retry is waiting out its back-off: no upstream to open or feed until then. */
  private retryTimer: NodeJS.Timeout | null = null;
  /** The client's request has a body (set in start()). */
  private hasBody = false;
  private responseStarted = false;
  private responseEnded = false;
  private downstreamHeadersSent = false;
  private downstreamWritten = 0;
  private done = false;

  constructor(
    private readonly gateway: DevGateway,
    worker: number,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly agent: http.Agent,
    private readonly onDone: () => void,
  ) {
    this.stream = gateway.plugin.newStream(worker);
    this.retriesLeft = gateway.config.fallbackHosts;
  }

  start(): void {
    const req = this.req;
    let path = req.url ?? "/";
    let authority = req.headers.host ?? this.gateway.listenerAddress;
    // An absolute-form request target ("POST http://host/v1/completions"):
    // Envoy's codec makes :path its path and query and :authority its host,
    // ignoring Host (RFC 9112 §3.2.2; source/common/http/http1/codec_impl.cc
    // ServerConnectionImpl::handlePath, allow_absolute_url is on by default).
    // Node hands the target over as it came, so without this the filter saw the
    // whole URL as the path and passed an inference request through.
    const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)([^#]*)/.exec(path);
    if (absolute !== null) {
      authority = absolute[1];
      path = absolute[2] === "" ? "/" : absolute[2];
    }
    const headers: [string, string][] = [
      [":method", req.method ?? "GET"],
      [":path", path],
      [":scheme", "http"],
      [":authority", authority],
    ];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const key = req.rawHeaders[i].toLowerCase();
      if (key === "host" || HOP_BY_HOP.has(key)) continue;
      // Envoy answers "Expect: 100-continue" itself and removes the header
      // before the filters (proxy_100_continue is off; source/common/http/
      // conn_manager_impl.cc ActiveStream::decodeHeaders); Node has answered it.
      if (key === "expect" && req.rawHeaders[i + 1].toLowerCase() === "100-continue") continue;
      headers.push([key, req.rawHeaders[i + 1]]);
    }
    // The connection manager adds these before any filter runs, so the filter
    // and the upstream see them (source/common/http/conn_manager_utility.cc
    // mutateRequestHeaders): x-forwarded-proto when the client sent none, and
    // an x-request-id (generate_request_id defaults to true; a client's own is
    // kept, the listener not being an edge with use_remote_address).
    if (!headers.some(([k]) => k === "x-forwarded-proto")) headers.push(["x-forwarded-proto", "http"]);
    if (!headers.some(([k]) => k === "x-request-id")) headers.push(["x-request-id", randomUUID()]);
    // HTTP/1.1 framing decides whether a body follows (RFC 9112 §6.3); Envoy's
    // codec ends the stream with the headers when none does.
    const hasBody = req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
    this.hasBody = hasBody;
    this.stream.sendRequestHeaders(headers, !hasBody);
    this.pump();
    if (hasBody) {
      req.on("data", (chunk: Buffer) => {
        this.stream.sendRequestBody(new Uint8Array(chunk), false);
        this.pump();
      });
      req.on("end", () => {
        this.stream.sendRequestBody(EMPTY, true);
        this.pump();
      });
    } else {
      req.resume();
    }
    // The client went away before its response was complete: Envoy resets the stream.
    this.res.on("close", () => {
      if (!this.done) {
        this.stream.reset();
        this.finish();
      }
    });
  }

  /** Moves whatever the filter has released in either direction. */
  pump(): void {
    if (this.done) return;
    const s = this.stream;
    const up = s.upstreamRequest;
    if (up !== null && this.upstream === null && this.retryTimer === null && s.localResponse === null) this.openUpstream(up.headers);
    if (up !== null && this.upstream !== null && !this.upstreamEnded) {
      if (up.body.length > this.upstreamWritten) {
        this.upstream.write(up.body.subarray(this.upstreamWritten));
        this.upstreamWritten = up.body.length;
      }
      if (up.complete) {
        this.upstreamEnded = true;
        this.upstream.end();
      }
    }
    const down = s.downstreamResponse;
    if (down !== null) {
      if (!this.downstreamHeadersSent) {
        this.downstreamHeadersSent = true;
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of down.headers) {
          if (k.startsWith(":") || HOP_BY_HOP.has(k)) continue;
          const prev = out[k];
          out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        this.res.writeHead(down.status, out);
        // Streamed responses (SSE) must reach the client as they come.
        this.res.flushHeaders();
      }
      if (down.body.length > this.downstreamWritten) {
        this.res.write(down.body.subarray(this.downstreamWritten));
        this.downstreamWritten = down.body.length;
      }
      if (down.complete) {
        this.res.end();
        this.finish();
        return;
      }
    }
    // Ended without a complete response (a reset): drop the client connection.
    if (s.ended) {
      this.res.destroy();
      this.finish();
    }
  }

  private openUpstream(headers: [string, string][]): void {
    this.hosts ??= this.gateway.selectHosts(headers);
    const target = this.hosts.next();
    const close = target.lastIndexOf(":");
    const host = target.startsWith("[") ? target.substring(1, close - 1) : target.substring(0, close);
    const port = Number(target.substring(close + 1));
    const out: Record<string, string | string[]> = {};
    let authority = target;
    for (const [k, v] of headers) {
      if (k === ":authority") authority = v;
      if (k.startsWith(":")) continue;
      const prev = out[k];
      out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    out.host = authority;
    // Envoy's HTTP/1 encoder chunk-encodes a body that has no content-length,
    // whatever the method (source/common/http/http1/codec_impl.cc
    // StreamEncoderImpl::encodeHeadersBase). Node chunk-encodes by default only
    // for methods other than GET, HEAD, DELETE, OPTIONS, TRACE and CONNECT, and
    // otherwise wrote the body bare: the upstream read it as the next request
    // and answered 400 (tests/differential/http.test.ts, "GET with a body").
    if (this.hasBody && out["content-length"] === undefined) out["transfer-encoding"] = "chunked";
    const method = headers.find(([k]) => k === ":method")?.[1] ?? "GET";
    const path = headers.find(([k]) => k === ":path")?.[1] ?? "/";
    const upstream = http.request({ host, port, method, path, headers: out, agent: this.agent });
    this.upstream = upstream;
    // A retry replaced this attempt: whatever it still reports is stale.
    const current = () => this.upstream === upstream;
    upstream.on("response", (r) => {
      if (!current()) return r.resume();
      this.responseStarted = true;
      const h: [string, string][] = [[":status", String(r.statusCode ?? 502)]];
      for (let i = 0; i < r.rawHeaders.length; i += 2) {
        const key = r.rawHeaders[i].toLowerCase();
        if (!HOP_BY_HOP.has(key)) h.push([key, r.rawHeaders[i + 1]]);
      }
      this.stream.sendResponseHeaders(h, false);
      this.pump();
      r.on("data", (chunk: Buffer) => {
        this.stream.sendResponseBody(new Uint8Array(chunk), false);
        this.pump();
      });
      r.on("end", () => {
        this.responseEnded = true;
        this.stream.sendResponseBody(EMPTY, true);
        this.pump();
      });
      r.on("aborted", () => this.upstreamFailed());
      r.on("error", () => this.upstreamFailed());
    });
    upstream.on("error", (e: NodeJS.ErrnoException) => {
      if (current()) this.upstreamFailed(e);
    });
  }

  /**
   * Envoy's router: before response headers, a 503 local reply that travels
   * back through the filter chain (source/common/router/router.cc
   * onUpstreamReset); after them, a reset of the downstream stream. Failures
   * the route's retry_on names (envoy-config.ts RETRY_ON) are retried first,
   * num_retries times, each on override_host's next host.
   */
  private upstreamFailed(e?: NodeJS.ErrnoException): void {
    if (this.done || this.stream.ended) return;
    if (!this.responseStarted) {
      if (this.retriesLeft > 0 && e !== undefined && this.retriable(e)) {
        this.retry();
        return;
      }
      const reason = e?.code === "ECONNREFUSED" ? "remote connection failure" : "connection termination";
      this.stream.sendLocalReply(503, `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`, null, null,
        `upstream_reset_before_response_started{${reason.replace(/ /g, "_")}}`);
    } else {
      this.stream.resetStream("upstream_reset_after_response_started");
    }
    this.pump();
  }

  /**
   * connect-failure: the connection was never made. reset-before-request: a
   * kept-alive connection the server had closed, found reset on reuse (Node
   * marks the request reusedSocket; its guide retries exactly this case).
   */
  private retriable(e: NodeJS.ErrnoException): boolean {
    if (e.code === "ECONNREFUSED" || e.code === "EHOSTUNREACH" || e.code === "ENETUNREACH") return true;
    return e.code === "ECONNRESET" && this.upstream?.reusedSocket === true;
  }

  /**
   * The next attempt, after the router's back-off: the first retry waits a
   * random time under the 25 ms base interval, each further one under twice
   * the previous bound (source/common/common/backoff_strategy.cc,
   * JitteredExponentialBackOffStrategy::nextBackOffMs, as the router's retry
   * state uses it). The filter sees none of this: the body it released is
   * sent again as it was.
   */
  private retry(): void {
    const attempt = this.gateway.config.fallbackHosts - this.retriesLeft;
    this.retriesLeft--;
    this.upstream?.destroy();
    this.upstream = null;
    this.upstreamWritten = 0;
    this.upstreamEnded = false;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, Math.random() * 25 * 2 ** attempt);
  }

  abort(): void {
    if (this.done) return;
    this.stream.reset();
    this.res.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    // A stream that ends early (client gone, reset, local reply) abandons its upstream request.
    if (this.upstream !== null && !this.responseEnded) this.upstream.destroy();
    this.onDone();
  }
}

/** A reply Envoy's HTTP/1 codec makes before any filter runs: the status text as body, then close. */
function codecError(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-length": String(text.length), "content-type": "text/plain", connection: "close" }).end(text);
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
