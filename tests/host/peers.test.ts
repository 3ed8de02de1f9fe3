// Envoy replicas that trade routing decisions (assembly/router/peers.ts),
// driven through the host emulator with the built .wasm: two or more emulated
// Envoys on one VirtualClock, each with its own filter, whose "peers" cluster
// is a handler that hands an ask to the addressed Envoy's filter, as the
// ORIGINAL_DST cluster reaches that Envoy's listener in a deployment
// (scripts/eval/policies/prefix-router.ts askPeer does the same).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigRejectedError, Envoy, VirtualClock, withOwnMonotonicOrigin, type CalloutReply, type CalloutRequest, type HttpStream, type Plugin } from "../../scripts/host/index.ts";
import { ROUTER_WASM, addresses, chatBody, header, send, text } from "../router/harness.ts";
import { vllmPage } from "../router/metrics-server.ts";

const TOKEN = "peers-test-token-0123456789abcdef";
const PATH = "/.well-known/prefix-router/decisions";
const TOKEN_HEADER = "x-prefix-router-peer-token";
const ENDPOINTS = addresses(4);
const IDLE_PAGE = vllmPage({ waiting: 0, running: 0, kv: 0.05 });
const BUSY_PAGE = vllmPage({ waiting: 60, running: 64, kv: 0.97 });

/** Replica k's listener address, as the peers list names it (nothing is dialled). */
const peerAddress = (k: number) => `10.255.0.${k + 1}:10000`;

interface Replica {
  address: string;
  envoy: Envoy;
  plugin: Plugin;
  /** Asks this replica's filter sent, by the address asked. */
  asksTo: Map<string, number>;
}

interface World {
  clock: VirtualClock;
  /** Replicas by listener address: where the peers handler delivers asks. */
  byAddress: Map<string, Replica>;
  /** Addresses answered by a test's own handler instead of a replica (a broken peer). */
  impostors: Map<string, (req: CalloutRequest) => CalloutReply>;
  replicas: Replica[];
}

function world(): World {
  return { clock: new VirtualClock(), byAddress: new Map(), impostors: new Map(), replicas: [] };
}

/** Hands an ask to the addressed replica's filter; an ask it does not answer went on to the upstream, which knows no such path. */
function deliverAsk(w: World, req: CalloutRequest): CalloutReply {
  const impostor = w.impostors.get(req.authority);
  if (impostor !== undefined) return impostor(req);
  const target = w.byAddress.get(req.authority);
  if (target === undefined) return { status: 503, body: "no healthy upstream" };
  const stream = target.plugin.newStream();
  stream.sendRequestHeaders(req.headers, true);
  const local = stream.localResponse;
  if (local === null) {
    stream.complete();
    return { status: 404, body: "not found" };
  }
  return { status: local.status, headers: local.headers.filter(([k]) => !k.startsWith(":")), body: local.bodyBytes };
}

interface ReplicaOptions {
  /** The peers list (default: every replica of the world so far and this one, in order). */
  peers?: string[];
  /** The metrics page each endpoint serves to this replica. */
  page?: (endpoint: string) => string;
  config?: Record<string, unknown>;
  peersConfig?: Record<string, unknown>;
  vms?: number;
  /** No peers at all (a control gateway). */
  noPeers?: boolean;
  /** The monotonic origin's index (default k): another one for an Envoy restarted at address k. */
  origin?: number;
  /** The emulated Envoy's random seed (WASI random_get), default the emulator's. */
  seed?: number;
  /** Envoy's admin API as the admin guard forwards it (an "admin_guard" cluster): for peers.members. */
  admin?: (req: CalloutRequest) => CalloutReply;
  /** The VM's environment (vm_config.environment_variables), WASI environ_get's answer. */
  environment?: Record<string, string>;
}

