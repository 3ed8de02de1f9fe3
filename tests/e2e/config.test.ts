// The config generator: the committed examples are what the generator makes
// now; the filter's configuration and Envoy's clusters agree by construction
// (endpoints, header, buffer limits, metrics cluster, vm_id); the version
// cut-overs pick the right fields; endpoint addresses are validated exactly as
// the filter validates them (the built .wasm is asked); and the stats_tags turn
// the filter's stat names into the Prometheus series the README promises
// (rendered by the host emulator, which applies Envoy's tag-extraction rule).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import YAML from "yaml";
import { Envoy, VirtualClock } from "../../scripts/host/index.ts";
import {
  NAMES, envoyBootstrap, filterConfiguration, filterConfigurationText, renderEnvoyYaml, resolveConfig, GatewayConfigError,
  type GatewayConfigInput, type PeersInput,
} from "../../scripts/gateway/envoy-config.ts";
import { EXAMPLES, renderExample } from "../../scripts/gateway/generate.ts";
import { addressError } from "../../scripts/gateway/address.ts";
import { adminClustersPath, adminGuardClusters, adminGuardListener } from "../../scripts/gateway/admin-guard.ts";
import { checkFilterConfiguration } from "../../scripts/gateway/filter-check.ts";
import { STATS_TAGS } from "../../scripts/gateway/stats-tags.ts";
import { ENVOY_VERSION, compareVersions, parseEnvoyVersionOutput } from "../../scripts/gateway/envoy-version.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
const FOUR = ["10.0.0.5:8000", "10.0.0.6:8000", "[fd00::7]:8000", "10.0.0.8:8000"];

// Loose views of the generated bootstrap, enough to walk it.
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function parts(input: Partial<GatewayConfigInput> = {}) {
  const config = resolveConfig({ endpoints: FOUR, ...input });
  const boot = YAML.parse(renderEnvoyYaml(config)) as Obj;
  const listener = boot.static_resources.listeners[0];
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  const wasm = (hcm.http_filters as Obj[]).find((f) => f.name === "envoy.filters.http.wasm")!.typed_config.config;
  const clusters = boot.static_resources.clusters as Obj[];
  const filter = JSON.parse(wasm.configuration.value) as Obj;
  return { config, boot, listener, hcm, wasm, clusters, filter };
}

const hostsOf = (cluster: Obj) =>
  cluster.load_assignment.endpoints[0].lb_endpoints.map((e: Obj) => {
    const sa = e.endpoint.address.socket_address;
    return sa.address.includes(":") ? `[${sa.address}]:${sa.port_value}` : `${sa.address}:${sa.port_value}`;
  });

test("the committed examples in envoy/generated/ are what the generator makes now", () => {
  for (const ex of EXAMPLES) {
    const now = renderExample(ex).text;
    const committed = readFileSync(`${ROOT}${ex.file}`, "utf8");
    assert.equal(committed, now, `${ex.file} is stale: run node --import tsx scripts/gateway/config.ts --examples`);
  }
});

test("the rendered YAML is the bootstrap object, and the filter reads the very JSON text embedded in it", () => {
  const config = resolveConfig({ endpoints: FOUR });
  assert.deepEqual(YAML.parse(renderEnvoyYaml(config)), envoyBootstrap(config));
  const { wasm } = parts();
  assert.equal(wasm.configuration["@type"], "type.googleapis.com/google.protobuf.StringValue");
  assert.equal(wasm.configuration.value, filterConfigurationText(config));
  assert.deepEqual(JSON.parse(filterConfigurationText(config)), filterConfiguration(config));
});

