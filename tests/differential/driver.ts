// The differential driver: one scripted request sequence, run through the dev
// gateway (the .wasm in the host emulator) and through real Envoy, both
// generated from the same GatewayConfigInput and both in front of the same
// loopback upstreams, so the two runs can be compared outcome by outcome:
// which endpoint served each request (and what it received: path, Host, body
// size, header names), the status and body of replies the gateway made
// itself, what each step added to prefix_router_requests and
// prefix_router_passthrough{reason}, in-flight gauges around held and reset
// requests, and at the end every prefix_router_* series in /stats/prometheus
// and the /stats text and JSON. Real Envoy is the judge; a difference is a bug
// in the emulator, the dev gateway or the filter.
//
// Determinism. Steps run one at a time, and after each one the driver waits
// until the filter has flushed that request's counters (prefix_router_requests
// moves; a request Envoy refuses before the filter never moves it, so the wait
// ends after NOT_SEEN_TICKS) and then for QUIET_TICKS more ticks, so the
// pass-through delta is the step's own and the VM that served the request has also
// appended its in-flight release to the shared journal. Every VM catches up
// with that journal before it decides (assembly/router/router.ts decide →
// journal.sync), so the next request sees the same index and the same
// in-flight counts whichever worker's VM takes its connection: Envoy's kernel
// spreads connections over workers (SO_REUSEPORT), the emulator round-robins,
// and the picks must agree anyway.
//
// Owns: the stub upstreams (model server + metrics page on one port), the
// two gateways' common face, running a script, reading stats. Must not:
// assert (the test files decide what must be equal).
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { DevGateway } from "../../scripts/gateway/dev-gateway.ts";
import { resolveConfig, type GatewayConfig, type GatewayConfigInput } from "../../scripts/gateway/envoy-config.ts";
import type { LogEntry } from "../../scripts/host/index.ts";
import { WASM, startEnvoyGateway } from "../e2e/real-envoy.ts";

export const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

/** Request header telling a stub upstream how to misbehave (passed through untouched by the filter). */
export const UPSTREAM_MODE = "x-diff-upstream";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- stub upstreams -----------------------------------------------------------------------

/** A page; an HTTP status; no answer at all; a dropped connection. */
export type MetricsAnswer = { page: string } | { status: number } | { hang: true } | { reset: true };

/**
 * One loopback server per endpoint: the model server (answers after reading
 * the whole body, with `x-served-by: ip:port`) and its /metrics page. A
 * request carrying UPSTREAM_MODE "hold" gets its response headers and a first
 * chunk, then nothing until the client goes; "reset" gets the same and then a
 * dropped connection.
 */