async function addReplica(w: World, k: number, opts: ReplicaOptions = {}): Promise<Replica> {
  const address = peerAddress(k);
  const asksTo = new Map<string, number>();
  const envoy = new Envoy({
    clock: withOwnMonotonicOrigin(w.clock, opts.origin ?? k),
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    logLevel: "info",
    clusters: {
      metrics: {
        type: "handler",
        handle: (req) => ({ status: 200, headers: { "content-type": "text/plain; version=0.0.4" }, body: (opts.page ?? (() => IDLE_PAGE))(req.authority) }),
      },
      peers: {
        type: "handler",
        handle: (req) => {
          asksTo.set(req.authority, (asksTo.get(req.authority) ?? 0) + 1);
          return deliverAsk(w, req);
        },
      },
      ...(opts.admin === undefined ? {} : { admin_guard: { type: "handler" as const, handle: opts.admin } }),
    },
  });
  const peers = { addresses: opts.peers ?? [address], cluster: "peers", token: TOKEN, ...opts.peersConfig };
  const configuration = {
    endpoints: ENDPOINTS.map((a) => ({ address: a })),
    metrics: { cluster: "metrics", intervalMs: 200, timeoutMs: 1000 },
    ...(opts.noPeers ? {} : { peers }),
    ...opts.config,
  };
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router",
    rootId: "prefix_router",
    vmId: "prefix_router",
    wasm: ROUTER_WASM,
    configuration: JSON.stringify(configuration),
    concurrency: opts.vms ?? 2,
    allowOnHeadersStopIteration: true,
    ...(opts.environment === undefined ? {} : { environment: opts.environment }),
  });
  const r: Replica = { address, envoy, plugin, asksTo };
  const before = w.byAddress.get(address);
  if (before !== undefined) w.replicas.splice(w.replicas.indexOf(before), 1);
  w.byAddress.set(address, r);
  w.replicas.push(r);
  return r;
}

/** Runs every replica's ticks for `ms` in steps of 25 ms (the default tickMs), letting callouts complete between steps. */
async function run(w: World, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 25) {
    w.clock.advance(25);
    for (let i = 0; i < 3; i++) for (const r of w.replicas) await r.envoy.settle();
  }
}

function counter(r: Replica, name: string): number {
  return Number(r.envoy.stats.get(`wasmcustom.prefix_router.${name}`) ?? 0);
}

/** requests − (routed + every passthrough reason): 0 when the counts add up. */
function unaccounted(r: Replica): number {
  const passed = r.envoy.stats.names()
    .filter((n) => n.startsWith("wasmcustom.prefix_router.passthrough."))
    .reduce((sum, n) => sum + Number(r.envoy.stats.get(n) ?? 0), 0);
  return counter(r, "requests") - counter(r, "routed") - passed;
}

function shutdown(w: World): void {
  for (const r of w.replicas) r.envoy.shutdown();
}

/** An ask sent straight to a replica's filter, as a peer (or anyone) would send it. */
function ask(r: Replica, opts: { query?: string; headers?: [string, string][]; method?: string; path?: string; token?: string | null } = {}): HttpStream {
  const stream = r.plugin.newStream();
  const token = opts.token === undefined ? TOKEN : opts.token;
  stream.sendRequestHeaders([
    [":method", opts.method ?? "GET"],
    [":path", (opts.path ?? PATH) + (opts.query ?? "")],
    [":authority", r.address],
    ...(token === null ? [] : [[TOKEN_HEADER, token] as [string, string]]),
    ...(opts.headers ?? []),
  ], true);
  return stream;
}

/** The header fields of a peer answer (peer_answer.ts). */
function answerHeader(body: Uint8Array): { magic: string; records: number; instance: bigint; format: bigint; next: bigint } {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return {
    magic: Buffer.from(body.subarray(0, 4)).toString("latin1"),
    records: v.getUint32(4, true),
    instance: v.getBigUint64(8, true),
    format: v.getBigUint64(16, true),
    next: v.getBigUint64(24, true),
  };
}

/** The routed endpoint keys of a peer answer's records, in order. */
function answerRecords(body: Uint8Array): { blocks: number; matched: number; routed: bigint }[] {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out = [];
  let at = 32;
  for (let i = 0; i < v.getUint32(4, true); i++) {
    const blocks = v.getUint16(at, true);
    out.push({ blocks, matched: v.getUint16(at + 2, true), routed: v.getBigUint64(at + 8, true) });
    at += 16 + blocks * 8;
  }
  assert.equal(at, body.length, "the records fill the answer");
  return out;
}

/** Conversation i: a long system prompt of its own (several index entries) and a first question. */
function firstTurn(i: number): [string, string][] {
  return [["system", `conversation ${i}: ${text(500 + i, 3000)}`], ["user", `first question of conversation ${i}: ${text(900 + i, 200)}`]];
}

function nextTurn(i: number): [string, string][] {
  return [...firstTurn(i), ["assistant", text(700 + i, 400)], ["user", `follow-up of conversation ${i}`]];
}

