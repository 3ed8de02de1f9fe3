// A model server's /metrics endpoint on loopback for the scraping tests: serves
// a page that the test can change, or misbehaves on request (status 500,
// garbage, a slow answer, a reset connection), and counts the scrapes it gets.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type Behaviour = "ok" | "error500" | "garbage" | "slow" | "reset";

export class MetricsServer {
  page = "";
  behaviour: Behaviour = "ok";
  hits = 0;
  private server: Server;
  private sockets = new Set<import("node:net").Socket>();

  private constructor(server: Server) {
    this.server = server;
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  static async start(page = ""): Promise<MetricsServer> {
    let self: MetricsServer | undefined;
    const server = createServer((req, res) => self!.answer(req.url ?? "", res));
    self = new MetricsServer(server);
    self.page = page;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return self;
  }

  /** ip:port, kept after stop() so a test can still name the dead server. */
  address = "";

  private answer(url: string, res: import("node:http").ServerResponse): void {
    this.hits++;
    if (url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    switch (this.behaviour) {
      case "ok":
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(this.page);
        return;
      case "error500":
        res.writeHead(500).end("internal error");
        return;
      case "garbage":
        res.writeHead(200).end("\u0000\u00ff{not prometheus at all\n");
        return;
      case "slow":
        setTimeout(() => res.writeHead(200).end(this.page), 3000).unref();
        return;
      case "reset":
        res.socket?.destroy();
        return;
    }
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface VllmLoad {
  waiting?: number;
  running?: number;
  kv?: number;
  blockSize?: number;
  gpuBlocks?: number;
  queries?: number;
  hits?: number;
  lora?: { running: string[]; max: number };
  /** process_start_time_seconds, as prometheus_client's process collector writes it. */
  startTime?: number;
}

/** A vLLM V1 metrics page (one engine) with the given numbers, in vLLM's own format. */
export function vllmPage(l: VllmLoad): string {
  const model = 'engine="0",model_name="llama"';
  const lines = [
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
    "# TYPE vllm:num_requests_waiting gauge",
    `vllm:num_requests_waiting{${model}} ${l.waiting ?? 0}`,
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{${model}} ${l.running ?? 0}`,
    "# TYPE vllm:kv_cache_usage_perc gauge",
    `vllm:kv_cache_usage_perc{${model}} ${l.kv ?? 0}`,
    "# TYPE vllm:prefix_cache_queries counter",
    `vllm:prefix_cache_queries_total{${model}} ${l.queries ?? 0}`,
    "# TYPE vllm:prefix_cache_hits counter",
    `vllm:prefix_cache_hits_total{${model}} ${l.hits ?? 0}`,
  ];
  if (l.blockSize !== undefined && l.gpuBlocks !== undefined) {
    lines.push("# TYPE vllm:cache_config_info gauge",
      `vllm:cache_config_info{block_size="${l.blockSize}",engine="0",num_gpu_blocks="${l.gpuBlocks}"} 1.0`);
  }
  if (l.startTime !== undefined) {
    lines.push("# TYPE process_start_time_seconds gauge", `process_start_time_seconds ${l.startTime}`);
  }
  if (l.lora) {
    lines.push("# TYPE vllm:lora_requests_info gauge",
      `vllm:lora_requests_info{max_lora="${l.lora.max}",running_lora_adapters="${l.lora.running.join(",")}",waiting_lora_adapters=""} 1.7e+09`);
  }
  return lines.join("\n") + "\n";
}
