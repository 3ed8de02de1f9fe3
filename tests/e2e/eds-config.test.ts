// The generator's --eds mode: the model cluster reads its hosts from a file
// (EDS), the filter's `discovery` follows that cluster through the admin guard,
// and the guard's one route is the exact path the filter asks for. What Envoy
// does with it is in envoy-admin-guard.test.ts and validate.test.ts; here, the
// shape of the bootstrap, the refusals, the EDS file and the path rule.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import YAML from "yaml";
import {
  DEFAULT_ADMIN_GUARD_SOCKET, GatewayConfigError, NAMES, envoyBootstrap, filterConfiguration, renderEnvoyYaml, resolveConfig,
  type GatewayConfigInput,
} from "../../scripts/gateway/envoy-config.ts";
import { adminClustersPath } from "../../scripts/gateway/admin-guard.ts";
import { edsDiscoveryResponse, edsFileText, parseEdsHosts, writeEdsFile } from "../../scripts/gateway/eds-file.ts";
import { EXAMPLE_EDS } from "../../scripts/gateway/generate.ts";
import { DevGateway } from "../../scripts/gateway/dev-gateway.ts";
import { checkFilterConfiguration } from "../../scripts/gateway/filter-check.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function parts(input: Partial<GatewayConfigInput> = {}) {
  const config = resolveConfig({ eds: "/var/run/eds/models.json", ...input });
  const boot = YAML.parse(renderEnvoyYaml(config)) as Obj;
  const listeners = boot.static_resources.listeners as Obj[];
  const hcm = listeners[0].filter_chains[0].filters[0].typed_config;
  const wasm = (hcm.http_filters as Obj[]).find((f) => f.name === "envoy.filters.http.wasm")!.typed_config.config;
  const clusters = boot.static_resources.clusters as Obj[];
  const cluster = (name: string) => clusters.find((c) => c.name === name)!;
  return { config, boot, listeners, clusters, cluster, filter: JSON.parse(wasm.configuration.value) as Obj };
}

test("--eds: the model cluster reads the file, the filter follows that cluster through the guard cluster", () => {
  const { config, boot, listeners, cluster, filter } = parts();
  assert.deepEqual(YAML.parse(renderEnvoyYaml(config)), envoyBootstrap(config));
  const models = cluster(NAMES.modelCluster);
  assert.equal(models.type, "EDS");
  assert.equal(models.load_assignment, undefined);
  assert.deepEqual(models.eds_cluster_config, {
    eds_config: { resource_api_version: "V3", path_config_source: { path: "/var/run/eds/models.json", watched_directory: { path: "/var/run/eds" } } },
  });
  // override_host and the retries are unchanged.
  assert.equal(models.load_balancing_policy.policies[0].typed_extension_config.name, "envoy.load_balancing_policies.override_host");
  assert.equal(models.circuit_breakers.thresholds[0].max_retries, 1024);
  assert.deepEqual(boot.node, { id: "prefix_router", cluster: "prefix_router" });
  // The filter: discovery instead of endpoints, naming the model cluster and the guard's cluster.
  assert.equal(filter.endpoints, undefined);
  assert.deepEqual(filter.discovery, { cluster: NAMES.modelCluster, adminCluster: NAMES.adminGuard });
  assert.deepEqual(Object.keys(filter), Object.keys(filterConfiguration(config)));
  // The guard: listener on the socket, 0600; its cluster points at that socket, the admin cluster at the admin port.
  assert.equal(listeners.length, 2);
  assert.equal(listeners[0].name, NAMES.listener, "the model listener stays first (the launcher reads the first)");
  const guard = listeners[1];
  assert.equal(guard.name, NAMES.adminGuard);
  assert.deepEqual(guard.address, { pipe: { path: DEFAULT_ADMIN_GUARD_SOCKET, mode: 0o600 } });
  assert.deepEqual(cluster(NAMES.adminGuard).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, { pipe: { path: DEFAULT_ADMIN_GUARD_SOCKET } });
  assert.deepEqual(cluster(NAMES.adminCluster).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, { socket_address: { address: "127.0.0.1", port_value: 9901 } });
});

