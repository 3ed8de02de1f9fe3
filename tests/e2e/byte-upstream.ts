// A loopback stand-in for a model server that keeps exactly what reached it
// through Envoy: every request's raw header list (so a header sent twice shows
// twice), its body as bytes, its trailers, and whether Envoy framed it with
// content-length or chunked. envoy-requests.test.ts compares those bytes with
// what the client sent. A request picks the answer with `x-test-respond`:
//   (absent)             a small chat-completion JSON
//   sse:<count>:<gapMs>  a text/event-stream of <count> events, <gapMs> apart,
//                        each send time recorded, so a test can tell streaming
//                        from buffering
//   hold                 one event, then one every 200 ms until the peer goes
//                        away (at most 20 s): a response a client can cut mid-way
// Every answer carries `x-served-by: ip:port`, like scripts/sim. Owns: that
// server. Must not: model behaviour (scripts/sim has caches and load).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  method: string;
  path: string;
  /** Lower-cased names with values, in arrival order, repeats kept. */
  headers: Array<[string, string]>;
  body: Buffer;
  trailers: Array<[string, string]>;
  /** True when the request ended normally; false when Envoy cut it (reset or close). */
  complete: boolean;
  /** Answer events: the bytes of each and when it was written (Date.now()). */
  sent: Array<{ at: number; bytes: Buffer }>;
  /** Set when the response could not be finished because the peer went away. */
  responseAborted: boolean;
}

export interface ByteUpstream {
  address: string;
  requests: Received[];
  /** The first request carrying `x-test-id: id`, or undefined. */
  byId(id: string): Received | undefined;
  stop(): Promise<void>;
}

export function header(r: Received, name: string): string[] {
  return r.headers.filter(([k]) => k === name).map(([, v]) => v);
}

export function sseEvent(i: number): Buffer {
  return Buffer.from(`data: {"id":"cmpl-sse","choices":[{"index":0,"delta":{"content":"token ${i} \\u00e9\\u2603"}}]}\n\n`);
}

function pairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i].toLowerCase(), raw[i + 1]]);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function answer(rec: Received, res: ServerResponse, address: string, mode: string): Promise<void> {
  let gone = false;
  res.on("close", () => {
    if (!res.writableFinished) {
      gone = true;
      rec.responseAborted = true;
    }
  });
  const write = (bytes: Buffer) => {
    rec.sent.push({ at: Date.now(), bytes });
    res.write(bytes);
  };
  if (mode.startsWith("sse:") || mode === "hold") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-served-by": address });
    const [count, gap] = mode === "hold" ? [100, 200] : mode.split(":").slice(1).map(Number);
    for (let i = 0; i < count && !gone; i++) {
      if (i > 0) await sleep(gap);
      if (!gone) write(sseEvent(i));
    }
    if (gone) return;
    if (mode !== "hold") write(Buffer.from("data: [DONE]\n\n"));
    res.end();
    return;
  }
  const body = JSON.stringify({ id: "cmpl-bytes", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: "ok" } }] });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-served-by": address });
  res.end(body);
}

export async function startByteUpstream(): Promise<ByteUpstream> {
  const requests: Received[] = [];
  let address = "";
  // Envoy forwards headers up to its own 60 KiB limit; Node's default (16 KiB) would answer 431 itself.
  const server = createServer({ maxHeaderSize: 2 << 20 }, (req: IncomingMessage, res: ServerResponse) => {
    const rec: Received = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: pairs(req.rawHeaders),
      body: Buffer.alloc(0),
      trailers: [],
      complete: false,
      sent: [],
      responseAborted: false,
    };
    requests.push(rec);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", () => {});
    req.on("close", () => {
      rec.body = Buffer.concat(chunks);
    });
    req.on("end", () => {
      rec.body = Buffer.concat(chunks);
      rec.trailers = pairs(req.rawTrailers);
      rec.complete = true;
      const mode = req.headers["x-test-respond"];
      void answer(rec, res, address, typeof mode === "string" ? mode : "");
    });
  });
  // Envoy's upstream connections idle in its pool; nothing here may time them out mid-test.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    requests,
    byId: (id) => requests.find((r) => header(r, "x-test-id")[0] === id),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
