// A loopback stand-in for a model server that remembers what reached it: every
// request's method, path and headers, as the upstream saw them after Envoy. The
// real-Envoy tests use it to tell a request the filter routed (it carries the
// destination header, naming this server) from one Envoy balanced on its own
// (no header), and to check that a client's copy of the header never arrives.
// It answers every request with a small chat-completion JSON and
// `x-served-by: ip:port`, like scripts/sim; a request carrying `x-test-hold`
// is recorded at once but answered only when the test calls release(). Owns: that server. Must not: model
// load or caches (scripts/sim does).
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface RecordingUpstream {
  /** ip:port it listens on. */
  address: string;
  requests: Recorded[];
  /** Answers the held requests (x-test-hold), and any held later. */
  release(): void;
  stop(): Promise<void>;
}

export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const requests: Recorded[] = [];
  let address = "";
  let released = false;
  const held: Array<() => void> = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
      const body = JSON.stringify({
        id: "cmpl-recording",
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
      });
      const answer = () => {
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-served-by": address });
        res.end(body);
      };
      if (req.headers["x-test-hold"] !== undefined && !released) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    requests,
    release: () => {
      released = true;
      for (const answer of held.splice(0)) answer();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        // Envoy keeps pooled connections open; close them so close() can finish.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The host a destination header value names for override_host: its first
 * entry. The filter may append fallback hosts for retries ("a,b,c"), and
 * override_host tries the first (source/extensions/load_balancing_policies/
 * override_host/load_balancer.cc). "" when there is no header.
 */
export function pickOf(value: string | string[] | undefined): string {
  const v = Array.isArray(value) ? value.join(",") : value ?? "";
  return v.split(",")[0].trim();
}

/** The host each request's destination header named ("" when it had none). */
export function destinations(u: RecordingUpstream, header: string): string[] {
  return u.requests.map((r) => pickOf(r.headers[header]));
}