/** Two replicas listing both; A sees every endpoint but the last as busy, B sees all idle. */
async function pair(opts: { bVms?: number } = {}) {
  const w = world();
  const both = [peerAddress(0), peerAddress(1)];
  const light = ENDPOINTS[3];
  // A is told it is the only replica (narrow bands, so its view of the load decides, not rendezvous
  // hashing alone): it sends new prefixes where B, seeing every server idle, would not.
  const a = await addReplica(w, 0, { peers: both, config: { replicas: 1 }, page: ((e) => (e === light ? IDLE_PAGE : BUSY_PAGE)) });
  const b = await addReplica(w, 1, { peers: both, vms: opts.bVms });
  return { w, a, b, light };
}

describe("peers: trading decisions between two Envoys", () => {
  test("B takes in A's decisions and routes each conversation's next turn where A sent it; nothing echoes back", async () => {
    const { w, a, b, light } = await pair();
    // A control gateway that sees what B sees but has no peers: where B would route without A's decisions.
    const c = await addReplica(w, 2, { noPeers: true });
    await run(w, 500); // scrapes in, first asks answered (nothing to trade yet)
    assert.equal(counter(b, "peers.decisions_imported"), 0);
    assert.ok(counter(b, "peers.asks_answered") >= 1, "B's asks to A are answered");

    const N = 8;
    const chosen: string[] = [];
    for (let i = 0; i < N; i++) chosen.push(send(a, chatBody(firstTurn(i)), { complete: true }).destination!);
    // A's view of the load sends every conversation to the one endpoint it sees idle.
    assert.deepEqual(chosen, Array(N).fill(light));
    await run(w, 300); // past B's next ask (every 100 ms) and the tick that counts it
    assert.equal(counter(b, "peers.decisions_imported"), N, "each of A's routing decisions, once");
    // No echo: A finds none of its own decisions in what B answers.
    assert.equal(counter(a, "peers.decisions_imported"), 0);
    assert.ok(counter(a, "peers.answers_sent") >= 1 && counter(b, "peers.answers_sent") >= 1);

    const viaB: string[] = [];
    const viaC: string[] = [];
    for (let i = 0; i < N; i++) {
      viaB.push(send(b, chatBody(nextTurn(i)), { complete: true }).destination!);
      viaC.push(send(c, chatBody(nextTurn(i)), { complete: true }).destination!);
    }
    assert.deepEqual(viaB, chosen, "B follows A's decisions");
    assert.ok(viaC.some((d) => d !== light), `without peers the next turns spread by rendezvous: ${viaC.join(" ")}`);

    // Now A takes in B's decisions (its own, N), and neither side takes in its own back, however long they go on.
    await run(w, 1000);
    assert.equal(counter(a, "peers.decisions_imported"), N);
    assert.equal(counter(b, "peers.decisions_imported"), N);
    assert.equal(counter(a, "peers.ask_failures"), 0);
    assert.equal(counter(b, "peers.ask_failures"), 0);
    // Answered asks are not requests: the counts add up on both sides.
    for (const r of [a, b, c]) assert.equal(unaccounted(r), 0, `${r.address}: requests = routed + passthrough`);
    assert.equal(counter(a, "requests"), N);
    assert.equal(counter(b, "requests"), N);
    shutdown(w);
  });

  // The asks are sent by the main-thread VM (the first to take the lease); a worker takes in what it
  // appended on its next sync, also after it began keeping an index (before that, it replays the ring).
  test("replicas whose clocks read alike still tell each other apart: the instance id takes the host's random bits", async () => {
    // Same monotonic origin, same wall clock: before random_get, both drew one instance id and each took the other for itself.
    const w = world();
    const both = [peerAddress(0), peerAddress(1)];
    const light = ENDPOINTS[3];
    const a = await addReplica(w, 0, { peers: both, origin: 0, seed: 1, config: { replicas: 1 }, page: ((e) => (e === light ? IDLE_PAGE : BUSY_PAGE)) });
    const b = await addReplica(w, 1, { peers: both, origin: 0, seed: 2 });
    await run(w, 500);
    for (let i = 0; i < 3; i++) assert.equal(send(a, chatBody(firstTurn(i)), { complete: true }).destination, light);
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 3);
    shutdown(w);
  });

  test("a replica with one worker follows the decisions it took in after it began keeping an index", async () => {
    const { w, a, b, light } = await pair({ bVms: 1 });
    await run(w, 300);
    // B keeps an index from its first decision on (before it, a VM replays the ring when it starts one).
    assert.ok(send(b, chatBody(firstTurn(99)), { complete: true }).destination);
    await run(w, 100);
    for (let i = 0; i < 4; i++) assert.equal(send(a, chatBody(firstTurn(i)), { complete: true }).destination, light);
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 4);
    for (let i = 0; i < 4; i++) assert.equal(send(b, chatBody(nextTurn(i)), { complete: true }).destination, light, `conversation ${i}`);
    shutdown(w);
  });

  test("a decision B took in from A places blocks only: nothing is counted in flight at B", async () => {
    const { w, a, b, light } = await pair();
    await run(w, 300);
    const open = [];
    for (let i = 0; i < 4; i++) open.push(send(a, chatBody(firstTurn(i))).stream); // still in flight at A
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 4);
    assert.equal(Number(b.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${light}.in_flight`) ?? 0), 0);
    assert.equal(Number(a.envoy.stats.get(`wasmcustom.prefix_router.endpoint.${light}.in_flight`) ?? 0), 4);
    for (const s of open) s.complete();
    shutdown(w);
  });

  test("decisions for an endpoint this Envoy does not route to are answered but not imported", async () => {
    const w = world();
    const both = [peerAddress(0), peerAddress(1)];
    const extra = "10.0.0.9:8000";
    // A routes to one more endpoint than B, and sees only that one idle.
    const a = await addReplica(w, 0, {
      peers: both,
      config: { replicas: 1, endpoints: [...ENDPOINTS, extra].map((address) => ({ address })) },
      page: (e) => (e === extra ? IDLE_PAGE : BUSY_PAGE),
    });
    const b = await addReplica(w, 1, { peers: both });
    await run(w, 300);
    for (let i = 0; i < 4; i++) assert.equal(send(a, chatBody(firstTurn(i)), { complete: true }).destination, extra);
    await run(w, 300);
    assert.equal(answerHeader(ask(a).localResponse!.bodyBytes).records, 4, "A answers with all four");
    assert.ok(counter(b, "peers.asks_answered") >= 3);
    assert.equal(counter(b, "peers.ask_failures"), 0);
    assert.equal(counter(b, "peers.decisions_imported"), 0);
    shutdown(w);
  });

  test("a restarted peer (a new instance, its journal begun again) is read from its oldest decision", async () => {
    const { w, a, b } = await pair();
    await run(w, 300);
    for (let i = 0; i < 2; i++) send(a, chatBody(firstTurn(i)), { complete: true });
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 2);
    const oldInstance = answerHeader(ask(a).localResponse!.bodyBytes).instance;
    // A restarts at the same address: a new process, so new shared data and another clock origin.
    a.envoy.shutdown();
    const a2 = await addReplica(w, 0, { peers: [peerAddress(0), peerAddress(1)], config: { replicas: 1 }, origin: 7 });
    // More decisions than A made before, so that its new journal's head passes where B would ask from.
    for (let i = 0; i < 8; i++) send(a2, chatBody(firstTurn(20 + i)), { complete: true });
    const restarted = answerHeader(ask(a2).localResponse!.bodyBytes);
    assert.notEqual(restarted.instance, oldInstance);
    assert.equal(restarted.records, 8);
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 2 + 8);
    assert.equal(counter(b, "peers.ask_failures"), 0);
    shutdown(w);
  });

  test("a short prompt (no whole index entry) is not traded; a long one is", async () => {
    const { w, a, b } = await pair();
    await run(w, 300);
    assert.ok(send(a, chatBody([["user", "hi"]]), { complete: true }).destination);
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 0);
    send(a, chatBody(firstTurn(1)), { complete: true });
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 1);
    shutdown(w);
  });
});

describe("peers: the token from the VM's environment (peers.tokenEnv)", () => {
  const ENV = "PREFIX_ROUTER_PEER_TOKEN";

  test("a replica that reads the token from its environment trades decisions with one that was given it", async () => {
    const w = world();
    const both = [peerAddress(0), peerAddress(1)];
    const light = ENDPOINTS[3];
    // Other variables around it: the lookup takes the whole name, not a prefix of another.
    const environment = { [`${ENV}_OLD`]: "x".repeat(20), PATH: "/usr/bin", [ENV]: TOKEN, [`A${ENV}`]: "y".repeat(20) };
    const a = await addReplica(w, 0, {
      peers: both, config: { replicas: 1 }, page: ((e) => (e === light ? IDLE_PAGE : BUSY_PAGE)),
      peersConfig: { token: undefined, tokenEnv: ENV }, environment,
    });
    const b = await addReplica(w, 1, { peers: both });
    await run(w, 500);
    for (let i = 0; i < 4; i++) assert.equal(send(a, chatBody(firstTurn(i)), { complete: true }).destination, light);
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 4, "B's asks carry the token A read from its environment");
    assert.ok(counter(a, "peers.asks_answered") >= 1, "A's asks carry it too");
    assert.equal(counter(a, "peers.ask_failures") + counter(b, "peers.ask_failures"), 0);
    // The token A answers to is exactly the variable's value.
    const s = ask(a, { token: "x".repeat(20) });
    assert.equal(s.localResponse, null, "another variable's value is not the token");
    s.complete();
    assert.equal(ask(a).localResponse?.status, 200);
    shutdown(w);
  });

  /** The configuration error the filter logs, from a rejected addReplica. */
  async function refusal(opts: ReplicaOptions): Promise<string> {
    const w = world();
    try {
      await addReplica(w, 0, opts);
    } catch (e) {
      assert.ok(e instanceof ConfigRejectedError, `expected the configuration refused, got ${e}`);
      return e.message;
    } finally {
      shutdown(w);
    }
    assert.fail("the configuration was accepted");
  }

  test("a variable that is missing, too short or not a token, a bad name, or both token and tokenEnv: the configuration is refused, the value never logged", async () => {
    const missing = await refusal({ peersConfig: { token: undefined, tokenEnv: ENV }, environment: { OTHER: TOKEN } });
    assert.match(missing, /peers\.tokenEnv: the Wasm VM has no environment variable PREFIX_ROUTER_PEER_TOKEN .*host_env_keys/);
    const none = await refusal({ peersConfig: { token: undefined, tokenEnv: ENV } });
    assert.match(none, /no environment variable PREFIX_ROUTER_PEER_TOKEN/);
    const short = await refusal({ peersConfig: { token: undefined, tokenEnv: ENV }, environment: { [ENV]: "short-secret" } });
    assert.match(short, /peers\.tokenEnv: the value of PREFIX_ROUTER_PEER_TOKEN must be 16 to 256/);
    assert.doesNotMatch(short, /short-secret/, "the value is not logged");
    const spaced = await refusal({ peersConfig: { token: undefined, tokenEnv: ENV }, environment: { [ENV]: "a secret with spaces in it" } });
    assert.doesNotMatch(spaced, /secret with/);
    assert.match(await refusal({ peersConfig: { token: undefined, tokenEnv: "9LIVES" } }), /peers\.tokenEnv: must be an environment variable's name/);
    assert.match(await refusal({ peersConfig: { token: undefined, tokenEnv: "A=B" } }), /peers\.tokenEnv: must be an environment variable's name/);
    assert.match(await refusal({ peersConfig: { tokenEnv: ENV }, environment: { [ENV]: TOKEN } }), /peers: give either token or tokenEnv, not both/);
    assert.match(await refusal({ peersConfig: { token: undefined } }), /peers\.token: required \(or tokenEnv/);
  });
});

describe("peers: answering asks", () => {
  test("only an ask with exactly the token is answered; any other goes on as a request and is counted refused", async () => {
    const w = world();
    const a = await addReplica(w, 0);
    await run(w, 100); // A has asked itself once (and answered): it is its only peer
    const refusedBefore = counter(a, "peers.asks_refused");
    const answersBefore = counter(a, "peers.answers_sent");
    assert.equal(answersBefore, 1);
    const cases: [string, HttpStream][] = [
      ["no token", ask(a, { token: null, query: "?since=0&instance=0" })],
      ["wrong token", ask(a, { token: "peers-test-token-0123456789abcdeX" })],
      ["token cut short", ask(a, { token: TOKEN.slice(0, -1) })],
      ["token with more", ask(a, { token: TOKEN + "0" })],
      ["empty token", ask(a, { token: "" })],
      ["the token twice", ask(a, { headers: [[TOKEN_HEADER, TOKEN]] })],
      ["the token and a wrong one", ask(a, { headers: [[TOKEN_HEADER, "nope"]] })],
    ];
    for (const [what, s] of cases) {
      assert.equal(s.localResponse, null, `${what}: not answered`);
      assert.ok(s.upstreamRequest !== null, `${what}: continues to the upstream`);
      assert.equal(header(s.upstreamRequest!.headers, TOKEN_HEADER) !== undefined, what !== "no token");
      s.complete();
    }
    // Not asks at all: another method or path, with the token. Not refused either.
    const others = [ask(a, { method: "POST" }), ask(a, { path: PATH + "x" }), ask(a, { path: PATH + "/" }), ask(a, { path: "/.well-known/prefix-router" })];
    for (const s of others) {
      assert.equal(s.localResponse, null);
      assert.ok(s.upstreamRequest !== null);
      s.complete();
    }
    await run(w, 100);
    assert.equal(counter(a, "peers.asks_refused") - refusedBefore, cases.length);
    assert.equal(counter(a, "peers.answers_sent"), answersBefore);
    assert.equal(counter(a, "requests"), cases.length + others.length);
    assert.equal(counter(a, "passthrough.not_inference"), cases.length + others.length);
    assert.equal(unaccounted(a), 0);

    const ok = ask(a, { query: "?since=0&instance=0" });
    const local = ok.localResponse;
    assert.ok(local !== null, "answered");
    assert.equal(local.status, 200);
    assert.equal(header(local.headers, "content-type"), "application/octet-stream");
    assert.equal(header(local.headers, "cache-control"), "no-store");
    assert.equal(header(local.headers, "content-length"), String(local.bodyBytes.length));
    assert.equal(Buffer.from(local.bodyBytes.subarray(0, 4)).toString("latin1"), "PRP1");
    assert.equal(ok.upstreamRequest, null, "never forwarded");
    assert.equal(ok.downstreamResponse?.status, 200);
    assert.deepEqual([...ok.downstreamResponse!.body], [...local.bodyBytes]);
    // Without a query it is answered too (from the oldest decision).
    assert.equal(ask(a).localResponse?.status, 200);
    await run(w, 100);
    assert.equal(counter(a, "peers.answers_sent"), answersBefore + 2);
    assert.equal(counter(a, "requests"), cases.length + others.length, "answered asks are not requests");
    assert.equal(unaccounted(a), 0);
    shutdown(w);
  });

  test("an answer starts at `since` in this Envoy's journal, and at the oldest decision for another life's (or no) instance", async () => {
    const w = world();
    const a = await addReplica(w, 0, { vms: 2 });
    await run(w, 100);
    for (let i = 0; i < 3; i++) send(a, chatBody(firstTurn(i)), { complete: true });
    const first = ask(a, { query: "?since=0&instance=0" }).localResponse!.bodyBytes;
    const h = answerHeader(first);
    assert.equal(h.magic, "PRP1");
    assert.equal(h.records, 3);
    assert.equal(answerRecords(first).length, 3);
    assert.ok(h.instance !== 0n);
    const id = h.instance.toString();
    // Every VM of the Envoy answers with the same instance.
    const vm0 = a.plugin.newStream(0);
    const vm1 = a.plugin.newStream(1);
    for (const s of [vm0, vm1]) s.sendRequestHeaders({ ":method": "GET", ":path": PATH, ":authority": a.address, [TOKEN_HEADER]: TOKEN }, true);
    assert.equal(answerHeader(vm0.localResponse!.bodyBytes).instance, h.instance);
    assert.equal(answerHeader(vm1.localResponse!.bodyBytes).instance, h.instance);
    const recordsFor = (query: string) => answerHeader(ask(a, { query }).localResponse!.bodyBytes).records;
    // Asked again from where the answer said to go on: nothing new.
    assert.equal(recordsFor(`?since=${h.next}&instance=${id}`), 0);
    assert.equal(recordsFor(`?instance=${id}&since=${h.next}`), 0, "in either order");
    assert.equal(recordsFor(`?since=${h.next}&instance=${id}&extra=1`), 0);
    assert.equal(answerHeader(ask(a, { query: `?since=${h.next}&instance=${id}` }).localResponse!.bodyBytes).next, h.next);
    // A since from another life (another instance, or none) means nothing: all again.
    assert.equal(recordsFor(`?since=${h.next}&instance=${BigInt(id) ^ 2n}`), 3);
    assert.equal(recordsFor(`?since=${h.next}`), 3);
    assert.equal(recordsFor(`?since=${h.next}&instance=`), 3);
    // A since that is not a decimal number reads as 0.
    assert.equal(recordsFor(`?since=${h.next}x&instance=${id}`), 3);
    assert.equal(recordsFor(`?since=-${h.next}&instance=${id}`), 3);
    assert.equal(recordsFor(`?since=99999999999999999999999&instance=${id}`), 3);
    assert.equal(recordsFor(`?xsince=${h.next}&instance=${id}`), 3, "a parameter whose name ends in since is not since");
    // One more decision: only it comes from the last next on.
    send(a, chatBody(firstTurn(9)), { complete: true });
    const more = ask(a, { query: `?since=${h.next}&instance=${id}` }).localResponse!.bodyBytes;
    assert.equal(answerHeader(more).records, 1);
    assert.ok(answerHeader(more).next > h.next);
    shutdown(w);
  });
});

describe("peers: finding oneself and broken peers", () => {
  test("an Envoy whose own address is in the list asks itself once, recognises itself, and stops", async () => {
    const w = world();
    const both = [peerAddress(0), peerAddress(1)];
    const a = await addReplica(w, 0, { peers: both });
    const b = await addReplica(w, 1, { peers: both });
    await run(w, 1000); // ten ask intervals
    assert.equal(a.asksTo.get(a.address), 1, "A asked itself once");
    assert.equal(b.asksTo.get(b.address), 1, "B asked itself once");
    assert.ok((a.asksTo.get(b.address) ?? 0) >= 8, `A keeps asking B: ${a.asksTo.get(b.address)}`);
    assert.ok((b.asksTo.get(a.address) ?? 0) >= 8);
    // Asking itself is neither an answered ask nor a failure.
    assert.equal(counter(a, "peers.ask_failures"), 0);
    assert.equal(counter(a, "peers.asks_answered"), a.asksTo.get(b.address));
    assert.ok(a.envoy.logs.some((l) => l.message.includes(`peer ${a.address} is this Envoy`)));
    shutdown(w);
  });

  test("a peer that answers garbage, text, a cut answer or an error is counted as a failure, logged once, and nothing is imported", async () => {
    const w = world();
    let seed = 12345;
    const random = (n: number) => Uint8Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24));
    const broken: Record<string, (req: CalloutRequest) => CalloutReply> = {
      [peerAddress(1)]: () => ({ status: 200, headers: { "content-type": "application/octet-stream" }, body: random(200) }),
      [peerAddress(2)]: () => ({ status: 200, headers: { "content-type": "text/html" }, body: "<html><body>It works!</body></html>" }),
      // "PRP1", one record promised, cut inside it.
      [peerAddress(3)]: () => {
        const b = new Uint8Array(32 + 16 + 8);
        b.set(Buffer.from("PRP1"), 0);
        new DataView(b.buffer).setUint32(4, 1, true);
        new DataView(b.buffer).setUint16(32, 2, true);
        new DataView(b.buffer).setBigUint64(40, 7n, true);
        return { status: 200, body: b };
      },
      [peerAddress(4)]: () => ({ status: 503, body: "no healthy upstream" }),
      [peerAddress(5)]: () => ({ reset: true }),
    };
    for (const [address, handle] of Object.entries(broken)) w.impostors.set(address, handle);
    const list = [peerAddress(0), ...Object.keys(broken)];
    const a = await addReplica(w, 0, { peers: list });
    await run(w, 100);
    for (let i = 0; i < 4; i++) send(a, chatBody(firstTurn(i)), { complete: true });
    await run(w, 500); // five intervals
    const n = Object.keys(broken).length;
    const failures = counter(a, "peers.ask_failures");
    assert.ok(failures >= 4 * n, `every ask to a broken peer fails: ${failures}`);
    assert.equal(counter(a, "peers.asks_answered"), 0);
    assert.equal(counter(a, "peers.decisions_imported"), 0);
    const warnings = a.envoy.logs.filter((l) => l.level === "warn" && l.message.includes("prefix-router: peer "));
    for (const address of Object.keys(broken)) {
      assert.equal(warnings.filter((l) => l.message.includes(`peer ${address}:`)).length, 1, `${address} logged once: ${warnings.map((l) => l.message).join(" | ")}`);
    }
    assert.ok(warnings.some((l) => l.message.includes(`peer ${peerAddress(1)}: its answer is not a peer answer`)));
    assert.ok(warnings.some((l) => l.message.includes(`peer ${peerAddress(3)}: its answer is not a peer answer`)));
    assert.ok(warnings.some((l) => l.message.includes(`peer ${peerAddress(4)}: it did not answer 200`)));
    // The filter keeps routing, and still answers its own peers.
    const routedBefore = counter(a, "routed");
    for (let i = 0; i < 4; i++) assert.ok(ENDPOINTS.includes(send(a, chatBody(nextTurn(i)), { complete: true }).destination!));
    await run(w, 100);
    assert.equal(counter(a, "routed"), routedBefore + 4);
    assert.equal(ask(a).localResponse?.status, 200);
    assert.equal(unaccounted(a), 0);
    shutdown(w);
  });

  test("a peer whose filter hashes differently (hashBlockSize) is refused both ways and nothing is imported", async () => {
    const w = world();
    const both = [peerAddress(0), peerAddress(1)];
    const a = await addReplica(w, 0, { peers: both });
    const b = await addReplica(w, 1, { peers: both, config: { hashBlockSize: 128 } });
    await run(w, 100);
    for (let i = 0; i < 4; i++) {
      send(a, chatBody(firstTurn(i)), { complete: true });
      send(b, chatBody(firstTurn(10 + i)), { complete: true });
    }
    await run(w, 500);
    for (const [r, other] of [[a, b], [b, a]] as const) {
      assert.ok(counter(r, "peers.ask_failures") >= 4, `${r.address} refuses ${other.address}'s answers`);
      assert.equal(counter(r, "peers.asks_answered"), 0);
      assert.equal(counter(r, "peers.decisions_imported"), 0);
      assert.ok(r.envoy.logs.some((l) => l.message.includes(`peer ${other.address}: its filter hashes prompts differently`)));
      assert.ok(counter(r, "peers.answers_sent") >= 4, "each still answers the other");
    }
    shutdown(w);
  });
});

