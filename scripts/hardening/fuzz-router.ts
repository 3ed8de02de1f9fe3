// Fuzzing through the real filter (build/prefix_router.wasm) in the host
// emulator, at lower counts than the parser campaigns (fuzz.ts): request
// bodies through streams (odd methods, paths, chunking, trailers, resets and
// client-sent destination headers), configurations through addHttpFilter, and
// Prometheus pages through a handler cluster answering the filter's scrapes.
// Whatever comes in, no VM may fail, no request may be altered (the upstream
// body is the body sent) and the destination header must be absent or one of
// the configured endpoints.
import { performance } from "node:perf_hooks";
import { ConfigRejectedError, Envoy, VirtualClock, type CalloutReply } from "../host/index.ts";
import { Rng } from "./rng.ts";
import { mutate, noise } from "./mutate.ts";
import { generateBody, BODY_TOKENS } from "./bodies.ts";
import { generateConfig, CONFIG_TOKENS, strictAddress } from "./configs.ts";
import { canonicalAddress } from "../gateway/address.ts";
import { generatePage, PAGE_TOKENS, DIALECTS } from "./pages.ts";
import { DEST, gateway, send, advance, inFlightTotal, routerWasm, chatBody, filler, destinationsOf, listedOf, addresses } from "./gateway.ts";

const encoder = new TextEncoder();

export interface RouterFuzzReport {
  kind: "bodies" | "configs" | "pages";
  seed: number;
  inputs: number;
  /** Requests the filter routed (a destination set). */
  routed: number;
  /** Configurations accepted / rejected (configs), scrapes answered (pages). */
  accepted: number;
  rejected: number;
  vmFailures: number;
  /** Requests whose upstream body differs from what was sent. */
  altered: number;
  /** Destination headers that are not one configured endpoint. */
  badDestinations: number;
  /** Local replies the filter caused (it never answers a request itself). */
  localReplies: number;
  inFlightAfter: number;
  problems: string[];
  seconds: number;
}

function emptyReport(kind: RouterFuzzReport["kind"], seed: number): RouterFuzzReport {
  return { kind, seed, inputs: 0, routed: 0, accepted: 0, rejected: 0, vmFailures: 0, altered: 0, badDestinations: 0, localReplies: 0, inFlightAfter: 0, problems: [], seconds: 0 };
}

function note(r: RouterFuzzReport, problem: string): void {
  if (r.problems.length < 20) r.problems.push(problem);
}

const CLIENT_DESTINATIONS = ["10.0.0.1:8000", "169.254.169.254:80", "127.0.0.1:15000", "evil.example.com:443", "10.0.0.1:8000, 6.6.6.6:80", "", "[::1]:22"];
const PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/chat/completions?stream=true", "/v1/models", "/V1/chat/completions", "/v1/chat/completions/", "//v1/completions", "/v1/embeddings"];