test("override_host: the filter's endpoints are the cluster's hosts, and both sides use one header, one limit, one vm_id", () => {
  const { config, boot, listener, wasm, clusters, filter } = parts({ maxBodyBytes: 300_000 });
  const models = clusters.find((c) => c.name === NAMES.modelCluster)!;
  assert.deepEqual(hostsOf(models), FOUR);
  assert.deepEqual(filter.endpoints.map((e: Obj) => e.address), FOUR);
  const policy = models.load_balancing_policy.policies[0].typed_extension_config;
  assert.equal(policy.name, "envoy.load_balancing_policies.override_host");
  assert.deepEqual(policy.typed_config.override_host_sources, [{ header: filter.destinationHeader }]);
  assert.equal(policy.typed_config.fallback_policy.policies[0].typed_extension_config.name, "envoy.load_balancing_policies.round_robin");
  // 2 × maxBodyBytes on both sides of Envoy.
  assert.equal(filter.maxBodyBytes, 300_000);
  assert.equal(listener.per_connection_buffer_limit_bytes, 600_000);
  assert.equal(models.per_connection_buffer_limit_bytes, 600_000);
  // The scrapes' cluster exists and is ORIGINAL_DST on x-envoy-original-dst-host.
  const metrics = clusters.find((c) => c.name === filter.metrics.cluster)!;
  assert.equal(metrics.type, "ORIGINAL_DST");
  assert.deepEqual(metrics.original_dst_lb_config, { use_http_header: true });
  // The Wasm filter as the brief requires it.
  assert.equal(wasm.vm_config.vm_id, NAMES.vmId);
  assert.equal(wasm.vm_config.runtime, "envoy.wasm.runtime.v8");
  assert.equal(wasm.failure_policy, "FAIL_OPEN");
  assert.equal(wasm.allow_on_headers_stop_iteration, true);
  assert.equal(boot.admin.address.socket_address.address, "127.0.0.1");
  assert.deepEqual(boot.stats_config.stats_tags, STATS_TAGS.map((t) => ({ tag_name: t.tagName, regex: t.regex })));
  assert.equal(config.envoyVersion, ENVOY_VERSION);
});

test("original_dst variant: ORIGINAL_DST reads the filter's header, only for configured endpoints; everything else round robin", () => {
  const { hcm, clusters, filter, wasm } = parts({ variant: "original_dst", envoyVersion: "1.34.0" });
  const routes = hcm.route_config.virtual_hosts[0].routes as Obj[];
  assert.equal(routes.length, FOUR.length + 1);
  FOUR.forEach((address, i) => {
    assert.deepEqual(routes[i].match.headers, [{ name: filter.destinationHeader, string_match: { exact: address } }]);
    assert.equal(routes[i].route.cluster, NAMES.chosenCluster);
  });
  assert.equal(routes[FOUR.length].match.headers, undefined);
  assert.equal(routes[FOUR.length].route.cluster, NAMES.modelCluster);
  const chosen = clusters.find((c) => c.name === NAMES.chosenCluster)!;
  assert.equal(chosen.type, "ORIGINAL_DST");
  assert.deepEqual(chosen.original_dst_lb_config, { use_http_header: true, http_header_name: filter.destinationHeader });
  const fallback = clusters.find((c) => c.name === NAMES.modelCluster)!;
  assert.equal(fallback.lb_policy, "ROUND_ROBIN");
  assert.deepEqual(hostsOf(fallback), FOUR);
  // 1.34 has failure_policy (>= 1.33) but not allow_on_headers_stop_iteration (>= 1.35).
  assert.equal(wasm.failure_policy, "FAIL_OPEN");
  assert.equal(wasm.allow_on_headers_stop_iteration, undefined);
});

test("version cut-overs: fields newer than the target Envoy are left out, impossible combinations refused", () => {
  const old = parts({ variant: "original_dst", envoyVersion: "1.30.2" }).wasm;
  assert.equal(old.failure_policy, undefined);
  assert.equal(old.fail_open, true);
  const current = parts({ variant: "original_dst" }).wasm;
  assert.equal(current.allow_on_headers_stop_iteration, true);
  assert.throws(() => resolveConfig({ endpoints: FOUR, envoyVersion: "1.34.9" }), /override_host needs Envoy >= 1\.35\.0/);
  assert.throws(() => resolveConfig({ endpoints: FOUR, variant: "original_dst", envoyVersion: "1.21.0" }), /needs Envoy >= 1\.22\.0/);
  assert.ok(compareVersions("1.35.0", "1.34.9") > 0 && compareVersions("1.9.0", "1.10.0") < 0);
  assert.equal(parseEnvoyVersionOutput("envoy  version: 5a1b2c3d/1.40.0/Clean/RELEASE/BoringSSL"), "1.40.0");
  assert.equal(parseEnvoyVersionOutput("envoy  version: abc/1.36.0-dev/Modified/DEBUG/BoringSSL"), "1.36.0");
});

