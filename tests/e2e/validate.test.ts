// `envoy --mode validate` on every configuration we ship. Validation mode
// builds the whole configuration without opening sockets, and that includes
// creating the Wasm filter: Envoy starts the VM and calls the filter's
// proxy_on_configure (a refused configuration fails validation with the
// filter's own log line: the negative control below shows it). So this checks
// both Envoy's side of each file and the filter's side of its JSON.
//
// envoy/generated/*.yaml are complete bootstraps and are validated as they
// are. The Kubernetes manifests hold fragments that Envoy Gateway or Istio
// merge into bootstraps of their own; each fragment that is Envoy
// configuration (a cluster, stats tags, an extension config, a filter's
// JSON) is put into a generated bootstrap in the place it lands in and
// validated there.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import YAML from "yaml";
import { NAMES, envoyBootstrap, resolveConfig } from "../../scripts/gateway/envoy-config.ts";
import { writeEdsFile } from "../../scripts/gateway/eds-file.ts";
import { EXAMPLE_PEER_TOKEN_ENV } from "../../scripts/gateway/generate.ts";
import { ROOT, WASM, envoyTest, requireEnvoy } from "./real-envoy.ts";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "prefix-router-validate-"));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Validation {
  ok: boolean;
  output: string;
}

/** `envoy --mode validate -c FILE` from the repository root (the configs name build/prefix_router.wasm relative to it). */
async function validate(configPath: string, env: Record<string, string> = {}): Promise<Validation> {
  const { runner } = await requireEnvoy();
  return new Promise((resolve) => {
    execFile(
      runner.command,
      [...runner.prefix, "--mode", "validate", "-c", configPath, "--log-level", "warn", "--component-log-level", "wasm:info"],
      { cwd: ROOT, env: { ...process.env, ...runner.env, ...env }, timeout: 60_000, maxBuffer: 4 << 20 },
      (error, stdout, stderr) => resolve({ ok: error === null, output: `${stdout}\n${stderr}` }),
    );
  });
}

async function validateObject(name: string, bootstrap: Obj, env: Record<string, string> = {}): Promise<Validation> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, YAML.stringify(bootstrap));
  return validate(path, env);
}

function assertValid(v: Validation, what: string): void {
  assert.ok(v.ok, `${what} failed envoy --mode validate:\n${v.output}`);
  assert.match(v.output, /OK/, `${what}: no OK from envoy --mode validate:\n${v.output}`);
}

/** A generated bootstrap for the filter, with parts to replace. */
function bootstrap(): Obj {
  return envoyBootstrap(resolveConfig({ endpoints: ["127.0.0.1:8001", "127.0.0.1:8002"], wasmFile: WASM, listen: "127.0.0.1:0", admin: "127.0.0.1:0" })) as Obj;
}

function httpFilters(b: Obj): Obj[] {
  return b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
}

function wasmFilter(b: Obj): Obj {
  const f = httpFilters(b).find((x) => x.name === "envoy.filters.http.wasm");
  assert.ok(f, "the generated bootstrap has no Wasm filter");
  return f;
}

function withFilterJson(b: Obj, json: string): Obj {
  wasmFilter(b).typed_config.config.configuration.value = json;
  return b;
}