test("the guard's route forwards exactly GET adminClustersPath(model cluster) to the admin cluster; everything else is 403", () => {
  const { listeners } = parts({ adminGuardSocket: "/run/prefix-router/guard.sock", admin: "127.0.0.1:19000" });
  assert.deepEqual(listeners[1].address.pipe.path, "/run/prefix-router/guard.sock");
  const hcm = listeners[1].filter_chains[0].filters[0].typed_config;
  const routes = hcm.route_config.virtual_hosts[0].routes as Obj[];
  assert.equal(routes.length, 2);
  assert.deepEqual(routes[0].match, {
    path: "/clusters",
    headers: [{ name: ":method", string_match: { exact: "GET" } }, { name: ":path", string_match: { exact: "/clusters?filter=^prefix_router_models$" } }],
  });
  assert.equal(routes[0].route.cluster, NAMES.adminCluster);
  assert.deepEqual(routes[1], { match: { prefix: "" }, direct_response: { status: 403 } });
  // No path normalization that could turn another request into the allowed one.
  assert.equal(hcm.normalize_path, undefined);
  assert.equal(hcm.merge_slashes, undefined);
});

test("adminClustersPath: characters outside [A-Za-z0-9_-] become '.', anchored, nothing percent-encoded", () => {
  assert.equal(adminClustersPath("prefix_router_models"), "/clusters?filter=^prefix_router_models$");
  assert.equal(adminClustersPath("outbound|8000||vllm.models.svc.cluster.local"), "/clusters?filter=^outbound.8000..vllm.models.svc.cluster.local$");
  assert.equal(adminClustersPath("httproute/models/models/rule/0"), "/clusters?filter=^httproute.models.models.rule.0$");
  assert.equal(adminClustersPath("a b+c?d&e=f%g#h"), "/clusters?filter=^a.b.c.d.e.f.g.h$");
  assert.equal(adminClustersPath("é"), "/clusters?filter=^.$");
});

