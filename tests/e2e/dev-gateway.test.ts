// The end-to-end scenarios against the dev gateway: the built .wasm in the host
// emulator behind real HTTP on loopback, in front of four simulated vLLM
// servers, configured by the same generator as the Envoy bootstrap. This is
// the half of the e2e suite that runs everywhere (CI included). Also: the
// gateway's own Envoy-like behaviour (SSE streaming, an unreachable upstream).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { startServers, type SimServer } from "../../scripts/sim/server.ts";
import { DevGateway } from "../../scripts/gateway/dev-gateway.ts";
import { resolveConfig } from "../../scripts/gateway/envoy-config.ts";
import { http, runScenarios, text, type Target } from "./scenarios.ts";
import { stats, waitFor } from "./live-traffic.ts";
import { freePort } from "./real-envoy.ts";

const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;

let servers: SimServer[] = [];
let gateway: DevGateway;
let target: Target;

before(async () => {
  // 20× real time: each simulated request takes a few ms of wall time.
  servers = await startServers({ count: 4, portBase: 0, host: "127.0.0.1", speedup: 20 });
  const config = resolveConfig({
    endpoints: servers.map((s) => s.address),
    listen: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    wasmFile: WASM,
  });
  gateway = await DevGateway.start({ config, concurrency: 2 });
  target = {
    url: gateway.url,
    adminUrl: gateway.adminUrl,
    endpoints: config.endpoints.map((e) => e.address),
    model: DEFAULT_SIM_PARAMS.model,
    destinationHeader: config.destinationHeader,
    seed: 11,
  };
});

after(async () => {
  await gateway?.stop();
  await Promise.all(servers.map((s) => s.stop()));
});

test("dev gateway: the end-to-end scenarios", async (t) => {
  await runScenarios(t, target);
});

test("dev gateway: a streamed (SSE) completion reaches the client chunk by chunk, ending with [DONE]", async () => {
  const body = JSON.stringify({ model: target.model, prompt: text(5, 600), max_tokens: 3, stream: true });
  const r = await http(`${target.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
  assert.equal(r.status, 200);
  assert.match(String(r.headers["content-type"]), /text\/event-stream/);
  assert.ok(target.endpoints.includes(r.servedBy));
  assert.match(r.body, /data: \[DONE\]\n\n$/);
});

test("dev gateway: the admin API answers /ready and /listeners like Envoy's", async () => {
  const ready = await http(`${target.adminUrl}/ready`);
  assert.equal(ready.status, 200);
  assert.equal(ready.body.trim(), "LIVE");
  const listeners = JSON.parse((await http(`${target.adminUrl}/listeners?format=json`)).body);
  assert.equal(`http://127.0.0.1:${listeners.listener_statuses[0].local_address.socket_address.port_value}`, target.url);
});

test("dev gateway: an unreachable upstream gets Envoy's 503 local reply", async () => {
  // A loopback port nobody listens on: take one from a server we stop at once. On 127.0.0.2, so that
  // a server another test starts meanwhile on 127.0.0.1 (every other listener here) cannot take it
  // over and answer (one did, with a 404, in a CI run).
  const [dead] = await startServers({ count: 1, portBase: 0, host: "127.0.0.2" });
  await dead.stop();
  const config = resolveConfig({ endpoints: [dead.address], listen: "127.0.0.1:0", admin: "127.0.0.1:0", wasmFile: WASM, metrics: false });
  const gw = await DevGateway.start({ config, concurrency: 1 });
  try {
    const r = await http(`${gw.url}/v1/models`);
    assert.equal(r.status, 503);
    assert.match(r.body, /^upstream connect error or disconnect\/reset before headers/);
  } finally {
    await gw.stop();
  }
});

test("dev gateway: two gateways with peers trade their decisions over loopback HTTP (one reads its token from the environment)", async () => {
  const TOKEN = "dev-gateway-peers-token-0f3b7c";
  const ENV = "PREFIX_ROUTER_DEV_PEER_TOKEN";
  const [portA, portB] = [await freePort(), await freePort()];
  assert.notEqual(portA, portB);
  const addresses = [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`];
  const endpoints = servers.map((s) => s.address);
  const base = { endpoints, admin: "127.0.0.1:0", wasmFile: WASM, metrics: false as const };
  process.env[ENV] = TOKEN;
  const gateways: DevGateway[] = [];
  try {
    // No metrics: the peers' asks need the ORIGINAL_DST cluster all the same.
    gateways.push(await DevGateway.start({ config: resolveConfig({ ...base, listen: addresses[0], peers: { addresses, token: TOKEN } }) }));
    gateways.push(await DevGateway.start({ config: resolveConfig({ ...base, listen: addresses[1], peers: { addresses, tokenEnv: ENV } }) }));
    const [a, b] = gateways;
    // A asked B before B was listening, perhaps: failures count from here on.
    await new Promise((r) => setTimeout(r, 300));
    const failures = async (g: DevGateway) => (await stats(g.adminUrl)).get("wasmcustom.prefix_router.peers.ask_failures") ?? 0;
    const failuresBefore = [await failures(a), await failures(b)];
    const N = 5;
    for (let k = 0; k < N; k++) {
      const body = JSON.stringify({ model: target.model, messages: [{ role: "system", content: `dev peers ${k}: ${text(300 + k, 2500)}` }, { role: "user", content: "hi" }], max_tokens: 2 });
      const r = await http(`${(k % 2 === 0 ? a : b).url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      assert.equal(r.status, 200, r.body);
    }
    const imported = async (g: DevGateway) => (await stats(g.adminUrl)).get("wasmcustom.prefix_router.peers.decisions_imported") ?? 0;
    // A routed 3 (k = 0, 2, 4), B routed 2: each takes in the other's, once.
    await waitFor("the gateways to take in each other's decisions", 5_000, async () => (await imported(a)) === 2 && (await imported(b)) === 3);
    await new Promise((r) => setTimeout(r, 400)); // several more asks each way: nothing echoes back
    assert.equal(await imported(a), 2);
    assert.equal(await imported(b), 3);
    for (const [i, g] of gateways.entries()) {
      const s = await stats(g.adminUrl);
      assert.equal(s.get("wasmcustom.prefix_router.peers.ask_failures") ?? 0, failuresBefore[i], "no ask failed once both were up");
      assert.equal(s.get("wasmcustom.prefix_router.peers.asks_refused") ?? 0, 0);
      assert.ok((s.get("wasmcustom.prefix_router.peers.answers_sent") ?? 0) > 0);
    }
  } finally {
    delete process.env[ENV];
    await Promise.all(gateways.map((g) => g.stop()));
  }
});

test("dev gateway: peers.dns is refused in one line (no replicas' cluster to resolve here)", async () => {
  const config = resolveConfig({ endpoints: ["127.0.0.1:1"], listen: "127.0.0.1:0", admin: "127.0.0.1:9901", wasmFile: WASM, peers: { dns: "replicas.invalid:10000", token: "a-token-of-24-characters" } });
  await assert.rejects(DevGateway.start({ config }), /peers\.dns: the dev gateway does not resolve/);
});