/** Bodies through streams on 4 VMs: every request reaches upstream unaltered, to a configured endpoint or none. */
export async function fuzzRouterBodies(count: number, seed: number): Promise<RouterFuzzReport> {
  const started = performance.now();
  const report = emptyReport("bodies", seed);
  const rng = new Rng(seed);
  const gw = await gateway({ endpoints: 8, vms: 4, bufferLimitBytes: 4 << 20, config: { maxBodyBytes: 1 << 20 } });
  const configured = new Set(gw.endpoints);
  const pool: Uint8Array[] = [];
  const open: Array<ReturnType<typeof send>["stream"]> = [];
  for (let i = 0; i < count; i++) {
    report.inputs++;
    let body: Uint8Array;
    let chat = true;
    if (pool.length < 64 || rng.chance(0.5)) {
      const g = generateBody(rng);
      body = encoder.encode(g.text);
      chat = g.chat;
      if (body.length < 3 << 20) pool.length < 64 ? pool.push(body) : (pool[rng.int(64)] = body);
    } else if (rng.chance(0.95)) {
      body = mutate(rng, rng.pick(pool), { tokens: BODY_TOKENS, pool, maxBytes: 3 << 20 });
    } else {
      body = noise(rng, BODY_TOKENS, 1 << 16);
    }
    const headers: Array<[string, string]> = [];
    const clientDestinations = rng.chance(0.3) ? rng.range(1, 3) : 0;
    for (let k = 0; k < clientDestinations; k++) headers.push([rng.chance(0.8) ? DEST : "X-Gateway-Destination-Endpoint", rng.pick(CLIENT_DESTINATIONS)]);
    if (rng.chance(0.2)) headers.push(["content-length", rng.chance(0.7) ? String(body.length) : rng.pick(["-1", "abc", "99999999999999999999", "0", String(2 << 20)])]);
    const path = rng.chance(0.85) ? (chat ? "/v1/chat/completions" : "/v1/completions") : rng.pick(PATHS);
    const method = rng.chance(0.95) ? "POST" : rng.pick(["GET", "PUT", "post", "OPTIONS"]);
    const ending = rng.int(20);
    const sent = send(gw, body, { path, method, headers, chunks: rng.chance(0.7) ? 1 : rng.range(2, 40), trailers: ending === 0, noBody: ending === 1 });
    const stream = sent.stream;
    if (ending === 2) {
      stream.reset();
    } else {
      const up = stream.upstreamRequest;
      if (stream.localResponse !== null) {
        report.localReplies++;
        note(report, `local reply ${stream.localResponse.status} for a ${body.length}-byte body`);
      } else if (up === null) {
        note(report, `request ${i} never reached upstream`);
      } else if (ending !== 1 && Buffer.compare(Buffer.from(up.body), Buffer.from(body)) !== 0) {
        report.altered++;
        note(report, `request ${i}: upstream body differs`);
      }
      const destinations = destinationsOf(stream);
      if (destinations.length > 1 || listedOf(stream).some((d) => !configured.has(d))) {
        report.badDestinations++;
        note(report, `request ${i}: destination ${JSON.stringify(destinations)}`);
      }
      if (destinations.length === 1) report.routed++;
      if (method !== "POST" && destinations.length > 0) {
        report.badDestinations++;
        note(report, `request ${i}: ${method} routed`);
      }
      open.push(stream);
    }
    // Keep a realistic number in flight; finish the oldest.
    while (open.length > 32) {
      const s = open.shift()!;
      if (rng.chance(0.9)) finish(s);
      else s.reset();
    }
    if (i % 50 === 0) advance(gw, 10);
  }
  for (const s of open) finish(s);
  advance(gw, 1000);
  report.inFlightAfter = inFlightTotal(gw);
  report.vmFailures = gw.plugin.vms.filter((vm) => vm.failed).length;
  gw.envoy.shutdown();
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

function finish(s: ReturnType<typeof send>["stream"]): void {
  if (s.ended) return;
  if (s.upstreamRequest === null) {
    s.reset();
    return;
  }
  s.sendResponseHeaders({ ":status": "200" }, false);
  s.sendResponseBody("{}", true);
}

/** An address in the text the filter routes to; as it is when it does not parse (a configuration the filter refuses). */
function canonicalOrAsIs(address: string): string {
  try {
    return canonicalAddress(address);
  } catch {
    return address;
  }
}

/** Configurations through addHttpFilter: accepted or rejected, never a failed VM; routing only to what was configured. */
export async function fuzzRouterConfigs(count: number, seed: number): Promise<RouterFuzzReport> {
  const started = performance.now();
  const report = emptyReport("configs", seed);
  const rng = new Rng(seed);
  const wasm = routerWasm();
  const pool: Uint8Array[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i < count; i++) {
    report.inputs++;
    let text: Uint8Array;
    if (pool.length < 32 || rng.chance(0.5)) {
      text = encoder.encode(generateConfig(rng).text);
      pool.length < 32 ? pool.push(text) : (pool[rng.int(32)] = text);
    } else {
      text = mutate(rng, rng.pick(pool), { tokens: CONFIG_TOKENS, pool, maxBytes: 1 << 20 });
    }
    const clock = new VirtualClock();
    const envoy = new Envoy({ clock, logLevel: "critical", recordLogs: false, clusters: { metrics: { type: "handler", handle: () => ({ status: 200, body: "vllm:num_requests_waiting 1\n" }) } } });
    try {
      const plugin = await envoy.addHttpFilter({ name: "p", rootId: "prefix_router", vmId: "v", wasm, configuration: text, concurrency: 2, allowOnHeadersStopIteration: true });
      report.accepted++;
      let configured: Set<string> | null = null;
      try {
        const parsed = JSON.parse(decoder.decode(text)) as { endpoints?: Array<{ address?: string }> };
        // The filter routes to an address's canonical text ("[2001:dB8::1]:80" is "[2001:db8::1]:80").
        if (Array.isArray(parsed.endpoints)) configured = new Set(parsed.endpoints.map((e) => canonicalOrAsIs(String(e.address))));
      } catch {
        configured = null; // duplicate keys or bytes JSON.parse reads otherwise: the strict check below still applies
      }
      for (let k = 0; k < 4; k++) {
        const sent = send({ clock, envoy, plugin, endpoints: [], config: {} }, chatBody([["user", filler(i * 4 + k, 200)]]), { path: rng.pick(["/v1/chat/completions", "/v1/completions", "/x/chat/completions"]) });
        for (const d of sent.listed) {
          if (!strictAddress(d) || (configured !== null && !configured.has(d))) {
            report.badDestinations++;
            note(report, `config ${i}: destination ${JSON.stringify(d)}`);
          }
        }
        if (sent.destinations.length > 0) report.routed++;
        if (sent.stream.upstreamRequest !== null) finish(sent.stream);
        else sent.stream.reset();
      }
      for (let t = 0; t < 300; t += 100) clock.advance(100);
      await envoy.settle();
      const failed = plugin.allVms().filter((vm) => vm.failed).length;
      if (failed > 0) {
        report.vmFailures += failed;
        note(report, `config ${i}: ${failed} VMs failed`);
      }
    } catch (e) {
      if (e instanceof ConfigRejectedError) {
        report.rejected++;
        if (e.details.some((d) => /trap|abort|failed: Uncaught/i.test(d))) {
          report.vmFailures++;
          note(report, `config ${i}: rejected by a trap: ${e.details.join("; ").slice(0, 200)}`);
        }
      } else {
        note(report, `config ${i}: ${String(e).slice(0, 200)}`);
        report.vmFailures++;
      }
    } finally {
      envoy.shutdown();
    }
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** Pages (generated, mutated, garbage, odd statuses) answering the filter's scrapes; routing stays within the configuration. */
export async function fuzzRouterPages(count: number, seed: number): Promise<RouterFuzzReport> {
  const started = performance.now();
  const report = emptyReport("pages", seed);
  const rng = new Rng(seed);
  const pool: Uint8Array[] = [];
  const nextReply = (): CalloutReply => {
    report.inputs++;
    const r = rng.int(40);
    if (r === 0) return { reset: true };
    if (r === 1) throw new Error("connection refused");
    if (r === 2) return { status: rng.pick([500, 404, 503, 302, 204]), body: "error" };
    let page: Uint8Array;
    if (pool.length < 32 || rng.chance(0.4)) {
      page = encoder.encode(generatePage(rng, 0, rng.chance(0.5)).text);
      if (page.length < 1 << 20) pool.length < 32 ? pool.push(page) : (pool[rng.int(32)] = page);
    } else if (rng.chance(0.95)) {
      page = mutate(rng, rng.pick(pool), { tokens: PAGE_TOKENS, pool, maxBytes: 9 << 20 });
    } else {
      page = noise(rng, PAGE_TOKENS, 1 << 16);
    }
    return { status: 200, headers: { "content-type": "text/plain; version=0.0.4" }, body: page };
  };
  const entries = addresses(8).map((address, i) => ({ address, metricsAddress: `127.0.0.${i + 2}:9000` }));
  const gw = await gateway({
    endpointEntries: entries,
    vms: 3,
    config: { metrics: { cluster: "metrics", intervalMs: 100, timeoutMs: 50, dialect: DIALECTS[0] } },
    clusters: { metrics: { type: "handler", handle: () => nextReply() } },
  });
  const configured = new Set(gw.endpoints);
  let i = 0;
  while (report.inputs < count) {
    advance(gw, 100);
    await gw.envoy.settle();
    for (let k = 0; k < 4; k++) {
      const sent = send(gw, chatBody([["system", filler(k, 300)], ["user", filler(i++, 200)]]));
      if (sent.destinations.length !== 1 || !configured.has(sent.destinations[0])) {
        report.badDestinations++;
        note(report, `destination ${JSON.stringify(sent.destinations)}`);
      } else {
        report.routed++;
      }
      finish(sent.stream);
    }
  }
  advance(gw, 500);
  await gw.envoy.settle();
  report.accepted = gw.endpoints.reduce((n, a) => n + Number(gw.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${a}.scrape_successes`) ?? 0), 0);
  report.rejected = gw.endpoints.reduce((n, a) => n + Number(gw.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${a}.scrape_failures`) ?? 0), 0);
  report.inFlightAfter = inFlightTotal(gw);
  report.vmFailures = gw.plugin.allVms().filter((vm) => vm.failed).length;
  gw.envoy.shutdown();
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