describe("peers: following the replicas' cluster (peers.members)", () => {
  test("asks the cluster's healthy hosts as Envoy's admin API lists them, and stops asking one that left or is unhealthy", async () => {
    const w = world();
    // The replicas' cluster as admin /clusters text (admin_clusters.ts): what each Envoy would read of a
    // STRICT_DNS cluster over a headless Service. Host k's health flags; absent hosts are not listed.
    const health: (string | null)[] = ["healthy", "healthy", "healthy"];
    let polls = 0;
    let adminDown = false;
    const admin = (req: CalloutRequest): CalloutReply => {
      polls++;
      if (adminDown) return { status: 503, body: "no healthy upstream" };
      assert.equal(req.path, "/clusters?filter=^replicas$");
      const lines = health.flatMap((h, k) => (h === null ? [] : [
        `replicas::${peerAddress(k)}::cx_active::0`,
        `replicas::${peerAddress(k)}::health_flags::${h}`,
      ]));
      return { status: 200, body: lines.join("\n") + "\n" };
    };
    const members = { peersConfig: { addresses: undefined, members: { cluster: "replicas", adminCluster: "admin_guard", intervalMs: 100 } }, admin };
    const a = await addReplica(w, 0, { ...members, config: { replicas: 1 }, page: ((e) => (e === ENDPOINTS[3] ? IDLE_PAGE : BUSY_PAGE)) });
    const b = await addReplica(w, 1, members);
    const c = await addReplica(w, 2, members);
    await run(w, 600);
    assert.ok(polls > 0, "the members are polled through the admin cluster");
    // Each asks the others, itself once at most (it recognises its own instance).
    assert.ok((b.asksTo.get(a.address) ?? 0) >= 3 && (b.asksTo.get(c.address) ?? 0) >= 3, `B asks A and C: ${[...b.asksTo]}`);
    assert.ok((b.asksTo.get(b.address) ?? 0) <= 1);

    for (let i = 0; i < 4; i++) assert.equal(send(a, chatBody(firstTurn(i)), { complete: true }).destination, ENDPOINTS[3]);
    await run(w, 300);
    assert.equal(counter(b, "peers.decisions_imported"), 4);
    assert.equal(counter(c, "peers.decisions_imported"), 4);
    for (let i = 0; i < 4; i++) assert.equal(send(b, chatBody(nextTurn(i)), { complete: true }).destination, ENDPOINTS[3]);

    // C leaves the cluster and A turns unhealthy: B asks neither any more.
    health[2] = null;
    health[0] = "/failed_active_hc";
    await run(w, 300); // the next membership poll and the asks already in flight
    const before = { a: b.asksTo.get(a.address) ?? 0, c: b.asksTo.get(c.address) ?? 0 };
    await run(w, 1000);
    assert.equal(b.asksTo.get(a.address) ?? 0, before.a, "no asks to an unhealthy replica");
    assert.equal(b.asksTo.get(c.address) ?? 0, before.c, "no asks to a replica that left");
    // A back; then the admin API fails: the last list stays (B keeps asking A), and the failures are counted.
    health[0] = "healthy";
    await run(w, 300);
    assert.equal(counter(b, "peers.member_poll_failures"), 0);
    adminDown = true;
    const askedA = b.asksTo.get(a.address) ?? 0;
    await run(w, 1000);
    assert.ok(counter(b, "peers.member_poll_failures") >= 3, "failed membership polls are counted");
    assert.ok((b.asksTo.get(a.address) ?? 0) >= askedA + 5, "the last membership stays while polls fail");
    assert.ok(b.envoy.logs.some((l) => l.message.includes("peer discovery failed, keeping the last membership")));
    shutdown(w);
  });
});
