// The product as a policy: the built build/prefix_router.wasm, run in the host
// emulator on the replay's own virtual clock. Owns: turning a replayed request
// into an HTTP stream through the filter and reading back where it sent it.
// Must not: make any routing decision itself.
//
// Each request opens a stream on one of the emulated Envoy's worker VMs (round
// robin, as Envoy spreads connections), sends its real OpenAI JSON body and
// reads x-gateway-destination-endpoint from the request Envoy would forward.
// A request the filter passes through goes where Envoy's fallback policy
// (round robin) would send it. The filter scrapes the simulated servers itself:
// its proxy_http_call callouts reach an in-process cluster that answers with
// the server's /metrics page at the current virtual time, so the filter sees
// load exactly as it would in production, on its own timer.
import { Envoy, withOwnMonotonicOrigin, type HttpStream } from "../../host/index.ts";
import type { PolicyContext, PolicyFactory, Policy, RouteRequest } from "../policy.ts";
import type { Clock } from "../../host/clock.ts";
import type { CalloutReply, CalloutRequest } from "../../host/callouts.ts";

export const ROUTER_WASM = new URL("../../../build/prefix_router.wasm", import.meta.url).pathname;
const DESTINATION = "x-gateway-destination-endpoint";

export interface PrefixRouterOptions {
  wasm?: string;
  /** Worker VMs (Envoy --concurrency). */
  vms?: number;
  /** Overrides merged into the filter configuration (weights, guard, …). */
  config?: Record<string, unknown>;
  description?: string;
  /** The name the policy reports under (default "prefix-router"). */
  name?: string;
  /**
   * Replicas trade decisions (assembly/router/peers.ts): every instance made
   * for one replay lists every other as a peer, and its asks reach the other
   * instance's filter, which answers them from its journal, on the replay's clock.
   */
  peers?: boolean;
}

const PEER_TOKEN = "evaluator-peer-token-0123456789";
const PEER_PORT = 10000;

/** The replicas made for one replay (its clock), by their peer address. */
const peerGroups = new WeakMap<object, Map<string, HttpFilterPlugin>>();
type HttpFilterPlugin = Awaited<ReturnType<Envoy["addHttpFilter"]>>;

/** The address replica k answers peers at: any distinct valid address will do, nothing is dialled. */
function peerAddress(k: number): string {
  return `10.255.${k >> 8}.${k & 255}:${PEER_PORT}`;
}

/** Asks the addressed instance's filter, as Envoy's ORIGINAL_DST cluster would reach that Envoy. */
function askPeer(group: Map<string, HttpFilterPlugin>, req: CalloutRequest): CalloutReply {
  const plugin = group.get(req.authority);
  if (plugin === undefined) return { status: 503, body: "no such peer" };
  const stream = plugin.newStream();
  stream.sendRequestHeaders(Object.fromEntries(req.headers), true);
  const local = stream.localResponse;
  if (local === null) {
    stream.complete();
    return { status: 404, body: "not answered by the filter" };
  }
  return { status: local.status, headers: local.headers.filter(([k]) => !k.startsWith(":")), body: local.bodyBytes };
}

export function prefixRouterPolicy(opts: PrefixRouterOptions = {}): PolicyFactory {
  return {
    name: opts.name ?? "prefix-router",
    description: opts.description ?? "this product: build/prefix_router.wasm in the host emulator (2 worker VMs), scraping the servers' /metrics itself every 200 ms",
    // The filter scrapes through its own callouts; the driver's scrape view is not used.
    scrapeIntervalMs: 0,
    create: (ctx) => createPolicy(ctx, opts),
  };
}

/** prefix-router with `peers` on: its replicas ask each other for their decisions (every 100 ms unless the config says otherwise). */
export function prefixRouterPeersPolicy(opts: PrefixRouterOptions = {}): PolicyFactory {
  return prefixRouterPolicy({
    name: "prefix-router-peers",
    description: "prefix-router whose Envoy replicas ask each other for their routing decisions (peers)",
    ...opts,
    peers: true,
  });
}

async function createPolicy(ctx: PolicyContext, opts: PrefixRouterOptions): Promise<Policy> {
  let group = peerGroups.get(ctx.clock);
  if (group === undefined) {
    group = new Map();
    peerGroups.set(ctx.clock, group);
  }
  const peers = group;
  const replica = ctx.replica ?? { index: 0, of: 1 };
  const envoy = new Envoy({
    clock: opts.peers ? withOwnMonotonicOrigin(ctx.clock as Clock, replica.index) : (ctx.clock as Clock),
    logLevel: "warn",
    clusters: {
      metrics: {
        type: "handler",
        handle: (req) => ({ status: 200, headers: { "content-type": "text/plain; version=0.0.4" }, body: ctx.metricsText(req.authority) }),
      },
      peers: { type: "handler", handle: (req) => askPeer(peers, req) },
    },
  });
  const peerConfig = {
    // The same list for every replica, its own address included, as a deployment would give it.
    addresses: Array.from({ length: replica.of }, (_, k) => peerAddress(k)),
    cluster: "peers",
    token: PEER_TOKEN,
  };
  const configuration = {
    endpoints: ctx.endpoints.map((address) => ({ address })),
    metrics: { cluster: "metrics", intervalMs: 200, timeoutMs: 1000 },
    ...opts.config,
    // Overrides of single peers fields (intervalMs, …) keep the replay's addresses, cluster and token.
    ...(opts.peers ? { peers: { ...peerConfig, ...(opts.config?.peers as Record<string, unknown> | undefined) } } : {}),
  };
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router",
    rootId: "prefix_router",
    vmId: "prefix_router",
    wasm: opts.wasm ?? ROUTER_WASM,
    configuration: JSON.stringify(configuration),
    concurrency: opts.vms ?? 2,
    allowOnHeadersStopIteration: true,
  });
  peers.set(peerAddress(replica.index), plugin);
  const open = new Map<string, HttpStream>();
  let fallback = 0;
  return {
    pick(req: RouteRequest): string {
      const stream = plugin.newStream();
      stream.sendRequestHeaders({ ":method": "POST", ":path": req.path, ":authority": "gateway", "content-type": "application/json", "x-request-id": req.id }, false);
      stream.sendRequestBody(req.body(), true);
      open.set(req.id, stream);
      // The header lists the pick, then fallbacks override_host uses only on a retry.
      const chosen = stream.upstreamRequest?.headers.find(([k]) => k === DESTINATION)?.[1]?.split(",")[0];
      if (chosen !== undefined && ctx.endpoints.includes(chosen)) return chosen;
      // Passed through: Envoy's fallback load-balancing policy (round robin) decides.
      return ctx.endpoints[fallback++ % ctx.endpoints.length];
    },
    settle: () => envoy.settle(),
    // A streaming server's response starts with its first token: the filter
    // sees the response headers then (its prefill accounting, work.ts).
    onFirstToken(req: RouteRequest): void {
      const stream = open.get(req.id);
      if (stream?.upstreamRequest) stream.sendResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    },
    onComplete(req: RouteRequest): void {
      open.get(req.id)?.complete();
      open.delete(req.id);
    },
    close(): void {
      if (process.env.PREFIX_ROUTER_EVAL_STATS) {
        const text = envoy.stats.prometheus().split("\n").filter((l) => /^prefix_router_(requests|routed|passthrough|rendezvous|guard|prefix_blocks|server_prefix|visible_share|peers)/.test(l) && !l.endsWith(" 0"));
        process.stderr.write(text.join("\n") + "\n");
      }
      envoy.shutdown();
    },
  };
}