test("the generator refuses what would make the two sides disagree or expose the admin API", () => {
  const bad: Array<[Partial<GatewayConfigInput>, RegExp]> = [
    [{ endpoints: [] }, /^endpoints: at least one/],
    [{ endpoints: ["10.0.0.5:8000", "10.0.0.5:8000"] }, /endpoints\[1\]\.address: duplicate of endpoints\[0\]/],
    [{ endpoints: ["vllm-0.vllm:8000"] }, /host names are not allowed/],
    [{ admin: "0.0.0.0:9901" }, /not a loopback address/],
    [{ destinationHeader: "X-Upper" }, /not a lower-case header name/],
    [{ maxBodyBytes: 100 }, /maxBodyBytes: must be a whole number between 1024/],
    [{ filter: { endpoints: [] } }, /filter\.endpoints: set it through its own option/],
    [{ metrics: { dialect: "tgi" } }, /metrics\.dialect/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => resolveConfig({ endpoints: FOUR, ...input }), (e: unknown) => e instanceof GatewayConfigError && message.test(e.message), JSON.stringify(input));
  }
  // Port 0 is fine for the listener and admin (the OS picks), never for an endpoint.
  assert.doesNotThrow(() => resolveConfig({ endpoints: FOUR, listen: "127.0.0.1:0", admin: "[::1]:0" }));
  assert.throws(() => resolveConfig({ endpoints: ["10.0.0.5:0"] }), /port must be 1-65535/);
});

test("fallback hosts: the filter lists fallbackHosts, the override_host route retries once per entry; ORIGINAL_DST gets one address", () => {
  const { filter, hcm, clusters } = parts();
  assert.equal(filter.fallbackHosts, 2);
  const route = hcm.route_config.virtual_hosts[0].routes[0].route;
  assert.equal(route.retry_policy.num_retries, filter.fallbackHosts);
  assert.equal(route.retry_policy.retry_on, "connect-failure,refused-stream,reset-before-request");
  assert.deepEqual(route.retry_policy.retry_host_predicate.map((p: Obj) => p.name), ["envoy.retry_host_predicates.previous_hosts"]);
  assert.equal(clusters[0].circuit_breakers.thresholds[0].max_retries, 1024);
  const three = parts({ fallbackHosts: 3 });
  assert.equal(three.filter.fallbackHosts, 3);
  assert.equal(three.hcm.route_config.virtual_hosts[0].routes[0].route.retry_policy.num_retries, 3);
  const none = parts({ fallbackHosts: 0 });
  assert.equal(none.filter.fallbackHosts, 0);
  assert.equal(none.hcm.route_config.virtual_hosts[0].routes[0].route.retry_policy, undefined);
  assert.equal(none.clusters[0].circuit_breakers, undefined);
  // ORIGINAL_DST: its routes match one address exactly, so the filter must set one; no retries
  // (ORIGINAL_DST would connect to the same address again).
  const od = parts({ variant: "original_dst" });
  assert.equal(od.filter.fallbackHosts, 0);
  for (const r of od.hcm.route_config.virtual_hosts[0].routes as Obj[]) assert.equal(r.route.retry_policy, undefined);
  assert.throws(() => resolveConfig({ endpoints: FOUR, variant: "original_dst", fallbackHosts: 1 }), /fallbackHosts: must be 0 with the original_dst variant/);
  assert.throws(() => resolveConfig({ endpoints: FOUR, fallbackHosts: 4 }), /fallbackHosts: must be a whole number between 0 and 3/);
  assert.throws(() => resolveConfig({ endpoints: FOUR, filter: { fallbackHosts: 1 } }), /filter\.fallbackHosts: set it through its own option/);
});

test("IPv6 endpoints are written as Envoy names the host, in the filter's list and the cluster alike", () => {
  const { config, filter, clusters } = parts({ endpoints: ["[0:0:0:0:0:0:0:1]:8000", "[FD00:0::07]:80", "[::FFFF:7F00:1]:81", "10.0.0.5:80"] });
  const expected = ["[::1]:8000", "[fd00::7]:80", "[::ffff:127.0.0.1]:81", "10.0.0.5:80"];
  assert.deepEqual(config.endpoints.map((e) => e.address), expected);
  assert.deepEqual(filter.endpoints.map((e: Obj) => e.address), expected);
  assert.deepEqual(hostsOf(clusters[0]), expected);
  assert.throws(() => resolveConfig({ endpoints: ["[::1]:80", "[0::1]:80"] }), /endpoints\[1\]\.address: duplicate of endpoints\[0\]/);
  assert.throws(() => resolveConfig({ endpoints: ["[::1.2.3.4]:80"] }), /IPv4-compatible/);
});

