// The client side of envoy-requests.test.ts: one HTTP/1.1 exchange on its own
// connection whose every byte the test controls (the body in parts, chunked or
// with content-length, trailers, a pause after the headers, a reset after some
// parts or after the first response bytes), recording when each response
// chunk arrived; and one HTTP/2 (prior-knowledge h2c) exchange with trailers.
// Owns: those two functions. Must not: assert (the tests do).
import { request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:http2";

export interface SendOptions {
  method?: string;
  path: string;
  headers?: Record<string, string | string[]>;
  /** Body parts, written in order; `gapMs` apart, or yielding every 32 parts when 0. */
  parts?: Buffer[];
  gapMs?: number;
  /** Wait this long after the headers before the first part. */
  delayBodyMs?: number;
  /** Chunked transfer encoding instead of content-length. */
  chunked?: boolean;
  trailers?: Record<string, string>;
  /** Destroy the connection after writing this many parts (the body never ends). */
  resetAfterParts?: number;
  /** Destroy the connection once this many response body bytes have arrived. */
  resetAfterResponseBytes?: number;
  timeoutMs?: number;
  /** Aborting destroys the connection, whatever has been sent or received. */
  signal?: AbortSignal;
}

export interface Exchange {
  /** 0 when no response head arrived. */
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Response body chunks with their arrival time (Date.now()). */
  chunks: Array<{ at: number; bytes: Buffer }>;
  /** Why the exchange ended without a complete response ("" when it completed). */
  error: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function send(base: string, o: SendOptions): Promise<Exchange> {
  const parts = o.parts ?? [];
  const length = parts.reduce((n, p) => n + p.length, 0);
  const headers: Record<string, string | string[]> = { ...o.headers };
  if (o.chunked) headers["transfer-encoding"] = "chunked";
  else if (parts.length > 0 && headers["content-length"] === undefined) headers["content-length"] = String(length);
  return new Promise<Exchange>((resolve) => {
    const out: Exchange = { status: 0, headers: {}, body: Buffer.alloc(0), chunks: [], error: "" };
    let done = false;
    const finish = (error: string) => {
      if (done) return;
      done = true;
      out.error = error;
      out.body = Buffer.concat(out.chunks.map((c) => c.bytes));
      resolve(out);
    };
    const req = request(`${base}${o.path}`, { method: o.method ?? "POST", headers, agent: false, timeout: o.timeoutMs ?? 20_000 }, (res) => {
      out.status = res.statusCode ?? 0;
      out.headers = res.headers;
      let received = 0;
      res.on("data", (c: Buffer) => {
        out.chunks.push({ at: Date.now(), bytes: c });
        received += c.length;
        if (o.resetAfterResponseBytes !== undefined && received >= o.resetAfterResponseBytes) {
          req.destroy();
          finish("reset by client");
        }
      });
      res.on("end", () => finish(res.complete ? "" : "response cut"));
      res.on("error", (e) => finish(e.message));
      res.on("close", () => finish(res.complete ? "" : "response cut"));
    });
    o.signal?.addEventListener("abort", () => {
      req.destroy();
      finish("reset by client");
    });
    req.on("timeout", () => {
      req.destroy();
      finish("timeout");
    });
    req.on("error", (e) => finish(e.message));
    void (async () => {
      req.flushHeaders();
      if (o.delayBodyMs) await sleep(o.delayBodyMs);
      for (const [i, p] of parts.entries()) {
        if (done) return;
        if (o.resetAfterParts !== undefined && i >= o.resetAfterParts) {
          await sleep(150);
          req.destroy();
          finish("reset by client");
          return;
        }
        req.write(p);
        if (o.gapMs) await sleep(o.gapMs);
        else if (i % 32 === 31) await sleep(1);
      }
      if (o.resetAfterParts !== undefined && o.resetAfterParts >= parts.length) {
        await sleep(150);
        req.destroy();
        finish("reset by client");
        return;
      }
      if (o.trailers) req.addTrailers(o.trailers);
      req.end();
    })();
  });
}

/** One POST over HTTP/2 cleartext (prior knowledge) with the body in one DATA frame and request trailers. */
export function sendH2WithTrailers(base: string, path: string, headers: Record<string, string | string[]>, body: Buffer, trailers: Record<string, string>): Promise<Exchange> {
  return new Promise<Exchange>((resolve) => {
    const out: Exchange = { status: 0, headers: {}, body: Buffer.alloc(0), chunks: [], error: "" };
    const session = connect(base);
    let done = false;
    const finish = (error: string) => {
      if (done) return;
      done = true;
      out.error = error;
      out.body = Buffer.concat(out.chunks.map((c) => c.bytes));
      session.close();
      resolve(out);
    };
    session.on("error", (e) => finish(e.message));
    const req = session.request({ ":method": "POST", ":path": path, ...headers }, { waitForTrailers: true });
    req.on("wantTrailers", () => req.sendTrailers(trailers));
    req.on("response", (h) => {
      out.status = Number(h[":status"]);
      out.headers = h as IncomingHttpHeaders;
    });
    req.on("data", (c: Buffer) => out.chunks.push({ at: Date.now(), bytes: c }));
    req.on("end", () => finish(""));
    req.on("error", (e) => finish(e.message));
    req.setTimeout(20_000, () => {
      req.close();
      finish("timeout");
    });
    req.end(body);
  });
}