export class Upstream {
  address = "";
  metrics: MetricsAnswer = { page: "" };
  metricsHits = 0;
  /** The last scrape's request headers, hop-by-hop "connection" left out (Node's client adds it, Envoy does not). */
  lastScrape: Record<string, string | string[] | undefined> = {};
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Upstream> {
    let self: Upstream | undefined;
    // Large headers must reach the stub: the gateways' own limits are under test, not Node's 16 KiB.
    const server = createServer({ maxHeaderSize: 256 * 1024 }, (req, res) => self!.answer(req, res));
    self = new Upstream(server);
    server.on("connection", (s) => {
      self!.sockets.add(s);
      s.on("close", () => self!.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return self;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === "/metrics") {
      this.metricsHits++;
      const { connection: _hop, ...headers } = req.headers;
      this.lastScrape = headers;
      const m = this.metrics;
      if ("page" in m) res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(m.page);
      else if ("status" in m) res.writeHead(m.status).end("unavailable\n");
      else if ("reset" in m) req.socket.destroy();
      // "hang": the socket stays open until the caller's timeout or stop().
      return;
    }
    let size = 0;
    req.on("data", (c: Buffer) => (size += c.length));
    req.on("end", () => {
      const mode = req.headers[UPSTREAM_MODE];
      const headers = { "content-type": "application/json", "x-served-by": this.address };
      if (mode === "hold" || mode === "reset") {
        res.writeHead(200, headers);
        res.write(`{"partial":true,`);
        if (mode === "reset") setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      // Header names only (values such as x-request-id are random); "connection" is hop-by-hop,
      // sent by Node's client and not by Envoy.
      const names = Object.keys(req.headers).filter((k) => k !== "connection").sort();
      res.writeHead(200, headers).end(JSON.stringify({ served_by: this.address, path: req.url, host: req.headers.host, body_bytes: size, headers: names }));
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function startUpstreams(n: number): Promise<Upstream[]> {
  return Promise.all(Array.from({ length: n }, () => Upstream.start()));
}

// ---- the two gateways ----------------------------------------------------------------------

export type Kind = "dev" | "envoy";

export interface Gateway {
  kind: Kind;
  url: string;
  adminUrl: string;
  config: GatewayConfig;
  /**
   * Every line of the `wasm` logger so far, as Envoy prints it after its
   * "[level][wasm] [source:line] " prefix (the emulator's LogEntry.line).
   */
  wasmLines(): string[];
  stop(): Promise<void>;
}

/** The generator's input with loopback listener/admin on port 0 and the built .wasm. */
function fullInput(input: GatewayConfigInput): GatewayConfigInput {
  return { listen: "127.0.0.1:0", admin: "127.0.0.1:0", wasmFile: WASM, ...input };
}

export interface StartOptions {
  concurrency: number;
  /** Turns the resolved config into what the dev gateway runs (Envoy gets the same via `envoyEdit`). */
  devEdit?: (c: GatewayConfig) => GatewayConfig;
  /** The same change made to Envoy's YAML. */
  envoyEdit?: (yaml: string) => string;
}

export async function startDev(input: GatewayConfigInput, options: StartOptions): Promise<Gateway> {
  let config = resolveConfig(fullInput(input));
  if (options.devEdit) config = options.devEdit(config);
  const lines: string[] = [];
  const gw = await DevGateway.start({ config, concurrency: options.concurrency, onLog: (e: LogEntry) => lines.push(e.line) });
  return { kind: "dev", url: gw.url, adminUrl: gw.adminUrl, config, wasmLines: () => lines, stop: () => gw.stop() };
}

/** Envoy's line "[time][tid][level][wasm] [source/…:N] text" → "text". */
export function wasmLineOf(line: string): string | null {
  const m = /\]\[wasm\] (?:\[[^\]]*\] )?(.*)$/.exec(line);
  return m === null ? null : m[1];
}

export async function startRealEnvoy(input: GatewayConfigInput, options: StartOptions): Promise<Gateway> {
  const gw = await startEnvoyGateway(fullInput(input), {
    concurrency: options.concurrency,
    edit: options.envoyEdit ? (yaml) => options.envoyEdit!(yaml) : undefined,
  });
  return {
    kind: "envoy",
    url: gw.url,
    adminUrl: gw.adminUrl,
    config: gw.config,
    wasmLines: () => gw.output.map(wasmLineOf).filter((l): l is string => l !== null),
    stop: () => gw.stop(),
  };
}

export function startGateway(kind: Kind, input: GatewayConfigInput, options: StartOptions): Promise<Gateway> {
  return kind === "dev" ? startDev(input, options) : startRealEnvoy(input, options);
}

export interface Refusal {
  /** The dev gateway's ConfigRejectedError message, or Envoy's exit code. */
  error: string;
  exitCode: number | string | null;
  /** The `wasm` logger's lines, as in Gateway.wasmLines(). */
  lines: string[];
}

/** Starts a gateway that must refuse its configuration; throws if it started. */
export async function startRefused(kind: Kind, input: GatewayConfigInput, options: StartOptions): Promise<Refusal> {
  const lines: string[] = [];
  let gw: Gateway | null = null;
  try {
    if (kind === "dev") {
      const config = resolveConfig(fullInput(input));
      const dev = await DevGateway.start({ config, concurrency: options.concurrency, onLog: (e: LogEntry) => lines.push(e.line) });
      gw = { kind, url: dev.url, adminUrl: dev.adminUrl, config, wasmLines: () => lines, stop: () => dev.stop() };
    } else {
      const envoy = await startEnvoyGateway(fullInput(input), {
        concurrency: options.concurrency,
        onOutput: (line) => {
          const l = wasmLineOf(line);
          if (l !== null) lines.push(l);
        },
      });
      gw = { kind, url: envoy.url, adminUrl: envoy.adminUrl, config: envoy.config, wasmLines: () => lines, stop: () => envoy.stop() };
    }
  } catch (e) {
    const message = (e as Error).message;
    const exit = /^Envoy exited \(([^)]+)\)/.exec(message);
    return {
      error: kind === "dev" ? message : message.split("\n")[0],
      exitCode: exit === null ? null : Number.isNaN(Number(exit[1])) ? exit[1] : Number(exit[1]),
      lines,
    };
  }
  await gw.stop();
  throw new Error(`${kind}: started with a configuration it must refuse`);
}

// ---- HTTP ------------------------------------------------------------------------------------

export interface Reply {
  status: number;
  servedBy: string;
  body: string;
}

export function get(url: string): Promise<Reply> {
  return send(url, { method: "GET" });
}

interface SendOptions {
  method: string;
  headers?: Record<string, string>;
  /** The body, written in these pieces (chunked framing unless content-length is given). */
  chunks?: string[];
  /** Wait this long after the headers and between pieces (a slow client). */
  pauseMs?: number;
  /** A keep-alive agent to reuse a connection; default a connection of its own. */
  agent?: Agent;
}

/** One exchange on its own connection, so Envoy's kernel picks a worker afresh each time. */
export function send(url: string, o: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // node:http frames a body by default only for some methods; say it for all.
    const headers = { ...o.headers };
    if (o.chunks !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === "content-length")) headers["transfer-encoding"] = "chunked";
    const req = request(url, { method: o.method, headers, agent: o.agent ?? false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const by = res.headers["x-served-by"];
        resolve({ status: res.statusCode ?? 0, servedBy: typeof by === "string" ? by : "", body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout: ${o.method} ${url}`)));
    req.on("error", reject);
    if (!o.pauseMs) {
      for (const c of o.chunks ?? []) req.write(c);
      req.end();
      return;
    }
    req.flushHeaders();
    void (async () => {
      for (const c of o.chunks ?? []) {
        await sleep(o.pauseMs!);
        req.write(c);
      }
      req.end();
    })();
  });
}

/** Writes `bytes` on a new connection and reads one response (until the peer closes or 5 s pass). */
export function wire(url: string, bytes: string): Promise<Reply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let data = "";
    const done = () => {
      socket.destroy();
      // An interim 100 Continue comes first when the request asked for it.
      while (/^HTTP\/1\.[01] 1\d\d /.test(data)) data = data.substring(data.indexOf("\r\n\r\n") + 4);
      const head = data.split("\r\n\r\n")[0] ?? "";
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const by = /\r\nx-served-by: ([^\r]*)/i.exec(head)?.[1] ?? "";
      let body = data.substring(head.length + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(head)) body = dechunk(body);
      resolve({ status, servedBy: by, body });
    };
    socket.setEncoding("latin1");
    socket.on("data", (c: string) => (data += c));
    socket.on("close", done);
    socket.on("error", () => {});
    socket.setTimeout(5000, done);
    socket.write(bytes, "latin1");
  });
}

/** A chunked body's data (as far as it goes). */
function dechunk(raw: string): string {
  let out = "";
  for (let at = 0; at < raw.length; ) {
    const eol = raw.indexOf("\r\n", at);
    const size = parseInt(raw.substring(at, eol), 16);
    if (eol < 0 || !(size > 0)) break;
    out += raw.substr(eol + 2, size);
    at = eol + 2 + size + 2;
  }
  return out;
}

// ---- stats -----------------------------------------------------------------------------------

/** Every prefix_router_* sample of a /stats/prometheus page: `name{labels}` → value. */
export function prefixRouterSeries(page: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of page.split("\n")) {
    if (!line.startsWith("prefix_router_")) continue;
    const space = line.lastIndexOf(" ");
    let key = line.substring(0, space);
    // "name" and "name{}" are the same series; Envoy writes the braces.
    if (!key.includes("{")) key += "{}";
    out.set(key, Number(line.substring(space + 1)));
  }
  return out;
}

export async function stats(gw: Gateway): Promise<Map<string, number>> {
  const r = await get(`${gw.adminUrl}/stats/prometheus`);
  if (r.status !== 200) throw new Error(`${gw.kind}: /stats/prometheus answered ${r.status}`);
  return prefixRouterSeries(r.body);
}

/** Polls until `ok(stats)` or the deadline; returns the last stats either way. */
export async function waitStats(gw: Gateway, ok: (s: Map<string, number>) => boolean, timeoutMs = 10_000): Promise<{ ok: boolean; stats: Map<string, number> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await stats(gw);
    if (ok(s)) return { ok: true, stats: s };
    if (Date.now() > deadline) return { ok: false, stats: s };
    await sleep(20);
  }
}

export const REQUESTS = "prefix_router_requests{}";
export const passSeries = (reason: string) => `prefix_router_passthrough{reason="${reason}"}`;
export const endpointSeries = (stat: string, address: string) => `prefix_router_endpoint_${stat}{endpoint="${address}"}`;

export function passDeltas(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    const m = /^prefix_router_passthrough\{reason="([a-z_]+)"\}$/.exec(k);
    if (m === null) continue;
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[m[1]] = d;
  }
  return out;
}

// ---- scripts ---------------------------------------------------------------------------------

/** Deterministic filler text of `n` characters. */
export function text(seed: number, n: number): string {
  const words = ["prefix", "cache", "token", "router", "envoy", "block", "model", "server", "query", "answer", "context", "system"];
  let x = (seed * 2654435761) >>> 0;
  let out = "";
  while (out.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out += `${words[x % words.length]} `;
  }
  return out.slice(0, n);
}

export type Step =
  | { kind: "chat"; label: string; system: string; user: string }
  | { kind: "completion"; label: string; prompt: string }
  /** Anything else: method, path, headers and body pieces as given. */
  | { kind: "raw"; label: string; method: string; path: string; headers?: Record<string, string>; chunks?: string[]; pauseMs?: number }
  /** Bytes written as they are on a fresh TCP connection (for request forms node:http will not send). */
  | { kind: "wire"; label: string; bytes: string }
  /** Headers with a content-length, part of the body, then the client's socket is destroyed. */
  | { kind: "abortMidBody"; label: string; prompt: string }
  /**
   * A routed request whose upstream holds the response after a first chunk:
   * in_flight is read while it hangs, then the client (`by: "client"`) or the
   * upstream (`by: "upstream"`) drops the connection.
   */
  | { kind: "abortMidResponse"; label: string; prompt: string; by: "client" | "upstream" }
  /**
   * A routed request whose response hangs after a first chunk and stays open
   * across the following steps (in flight), until a "releaseHeld" step drops
   * every held client connection.
   */
  | { kind: "hold"; label: string; prompt: string }
  | { kind: "releaseHeld"; label: string }
  /** Completions one after another on one kept-alive connection (one Envoy worker serves them all). */
  | { kind: "sameConnection"; label: string; prompts: string[] };

export interface StepOutcome {
  label: string;
  status: number;
  /** The endpoint whose stub answered, "" for none, or "reset" for a dropped connection. */
  servedBy: string;
  /**
   * What the upstream stub saw (its JSON answer): the request's path and Host,
   * the gateway's own listener address written as "<gateway>".
   */
  upstream?: { path: string; host: string; bodyBytes: number; headers: string[] };
  /** The body of an error answered by the gateway itself (a local reply: 413, 426, 431, 503 …). */
  reply?: string;
  /** Requests the filter saw in this step (prefix_router_requests delta): 0 when Envoy refused it first. */
  filterSaw: number;
  /** prefix_router_passthrough{reason} increments this step caused. */
  passthrough: Record<string, number>;
  /** abortMidResponse, hold: sum of in_flight gauges while the response hangs; releaseHeld, abortMidResponse: after the drop. */
  inFlightDuring?: number;
  inFlightAfter?: number;
}

export interface ScriptResult {
  steps: StepOutcome[];
  /** Every prefix_router_* series once the script is over and the filter is quiet. */
  final: Map<string, number>;
  /** The admin's /stats for the filter's stats, as text and as JSON (read with `final`). */
  statsText: string;
  statsJson: unknown;
}

const json = { "content-type": "application/json" };

function chatBody(system: string, user: string): string {
  return JSON.stringify({ model: MODEL, messages: [{ role: "system", content: system }, { role: "user", content: user }], max_tokens: 4 });
}

function completionBody(prompt: string): string {
  return JSON.stringify({ model: MODEL, prompt, max_tokens: 4 });
}

function inFlightSum(s: Map<string, number>): number {
  let sum = 0;
  for (const [k, v] of s) if (k.startsWith("prefix_router_endpoint_in_flight{")) sum += v;
  return sum;
}

/** Client side of abortMidResponse: resolves once the first response chunk arrived; `drop()` destroys the socket. */
function openHeld(url: string, body: string, mode: "hold" | "reset"): Promise<{ status: number; servedBy: string; drop: () => void; closed: Promise<"reset" | "ended"> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { ...json, [UPSTREAM_MODE]: mode }, agent: false });
    req.on("error", () => {});
    req.on("response", (res) => {
      const closed = new Promise<"reset" | "ended">((done) => {
        res.on("end", () => done("ended"));
        res.on("aborted", () => done("reset"));
        res.on("error", () => done("reset"));
        res.on("close", () => done(res.complete ? "ended" : "reset"));
      });
      res.once("data", () => {
        const by = res.headers["x-served-by"];
        resolve({ status: res.statusCode ?? 0, servedBy: typeof by === "string" ? by : "", drop: () => req.destroy(), closed });
      });
    });
    req.on("close", () => reject(new Error("connection closed before the first response chunk")));
    req.end(body);
  });
}

/** The stub's JSON answer (possibly chunk-framed when read off the wire), or null. */
function upstreamSaw(body: string, gateway: string): StepOutcome["upstream"] | null {
  const m = /\{"served_by".*\}/.exec(body);
  if (m === null) return null;
  try {
    const a = JSON.parse(m[0]) as { path: string; host?: string; body_bytes: number; headers: string[] };
    return { path: a.path, host: a.host === gateway ? "<gateway>" : (a.host ?? ""), bodyBytes: a.body_bytes, headers: a.headers };
  } catch {
    return null;
  }
}

export interface RunOptions {
  /** The filter's tickMs (the wait after each step is counted in ticks). */
  tickMs: number;
}

/** Ticks to wait after a step's counters are flushed: the serving VM's release reaches the journal on its next tick. */
const QUIET_TICKS = 3;
/** Ticks after which a request that has not moved prefix_router_requests is taken as never seen by the filter. */
const NOT_SEEN_TICKS = 12;

export async function runScript(gw: Gateway, steps: Step[], o: RunOptions): Promise<ScriptResult> {
  const out: StepOutcome[] = [];
  const held: Array<() => void> = [];
  try {
    return await runSteps(gw, steps, o, out, held);
  } finally {
    for (const drop of held) drop();
  }
}

async function runSteps(gw: Gateway, steps: Step[], o: RunOptions, out: StepOutcome[], held: Array<() => void>): Promise<ScriptResult> {
  let before = await stats(gw);
  for (const step of steps) {
    let status = 0;
    let servedBy = "";
    let answer = "";
    let inFlightDuring: number | undefined;
    let inFlightAfter: number | undefined;
    switch (step.kind) {
      case "chat":
      case "completion": {
        const path = step.kind === "chat" ? "/v1/chat/completions" : "/v1/completions";
        const body = step.kind === "chat" ? chatBody(step.system, step.user) : completionBody(step.prompt);
        const r = await send(`${gw.url}${path}`, { method: "POST", headers: json, chunks: [body] });
        status = r.status;
        servedBy = r.servedBy;
        answer = r.body;
        break;
      }
      case "raw": {
        const r = await send(`${gw.url}${step.path}`, { method: step.method, headers: step.headers, chunks: step.chunks, pauseMs: step.pauseMs });
        status = r.status;
        servedBy = r.servedBy;
        answer = r.body;
        break;
      }
      case "wire": {
        const r = await wire(gw.url, step.bytes);
        status = r.status;
        servedBy = r.servedBy;
        answer = r.body;
        break;
      }
      case "abortMidBody": {
        const body = completionBody(step.prompt);
        await new Promise<void>((resolve) => {
          const req = request(`${gw.url}/v1/completions`, { method: "POST", headers: { ...json, "content-length": String(body.length) }, agent: false });
          req.on("error", () => resolve());
          req.on("close", () => resolve());
          req.write(body.substring(0, body.length >> 1));
          // The filter saw the headers (prefix_router_requests moved) before the client goes.
          void waitStats(gw, (s) => (s.get(REQUESTS) ?? 0) > (before.get(REQUESTS) ?? 0)).then(() => req.destroy());
        });
        servedBy = "reset";
        break;
      }
      case "abortMidResponse": {
        const one = await openHeld(`${gw.url}/v1/completions`, completionBody(step.prompt), step.by === "client" ? "hold" : "reset");
        status = one.status;
        servedBy = one.servedBy;
        if (step.by === "client") {
          inFlightDuring = inFlightSum((await waitStats(gw, (s) => inFlightSum(s) >= held.length + 1, 5000)).stats);
          one.drop();
        } else {
          // The stub drops its connection 50 ms after the first chunk; Envoy resets the client's stream.
          if ((await one.closed) === "reset") servedBy += " (reset)";
        }
        await one.closed;
        inFlightAfter = inFlightSum((await waitStats(gw, (s) => inFlightSum(s) === held.length, 5000)).stats);
        break;
      }
      case "hold": {
        const h = await openHeld(`${gw.url}/v1/completions`, completionBody(step.prompt), "hold");
        held.push(h.drop);
        status = h.status;
        servedBy = h.servedBy;
        inFlightDuring = inFlightSum((await waitStats(gw, (s) => inFlightSum(s) >= held.length, 5000)).stats);
        break;
      }
      case "sameConnection": {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const served: string[] = [];
          for (const prompt of step.prompts) {
            const r = await send(`${gw.url}/v1/completions`, { method: "POST", headers: json, chunks: [completionBody(prompt)], agent });
            status = Math.max(status, r.status);
            served.push(r.servedBy);
          }
          servedBy = served.join(",");
        } finally {
          agent.destroy();
        }
        break;
      }
      case "releaseHeld": {
        for (const drop of held.splice(0)) drop();
        inFlightAfter = inFlightSum((await waitStats(gw, (s) => inFlightSum(s) === 0, 5000)).stats);
        break;
      }
    }
    // A request Envoy refuses before the filter (an HTTP/1.0 request line, say)
    // never moves the counter: give up waiting after NOT_SEEN_TICKS.
    const expected = step.kind === "releaseHeld" ? 0 : step.kind === "sameConnection" ? step.prompts.length : 1;
    if (expected > 0) await waitStats(gw, (s) => (s.get(REQUESTS) ?? 0) >= (before.get(REQUESTS) ?? 0) + expected, NOT_SEEN_TICKS * o.tickMs);
    await sleep(QUIET_TICKS * o.tickMs);
    const after = await stats(gw);
    const outcome: StepOutcome = {
      label: step.label,
      status,
      servedBy,
      filterSaw: (after.get(REQUESTS) ?? 0) - (before.get(REQUESTS) ?? 0),
      passthrough: passDeltas(before, after),
    };
    const upstream = upstreamSaw(answer, new URL(gw.url).host);
    if (upstream !== null) outcome.upstream = upstream;
    else if (status >= 400) outcome.reply = answer.substring(0, 300);
    if (inFlightDuring !== undefined) outcome.inFlightDuring = inFlightDuring;
    if (inFlightAfter !== undefined) outcome.inFlightAfter = inFlightAfter;
    out.push(outcome);
    before = after;
  }
  // Quiet: every release flushed, every gauge rewritten by every VM's tick.
  await waitStats(gw, (s) => inFlightSum(s) === 0, 5000);
  await sleep(QUIET_TICKS * o.tickMs);
  const final = await stats(gw);
  const filter = encodeURIComponent("^wasmcustom\\.");
  // The admin's own renderings, less the series allowed to differ in every comparison (ALWAYS_ALLOWED).
  const split = (name: string) => SCHEDULING_STATS.some((s) => name.startsWith(`wasmcustom.prefix_router.${s.name}`));
  const statsText = (await get(`${gw.adminUrl}/stats?filter=${filter}`)).body.split("\n").filter((l) => !split(l)).join("\n");
  const statsJson = JSON.parse((await get(`${gw.adminUrl}/stats?format=json&filter=${filter}`)).body) as { stats?: Array<{ name?: string }> };
  if (Array.isArray(statsJson.stats)) statsJson.stats = statsJson.stats.filter((x) => !split(x.name ?? ""));
  return { steps: out, final, statsText, statsJson };
}

export interface Hooks {
  /** Before the script (e.g. wait for the first scrapes). */
  prepare?: (gw: Gateway) => Promise<void>;
  /** After the script, before the gateway stops. */
  inspect?: (gw: Gateway) => Promise<void>;
}

export type BothResults = Record<Kind, ScriptResult & { lines: string[] }>;

/** Runs `steps` through a fresh gateway of each kind (one after the other; each stopped in finally). */
export async function runBoth(input: GatewayConfigInput, options: StartOptions, steps: Step[], run: RunOptions, hooks: Hooks = {}): Promise<BothResults> {
  const results: Partial<BothResults> = {};
  for (const kind of ["dev", "envoy"] as const) {
    const gw = await startGateway(kind, input, options);
    try {
      if (hooks.prepare) await hooks.prepare(gw);
      results[kind] = { ...(await runScript(gw, steps, run)), lines: [...gw.wasmLines()] };
      if (hooks.inspect) await hooks.inspect(gw);
    } finally {
      await gw.stop();
    }
  }
  return results as BothResults;
}

/**
 * Envoy's workers that accepted at least one connection on the listener
 * (listener.<address>.worker_<n>.downstream_cx_total): evidence that a script
 * really crossed VMs.
 */
export async function envoyWorkersUsed(gw: Gateway): Promise<number> {
  const r = await get(`${gw.adminUrl}/stats?filter=${encodeURIComponent("^listener\\..*worker_[0-9]+\\.downstream_cx_total$")}`);
  return r.body.split("\n").filter((l) => /worker_\d+\.downstream_cx_total: [1-9]/.test(l)).length;
}

/**
 * Series whose final values may differ between the two runs, each for a
 * reason of timing, not of behaviour. A series not listed must be equal.
 */
export interface Allowance {
  /** Regex on the series key. */
  pattern: RegExp;
  why: string;
}

/**
 * Stats allowed to differ in every comparison, because they count how Envoy's
 * threads interleave rather than what was routed (the picks are compared):
 * - whether another VM's placement reaches a VM's index before that VM's next
 *   decision or on its tick, and whether a VM keeps an index at all (from its
 *   first decision), depend on which worker took which connection: the kernel
 *   decides that in Envoy, the dev gateway's driver otherwise;
 * - a journal CAS conflict needs two workers appending at once (one's tick
 *   flushing releases while another routes): Envoy's workers run in parallel,
 *   the dev gateway's VMs in turn. A conflict is retried; nothing is lost.
 */
const SCHEDULING_STATS: Array<{ name: string; why: string }> = [
  { name: "index.placements_written_at_once", why: "per-worker split of other VMs' placements" },
  { name: "index.placements_written_by_tick", why: "per-worker split of other VMs' placements" },
  { name: "index.journal_cas_conflicts", why: "workers appending to the journal at the same moment" },
];
const ALWAYS_ALLOWED: Allowance[] = SCHEDULING_STATS.map(({ name, why }) => ({
  pattern: new RegExp(`^prefix_router_${name.replace(".", "_")}\\{`),
  why,
}));

/** Differences between two final stat maps, after the allowances; [] when they agree. */
export function statDifferences(dev: Map<string, number>, envoy: Map<string, number>, allow: Allowance[]): string[] {
  const diffs: string[] = [];
  const keys = [...new Set([...dev.keys(), ...envoy.keys()])].sort();
  const allowed = [...ALWAYS_ALLOWED, ...allow];
  for (const k of keys) {
    if (allowed.some((a) => a.pattern.test(k))) continue;
    const d = dev.get(k);
    const e = envoy.get(k);
    if (d !== e) diffs.push(`${k}: dev gateway ${d ?? "(absent)"}, Envoy ${e ?? "(absent)"}`);
  }
  return diffs;
}

/**
 * Differences between two runs' step outcomes; [] when they agree. A routed
 * request (the filter saw it and counted no pass-through) must reach the same
 * endpoint; any other request reaches whatever the fallback round robin picks,
 * and Envoy starts each worker's round robin at a random host
 * (source/common/upstream/load_balancer_impl.cc, EdfLoadBalancerBase seed_),
 * so there only "some configured endpoint, or none" must agree.
 */
export function stepDifferences(dev: StepOutcome[], envoy: StepOutcome[], endpoints: string[]): string[] {
  const diffs: string[] = [];
  const shape = (o: StepOutcome) => {
    const routed = o.filterSaw >= 1 && Object.keys(o.passthrough).length === 0;
    // One endpoint, or several for a step of several requests, each maybe reset.
    const fallback = (one: string) => {
      const reset = one.endsWith(" (reset)") ? " (reset)" : "";
      return endpoints.includes(one.replace(/ \(reset\)$/, "")) ? `a configured endpoint${reset}` : one;
    };
    const served = routed || o.servedBy === "" || o.servedBy === "reset" ? o.servedBy : o.servedBy.split(",").map(fallback).join(",");
    return JSON.stringify({ ...o, servedBy: served });
  };
  for (let i = 0; i < Math.max(dev.length, envoy.length); i++) {
    const d = dev[i] === undefined ? "(none)" : shape(dev[i]);
    const e = envoy[i] === undefined ? "(none)" : shape(envoy[i]);
    if (d !== e) diffs.push(`step ${i} (${dev[i]?.label ?? envoy[i]?.label}):\n  dev gateway ${d}\n  Envoy       ${e}`);
  }
  return diffs;
}