test("endpoint addresses are validated exactly as the filter validates them (the built .wasm decides)", async () => {
  const cases = [
    "10.0.0.5:8000", "255.255.255.255:65535", "[::1]:80", "[2001:db8::1]:8000", "[::ffff:10.0.0.1]:80", "[fd00:0:0:0:0:0:0:7]:1",
    "10.0.0.5", "10.0.0.256:80", "010.0.0.5:80", "10.0.0.5:080", "10.0.0.5:0", "10.0.0.5:65536", "10.0.0:80", "host:80",
    "[::1]", "[::1]80", "::1:80", "[1::2::3]:80", "[12345::]:80", "[1:2:3:4:5:6:7:8:9]:80", "[:1]:80", " 10.0.0.5:80",
    "[::1.2.3.4]:80", "[::102:304]:80", "[0:0:0:0:0:0:0:1]:80", "[::ffff:1.2.3.4]:80",
  ];
  for (const address of cases) {
    const ours = addressError(address) === null;
    const config = { ...resolveConfig({ endpoints: ["10.9.9.9:9"] }) };
    config.endpoints = [{ address, socket: { ip: "", port: 0, ipv6: false }, metricsAddress: null }];
    const theirs = (await checkFilterConfiguration(WASM, config)) === null;
    assert.equal(ours, theirs, `${JSON.stringify(address)}: generator says ${ours ? "valid" : "invalid"}, the filter ${theirs ? "accepts" : "rejects"} it`);
  }
});

test("stats_tags: the filter's stat names come out of /stats/prometheus as labelled series", () => {
  const envoy = new Envoy({ clock: new VirtualClock(), statsTags: [...STATS_TAGS] });
  try {
    const add = (name: string, n: bigint) => envoy.stats.counter(`wasmcustom.${name}`).add(n);
    add("prefix_router.endpoint.10.0.0.5:8000.picks", 3n);
    add("prefix_router.endpoint.[2001:db8::1]:8000.picks", 4n);
    add("prefix_router.endpoint.[::ffff:10.0.0.1]:80.scrape_failures", 1n);
    add("prefix_router.passthrough.not_json", 2n);
    add("prefix_router.passthrough.headers_not_held", 5n);
    add("prefix_router.routed", 7n);
    add("prefix_router.index.journal_gaps", 1n);
    envoy.stats.gauge("wasmcustom.prefix_router.endpoint.10.0.0.5:8000.in_flight").set(2n);
    const page = envoy.stats.prometheus();
    for (const line of [
      'prefix_router_endpoint_picks{endpoint="10.0.0.5:8000"} 3',
      'prefix_router_endpoint_picks{endpoint="[2001:db8::1]:8000"} 4',
      'prefix_router_endpoint_scrape_failures{endpoint="[::ffff:10.0.0.1]:80"} 1',
      'prefix_router_passthrough{reason="not_json"} 2',
      'prefix_router_passthrough{reason="headers_not_held"} 5',
      "prefix_router_routed{} 7",
      "prefix_router_index_journal_gaps{} 1",
      'prefix_router_endpoint_in_flight{endpoint="10.0.0.5:8000"} 2',
    ]) {
      assert.ok(page.split("\n").includes(line), `missing ${line} in\n${page}`);
    }
  } finally {
    envoy.shutdown();
  }
});

