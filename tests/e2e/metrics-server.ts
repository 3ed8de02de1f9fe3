// A loopback stand-in for one model server's Prometheus page, for the
// real-Envoy metrics tests: it serves a page the test writes (real Prometheus
// text in vLLM or SGLang names), or fails the way a dead server does (500,
// connection refused, an answer that never comes, or one that comes late), and
// it records every scrape that reaches it: when it arrived and how many were
// in flight at once. That record is how a test counts scrapes per interval
// from outside Envoy, whichever VM sent them.
// Owns: that server and the page text. Must not: model requests or caches
// (recording-upstream.ts and scripts/sim do). Listens on 127.0.0.1 only; stop()
// ends it and every connection Envoy still holds to it.
// (scripts/hardening/metrics-servers.ts has fixed behaviours but keeps neither
// arrival times nor in-flight counts, which the single-scraper test needs.)
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the server does with the next scrape. */
export type MetricsBehaviour =
  | { kind: "page"; delayMs?: number }
  | { kind: "status"; status: number }
  /** Nothing listening on the port: Envoy's connect is refused. */
  | { kind: "down" }
  /** Accepts and never answers: the callout times out. */
  | { kind: "hang" };

export interface ServerLoadPage {
  waiting: number;
  running: number;
  /** KV-cache usage, 0..1. */
  kv: number;
  /** Tokens per cache block and blocks of the cache. */
  blockSize: number;
  blocks: number;
  /** Monotonic prefix-cache counters (tokens). */
  queries: number;
  hits: number;
}

export type Dialect = "vllm" | "sglang";

