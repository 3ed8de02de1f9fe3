// Simulated model servers as real HTTP servers on loopback, paced in real time
// (optionally sped up). Owns: the HTTP surface (OpenAI completions and chat,
// non-streaming and SSE, /metrics, /health, /v1/models) and the mapping of
// wall-clock time onto each engine's virtual time. Must not: change engine
// behaviour; the in-process replay drives the very same Engine.
//
// Virtual time here is (wall ms since start) × speedup. Each server keeps one
// timer armed for its engine's next event; when it fires, every event due by
// then is processed at its own virtual time, so step timing stays exact even
// when the timer fires late.

import http from "node:http";
import { performance } from "node:perf_hooks";
import type { AddressInfo } from "node:net";
import { Engine, type EngineRequest, type RequestOutcome } from "./engine.ts";
import { tokenizer, type Tokenizer, type TokenizerName } from "./hash.ts";
import { renderMetrics } from "./metrics.ts";
import {
  BadRequest, CHAT_PATH, COMPLETIONS_PATH, completionResponse, parseRequest, streamChunk, type ParsedRequest,
} from "./openai.ts";
import { simParams, type SimParams } from "./params.ts";

export interface SimServerOptions {
  params?: Partial<SimParams>;
  /** Virtual ms per wall ms: 10 runs the engine ten times faster than a GPU would. */
  speedup?: number;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** How prompts become tokens and KV blocks (hash.ts); default VARYING, as in the evaluator. */
  tokenizer?: TokenizerName;
}

interface Pending {
  id: string;
  path: string;
  parsed: ParsedRequest;
  res: http.ServerResponse;
  created: number;
}

const MAX_BODY_BYTES = 64 << 20;

export class SimServer {
  readonly params: SimParams;
  readonly speedup: number;
  readonly engine: Engine;
  readonly tokenizer: Tokenizer;
  private readonly host: string;
  private readonly port: number;
  private readonly http: http.Server;
  private readonly t0 = performance.now();
  /** Wall-clock start, for process_start_time_seconds: a server started again on the same port shows a new one. */
  private readonly startedAtS = Math.round(Date.now()) / 1000;
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  address = "";

  constructor(opts: SimServerOptions = {}) {
    this.params = simParams(opts.params);
    this.speedup = opts.speedup ?? 1;
    this.tokenizer = tokenizer(opts.tokenizer);
    if (!(this.speedup > 0)) throw new Error("speedup must be > 0");
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.engine = new Engine(this.params, {
      onFirstToken: (req) => this.firstToken(req),
      onComplete: (req, _t, outcome) => this.completed(req, outcome),
    });
    this.http = http.createServer((req, res) => this.handle(req, res));
    this.http.keepAliveTimeout = 5000;
  }

