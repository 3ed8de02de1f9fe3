// Loopback HTTP servers standing in for model servers' /metrics endpoints,
// each with a behaviour that can change while it runs: a healthy vLLM page,
// down (nothing listening), slow (never answers), a reset connection, a 500,
// garbage, a page of any size, or a page written by the caller. They listen on
// 127.0.0.1 only and stop when asked; the scenarios own their lifetime.
import { createServer, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export type Behaviour =
  | { kind: "healthy"; waiting?: number }
  | { kind: "down" }
  | { kind: "slow" }
  | { kind: "reset" }
  | { kind: "status"; status: number }
  | { kind: "garbage"; bytes: number }
  | { kind: "huge"; bytes: number }
  | { kind: "page"; text: string };

export function vllmPage(waiting: number, running = 1, kv = 0.25, gpuBlocks = 20000): string {
  return [
    "# HELP vllm:num_requests_waiting Number of requests waiting.",
    "# TYPE vllm:num_requests_waiting gauge",
    `vllm:num_requests_waiting{engine="0",model_name="m"} ${waiting}`,
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{engine="0",model_name="m"} ${running}`,
    "# TYPE vllm:kv_cache_usage_perc gauge",
    `vllm:kv_cache_usage_perc{engine="0",model_name="m"} ${kv}`,
    "# TYPE vllm:cache_config_info gauge",
    `vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="${gpuBlocks}"} 1.0`,
    "",
  ].join("\n");
}

export class FaultyMetricsServer {
  behaviour: Behaviour;
  requests = 0;
  private server: Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  private constructor(behaviour: Behaviour) {
    this.behaviour = behaviour;
    this.server = this.makeServer();
  }

  static async start(behaviour: Behaviour): Promise<FaultyMetricsServer> {
    const s = new FaultyMetricsServer(behaviour);
    await s.listen(0);
    if (behaviour.kind === "down") await s.close();
    return s;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Changes what the server does from the next request (listening again after "down"). */
  async set(behaviour: Behaviour): Promise<void> {
    const wasDown = this.behaviour.kind === "down";
    this.behaviour = behaviour;
    if (behaviour.kind === "down" && !wasDown) await this.close();
    if (behaviour.kind !== "down" && wasDown) {
      this.server = this.makeServer();
      await this.listen(this.port);
    }
  }

  async stop(): Promise<void> {
    if (this.behaviour.kind !== "down") await this.close();
  }

  private makeServer(): Server {
    const server = createServer((_request, response) => this.answer(response));
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    return server;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.port = (this.server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private answer(res: ServerResponse): void {
    this.requests++;
    const b = this.behaviour;
    switch (b.kind) {
      case "healthy":
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(vllmPage(b.waiting ?? 0));
        return;
      case "slow":
        return; // never answers; the socket closes when the server stops
      case "reset":
        res.socket?.destroy();
        return;
      case "status":
        res.writeHead(b.status, { "content-type": "text/plain" }).end("internal error\n");
        return;
      case "garbage": {
        const body = Buffer.alloc(b.bytes);
        for (let i = 0; i < body.length; i++) body[i] = (i * 2654435761) >>> 24;
        res.writeHead(200, { "content-type": "text/plain" }).end(body);
        return;
      }
      case "huge": {
        // A valid page line repeated to `bytes`, streamed in 1 MiB writes.
        const line = Buffer.from('vllm:num_requests_waiting{engine="0",model_name="m"} 1\n');
        const chunk = Buffer.alloc(1 << 20);
        for (let o = 0; o < chunk.length; o += line.length) line.copy(chunk, o, 0, Math.min(line.length, chunk.length - o));
        res.writeHead(200, { "content-type": "text/plain", "content-length": String(b.bytes) });
        let left = b.bytes;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
              res.once("drain", pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      case "page":
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(b.text);
        return;
      case "down":
        res.socket?.destroy();
        return;
    }
  }
}
