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
  // A loopback port nobody listens on: take one from a server we stop at once.
  const [dead] = await startServers({ count: 1, portBase: 0, host: "127.0.0.1" });
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