/** A vLLM V1 page (vllm/v1/metrics/loggers.py names; counters with the `_total` prometheus_client adds). */
export function vllmText(p: ServerLoadPage): string {
  const l = `engine="0",model_name="m"`;
  return [
    "# HELP vllm:num_requests_running Number of requests in model execution batches.",
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{${l}} ${p.running}.0`,
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
    "# TYPE vllm:num_requests_waiting gauge",
    `vllm:num_requests_waiting{${l}} ${p.waiting}.0`,
    "# TYPE vllm:kv_cache_usage_perc gauge",
    `vllm:kv_cache_usage_perc{${l}} ${p.kv}`,
    "# TYPE vllm:prefix_cache_queries_total counter",
    `vllm:prefix_cache_queries_total{${l}} ${p.queries}.0`,
    "# TYPE vllm:prefix_cache_queries_created gauge",
    `vllm:prefix_cache_queries_created{${l}} 1.7e+09`,
    "# TYPE vllm:prefix_cache_hits_total counter",
    `vllm:prefix_cache_hits_total{${l}} ${p.hits}.0`,
    "# TYPE vllm:cache_config_info gauge",
    `vllm:cache_config_info{block_size="${p.blockSize}",cache_dtype="auto",engine="0",num_gpu_blocks="${p.blocks}"} 1.0`,
    "",
  ].join("\n");
}

/** An SGLang page (sglang SchedulerMetricsCollector names, with the page_size / num_pages gauges). */
export function sglangText(p: ServerLoadPage): string {
  const l = `model_name="m",engine_type="unified",tp_rank="0",pp_rank="0"`;
  return [
    "# TYPE sglang:num_running_reqs gauge",
    `sglang:num_running_reqs{${l}} ${p.running}.0`,
    "# TYPE sglang:num_queue_reqs gauge",
    `sglang:num_queue_reqs{${l}} ${p.waiting}.0`,
    "# TYPE sglang:token_usage gauge",
    `sglang:token_usage{${l}} ${p.kv}`,
    "# TYPE sglang:page_size gauge",
    `sglang:page_size{${l}} ${p.blockSize}.0`,
    "# TYPE sglang:num_pages gauge",
    `sglang:num_pages{${l}} ${p.blocks}.0`,
    "# TYPE sglang:prompt_tokens_total counter",
    `sglang:prompt_tokens_total{${l}} ${p.queries}.0`,
    "# TYPE sglang:cached_tokens_total counter",
    `sglang:cached_tokens_total{cache_source="device",${l}} ${p.hits}.0`,
    "",
  ].join("\n");
}

export class MetricsServer {
  behaviour: MetricsBehaviour = { kind: "page" };
  /** The page served; the test changes it at will. */
  load: ServerLoadPage;
  /** Arrival time (performance.now() ms) of every scrape that reached the server. */
  readonly arrivals: number[] = [];
  /** The client port each scrape came from: Envoy keeps one connection pool per thread, so one VM's scrapes share a connection. */
  readonly ports: number[] = [];
  /** Most scrapes in flight at once since the last resetInFlight(). */
  maxInFlight = 0;
  /** Called before each page is written, to move the load on (counters that grow per scrape). */
  advance: ((load: ServerLoadPage) => void) | null = null;
  /** 200 pages written, with the load each carried. */
  readonly served: ServerLoadPage[] = [];
  private inFlight = 0;
  private server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly hung = new Set<ServerResponse>();
  private port = 0;

  private constructor(readonly dialect: Dialect, load: ServerLoadPage) {
    this.load = load;
    this.server = this.makeServer();
  }

  static async start(dialect: Dialect, load: ServerLoadPage): Promise<MetricsServer> {
    const s = new MetricsServer(dialect, load);
    await s.listen(0);
    return s;
  }

  /** ip:port, stable across down/up. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Scrapes that arrived at or after `since` (performance.now() ms). */
  scrapesSince(since: number): number {
    return this.arrivals.filter((t) => t >= since).length;
  }

  /** How often consecutive scrapes since `since` came over a different connection than the one before. */
  connectionSwitchesSince(since: number): number {
    let switches = 0;
    for (let i = 1; i < this.arrivals.length; i++) {
      if (this.arrivals[i] >= since && this.arrivals[i - 1] >= since && this.ports[i] !== this.ports[i - 1]) switches++;
    }
    return switches;
  }

  resetInFlight(): void {
    this.maxInFlight = this.inFlight;
  }

  /** Changes what the next scrape gets; "down" closes the listening socket, leaving it reopens on the same port. */
  async set(b: MetricsBehaviour): Promise<void> {
    const wasDown = this.behaviour.kind === "down";
    this.behaviour = b;
    if (b.kind !== "hang") this.releaseHung();
    if (b.kind === "down" && !wasDown) await this.close();
    if (b.kind !== "down" && wasDown) {
      this.server = this.makeServer();
      await this.listen(this.port);
    }
  }

  async stop(): Promise<void> {
    this.releaseHung();
    if (this.behaviour.kind !== "down") await this.close();
  }

  private makeServer(): Server {
    const server = createServer((req, res) => {
      this.arrivals.push(performance.now());
      this.ports.push(req.socket.remotePort ?? 0);
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          this.inFlight--;
        }
      };
      res.on("finish", finish);
      res.on("close", finish);
      req.resume();
      this.answer(res);
    });
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    return server;
  }

  private answer(res: ServerResponse): void {
    const b = this.behaviour;
    switch (b.kind) {
      case "page": {
        const write = () => {
          this.advance?.(this.load);
          const load = { ...this.load };
          const text = this.dialect === "vllm" ? vllmText(load) : sglangText(load);
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": Buffer.byteLength(text) });
          res.end(text);
          this.served.push(load);
        };
        if (b.delayMs) setTimeout(write, b.delayMs);
        else write();
        return;
      }
      case "status":
        res.writeHead(b.status, { "content-type": "text/plain" }).end("internal error\n");
        return;
      case "hang":
        this.hung.add(res);
        return;
      case "down":
        // Raced with close(): drop it, as a refused connection would.
        res.socket?.destroy();
        return;
    }
  }

  private releaseHung(): void {
    for (const r of this.hung) r.socket?.destroy();
    this.hung.clear();
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
