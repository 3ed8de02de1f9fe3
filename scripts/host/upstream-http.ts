// One real HTTP/1.1 exchange with an upstream on behalf of a callout, reduced to
// the outcomes Envoy's async client distinguishes: a full response, a
// connection refused, a disconnect/reset before response headers, or a reset
// after them. Timeouts are the caller's (callouts.ts), which cancels the
// exchange through cancel().
import { request as httpRequest, type Agent } from "node:http";
import { HeaderMap } from "./header-map.ts";
import type { HttpCallResponse } from "./context.ts";

export interface HttpTarget {
  host: string;
  port: number;
}

export type HttpOutcome =
  | { kind: "response"; response: HttpCallResponse }
  | { kind: "reset" }
  | { kind: "connect-failure" }
  | { kind: "reset-before-headers" };

export interface HttpExchange {
  cancel(): void;
  /** Settles when the exchange is over, whatever the outcome. */
  finished: Promise<void>;
}

interface ExchangeRequest {
  method: string;
  path: string;
  authority: string;
  headers: [string, string][];
  body: Uint8Array;
  trailers: [string, string][];
}

export function sendHttp(target: HttpTarget, req: ExchangeRequest, agent: Agent, done: (o: HttpOutcome) => void): HttpExchange {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let over = false;
  const end = (o: HttpOutcome | null) => {
    if (over) return;
    over = true;
    if (o !== null) done(o);
    finish();
  };

  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of req.headers) {
    if (k.startsWith(":")) continue;
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  headers.host = req.authority;
  const hasTrailers = req.trailers.length > 0;
  if (hasTrailers) delete headers["content-length"];

  const r = httpRequest({ host: target.host, port: target.port, method: req.method, path: req.path, headers, agent });
  r.on("response", (res) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => {
      const responseHeaders = new HeaderMap([[":status", String(res.statusCode ?? 0)]]);
      for (let i = 0; i < res.rawHeaders.length; i += 2) responseHeaders.add(res.rawHeaders[i], res.rawHeaders[i + 1]);
      const trailers = new HeaderMap();
      for (let i = 0; i < res.rawTrailers.length; i += 2) trailers.add(res.rawTrailers[i], res.rawTrailers[i + 1]);
      end({ kind: "response", response: { headers: responseHeaders, body: new Uint8Array(Buffer.concat(chunks)), trailers: trailers.size > 0 ? trailers : null } });
    });
    res.on("aborted", () => end({ kind: "reset" }));
    res.on("error", () => end({ kind: "reset" }));
  });
  r.on("error", (e: NodeJS.ErrnoException) => {
    end(e.code === "ECONNREFUSED" ? { kind: "connect-failure" } : { kind: "reset-before-headers" });
  });
  if (hasTrailers) {
    r.setHeader("transfer-encoding", "chunked");
    if (req.body.length > 0) r.write(req.body);
    r.addTrailers(Object.fromEntries(req.trailers));
    r.end();
  } else {
    r.end(req.body.length > 0 ? req.body : undefined);
  }
  return {
    cancel: () => {
      end(null);
      r.destroy();
    },
    finished,
  };
}
