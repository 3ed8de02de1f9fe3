// The filter's configuration served through filesystem ECDS (extension config
// discovery) instead of inline in the bootstrap, so it can change while Envoy
// runs: the bootstrap's Wasm filter becomes a `config_discovery` reference, and
// a file holds a DiscoveryResponse with the filter's TypedExtensionConfig.
// Envoy watches that file and applies each new version to new streams; a
// version the filter refuses (proxy_on_configure fails in Envoy's canary VM) is
// rejected and the previous one keeps running (tests/e2e/envoy-ecds.test.ts).
//
// Built on envoy-config.ts, never inside it: the Wasm filter's typed_config is
// taken from the generated bootstrap as it is, so ECDS and the static config
// carry the same plugin settings (failure_policy, allow_on_headers_stop_iteration,
// vm_id, …). Owns: the ECDS rewrite of a bootstrap, the DiscoveryResponse, and
// publishing it atomically. Must not: choose plugin settings of its own.
//
// Endpoints and ECDS: override_host only honours a host of the model cluster,
// and that cluster is static in the bootstrap. An endpoint added through ECDS
// alone is therefore never reached by the filter's pick (override_host falls
// back to round robin) until the cluster lists it too: generate the bootstrap
// from every endpoint the filter may ever name, and publish subsets through
// ECDS (or serve the cluster through CDS/EDS as well; not done here). The same
// holds for every value Envoy's side is derived from (envoy-config.ts): the
// destination header (override_host, header_mutation), maxBodyBytes (buffer
// limits) and the metrics cluster live in the bootstrap, so a version that
// changes them needs the matching bootstrap, i.e. a restart.
import { createHash } from "node:crypto";
import { replaceFileAtomically } from "./files.ts";
import YAML from "yaml";
import { envoyBootstrap, renderEnvoyYaml, type GatewayConfig, type RenderOptions } from "./envoy-config.ts";

export const WASM_FILTER = "envoy.filters.http.wasm";
export const WASM_TYPE_URL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const EXTENSION_CONFIG_TYPE_URL = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
/**
 * The ECDS resource name, also the HTTP filter's name in the chain. Envoy's ECDS
 * stats are `extension_config_discovery.http_filter.<this>.{config_reload,config_fail,…}`
 * (source/common/filter/config_discovery_impl.cc `FilterConfigSubscription`).
 */
export const ECDS_RESOURCE = "prefix_router";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function httpFilters(bootstrap: Obj): Obj[] {
  const filters = bootstrap?.static_resources?.listeners?.[0]?.filter_chains?.[0]?.filters?.[0]?.typed_config?.http_filters;
  if (!Array.isArray(filters)) throw new Error("the bootstrap has no HTTP filter chain");
  return filters as Obj[];
}

function wasmFilterIndex(bootstrap: Obj): number {
  const i = httpFilters(bootstrap).findIndex((f) => f.name === WASM_FILTER);
  if (i < 0) throw new Error(`the bootstrap has no ${WASM_FILTER} filter`);
  return i;
}

/**
 * MessageUtil::loadFromFile picks the parser by extension (.json, .yaml/.yml),
 * so the file name must say which one it is.
 */
function checkPath(path: string): void {
  if (!/\.(json|ya?ml)$/.test(path)) throw new Error(`ECDS file "${path}": the name must end in .json, .yaml or .yml (Envoy parses by extension)`);
}

/**
 * The HTTP filter entry that asks ECDS for its configuration. The file is
 * watched for a rename into place (inotify IN_MOVED_TO on its directory:
 * source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc
 * adds a MovedTo watch on the path), so it must be replaced atomically:
 * publishDiscoveryResponse does. No default_config: the listener waits for the
 * file's first version instead of serving without the filter.
 */
export function configDiscoveryFilter(discoveryPath: string): Obj {
  checkPath(discoveryPath);
  return {
    name: ECDS_RESOURCE,
    config_discovery: {
      config_source: { path_config_source: { path: discoveryPath }, resource_api_version: "V3" },
      type_urls: [WASM_TYPE_URL],
    },
  };
}

/**
 * Any xDS subscription, a file one included, needs the node's id and cluster
 * (source/common/config/utility.cc `checkLocalInfo`: Envoy refuses to start
 * without them). The flags --service-node / --service-cluster would do too.
 */
export const ECDS_NODE = Object.freeze({ id: "prefix-router", cluster: "prefix-router" });

/** The TypedExtensionConfig ECDS serves: the generated Wasm filter's typed_config under ECDS_RESOURCE. */
export function extensionConfig(c: GatewayConfig): Obj {
  const b = envoyBootstrap(c) as Obj;
  return { name: ECDS_RESOURCE, typed_config: structuredClone(httpFilters(b)[wasmFilterIndex(b)].typed_config) };
}

/** A version string that changes exactly when the served configuration does. */
export function configVersion(c: GatewayConfig): string {
  return createHash("sha256").update(JSON.stringify(extensionConfig(c))).digest("hex").slice(0, 16);
}

/** The DiscoveryResponse the file holds (envoy.service.discovery.v3.DiscoveryResponse). */
export function discoveryResponse(c: GatewayConfig, version: string = configVersion(c)): Obj {
  return {
    version_info: version,
    resources: [{ "@type": EXTENSION_CONFIG_TYPE_URL, ...extensionConfig(c) }],
  };
}

/** The file's text: JSON, or YAML when `path` ends in .yaml/.yml. */
export function discoveryResponseText(c: GatewayConfig, path: string, version?: string): string {
  checkPath(path);
  const r = discoveryResponse(c, version);
  return /\.ya?ml$/.test(path) ? YAML.stringify(r, { lineWidth: 0 }) : `${JSON.stringify(r, null, 2)}\n`;
}

/** The bootstrap YAML, comments kept, with the Wasm filter replaced by its ECDS reference. */
export function renderEcdsYaml(c: GatewayConfig, discoveryPath: string, options: RenderOptions = {}): string {
  const doc = YAML.parseDocument(renderEnvoyYaml(c, options));
  const path = ["static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config", "http_filters"];
  const index = wasmFilterIndex(doc.toJS() as Obj);
  const node = doc.createNode(configDiscoveryFilter(discoveryPath));
  node.commentBefore =
    ` prefix-router, configured through ECDS from ${discoveryPath} (a DiscoveryResponse with one\n` +
    " TypedExtensionConfig). Envoy applies a new version when the file is renamed into place; a\n" +
    " version the filter refuses is rejected and the previous one keeps routing. Keep it before the router.";
  doc.setIn([...path, index], node);
  if (!doc.has("node")) {
    const pair = doc.createPair("node", { ...ECDS_NODE });
    (pair.key as YAML.Scalar).commentBefore = " ECDS is an xDS subscription: Envoy requires the node's id and cluster for it.";
    // At the end: the file's header comment belongs to the first key.
    (doc.contents as YAML.YAMLMap).items.push(pair);
  }
  return doc.toString({ lineWidth: 0 });
}

/**
 * Replaces `path` atomically: write a temporary file next to it, then rename it
 * over the old one. Envoy reacts to the rename (IN_MOVED_TO) and reads a whole
 * file; writing in place would give it no event, or a torn read.
 */
export async function publishDiscoveryResponse(path: string, text: string): Promise<void> {
  checkPath(path);
  await replaceFileAtomically(path, text);
}
