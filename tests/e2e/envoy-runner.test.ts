// envoy-runner.ts: which Envoy it picks (ENVOY_BIN, then .venv's from
// scripts/envoy/install.sh, then func-e with the pinned version, then envoy on
// PATH), and how it drives the real one (flags, --admin-address-path, /ready,
// /listeners, SIGTERM, an Envoy that refuses its config).
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { startServers, type SimServer } from "../../scripts/sim/server.ts";
import { renderEnvoyYaml, resolveConfig } from "../../scripts/gateway/envoy-config.ts";
import { envoyVersionOf, findEnvoy, startEnvoy, venvEnvoy } from "../../scripts/gateway/envoy-runner.ts";
import { ENVOY_VERSION } from "../../scripts/gateway/envoy-version.ts";
import { ROOT, WASM, envoyTest, requireEnvoy } from "./real-envoy.ts";
import { chat, text } from "./scenarios.ts";

let dir = "";
let servers: SimServer[] = [];

async function executable(path: string, body = "#!/bin/sh\nexit 1\n"): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, body);
  await chmod(path, 0o755);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "prefix-router-runner-"));
  servers = await startServers({ count: 2, portBase: 0, host: "127.0.0.1", speedup: 20 });
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("findEnvoy: ENVOY_BIN, then .venv, then func-e with the pinned version, then envoy on PATH, else none", async () => {
  // Only the search order is tested here, so the candidates are placeholder files.
  const repo = join(dir, "repo");
  const bin = join(dir, "bin");
  const withFuncE = join(dir, "with-func-e");
  await executable(join(bin, "envoy"));
  await executable(join(withFuncE, "func-e"));
  await mkdir(repo, { recursive: true });

  assert.equal(findEnvoy({ PATH: join(dir, "empty") }, repo), null);
  assert.equal(findEnvoy({ PATH: bin }, repo)?.command, join(bin, "envoy"));
  const funcE = findEnvoy({ PATH: `${withFuncE}:${bin}` }, repo);
  assert.equal(funcE?.kind, "func-e");
  assert.deepEqual(funcE?.prefix, ["run"]);
  assert.deepEqual(funcE?.env, { ENVOY_VERSION });
  assert.equal(await envoyVersionOf(funcE!), ENVOY_VERSION);

  // The wheel's layout: .venv/lib/pythonX.Y/site-packages/envoy/_bin/envoy.
  const wheelEnvoy = join(repo, ".venv", "lib", "python3.11", "site-packages", "envoy", "_bin", "envoy");
  await executable(wheelEnvoy);
  assert.equal(venvEnvoy(repo), wheelEnvoy);
  const venv = findEnvoy({ PATH: `${withFuncE}:${bin}` }, repo);
  assert.equal(venv?.kind, "venv");
  assert.equal(venv?.command, wheelEnvoy);

  const explicit = findEnvoy({ PATH: `${withFuncE}:${bin}`, ENVOY_BIN: "/opt/envoy" }, repo);
  assert.equal(explicit?.kind, "ENVOY_BIN");
  assert.equal(explicit?.command, "/opt/envoy");
});

envoyTest("startEnvoy: admin address from --admin-address-path, listener from /listeners, requests through, SIGTERM stops it", { timeout: 60_000 }, async () => {
  const { runner } = await requireEnvoy();
  const config = resolveConfig({ endpoints: servers.map((s) => s.address), listen: "127.0.0.1:0", admin: "127.0.0.1:0", wasmFile: WASM });
  const configPath = join(dir, "envoy.yaml");
  await writeFile(configPath, renderEnvoyYaml(config));
  const envoy = await startEnvoy(runner, { configPath, adminAddressPath: join(dir, "admin"), concurrency: 1, cwd: ROOT, readyTimeoutMs: 30_000 });
  try {
    assert.match(envoy.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(envoy.listenerAddress, /^127\.0\.0\.1:\d+$/);
    const target = { url: `http://${envoy.listenerAddress}`, adminUrl: envoy.adminUrl, endpoints: config.endpoints.map((e) => e.address), model: DEFAULT_SIM_PARAMS.model, destinationHeader: config.destinationHeader, seed: 1 };
    const r = await chat(target, text(1, 500), "hi");
    assert.equal(r.status, 200);
    assert.ok(target.endpoints.includes(r.servedBy));
  } finally {
    await envoy.stop();
  }
  // SIGTERM is a clean shutdown for Envoy: exit code 0.
  assert.equal(await envoy.exited, 0);
});

envoyTest("startEnvoy: an Envoy that refuses its config is reported with its own error", { timeout: 60_000 }, async () => {
  const { runner } = await requireEnvoy();
  const configPath = join(dir, "broken.yaml");
  await writeFile(configPath, "static_resources: { listeners: [ { name: x } ] }\n");
  await assert.rejects(
    startEnvoy(runner, { configPath, adminAddressPath: join(dir, "admin-broken"), cwd: ROOT, readyTimeoutMs: 30_000 }),
    /Envoy exited \(1\) before it was ready[\s\S]*(error initializing configuration|Proto constraint validation failed|address)/,
  );
});