  /** Virtual now, ms. */
  now(): number {
    return (performance.now() - this.t0) * this.speedup;
  }

  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(this.port, this.host, () => {
        const a = this.http.address() as AddressInfo;
        // "[ipv6]:port", as Envoy and the filter write IPv6 endpoints.
        this.address = this.host.includes(":") ? `[${this.host}]:${a.port}` : `${this.host}:${a.port}`;
        resolve(this.address);
      });
    });
  }

  stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const p of this.pending.values()) p.res.destroy();
    this.pending.clear();
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? "/").split("?")[0];
    res.setHeader("x-served-by", this.address);
    if (req.method === "GET" && url === "/metrics") {
      this.catchUp();
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(renderMetrics(this.engine.snapshot(), this.params, this.now(), this.startedAtS));
      return;
    }
    if (req.method === "GET" && (url === "/health" || url === "/ping")) {
      res.writeHead(200).end();
      return;
    }
    if (req.method === "GET" && url === "/v1/models") {
      this.json(res, 200, { object: "list", data: [{ id: this.params.model, object: "model", owned_by: "vllm", max_model_len: this.params.maxModelLen }] });
      return;
    }
    if (req.method === "POST" && (url === COMPLETIONS_PATH || url === CHAT_PATH)) {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          this.error(res, 413, "request body too large");
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on("end", () => {
        if (!res.headersSent) this.generate(url, Buffer.concat(chunks).toString("utf8"), res);
      });
      return;
    }
    this.error(res, 404, `no route for ${req.method} ${url}`);
  }

  private generate(path: string, body: string, res: http.ServerResponse): void {
    let parsed: ParsedRequest;
    try {
      parsed = parseRequest(path, body, this.params);
    } catch (e) {
      if (e instanceof BadRequest) return this.error(res, 400, e.message);
      throw e;
    }
    const num = this.nextId++;
    // The tokenizer's count, not parseRequest's characters / 4: they differ under VARYING.
    parsed.promptTokens = this.tokenizer.count(parsed.promptText);
    const engineReq: EngineRequest = {
      id: num,
      promptTokens: parsed.promptTokens,
      maxTokens: parsed.maxTokens,
      hashes: this.tokenizer.blockHashes(parsed.promptText, parsed.adapter),
      adapter: parsed.adapter,
    };
    this.catchUp();
    const refused = this.engine.submit(engineReq, this.now());
    if (refused !== null) return this.error(res, 400, refused);
    const p: Pending = { id: `cmpl-${this.address}-${num}`, path, parsed, res, created: Math.floor(Date.now() / 1000) };
    this.pending.set(num, p);
    res.on("close", () => this.pending.delete(num));
    if (parsed.stream) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
    }
    this.arm();
  }

  private firstToken(req: EngineRequest): void {
    const p = this.pending.get(req.id);
    if (!p || !p.parsed.stream) return;
    p.res.write(streamChunk(p.id, p.path, p.parsed.model, p.created, 1, p.parsed.maxTokens === 1));
  }

  private completed(req: EngineRequest, outcome: RequestOutcome): void {
    const p = this.pending.get(req.id);
    if (!p) return;
    this.pending.delete(req.id);
    if (p.parsed.stream) {
      const rest = p.parsed.maxTokens - 1;
      if (rest > 0) p.res.write(streamChunk(p.id, p.path, p.parsed.model, p.created, rest, true));
      p.res.end("data: [DONE]\n\n");
    } else {
      p.res.writeHead(200, { "content-type": "application/json" });
      p.res.end(completionResponse(p.id, p.path, p.parsed, p.created, outcome.hitTokens));
    }
  }

  /** Process every engine event due by now, each at its own virtual time. */
  private catchUp(): void {
    const now = this.now();
    for (let t = this.engine.nextEventMs(); t <= now; t = this.engine.nextEventMs()) this.engine.processEvent(t);
  }

  private arm(): void {
    const next = this.engine.nextEventMs();
    if (next === this.armedFor && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = next;
    if (next === Infinity) return;
    const delay = Math.max(0, (next - this.now()) / this.speedup);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedFor = Infinity;
      this.catchUp();
      this.arm();
    }, delay);
  }

  private json(res: http.ServerResponse, status: number, v: unknown): void {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(v));
  }

  private error(res: http.ServerResponse, status: number, message: string): void {
    this.json(res, status, { object: "error", message, type: status === 400 ? "BadRequestError" : "NotFoundError", param: null, code: status });
  }
}

export interface StartOptions extends SimServerOptions {
  count: number;
  /** First port; server i listens on portBase + i. 0 gives every server a free port. */
  portBase?: number;
}

export async function startServers(opts: StartOptions): Promise<SimServer[]> {
  const servers: SimServer[] = [];
  try {
    for (let i = 0; i < opts.count; i++) {
      const port = opts.portBase ? opts.portBase + i : 0;
      const s = new SimServer({ ...opts, port });
      servers.push(s);
      await s.start();
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop()));
    throw e;
  }
  return servers;
}
