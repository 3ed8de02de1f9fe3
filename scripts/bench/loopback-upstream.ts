// Stand-in model servers for the real-Envoy load test and soak: K HTTP/1.1
// servers on loopback ports in a process of their own, each answering every
// request at once with a small chat-completion JSON once its body has arrived,
// or, with `streamChunks` N > 0, as a model server streams: N server-sent
// events a millisecond apart, so that Envoy reads each as a data frame of its
// own and the filter's response-body callback runs per frame.
// They do no model work on purpose: what is measured is Envoy's cost and the
// filter's, so the upstream must be as cheap as it can be, and it runs apart
// from the driver and the load generator so no two of them share an event loop.
//
// Run as a program it prints the addresses as one JSON line and serves until
// its standard input closes (the parent went away, however it ended) or it is
// signalled. startLoopbackUpstream spawns it and stops it.
// Owns: that process. Must not: model behaviour (scripts/sim has caches and load).
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ANSWER = Buffer.from(JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  model: "llama-3.1-8b",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
}));

const EVENT = Buffer.from(`data: ${JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion.chunk",
  model: "llama-3.1-8b",
  choices: [{ index: 0, delta: { content: "ok" }, finish_reason: null }],
})}\n\n`);
const LAST_EVENT = Buffer.from("data: [DONE]\n\n");

/** Writes `left` more events a millisecond apart, then the last one; stops if the client went away. */
function streamEvents(res: ServerResponse, left: number): void {
  if (res.destroyed) return;
  if (left === 0) {
    res.end(LAST_EVENT);
    return;
  }
  res.write(EVENT);
  setTimeout(() => streamEvents(res, left - 1), 1);
}

async function serve(count: number, streamChunks: number): Promise<void> {
  const servers: Server[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (streamChunks > 0) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          streamEvents(res, streamChunks);
          return;
        }
        res.writeHead(200, { "content-type": "application/json", "content-length": ANSWER.length });
        res.end(ANSWER);
      });
    });
    // Envoy keeps its upstream connections; Node's 5 s keep-alive default would close idle ones between phases.
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
  }
  const addresses = servers.map((s) => `127.0.0.1:${(s.address() as AddressInfo).port}`);
  process.stdout.write(`${JSON.stringify(addresses)}\n`);
  const exit = () => process.exit(0);
  process.stdin.on("end", exit).on("close", exit).resume();
  process.on("SIGTERM", exit);
}

export interface LoopbackUpstream {
  /** ip:port of each server. */
  addresses: string[];
  pid: number;
  stop(): Promise<void>;
}

/**
 * Spawns the servers' process from the repository root (where tsx resolves) and waits for their addresses.
 * `streamChunks` > 0: each answer is that many streamed events (see the top of this file).
 */
export async function startLoopbackUpstream(count: number, cwd: string, streamChunks = 0): Promise<LoopbackUpstream> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), String(count), String(streamChunks)], {
    cwd,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end();
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(killer);
  };
  try {
    const firstLine = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once("line", resolve);
      child.once("exit", (code) => reject(new Error(`upstream process exited (${code}) before it listened`)));
    });
    return { addresses: JSON.parse(firstLine) as string[], pid: child.pid!, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  serve(Number(process.argv[2] ?? "8"), Number(process.argv[3] ?? "0")).catch((e: unknown) => {
    process.stderr.write(`loopback upstream: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