test("peers' token from Envoy's environment: the config names the variable, Envoy hands it to the VM, the secret appears nowhere", async () => {
  const name = "PREFIX_ROUTER_PEER_TOKEN";
  const { config, wasm, filter } = parts({ peers: { addresses: ["10.0.1.1:10000", "10.0.1.2:10000"], tokenEnv: name } });
  assert.deepEqual(wasm.vm_config.environment_variables, { host_env_keys: [name] });
  assert.equal(filter.peers.tokenEnv, name);
  assert.equal(filter.peers.token, undefined);
  assert.equal(await checkFilterConfiguration(WASM, config), null, "the filter accepts it (with a stand-in value)");
  // With a token instead, no environment is handed over.
  const given = parts({ peers: { addresses: ["10.0.1.1:10000"], token: "a-token-of-24-characters" } });
  assert.equal(given.wasm.vm_config.environment_variables, undefined);
  assert.equal(given.filter.peers.token, "a-token-of-24-characters");
  const refused: [PeersInput, string][] = [
    [{ addresses: ["10.0.1.1:10000"], token: "a-token-of-24-characters", tokenEnv: name }, "peers"],
    [{ addresses: ["10.0.1.1:10000"] }, "peers"],
    [{ addresses: ["10.0.1.1:10000"], tokenEnv: "1ST" }, "peers.tokenEnv"],
    [{ addresses: ["10.0.1.1:10000"], tokenEnv: "A-B" }, "peers.tokenEnv"],
  ];
  for (const [peers, field] of refused) {
    assert.throws(() => resolveConfig({ endpoints: FOUR, peers }), (e: unknown) => e instanceof GatewayConfigError && e.field === field, JSON.stringify(peers));
  }
  const cli = spawnSync(process.execPath, ["--import", "tsx", "scripts/gateway/config.ts", "--endpoints", "127.0.0.1:8001", "--peers", "127.0.0.1:10000", "--peer-token-env", name, "--no-check"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, new RegExp(`host_env_keys:\\s*\\n\\s*- ${name}`));
  assert.match(cli.stdout, new RegExp(`"tokenEnv": "${name}"`));
});

test("config.ts CLI: writes the bootstrap to stdout, and fails in one line on a bad address", () => {
  const ok = spawnSync(process.execPath, ["--import", "tsx", "scripts/gateway/config.ts", "--endpoints", "127.0.0.1:8001", "--no-check"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^# prefix-router: Envoy bootstrap for 1 endpoint \(override_host\)/);
  const bad = spawnSync(process.execPath, ["--import", "tsx", "scripts/gateway/config.ts", "--endpoints", "127.0.0.1:8001,localhost:8002"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'config: endpoints[1].address: "localhost:8002": not a valid IPv4 address (host names are not allowed)\n');
});

// ---- the static Kubernetes manifests follow the same rules ---------------------------------

function manifests(file: string): Obj[] {
  return YAML.parseAllDocuments(readFileSync(`${ROOT}envoy/k8s/${file}`, "utf8")).map((d) => d.toJS() as Obj).filter((d) => d !== null);
}
const kind = (docs: Obj[], k: string) => docs.find((d) => d.kind === k)!;
const bytes = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]) * (1 << 20);

/**
 * The generator's view of a manifest's filter configuration: it must render
 * back to the same object. With discovery the generator names its own model
 * cluster; the manifest's is the platform's (checked against its naming rule
 * by each test), everything else must match.
 */
function regenerated(filter: Obj): Obj {
  const config = resolveConfig({
    ...(filter.discovery === undefined ? { endpoints: filter.endpoints } : { eds: "/eds/models.json", discovery: { metricsPort: filter.discovery.metricsPort } }),
    destinationHeader: filter.destinationHeader,
    maxBodyBytes: filter.maxBodyBytes,
    metrics: filter.metrics && { path: filter.metrics.path, timeoutMs: filter.metrics.timeoutMs, dialect: filter.metrics.dialect },
    fallbackHosts: filter.fallbackHosts,
    // peers.members: the generator's peers cluster, whatever name it resolves (checked by each test).
    ...(filter.peers === undefined ? {} : { admin: "127.0.0.1:19000", peers: { dns: "peers.invalid:1", tokenEnv: filter.peers.tokenEnv } }),
  });
  const out = filterConfiguration(config);
  if (filter.discovery !== undefined) (out.discovery as Obj).cluster = filter.discovery.cluster;
  return out;
}

/** The admin guard a manifest carries must be the generator's for those clusters, socket and admin address. */
function assertAdminGuard(listener: Obj, clusters: Obj[], followed: string[], admin: { ip: string; port: number }): string {
  const socketPath: string = listener.address.pipe.path;
  const routes: Obj[] = listener.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
  assert.deepEqual(routes.slice(0, -1).map((r) => r.match.headers[1].string_match.exact), followed.map(adminClustersPath));
  assert.deepEqual(listener, adminGuardListener({ clusters: followed, socketPath, admin }));
  assert.deepEqual(clusters, adminGuardClusters({ clusters: followed, socketPath, admin }));
  return socketPath;
}

test("Envoy Gateway manifests: filter config, endpointOverride header, buffer limits, stats_tags, metrics cluster, patched filter name agree", async () => {
  const docs = manifests("envoy-gateway/prefix-router.yaml");
  const eep = kind(docs, "EnvoyExtensionPolicy");
  const wasm = eep.spec.wasm[0];
  const filter = wasm.config;
  assert.deepEqual(filter, regenerated(filter));
  assert.equal(filter.metrics.cluster, NAMES.metricsCluster);
  const accepted = await checkFilterConfiguration(WASM, resolveConfig({ eds: "/eds/models.json" }));
  assert.equal(accepted, null);
  // The route's cluster as Envoy Gateway names it (internal/gatewayapi/helpers.go irRouteDestinationName).
  const route = kind(docs, "HTTPRoute");
  assert.equal(route.spec.rules.length, 1);
  assert.equal(filter.discovery.cluster, `httproute/${route.metadata.namespace}/${route.metadata.name}/rule/0`);
  assert.equal(filter.discovery.adminCluster, NAMES.adminGuard);
  assert.equal(wasm.failOpen, true);
  const btp = kind(docs, "BackendTrafficPolicy");
  assert.deepEqual(btp.spec.loadBalancer.endpointOverride.extractFrom, [{ header: filter.destinationHeader }]);
  assert.equal(bytes(btp.spec.connection.bufferLimit), 2 * filter.maxBodyBytes);
  // One retry per fallback host, on failures where the pod cannot have started the request.
  assert.equal(btp.spec.retry.numRetries, filter.fallbackHosts);
  assert.deepEqual(btp.spec.retry.retryOn.triggers, ["connect-failure", "refused-stream"]);
  assert.ok(btp.spec.circuitBreaker.maxParallelRetries >= 1024);
  assert.equal(bytes(kind(docs, "ClientTrafficPolicy").spec.connection.bufferLimit), 2 * filter.maxBodyBytes);
  const proxy = kind(docs, "EnvoyProxy");
  assert.equal(proxy.spec.provider.kubernetes.envoyDeployment.container.image, `docker.io/envoyproxy/envoy:distroless-v${ENVOY_VERSION}`);
  const boot = YAML.parse(proxy.spec.bootstrap.value) as Obj;
  assert.deepEqual(boot.stats_config.stats_tags, STATS_TAGS.map((t) => ({ tag_name: t.tagName, regex: t.regex })));
  // The same metrics cluster as the generator's.
  const generated = envoyBootstrap(resolveConfig({ endpoints: FOUR })) as Obj;
  const merged = boot.static_resources.clusters as Obj[];
  assert.deepEqual(merged.filter((c) => c.name === NAMES.metricsCluster), generated.static_resources.clusters.filter((c: Obj) => c.name === NAMES.metricsCluster));
  // The admin guard: the generator's, for the route's cluster and Envoy Gateway's admin (bootstrap.go EnvoyAdminPort).
  const guardClusters = merged.filter((c) => c.name === NAMES.adminGuard || c.name === NAMES.adminCluster);
  const socket = assertAdminGuard(boot.static_resources.listeners[0], guardClusters, [filter.discovery.cluster, filter.peers.members.cluster], { ip: "127.0.0.1", port: 19000 });
  // The replicas trade decisions (peers): they find each other through a headless Service over this
  // Gateway's proxy pods (internal/gatewayapi/translator.go OwningGatewayNameLabel), on the listener's
  // container port (listener.go servicePortToContainerPort: +10000 below 1024), as the generator's
  // --peers-dns cluster resolves it.
  const gateway = kind(docs, "Gateway");
  const service = kind(docs, "Service");
  assert.equal(service.spec.clusterIP, "None", "headless: the name resolves to every pod");
  assert.deepEqual(service.spec.selector, {
    "gateway.envoyproxy.io/owning-gateway-name": gateway.metadata.name,
    "gateway.envoyproxy.io/owning-gateway-namespace": gateway.metadata.namespace,
  });
  const listenerPort: number = gateway.spec.listeners[0].port;
  const containerPort = listenerPort < 1024 ? listenerPort + 10000 : listenerPort;
  assert.deepEqual(service.spec.ports.map((p: Obj) => [p.port, p.targetPort]), [[containerPort, containerPort]]);
  assert.equal(filter.peers.members.cluster, NAMES.peersCluster);
  assert.equal(filter.peers.members.adminCluster, NAMES.adminGuard);
  const peersDns = `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local:${containerPort}`;
  const withPeers = envoyBootstrap(resolveConfig({ endpoints: FOUR, admin: "127.0.0.1:19000", peers: { dns: peersDns, tokenEnv: filter.peers.tokenEnv } })) as Obj;
  assert.deepEqual(merged.filter((c) => c.name === NAMES.peersCluster), withPeers.static_resources.clusters.filter((c: Obj) => c.name === NAMES.peersCluster));
  // The token: a Secret's key in the proxy container's environment, handed to the VM by env.hostKeys; never in the config.
  assert.equal(filter.peers.token, undefined);
  assert.deepEqual(wasm.env.hostKeys, [filter.peers.tokenEnv]);
  const tokenVar = (proxy.spec.provider.kubernetes.envoyDeployment.container.env as Obj[]).find((e) => e.name === filter.peers.tokenEnv);
  assert.ok(tokenVar?.valueFrom?.secretKeyRef?.name, "the token variable comes from a Secret");
  assert.notEqual(tokenVar.valueFrom.secretKeyRef.optional, true, "without the Secret the pods do not start (not a gateway without its token)");
  const deployment = proxy.spec.provider.kubernetes.envoyDeployment;
  const mount = deployment.container.volumeMounts.find((m: Obj) => socket.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `no volume mounted where the guard socket ${socket} is`);
  assert.ok(deployment.pod.volumes.some((v: Obj) => v.name === mount.name && v.emptyDir !== undefined), "the guard socket's directory is an emptyDir");
  // Envoy Gateway names the filter after the policy (internal/gatewayapi/envoyextensionpolicy.go irConfigNameForWasm).
  const patch = kind(docs, "EnvoyPatchPolicy").spec.jsonPatches[0].operation;
  assert.ok(patch.jsonPath.includes(`'envoy.filters.http.wasm/envoyextensionpolicy/${eep.metadata.namespace}/${eep.metadata.name}/wasm/0'`), patch.jsonPath);
  assert.equal(patch.path, "/allow_on_headers_stop_iteration");
  assert.equal(patch.value, true);
  // The listener's stats named as the generated configs name them (envoy/observability/ reads them).
  const statPrefix = kind(docs, "EnvoyPatchPolicy").spec.jsonPatches[1];
  assert.equal(statPrefix.name, kind(docs, "EnvoyPatchPolicy").spec.jsonPatches[0].name, "both patches are on the gateway's listener");
  assert.deepEqual({ ...statPrefix.operation, jsonPath: undefined }, { op: "replace", jsonPath: undefined, path: "/stat_prefix", value: NAMES.statPrefix });
  assert.ok(statPrefix.operation.jsonPath.includes("'envoy.filters.network.http_connection_manager'"), statPrefix.operation.jsonPath);
});

test("Istio manifests: WasmPlugin and EnvoyFilter carry the same filter config; clusters, limits and stats_tags agree", () => {
  const plugin = kind(manifests("istio/wasmplugin.yaml"), "WasmPlugin");
  const filter = plugin.spec.pluginConfig;
  assert.deepEqual(filter, regenerated(filter));
  assert.equal(plugin.spec.failStrategy, "FAIL_OPEN");
  const ef = kind(manifests("istio/envoyfilter-wasm.yaml"), "EnvoyFilter");
  const ext = ef.spec.configPatches.find((p: Obj) => p.applyTo === "EXTENSION_CONFIG").patch.value;
  const cfg = ext.typed_config.config;
  assert.deepEqual(JSON.parse(cfg.configuration.value), filter);
  assert.equal(cfg.vm_config.vm_id, NAMES.vmId);
  // RemoteDataSource.sha256 is required (min_len 1). For an oci:// URL the
  // istio-agent compares it with the image's manifest digest in hex, without
  // the "sha256:" prefix (pkg/wasm/cache.go, imagefetcher.go); a digest in
  // the URL too must be the same one.
  const remote = cfg.vm_config.code.remote;
  assert.match(remote.sha256, /^[0-9a-f]{64}$/, "vm_config.code.remote.sha256: 64 hex digits, no sha256: prefix");
  const pinned = /@sha256:([0-9a-f]{64})$/.exec(remote.http_uri.uri);
  if (pinned !== null) assert.equal(remote.sha256, pinned[1], "the URL's digest and sha256 disagree");
  assert.match(readFileSync(`${ROOT}envoy/k8s/istio/envoyfilter-wasm.yaml`, "utf8"), /crane digest --platform linux\/amd64/, "the manifest says how to fill sha256 from the built image");
  assert.equal(cfg.allow_on_headers_stop_iteration, true);
  assert.equal(cfg.failure_policy, "FAIL_OPEN");
  const httpFilter = ef.spec.configPatches.find((p: Obj) => p.applyTo === "HTTP_FILTER").patch.value;
  assert.equal(httpFilter.name, ext.name);
  const clusters = kind(manifests("istio/envoyfilter-clusters.yaml"), "EnvoyFilter").spec.configPatches as Obj[];
  const models = clusters.find((p) => p.applyTo === "CLUSTER" && p.patch.operation === "MERGE")!.patch.value;
  assert.deepEqual(models.load_balancing_policy.policies[0].typed_extension_config.typed_config.override_host_sources, [{ header: filter.destinationHeader }]);
  assert.equal(models.per_connection_buffer_limit_bytes, 2 * filter.maxBodyBytes);
  const metrics = clusters.find((p) => p.applyTo === "CLUSTER" && p.patch.operation === "ADD")!.patch.value;
  assert.equal(metrics.name, filter.metrics.cluster);
  // Discovery: the Service's cluster as Istio names it, through the generator's admin guard on Istio's admin port.
  const serviceMatch = clusters.find((p) => p.applyTo === "CLUSTER" && p.patch.operation === "MERGE")!.match.cluster;
  assert.equal(filter.discovery.cluster, `outbound|${serviceMatch.portNumber}||${serviceMatch.service}`);
  const guardListener = clusters.find((p) => p.applyTo === "LISTENER" && p.patch.operation === "ADD")!.patch.value;
  const added = clusters.filter((p) => p.applyTo === "CLUSTER" && p.patch.operation === "ADD").map((p) => p.patch.value);
  const guardClusters = added.filter((c) => c.name !== NAMES.metricsCluster && c.name !== NAMES.peersCluster);
  const socket = assertAdminGuard(guardListener, guardClusters, [filter.discovery.cluster, filter.peers.members.cluster], { ip: "127.0.0.1", port: 15000 });
  // The replicas (peers.yaml): a headless Service over the gateway's pods, on the listener's port, resolved
  // as the generator's --peers-dns cluster; the token from the proxy's environment, in both manifests alike.
  const service = kind(manifests("istio/peers.yaml"), "Service");
  assert.equal(service.spec.clusterIP, "None");
  assert.deepEqual(service.spec.selector, ef.spec.workloadSelector.labels);
  const listenerPort: number = clusters.find((p) => p.applyTo === "LISTENER" && p.patch.operation === "MERGE")!.match.listener.portNumber;
  assert.deepEqual(service.spec.ports.map((p: Obj) => [p.port, p.targetPort]), [[listenerPort, listenerPort]]);
  assert.equal(filter.peers.members.cluster, NAMES.peersCluster);
  const peersDns = `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local:${listenerPort}`;
  const withPeers = envoyBootstrap(resolveConfig({ endpoints: FOUR, admin: "127.0.0.1:15000", peers: { dns: peersDns, tokenEnv: filter.peers.tokenEnv } })) as Obj;
  assert.deepEqual(added.filter((c) => c.name === NAMES.peersCluster), withPeers.static_resources.clusters.filter((c: Obj) => c.name === NAMES.peersCluster));
  assert.equal(filter.peers.token, undefined);
  assert.deepEqual(cfg.vm_config.environment_variables, { host_env_keys: [filter.peers.tokenEnv] });
  assert.deepEqual(plugin.spec.vmConfig.env, [{ name: filter.peers.tokenEnv, valueFrom: "HOST" }]);
  assert.match(readFileSync(`${ROOT}envoy/k8s/istio/peers.yaml`, "utf8"), new RegExp(`--from-literal=${filter.peers.tokenEnv}=`), "peers.yaml says how to create the token's Secret under the variable's name");
  assert.ok(socket.startsWith("/etc/istio/proxy/"), "the guard socket is in the istio-agent's emptyDir");
  assert.equal(clusters.find((p) => p.applyTo === "LISTENER")!.patch.value.per_connection_buffer_limit_bytes, 2 * filter.maxBodyBytes);
  // The gateway listener's stats named as the generated configs name them, on the same port.
  const hcm = clusters.find((p) => p.applyTo === "NETWORK_FILTER")!;
  assert.equal(hcm.match.listener.portNumber, clusters.find((p) => p.applyTo === "LISTENER" && p.patch.operation === "MERGE")!.match.listener.portNumber);
  assert.equal(hcm.match.listener.filterChain.filter.name, "envoy.filters.network.http_connection_manager");
  assert.equal(hcm.patch.operation, "MERGE");
  assert.equal(hcm.patch.value.typed_config.stat_prefix, NAMES.statPrefix);
  // The filter's tags, then the listener's label that Istio's use_all_default_tags: false drops.
  const stats = kind(manifests("istio/gateway-stats.yaml"), "ConfigMap");
  assert.deepEqual(JSON.parse(stats.data["custom_bootstrap.json"]).stats_config.stats_tags, [
    ...STATS_TAGS.map((t) => ({ tag_name: t.tagName, regex: t.regex })),
    { tag_name: "envoy_http_conn_manager_prefix", regex: String.raw`^http\.((${NAMES.statPrefix})\.)` },
  ]);
  // What Istio's stats matcher must keep (the pod annotation the file's comment gives).
  const statsText = readFileSync(`${ROOT}envoy/k8s/istio/gateway-stats.yaml`, "utf8");
  for (const prefix of ["wasmcustom.prefix_router", `http.${NAMES.statPrefix}.`, `extension_config_discovery.http_filter.${ext.name}.`]) {
    assert.ok(statsText.includes(`#              - ${prefix}\n`), `gateway-stats.yaml does not include ${prefix}`);
  }
});

test("a client's destination header is dropped by Envoy itself before the Wasm filter", () => {
  for (const variant of ["override_host", "original_dst"] as const) {
    const { hcm, config } = parts({ variant });
    const names = (hcm.http_filters as Obj[]).map((f) => f.name);
    assert.deepEqual(names, ["envoy.filters.http.header_mutation", "envoy.filters.http.wasm", "envoy.filters.http.router"], variant);
    assert.deepEqual(hcm.http_filters[0].typed_config.mutations.request_mutations, [{ remove: config.destinationHeader }], variant);
  }
});
