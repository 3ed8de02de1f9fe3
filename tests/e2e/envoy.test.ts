// The end-to-end scenarios against real Envoy: the generated bootstrap (both
// variants, for the Envoy found) with the built .wasm, in front of four
// simulated vLLM servers, everything on loopback and on ports the OS picks
// (Envoy reports its admin address through --admin-address-path and its
// listener through /listeners). Runs where ENVOY_BIN, func-e or envoy exists;
// elsewhere it is one skipped test saying so. The same scenarios run against
// the dev gateway in dev-gateway.test.ts.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { startServers } from "../../scripts/sim/server.ts";
import { renderEnvoyYaml, resolveConfig, type Variant } from "../../scripts/gateway/envoy-config.ts";
import { envoyVersionOf, findEnvoy, startEnvoy } from "../../scripts/gateway/envoy-runner.ts";
import { OVERRIDE_HOST_SINCE, atLeast } from "../../scripts/gateway/envoy-version.ts";
import { runScenarios } from "./scenarios.ts";

const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
const ROOT = new URL("../..", import.meta.url).pathname;
const runner = findEnvoy();

if (runner === null) {
  test("end-to-end through real Envoy", { skip: "real Envoy not found (set ENVOY_BIN or install func-e)" }, () => {});
} else {
  // func-e downloads Envoy on its first run; after that each variant takes seconds.
  test(`end-to-end through real Envoy (${runner.describe})`, { timeout: 300_000 }, async (t) => {
    const version = await envoyVersionOf(runner);
    assert.ok(version !== null, `cannot read the version of ${runner.describe}`);
    if (!atLeast(version, OVERRIDE_HOST_SINCE)) {
      t.skip(`Envoy ${version} is older than ${OVERRIDE_HOST_SINCE}: prefix-router cannot route on it (README "Envoy older than 1.35")`);
      return;
    }
    const servers = await startServers({ count: 4, portBase: 0, host: "127.0.0.1", speedup: 20 });
    const dir = await mkdtemp(join(tmpdir(), "prefix-router-e2e-"));
    try {
      const variants: Variant[] = ["override_host", "original_dst"];
      for (const [i, variant] of variants.entries()) {
        await t.test(variant, async (t2) => {
          const config = resolveConfig({
            endpoints: servers.map((s) => s.address),
            variant,
            envoyVersion: version,
            listen: "127.0.0.1:0",
            admin: "127.0.0.1:0",
            wasmFile: WASM,
          });
          const configPath = join(dir, `${variant}.yaml`);
          await writeFile(configPath, renderEnvoyYaml(config));
          const envoy = await startEnvoy(runner, {
            configPath,
            adminAddressPath: join(dir, `${variant}.admin`),
            concurrency: 2,
            cwd: ROOT,
          });
          try {
            await runScenarios(t2, {
              url: `http://${envoy.listenerAddress}`,
              adminUrl: envoy.adminUrl,
              endpoints: config.endpoints.map((e) => e.address),
              model: DEFAULT_SIM_PARAMS.model,
              destinationHeader: config.destinationHeader,
              // Fresh prompts per variant: the servers' caches outlive each Envoy.
              seed: 101 + i,
            });
          } finally {
            await envoy.stop();
          }
        });
      }
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      await rm(dir, { recursive: true, force: true });
    }
  });
}