function documents(text: string): Obj[] {
  return YAML.parseAllDocuments(text).map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

envoyTest("envoy --mode validate accepts every committed bootstrap in envoy/generated/", { timeout: 120_000 }, async () => {
  const files = (await readdir(join(ROOT, "envoy/generated"))).filter((f) => f.endsWith(".yaml")).sort();
  assert.ok(files.length >= 2, `expected the override_host and ORIGINAL_DST examples, found ${files.join(", ")}`);
  // The peers example reads its token from Envoy's environment, as it would where it runs.
  const env = { [EXAMPLE_PEER_TOKEN_ENV]: "validate-stand-in-secret-0123" };
  for (const f of files) assertValid(await validate(join(ROOT, "envoy/generated", f), env), `envoy/generated/${f}`);
});

envoyTest("--eds: Envoy validates the bootstrap (EDS cluster, admin guard on a Unix socket, the filter's discovery) with an empty host file, and refuses it while the file is missing", { timeout: 60_000 }, async () => {
  const eds = join(dir, "eds", "models.json");
  await writeEdsFile(eds, NAMES.modelCluster, [], "0");
  const config = resolveConfig({ eds, adminGuardSocket: join(dir, "guard.sock"), wasmFile: WASM, listen: "127.0.0.1:0", admin: "127.0.0.1:9901" });
  assertValid(await validateObject("eds", envoyBootstrap(config) as Obj), "the --eds bootstrap");
  const missing = resolveConfig({ eds: join(dir, "nowhere", "models.json"), adminGuardSocket: join(dir, "guard.sock"), wasmFile: WASM, listen: "127.0.0.1:0", admin: "127.0.0.1:9901" });
  const v = await validateObject("eds-missing", envoyBootstrap(missing) as Obj);
  assert.equal(v.ok, false, "Envoy accepted an EDS file that does not exist");
  assert.match(v.output, /paths must refer to an existing path in the system/);
});

envoyTest("validation runs the filter: a configuration the filter refuses fails with the filter's own log line", { timeout: 60_000 }, async () => {
  const v = await validateObject("refused", withFilterJson(bootstrap(), '{"endpoints":[{"address":"127.0.0.1:8001"}],"weights":{"prefix":-1}}'));
  assert.equal(v.ok, false, "Envoy accepted a configuration the filter must refuse");
  assert.match(v.output, /prefix-router: invalid configuration: weights\.prefix/);
});

envoyTest("peers.tokenEnv: Envoy hands the VM the variable host_env_keys names; without it in Envoy's environment the filter refuses the configuration", { timeout: 60_000 }, async () => {
  const name = "PREFIX_ROUTER_VALIDATE_PEER_TOKEN";
  const config = resolveConfig({
    endpoints: ["127.0.0.1:8001"], wasmFile: WASM, listen: "127.0.0.1:0", admin: "127.0.0.1:0",
    peers: { addresses: ["127.0.0.1:10000"], tokenEnv: name },
  });
  const b = envoyBootstrap(config) as Obj;
  assert.deepEqual(wasmFilter(b).typed_config.config.vm_config.environment_variables, { host_env_keys: [name] });
  assertValid(await validateObject("token-env", b, { [name]: "validate-token-0123456789" }), "a bootstrap whose token is in Envoy's environment");
  const absent = await validateObject("token-env-absent", b);
  assert.equal(absent.ok, false, "Envoy accepted a configuration whose token variable is not set");
  assert.match(absent.output, new RegExp(`peers\\.tokenEnv: the Wasm VM has no environment variable ${name}`));
  const short = await validateObject("token-env-short", b, { [name]: "too-short" });
  assert.equal(short.ok, false);
  assert.match(short.output, new RegExp(`peers\\.tokenEnv: the value of ${name} must be 16 to 256`));
  assert.doesNotMatch(short.output, /too-short/, "the value is not logged");
});

envoyTest("Envoy Gateway manifests: the filter's config and the EnvoyProxy bootstrap merge validate in Envoy", { timeout: 60_000 }, async () => {
  const docs = documents(await readFile(join(ROOT, "envoy/k8s/envoy-gateway/prefix-router.yaml"), "utf8"));
  const policy = docs.find((d) => d.kind === "EnvoyExtensionPolicy");
  const proxy = docs.find((d) => d.kind === "EnvoyProxy");
  assert.ok(policy && proxy);
  // Envoy Gateway hands wasm[].config to the filter as JSON text, and env.hostKeys to the VM as
  // vm_config.environment_variables.host_env_keys (internal/xds/translator/wasm.go); the variables
  // come from the proxy container's environment (a Secret there, a stand-in here).
  const wasm = policy.spec.wasm[0];
  const b = withFilterJson(bootstrap(), JSON.stringify(wasm.config));
  const hostKeys: string[] = wasm.env?.hostKeys ?? [];
  if (hostKeys.length > 0) wasmFilter(b).typed_config.config.vm_config.environment_variables = { host_env_keys: hostKeys };
  const containerEnv = Object.fromEntries(hostKeys.map((k) => [k, "validate-stand-in-secret-0123"]));
  // The EnvoyProxy bootstrap is merged into Envoy Gateway's own: its stats tags, listeners and clusters are appended.
  const merge = YAML.parse(proxy.spec.bootstrap.value) as Obj;
  b.stats_config = merge.stats_config;
  const clusters: Obj[] = merge.static_resources.clusters;
  b.static_resources.clusters = [...b.static_resources.clusters.filter((c: Obj) => !clusters.some((m) => m.name === c.name)), ...clusters];
  b.static_resources.listeners.push(...merge.static_resources.listeners);
  assertValid(await validateObject("envoy-gateway", b, containerEnv), "Envoy Gateway's filter config and bootstrap merge");
});

envoyTest("Istio manifests: the ECDS extension config, the cluster patches and the WasmPlugin's config validate in Envoy", { timeout: 60_000 }, async () => {
  const wasm = documents(await readFile(join(ROOT, "envoy/k8s/istio/envoyfilter-wasm.yaml"), "utf8"))[0];
  const extension = wasm.spec.configPatches.find((p: Obj) => p.applyTo === "EXTENSION_CONFIG").patch.value;
  // The istio-agent replaces the remote oci:// code with the local file it fetched (istio/istio pkg/wasm/convert.go).
  const typed = structuredClone(extension.typed_config);
  typed.config.vm_config.code = { local: { filename: WASM } };
  const b = bootstrap();
  wasmFilter(b).typed_config = typed;

  const clusterPatches = documents(await readFile(join(ROOT, "envoy/k8s/istio/envoyfilter-clusters.yaml"), "utf8"))[0].spec.configPatches as Obj[];
  const models = b.static_resources.clusters.find((c: Obj) => c.name === "prefix_router_models");
  for (const p of clusterPatches.filter((x) => x.applyTo === "CLUSTER")) {
    if (p.patch.operation === "MERGE") {
      // A MERGE onto the Service's cluster: the generated model cluster stands in for it.
      delete models.lb_policy;
      delete models.load_balancing_policy;
      Object.assign(models, structuredClone(p.patch.value));
    } else {
      b.static_resources.clusters = [...b.static_resources.clusters.filter((c: Obj) => c.name !== p.patch.value.name), structuredClone(p.patch.value)];
    }
  }
  for (const p of clusterPatches.filter((x) => x.applyTo === "LISTENER")) {
    // MERGE onto the gateway's HTTP listener (the generated one stands in for it); ADD: the admin guard.
    if (p.patch.operation === "ADD") b.static_resources.listeners.push(structuredClone(p.patch.value));
    else Object.assign(b.static_resources.listeners[0], p.patch.value);
  }
  // The token's variable, which the istio-proxy container has from the Secret (peers.yaml).
  const hostKeys: string[] = typed.config.vm_config.environment_variables?.host_env_keys ?? [];
  const proxyEnv = Object.fromEntries(hostKeys.map((k) => [k, "validate-stand-in-secret-0123"]));
  assertValid(await validateObject("istio-envoyfilter", b, proxyEnv), "Istio's EnvoyFilter patches");

  const plugin = documents(await readFile(join(ROOT, "envoy/k8s/istio/wasmplugin.yaml"), "utf8")).find((d) => d.kind === "WasmPlugin");
  assert.ok(plugin);
  // Istio hands pluginConfig to the filter as JSON text (istio/istio pilot/pkg/model/extensions.go).
  // vmConfig.env with valueFrom HOST becomes host_env_keys (istio/istio pilot/pkg/model/extensions.go).
  const wb = withFilterJson(bootstrap(), JSON.stringify(plugin.spec.pluginConfig));
  const fromHost = (plugin.spec.vmConfig?.env ?? []).filter((e: Obj) => e.valueFrom === "HOST").map((e: Obj) => e.name as string);
  if (fromHost.length > 0) wasmFilter(wb).typed_config.config.vm_config.environment_variables = { host_env_keys: fromHost };
  assertValid(await validateObject("istio-wasmplugin", wb, proxyEnv), "the WasmPlugin's filter config");
});
