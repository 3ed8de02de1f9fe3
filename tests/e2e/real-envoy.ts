// What every real-Envoy test shares: finding Envoy (scripts/gateway/envoy-runner.ts
// order: ENVOY_BIN, .venv from `npm run envoy:install`, func-e, envoy on PATH),
// and starting it on a generated bootstrap in a temporary directory.
//
// `envoyTest` is node:test's `test` for tests that need Envoy. Where Envoy is
// missing it skips with the install line on a developer's machine, and FAILS
// under CI=true: CI installs Envoy (.ci/run), so a missing one is a broken
// install, never a reason to run less. Under CI the version must also be the
// pinned one, since README's claims are about that release. `envoyTestWith`
// does the same for a test that also needs another program (Prometheus, wrk).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { NAMES, renderEnvoyYaml, resolveConfig, type GatewayConfig, type GatewayConfigInput } from "../../scripts/gateway/envoy-config.ts";
import { writeEdsFile, type EdsHost } from "../../scripts/gateway/eds-file.ts";
import { freePort } from "../../scripts/gateway/files.ts";
import { INSTALL_VENV, envoyVersionOf, findEnvoy, startEnvoy, type EnvoyRunner, type RunningEnvoy, type StartOptions } from "../../scripts/gateway/envoy-runner.ts";
import { ENVOY_VERSION } from "../../scripts/gateway/envoy-version.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

const found = findEnvoy();
let version: Promise<string | null> | null = null;

/** The runner and its version; throws (fails the test) when the pinned Envoy is required and absent. */
export async function requireEnvoy(): Promise<{ runner: EnvoyRunner; version: string }> {
  assert.ok(found !== null, `real Envoy not found: run ${INSTALL_VENV} (or set ENVOY_BIN)`);
  version ??= envoyVersionOf(found);
  const v = await version;
  assert.ok(v !== null, `cannot read the version of ${found.describe}`);
  if (IN_CI) assert.equal(v, ENVOY_VERSION, `CI runs the pinned Envoy ${ENVOY_VERSION}; ${found.describe} is ${v}`);
  return { runner: found, version: v };
}

type TestOptions = { timeout?: number; concurrency?: number };

/** `test(name, fn)` for a test that needs real Envoy: skipped without one, except in CI, where it fails. */
export function envoyTest(name: string, options: TestOptions, fn: (t: TestContext) => Promise<void>): void {
  if (found === null && !IN_CI) {
    test(name, { skip: `real Envoy not found (${INSTALL_VENV}, or set ENVOY_BIN)` }, () => {});
    return;
  }
  test(name, options, async (t) => {
    await requireEnvoy();
    await fn(t);
  });
}

/** A program a real-Envoy test also needs (Prometheus, wrk): where it was found, or null, and how to install it. */
export interface RequiredProgram {
  name: string;
  path: string | null;
  install: string;
}

/** envoyTest for a test that also needs `program`: skipped without it, except in CI, where it fails (CI installs it). */
export function envoyTestWith(program: RequiredProgram, name: string, options: TestOptions, fn: (t: TestContext, path: string) => Promise<void>): void {
  if (program.path === null && !IN_CI) {
    test(name, { skip: `${program.name} not found (${program.install})` }, () => {});
    return;
  }
  envoyTest(name, options, async (t) => {
    assert.ok(program.path !== null, `${program.name} not found: ${program.install}`);
    await fn(t, program.path);
  });
}

export interface EnvoyGateway {
  envoy: RunningEnvoy;
  config: GatewayConfig;
  /** http://ip:port of the listener. */
  url: string;
  adminUrl: string;
  /** Where the bootstrap and the admin-address file live (removed by stop). */
  dir: string;
  /** Every line Envoy printed so far. */
  output: string[];
  /** EDS mode: the file the model cluster reads (in `dir`); null with a static endpoint list. */
  edsFile: string | null;
  /** EDS mode: the admin guard's socket (in `dir`), the filter's way into the admin API. */
  adminGuardSocket: string | null;
  /** EDS mode: replaces the model cluster's hosts (atomically, with a new version). */
  writeEds(hosts: readonly EdsHost[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * What startEnvoyGateway takes: the generator's input, where `eds` may also be
 * `true` (start with no hosts) or the initial hosts; the file, the guard
 * socket and a fixed admin port are then chosen for the test. A string `eds`
 * is the generator's own (the caller owns the file and the admin port).
 */
export type EnvoyGatewayInput = Omit<Partial<GatewayConfigInput>, "eds"> & { eds?: string | true | readonly EdsHost[] };

export { freePort };

/**
 * Generates a bootstrap from `input` (listener and admin on port 0, the built
 * .wasm) and runs it in real Envoy. `edit` may change the bootstrap object
 * before it is written (for configurations the generator does not write, such
 * as ECDS). Stopping removes the temporary directory.
 *
 * With `eds` (true, or the initial hosts) the model cluster reads its hosts
 * from `edsFile` and the filter follows it through the admin guard: the admin
 * port is a free fixed one, the file and the guard socket are in `dir`, and
 * `writeEds` replaces the hosts.
 */
export async function startEnvoyGateway(
  input: EnvoyGatewayInput,
  options: Partial<Omit<StartOptions, "configPath" | "adminAddressPath">> & { edit?: (yaml: string, dir: string) => string | Promise<string> } = {},
): Promise<EnvoyGateway> {
  const { runner, version: v } = await requireEnvoy();
  const dir = await mkdtemp(join(tmpdir(), "prefix-router-envoy-"));
  const { eds, ...rest } = input;
  let edsFile: string | null = null;
  let adminGuardSocket: string | null = null;
  let edsVersion = 0;
  const writeEds = async (hosts: readonly EdsHost[]) => {
    assert.ok(edsFile !== null, "writeEds: this gateway was not started with eds");
    await writeEdsFile(edsFile, NAMES.modelCluster, hosts, String(++edsVersion));
  };
  let config: GatewayConfig;
  try {
    const base: GatewayConfigInput = { listen: "127.0.0.1:0", admin: "127.0.0.1:0", wasmFile: WASM, envoyVersion: v };
    if (typeof eds === "string") base.eds = eds;
    else if (eds !== undefined) {
      edsFile = join(dir, "eds", "models.json");
      adminGuardSocket = join(dir, "admin-guard.sock");
      Object.assign(base, { eds: edsFile, adminGuardSocket, admin: `127.0.0.1:${await freePort()}` });
      await writeEds(eds === true ? [] : eds);
    }
    config = resolveConfig({ ...base, ...rest });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  let yaml = renderEnvoyYaml(config);
  if (options.edit) yaml = await options.edit(yaml, dir);
  const configPath = join(dir, "envoy.yaml");
  await writeFile(configPath, yaml);
  const output: string[] = [];
  let envoy: RunningEnvoy;
  try {
    envoy = await startEnvoy(runner, {
      concurrency: 2,
      cwd: ROOT,
      ...options,
      configPath,
      adminAddressPath: join(dir, "admin-address"),
      onOutput: (line) => {
        output.push(line);
        options.onOutput?.(line);
      },
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    envoy,
    config,
    url: `http://${envoy.listenerAddress}`,
    adminUrl: envoy.adminUrl,
    dir,
    output,
    edsFile,
    adminGuardSocket,
    writeEds,
    stop: async () => {
      await envoy.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
