// Real Envoy for the load test and the soak: the generator's bootstrap
// (scripts/gateway/envoy-config.ts) in front of the given endpoints, with or
// without the Wasm filter, started by the project's runner
// (scripts/gateway/envoy-runner.ts) in a temporary directory. Without the
// filter the bootstrap is the same object with only the Wasm entry taken out of
// the HTTP filter chain, so the two differ by the filter alone: the same
// listener, buffer limits, header_mutation filter, override_host cluster (its
// fallback round robin picks when no header is set) and retry policy.
// Both run without access logs and without metrics scrapes: the upstream has no
// metrics page, and a log line per request would be a cost of its own.
// Owns: that Envoy and its directory. Must not: generate load.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import YAML from "yaml";
import { envoyBootstrap, resolveConfig, type PeersInput } from "../gateway/envoy-config.ts";
import { INSTALL_VENV, envoyVersionOf, findEnvoy, startEnvoy, type RunningEnvoy } from "../gateway/envoy-runner.ts";
import type { StopOnExit } from "./stop-on-exit.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
/** assembly/floor.ts: holds headers, buffers and reads the body, sets the header, decides nothing. */
export const FLOOR_WASM = new URL("../../build/floor.wasm", import.meta.url).pathname;
/** The floor's configuration that makes it also make the router's host calls per request (assembly/floor.ts). */
export const FLOOR_ROUTER_HOST_CALLS = "router-host-calls";
const WASM_FILTER = "envoy.filters.http.wasm";

export interface EnvoyUnderTestOptions {
  endpoints: string[];
  workers: number;
  /**
   * false: the same bootstrap with the Wasm filter removed; "floor": with
   * FLOOR_WASM in the router's place; "floor-calls": the same, configured to
   * make the router's host calls too.
   */
  filter: boolean | "floor" | "floor-calls";
  /** Fields merged into the filter's configuration (the generator's `filter` input), for the filter run only. */
  routerConfig?: Record<string, unknown>;
  /** Another build of the filter in WASM's place (with `filter: true`): bench:envoy-ab compares builds. */
  wasmFile?: string;
  /** The listener's address (default 127.0.0.1:0): replicas that are each other's peers must know it before they start. */
  listen?: string;
  /** Other Envoys to trade decisions with (the generator's `peers`; bench:envoy-peers). */
  peers?: PeersInput;
}

export interface EnvoyUnderTest {
  envoy: RunningEnvoy;
  url: string;
  pid: number;
  /** Envoy's counters and gauges whose names match `regex` (the admin API's /stats?filter=, RE2). */
  stats(regex: string): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The Envoy release the runner runs, for the generator's version-dependent fields. */
export async function envoyUnderTestVersion(): Promise<string> {
  const runner = findEnvoy();
  if (runner === null) throw new Error(`real Envoy not found: ${INSTALL_VENV} (or set ENVOY_BIN)`);
  const version = await envoyVersionOf(runner);
  if (version === null) throw new Error(`cannot read the version of ${runner.describe}`);
  return version;
}

/** One of the Envoys a comparison runs side by side. */
export interface EnvoySide {
  name: "plain" | "floor" | "filter";
  envoy: EnvoyUnderTest;
  /** Stops it now (and takes it off `stops`). */
  stop: () => Promise<void>;
}

/**
 * Plain Envoy, then (with `floor`) the one with the floor module, then the one
 * with the filter, for the same endpoints and workers; each is registered with
 * `stops` as soon as it runs, so a failure part way leaves none behind once
 * `stops` is stopped.
 */
export async function startEnvoyPair(stops: StopOnExit, options: Omit<EnvoyUnderTestOptions, "filter">, floor = false): Promise<EnvoySide[]> {
  const sides: EnvoySide[] = [];
  const kinds: Array<EnvoySide["name"]> = floor ? ["plain", "floor", "filter"] : ["plain", "filter"];
  for (const name of kinds) {
    const envoy = await startEnvoyUnderTest({ ...options, filter: name === "plain" ? false : name === "floor" ? "floor" : true });
    sides.push({ name, envoy, stop: stops.add(envoy.stop) });
  }
  return sides;
}

export async function startEnvoyUnderTest(options: EnvoyUnderTestOptions): Promise<EnvoyUnderTest> {
  const runner = findEnvoy();
  if (runner === null) throw new Error(`real Envoy not found: ${INSTALL_VENV} (or set ENVOY_BIN)`);
  const config = resolveConfig({
    endpoints: options.endpoints,
    listen: options.listen ?? "127.0.0.1:0",
    admin: "127.0.0.1:0",
    ...(options.peers === undefined ? {} : { peers: options.peers }),
    wasmFile: options.filter === "floor" || options.filter === "floor-calls" ? FLOOR_WASM : options.wasmFile ?? WASM,
    envoyVersion: await envoyUnderTestVersion(),
    metrics: false,
    accessLog: false,
    filter: options.filter === true ? options.routerConfig : undefined,
  });
  const bootstrap = envoyBootstrap(config) as Obj;
  const hcm = bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const wasmFilters = hcm.http_filters.filter((f: Obj) => f.name === WASM_FILTER);
  if (wasmFilters.length !== 1) throw new Error(`the generated bootstrap has ${wasmFilters.length} ${WASM_FILTER} filters, not one`);
  if (!options.filter) hcm.http_filters = hcm.http_filters.filter((f: Obj) => f.name !== WASM_FILTER);
  if (options.filter === "floor-calls") wasmFilters[0].typed_config.config.configuration.value = FLOOR_ROUTER_HOST_CALLS;
  const dir = await mkdtemp(join(tmpdir(), "prefix-router-bench-envoy-"));
  let envoy: RunningEnvoy;
  try {
    const configPath = join(dir, "envoy.yaml");
    await writeFile(configPath, YAML.stringify(bootstrap));
    envoy = await startEnvoy(runner, {
      configPath,
      adminAddressPath: join(dir, "admin-address"),
      concurrency: options.workers,
      cwd: ROOT,
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    envoy,
    url: `http://${envoy.listenerAddress}`,
    pid: envoy.child.pid!,
    stats: async (regex) => {
      const response = await fetch(`${envoy.adminUrl}/stats?filter=${encodeURIComponent(regex)}`);
      if (!response.ok) throw new Error(`/stats: ${response.status}`);
      const out = new Map<string, number>();
      // One "name: value" line per stat; histograms ("P0(...) ...") are not numbers and are skipped.
      for (const line of (await response.text()).split("\n")) {
        const colon = line.lastIndexOf(": ");
        const value = Number(line.slice(colon + 2));
        if (colon > 0 && Number.isFinite(value)) out.set(line.slice(0, colon), value);
      }
      return out;
    },
    stop: async () => {
      await envoy.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
