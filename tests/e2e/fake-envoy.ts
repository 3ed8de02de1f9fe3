// A stand-in for the `envoy` binary, so envoy-runner.ts (flags, admin address
// file, readiness, listener discovery, stopping) can be tested where Envoy
// cannot be installed. It is NOT Envoy and proves nothing about Envoy itself
// (envoy.test.ts does that where Envoy exists). It accepts the flags the runner
// passes, reads the generated bootstrap, checks that the filter JSON in it is
// what the generator derives from the same endpoints and options, serves it
// with the dev gateway, writes its admin address, and exits on SIGTERM.
//
//   node --import tsx tests/e2e/fake-envoy.ts -c envoy.yaml --admin-address-path FILE [--concurrency N] ...
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import YAML from "yaml";
import { DevGateway } from "../../scripts/gateway/dev-gateway.ts";
import { NAMES, filterConfigurationText, resolveConfig, type Variant } from "../../scripts/gateway/envoy-config.ts";
import { ENVOY_VERSION } from "../../scripts/gateway/envoy-version.ts";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function fail(message: string): never {
  process.stderr.write(`[critical][main] fake-envoy: ${message}\n`);
  process.exit(1);
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`\nenvoy  version: 0000000000000000000000000000000000000000/${ENVOY_VERSION}/Clean/RELEASE/BoringSSL\n\n`);
  process.exit(0);
}
const configPath = flag(args, "-c") ?? fail("no -c");
const adminAddressPath = flag(args, "--admin-address-path") ?? fail("no --admin-address-path");
const concurrency = Number(flag(args, "--concurrency") ?? "1");

let boot: Obj;
try {
  boot = YAML.parse(readFileSync(configPath, "utf8")) as Obj;
} catch (e) {
  fail(`cannot read ${configPath}: ${(e as Error).message}`);
}
const sa = (a: Obj) => `${a.socket_address.address.includes(":") ? `[${a.socket_address.address}]` : a.socket_address.address}:${a.socket_address.port_value}`;
const listener = boot.static_resources?.listeners?.[0] ?? fail("no listener");
const wasm = listener.filter_chains[0].filters[0].typed_config.http_filters.find((f: { name: string }) => f.name === "envoy.filters.http.wasm").typed_config.config;
const text: string = wasm.configuration.value;
const filter = JSON.parse(text) as Obj;
const clusters = boot.static_resources.clusters as Obj[];
const variant: Variant = clusters.some((c) => c.name === NAMES.chosenCluster) ? "original_dst" : "override_host";
const config = resolveConfig({
  endpoints: filter.endpoints,
  variant,
  envoyVersion: wasm.allow_on_headers_stop_iteration ? ENVOY_VERSION : "1.34.0",
  wasmFile: resolve(process.cwd(), wasm.vm_config.code.local.filename),
  listen: sa(listener.address),
  admin: sa(boot.admin.address),
  destinationHeader: filter.destinationHeader,
  maxBodyBytes: filter.maxBodyBytes,
  metrics: filter.metrics === undefined ? false : { path: filter.metrics.path, timeoutMs: filter.metrics.timeoutMs, dialect: filter.metrics.dialect },
});
if (filterConfigurationText(config) !== text) fail("the filter configuration in the bootstrap is not what the generator derives from it");
const hosts = (clusters.find((c) => c.name === NAMES.modelCluster) ?? fail("no model cluster")).load_assignment.endpoints[0].lb_endpoints.map((e: Obj) => sa(e.endpoint.address));
if (JSON.stringify(hosts) !== JSON.stringify(config.endpoints.map((e) => e.address))) fail("the model cluster's hosts are not the filter's endpoints");

const gateway = await DevGateway.start({ config, concurrency }).catch((e: Error) => fail(e.message));
writeFileSync(adminAddressPath, new URL(gateway.adminUrl).host);
process.stdout.write(`[info][main] fake-envoy: listening on ${gateway.listenerAddress}\n`);
process.on("SIGTERM", () => {
  void gateway.stop().then(() => process.exit(0));
});
