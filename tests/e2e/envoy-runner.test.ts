// envoy-runner.ts without Envoy: which binary it picks (ENVOY_BIN, then func-e
// with the pinned version, then envoy on PATH), and how it drives one (flags,
// --admin-address-path, /ready, /listeners, SIGTERM), using fake-envoy.ts in
// place of the binary. The real thing is envoy.test.ts, where Envoy exists.
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { startServers, type SimServer } from "../../scripts/sim/server.ts";
import { renderEnvoyYaml, resolveConfig } from "../../scripts/gateway/envoy-config.ts";
import { envoyVersionOf, findEnvoy, startEnvoy } from "../../scripts/gateway/envoy-runner.ts";
import { ENVOY_VERSION } from "../../scripts/gateway/envoy-version.ts";
import { chat, text } from "./scenarios.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
const FAKE = new URL("./fake-envoy.ts", import.meta.url).pathname;

let dir = "";
let bin = "";
let servers: SimServer[] = [];

async function executable(path: string, body: string): Promise<void> {
  await writeFile(path, body);
  await chmod(path, 0o755);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "prefix-router-runner-"));
  bin = join(dir, "bin");
  await (await import("node:fs/promises")).mkdir(bin);
  // `envoy` on this PATH is the fake; `func-e` only needs to exist to be preferred.
  await executable(join(bin, "envoy"), `#!/bin/sh\nexec "${process.execPath}" --import tsx "${FAKE}" "$@"\n`);
  servers = await startServers({ count: 2, portBase: 0, host: "127.0.0.1", speedup: 20 });
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("findEnvoy: ENVOY_BIN first, then func-e with the pinned version, then envoy on PATH, else none", async () => {
  const empty = join(dir, "empty");
  await (await import("node:fs/promises")).mkdir(empty, { recursive: true });
  assert.equal(findEnvoy({ PATH: empty }), null);

  const onPath = findEnvoy({ PATH: bin });
  assert.equal(onPath?.kind, "envoy");
  assert.equal(onPath?.command, join(bin, "envoy"));

  const withFuncE = join(dir, "with-func-e");
  await (await import("node:fs/promises")).mkdir(withFuncE, { recursive: true });
  await executable(join(withFuncE, "func-e"), "#!/bin/sh\nexit 1\n");
  const funcE = findEnvoy({ PATH: `${withFuncE}:${bin}` });
  assert.equal(funcE?.kind, "func-e");
  assert.deepEqual(funcE?.prefix, ["run"]);
  assert.deepEqual(funcE?.env, { ENVOY_VERSION });
  assert.equal(await envoyVersionOf(funcE!), ENVOY_VERSION);

  const explicit = findEnvoy({ PATH: `${withFuncE}:${bin}`, ENVOY_BIN: join(bin, "envoy") });
  assert.equal(explicit?.kind, "ENVOY_BIN");
  assert.equal(await envoyVersionOf(explicit!), ENVOY_VERSION);
});

test("startEnvoy: admin address from --admin-address-path, listener from /listeners, requests through, SIGTERM stops it", { timeout: 60_000 }, async () => {
  const runner = findEnvoy({ PATH: bin })!;
  const config = resolveConfig({ endpoints: servers.map((s) => s.address), listen: "127.0.0.1:0", admin: "127.0.0.1:0", wasmFile: WASM });
  const configPath = join(dir, "envoy.yaml");
  await writeFile(configPath, renderEnvoyYaml(config));
  const lines: string[] = [];
  const envoy = await startEnvoy(runner, { configPath, adminAddressPath: join(dir, "admin"), concurrency: 1, cwd: ROOT, readyTimeoutMs: 30_000, onOutput: (l) => lines.push(l) });
  try {
    assert.match(envoy.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(envoy.listenerAddress, /^127\.0\.0\.1:\d+$/);
    const r = await chat({ url: `http://${envoy.listenerAddress}`, adminUrl: envoy.adminUrl, endpoints: config.endpoints.map((e) => e.address), model: DEFAULT_SIM_PARAMS.model, destinationHeader: config.destinationHeader, seed: 1 }, text(1, 500), "hi");
    assert.equal(r.status, 200);
    assert.ok(lines.some((l) => l.includes("fake-envoy: listening on")), lines.join("\n"));
  } finally {
    await envoy.stop();
  }
  assert.equal(await envoy.exited, 0);
});

test("startEnvoy: an Envoy that exits before it is ready is reported with its output", { timeout: 60_000 }, async () => {
  const runner = findEnvoy({ PATH: bin })!;
  const configPath = join(dir, "broken.yaml");
  await writeFile(configPath, "static_resources: {}\n");
  await assert.rejects(
    startEnvoy(runner, { configPath, adminAddressPath: join(dir, "admin-broken"), cwd: ROOT, readyTimeoutMs: 30_000 }),
    /Envoy exited \(1\) before it was ready[\s\S]*fake-envoy: no listener/,
  );
});