test("--eds refusals: with endpoints, with admin port 0, with original_dst, a bad socket path, not .json, discovery options without eds", () => {
  const bad: Array<[GatewayConfigInput, RegExp]> = [
    [{ eds: "/x/m.json", endpoints: ["10.0.0.5:8000"] }, /^eds: give either endpoints or eds/],
    [{ eds: "/x/m.json", admin: "127.0.0.1:0" }, /^admin: port 0 with eds/],
    [{ eds: "/x/m.json", variant: "original_dst" }, /^eds: needs the override_host variant/],
    [{ eds: "/x/m.yaml" }, /^eds: .*must end in \.json/],
    [{ eds: "/x/m.json", adminGuardSocket: "guard.sock" }, /^adminGuardSocket: .*absolute/],
    [{ eds: "/x/m.json", adminGuardSocket: `/${"a".repeat(120)}` }, /^adminGuardSocket: .*107 bytes/],
    [{ eds: "/x/m.json", discovery: { metricsPort: 70000 } }, /^discovery\.metricsPort/],
    [{ endpoints: ["10.0.0.5:8000"], adminGuardSocket: "/tmp/g.sock" }, /^adminGuardSocket: only with eds/],
    [{ endpoints: ["10.0.0.5:8000"], discovery: {} }, /^discovery: only with eds/],
    [{ endpoints: ["10.0.0.5:8000"], filter: { discovery: {} } }, /^filter\.discovery: set it through its own option/],
    [{}, /^endpoints: at least one endpoint is required \(or eds/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => resolveConfig(input), (e: unknown) => e instanceof GatewayConfigError && message.test(e.message), JSON.stringify(input));
  }
  // metricsPort and the polling fields reach the filter; 0 is the filter's default, so it is left out.
  const { filter } = parts({ discovery: { metricsPort: 9000, intervalMs: 500, timeoutMs: 300, maxEndpoints: 64 } });
  assert.deepEqual(filter.discovery, { cluster: NAMES.modelCluster, adminCluster: NAMES.adminGuard, intervalMs: 500, timeoutMs: 300, maxEndpoints: 64, metricsPort: 9000 });
  assert.equal(parts({ discovery: { metricsPort: 0 } }).filter.discovery.metricsPort, undefined);
});

test("the built filter accepts the generated discovery configuration", async () => {
  const problem = await checkFilterConfiguration(WASM, resolveConfig({ eds: "/x/m.json", discovery: { metricsPort: 9000 } }));
  assert.equal(problem, null);
});

test("the dev gateway refuses --eds in one clear line", async () => {
  await assert.rejects(DevGateway.start({ config: resolveConfig({ eds: "/x/m.json" }), concurrency: 1 }), /^GatewayConfigError: eds: the dev gateway does not serve EDS/);
});

test("the EDS file: one ClusterLoadAssignment, health_status only where given; written by a rename, no temporary file left", async () => {
  const r = edsDiscoveryResponse("c", [{ address: "10.0.0.5:8000" }, { address: "[fd00::7]:80", health: "DRAINING" }], "7") as Obj;
  assert.equal(r.version_info, "7");
  assert.equal(r.resources.length, 1);
  assert.equal(r.resources[0]["@type"], "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
  assert.equal(r.resources[0].cluster_name, "c");
  assert.deepEqual(r.resources[0].endpoints[0].lb_endpoints, [
    { endpoint: { address: { socket_address: { address: "10.0.0.5", port_value: 8000 } } } },
    { endpoint: { address: { socket_address: { address: "fd00::7", port_value: 80 } } }, health_status: "DRAINING" },
  ]);
  assert.throws(() => edsDiscoveryResponse("c", [{ address: "vllm-0:8000" }], "1"), /hosts\[0\]: "vllm-0:8000"/);
  assert.deepEqual(parseEdsHosts("10.0.0.5:8000, [::1]:80=draining,"), [{ address: "10.0.0.5:8000" }, { address: "[::1]:80", health: "DRAINING" }]);
  assert.throws(() => parseEdsHosts("10.0.0.5:8000=sick"), /health must be one of/);

  const dir = await mkdtemp(join(tmpdir(), "prefix-router-eds-"));
  try {
    const path = join(dir, "sub", "models.json");
    await writeEdsFile(path, "c", [{ address: "10.0.0.5:8000" }], "1");
    await writeEdsFile(path, "c", [], "2");
    assert.equal(await readFile(path, "utf8"), edsFileText("c", [], "2"));
    assert.deepEqual(await readdir(join(dir, "sub")), ["models.json"]);
    await assert.rejects(writeEdsFile(join(dir, "models.yaml"), "c", [], "1"), /must end in \.json/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the committed EDS example file is what the generator writes", () => {
  const committed = readFileSync(`${ROOT}${EXAMPLE_EDS.file}`, "utf8");
  assert.equal(committed, edsFileText(NAMES.modelCluster, EXAMPLE_EDS.hosts, EXAMPLE_EDS.version), `${EXAMPLE_EDS.file} is stale: run node --import tsx scripts/gateway/config.ts --examples`);
});

test("config.ts --eds writes a missing EDS file with no hosts, and leaves an existing one alone; eds-file.ts replaces it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "prefix-router-eds-cli-"));
  try {
    const file = join(dir, "eds", "models.json");
    const run = (script: string, args: string[]) => spawnSync(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, encoding: "utf8" });
    const first = run("scripts/gateway/config.ts", ["--eds", file, "--no-check"]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^# prefix-router: Envoy bootstrap for the hosts in .*models\.json \(EDS/);
    assert.match(first.stderr, /with no hosts \(Envoy does not start without it\)/);
    assert.equal(await readFile(file, "utf8"), edsFileText(NAMES.modelCluster, [], "0"));
    const hosts = run("scripts/gateway/eds-file.ts", ["--out", file, "--hosts", "10.0.0.5:8000,10.0.0.6:8000=DRAINING", "--version", "3"]);
    assert.equal(hosts.status, 0, hosts.stderr);
    const second = run("scripts/gateway/config.ts", ["--eds", file, "--no-check"]);
    assert.equal(second.status, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /no hosts/);
    assert.equal(await readFile(file, "utf8"), edsFileText(NAMES.modelCluster, [{ address: "10.0.0.5:8000" }, { address: "10.0.0.6:8000", health: "DRAINING" }], "3"));
    const both = run("scripts/gateway/config.ts", ["--eds", file, "--endpoints", "10.0.0.5:8000"]);
    assert.equal(both.status, 1);
    assert.match(both.stderr, /^config: eds: give either endpoints or eds, not both/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
