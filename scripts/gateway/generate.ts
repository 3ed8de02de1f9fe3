// Command-line options of the config generator, turned into a GatewayConfig and
// rendered text, plus the examples committed under envoy/generated/ (the tests
// check they are up to date by rendering them again). Owns: argument parsing,
// the example list. Must not: write files or exit (config.ts does).
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import {
  DEFAULT_ADMIN_GUARD_SOCKET, filterConfigurationText, parseEndpointList, renderEnvoyYaml, resolveConfig,
  type GatewayConfig, type GatewayConfigInput, type Variant,
} from "./envoy-config.ts";
import { discoveryResponseText, renderEcdsYaml } from "./ecds.ts";

export type Format = "envoy" | "filter";

export interface GenerateRequest {
  input: GatewayConfigInput;
  format: Format;
  out: string | null;
  /** Run the built .wasm's on_configure on the result (default: when the .wasm exists). */
  check: boolean | null;
  examples: boolean;
  help: boolean;
  /** Filesystem ECDS: the DiscoveryResponse file the bootstrap's Wasm filter reads its configuration from. */
  ecds: string | null;
  /** The filter's endpoints in that file, when a subset of the model cluster's (`input.endpoints`). */
  ecdsEndpoints: string | null;
}

export const USAGE = `usage: node --import tsx scripts/gateway/config.ts (--endpoints ip:port[=metricsIp:port],... | --eds FILE) [options]
  --endpoints LIST        the model servers, "ip:port" or "[ipv6]:port"; "=ip:port" names a separate metrics address
  --eds FILE              instead of --endpoints: the model cluster reads its hosts from FILE (EDS, a .json
                          DiscoveryResponse; relative to Envoy's working directory) and the filter follows the
                          cluster through the admin API (README "Endpoint discovery"). Envoy does not start
                          without FILE, so an empty one is written if missing; replace it with
                          node --import tsx scripts/gateway/eds-file.ts --out FILE --hosts ip:port[=DRAINING],...
                          Needs a fixed --admin port (not 0) and the override_host variant
  --admin-guard-socket P  with --eds: the Unix socket of the admin guard, the only way the filter reaches the
                          admin API (default ${DEFAULT_ADMIN_GUARD_SOCKET}; mode 0600)
  --metrics-port N        with --eds: the port of each host's metrics page (default: the port it serves on)
  --variant V             override_host (Envoy >= 1.35, default) | original_dst (Envoy without override_host)
  --envoy-version X.Y.Z   the Envoy the config is for (default: the pinned version); newer fields are left out
  --wasm PATH             the .wasm as Envoy opens it (default build/prefix_router.wasm)
  --listen IP:PORT        listener (default 127.0.0.1:10000; 0.0.0.0:10000 to serve other machines)
  --admin IP:PORT         admin API, loopback only (default 127.0.0.1:9901)
  --destination-header H  header the filter sets and Envoy reads (default x-gateway-destination-endpoint)
  --max-body-bytes N      larger bodies pass through; Envoy's buffers are set to 2N (default 1048576)
  --metrics-path P        model servers' Prometheus path (default /metrics)
  --metrics-dialect D     vllm | sglang | trtllm (default vllm)
  --no-metrics            route on the filter's own in-flight counts only
  --fallback-hosts N      endpoints the filter lists after its pick, 0-3, and the route's retries on connect
                          failure that go down that list (default 2; 0 and no retries for original_dst)
  --peers LIST            the listener addresses ip:port of every Envoy replica in front of these servers (this
                          one's may be among them): the filters trade routing decisions (README "Several Envoy
                          replicas"); needs --peer-token-file
  --peers-dns NAME:PORT   instead of --peers: a DNS name that resolves to every replica (a Kubernetes headless
                          Service) and their listener port; Envoy resolves it and the filter follows its hosts
                          through the admin guard (needs a fixed --admin port)
  --peer-token-file FILE  the secret all replicas share, 16 or more characters (the file's first line)
  --peer-token-env NAME   instead of --peer-token-file: Envoy's environment variable that holds the secret (e.g.
                          from a Kubernetes Secret); the config names the variable, never the secret
  --filter-json JSON      more filter fields, e.g. '{"weights":{"prefix":4}}'
  --no-access-log         no stdout access log
  --format F              envoy (bootstrap YAML, default) | filter (the filter's JSON configuration)
  --out FILE              write here instead of stdout
  --check / --no-check    have the built .wasm validate the filter configuration (default: if built)
  --examples              regenerate the committed examples in envoy/generated/
  --ecds FILE             serve the filter's configuration through filesystem ECDS: the bootstrap's Wasm
                          filter reads FILE (.json or .yaml; relative to Envoy's working directory), and
                          FILE is written with it. Run again with the same --ecds to change the running
                          filter: FILE is replaced atomically (a rename, which is what Envoy watches for)
  --ecds-endpoints LIST   the filter's endpoints in FILE, a subset of --endpoints (default: all of them).
                          The model cluster is static: an endpoint outside it is never honoured, so list
                          in --endpoints every endpoint the filter may come to name. Likewise a change of
                          --destination-header, --max-body-bytes or the metrics options needs the new
                          bootstrap too (Envoy's side reads them), i.e. a restart`;

export function parseGenerateArgs(argv: string[]): GenerateRequest {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      endpoints: { type: "string" },
      eds: { type: "string" },
      "admin-guard-socket": { type: "string" },
      "metrics-port": { type: "string" },
      variant: { type: "string" },
      "envoy-version": { type: "string" },
      wasm: { type: "string" },
      listen: { type: "string" },
      admin: { type: "string" },
      "destination-header": { type: "string" },
      "max-body-bytes": { type: "string" },
      "metrics-path": { type: "string" },
      "metrics-dialect": { type: "string" },
      "no-metrics": { type: "boolean", default: false },
      "fallback-hosts": { type: "string" },
      "filter-json": { type: "string" },
      peers: { type: "string" },
      "peers-dns": { type: "string" },
      "peer-token-file": { type: "string" },
      "peer-token-env": { type: "string" },
      "no-access-log": { type: "boolean", default: false },
      format: { type: "string", default: "envoy" },
      out: { type: "string" },
      check: { type: "boolean", default: false },
      "no-check": { type: "boolean", default: false },
      examples: { type: "boolean", default: false },
      ecds: { type: "string" },
      "ecds-endpoints": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const format = values.format as Format;
  if (format !== "envoy" && format !== "filter") throw new Error(`--format: "${values.format}" is not envoy or filter`);
  let filter: Record<string, unknown> | undefined;
  if (values["filter-json"] !== undefined) {
    try {
      filter = JSON.parse(values["filter-json"]) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`--filter-json: not JSON: ${(e as Error).message}`);
    }
  }
  let maxBodyBytes: number | undefined;
  if (values["max-body-bytes"] !== undefined) {
    maxBodyBytes = Number(values["max-body-bytes"]);
    if (!Number.isInteger(maxBodyBytes)) throw new Error(`--max-body-bytes: "${values["max-body-bytes"]}" is not a whole number`);
  }
  let fallbackHosts: number | undefined;
  if (values["fallback-hosts"] !== undefined) {
    fallbackHosts = Number(values["fallback-hosts"]);
    if (!Number.isInteger(fallbackHosts)) throw new Error(`--fallback-hosts: "${values["fallback-hosts"]}" is not a whole number`);
  }
  let metricsPort: number | undefined;
  if (values["metrics-port"] !== undefined) {
    metricsPort = Number(values["metrics-port"]);
    if (!Number.isInteger(metricsPort)) throw new Error(`--metrics-port: "${values["metrics-port"]}" is not a whole number`);
    if (values.eds === undefined) throw new Error("--metrics-port: only with --eds (with --endpoints, give each endpoint's metrics address as ip:port=metricsIp:port)");
  }
  if (values["admin-guard-socket"] !== undefined && values.eds === undefined) throw new Error("--admin-guard-socket: only with --eds");
  if (values.eds !== undefined && values["ecds-endpoints"] !== undefined) throw new Error("--ecds-endpoints: not with --eds (the filter follows the cluster's hosts)");
  const peerList = values.peers !== undefined || values["peers-dns"] !== undefined;
  if (values.peers !== undefined && values["peers-dns"] !== undefined) throw new Error("--peers and --peers-dns: give one");
  const tokenFile = values["peer-token-file"];
  const tokenEnv = values["peer-token-env"];
  if (tokenFile !== undefined && tokenEnv !== undefined) throw new Error("--peer-token-file and --peer-token-env: give one");
  if (peerList !== (tokenFile !== undefined || tokenEnv !== undefined)) throw new Error("--peers (or --peers-dns) and --peer-token-file (or --peer-token-env) go together");
  const secret = () => (tokenEnv !== undefined ? { tokenEnv } : { token: readFileSync(tokenFile!, "utf8").split("\n")[0].trim() });
  const peers = !peerList ? undefined : values.peers !== undefined
    ? { addresses: values.peers.split(",").map((a) => a.trim()).filter((a) => a.length > 0), ...secret() }
    : { dns: values["peers-dns"], ...secret() };
  const input: GatewayConfigInput = {
    endpoints: values.endpoints === undefined ? undefined : parseEndpointList(values.endpoints),
    eds: values.eds,
    adminGuardSocket: values["admin-guard-socket"],
    discovery: metricsPort === undefined ? undefined : { metricsPort },
    variant: values.variant as Variant | undefined,
    envoyVersion: values["envoy-version"],
    wasmFile: values.wasm,
    listen: values.listen,
    admin: values.admin,
    destinationHeader: values["destination-header"],
    maxBodyBytes,
    metrics: values["no-metrics"] ? false : { path: values["metrics-path"], dialect: values["metrics-dialect"] },
    filter,
    peers,
    accessLog: !values["no-access-log"],
    fallbackHosts,
  };
  if (values.ecds !== undefined && format !== "envoy") throw new Error("--ecds: only with --format envoy");
  if (values["ecds-endpoints"] !== undefined && values.ecds === undefined) throw new Error("--ecds-endpoints: only with --ecds");
  return {
    ecds: values.ecds ?? null,
    ecdsEndpoints: values["ecds-endpoints"] ?? null,
    input,
    format,
    out: values.out ?? null,
    check: values["no-check"] ? false : values.check ? true : null,
    examples: values.examples,
    help: values.help,
  };
}

/** The command line that regenerates `args` into `out`, for the file header. */
export function commandLine(args: string[], out: string | null): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ["node --import tsx scripts/gateway/config.ts", ...args.map(quote), ...(out ? ["--out", out] : [])].join(" ");
}

/** The DiscoveryResponse file of an --ecds request, and the filter configuration it carries. */
export interface EcdsOutput {
  file: string;
  text: string;
  config: GatewayConfig;
}

/** Renders a parsed request; the config is returned too for callers that check it. */
export function render(req: GenerateRequest, args: string[]): { text: string; config: GatewayConfig; ecds?: EcdsOutput } {
  const config = resolveConfig(req.input);
  if (req.ecds !== null) return renderEcds(req, req.ecds, config, args);
  const text = req.format === "filter"
    ? `${filterConfigurationText(config)}\n`
    : renderEnvoyYaml(config, { generatedBy: commandLine(args, req.out) });
  return { text, config };
}

/** --ecds: the bootstrap points at `file`, and `file` carries the filter's configuration. */
function renderEcds(req: GenerateRequest, file: string, config: GatewayConfig, args: string[]): { text: string; config: GatewayConfig; ecds: EcdsOutput } {
  let filterConfig = config;
  if (req.ecdsEndpoints !== null) {
    const subset = parseEndpointList(req.ecdsEndpoints);
    const cluster = new Set(config.endpoints.map((e) => e.address));
    const outside = subset.filter((e) => !cluster.has(e.address)).map((e) => e.address);
    if (outside.length > 0) throw new Error(`--ecds-endpoints: ${outside.join(", ")} not in --endpoints (the model cluster), so override_host would never honour it`);
    filterConfig = resolveConfig({ ...req.input, endpoints: subset });
  }
  const text = renderEcdsYaml(config, file, { generatedBy: commandLine(args, req.out) });
  return { text, config, ecds: { file, text: discoveryResponseText(filterConfig, file), config: filterConfig } };
}

/** Four loopback endpoints: the ports `npm run sim:servers -- --count 4 --port-base 8001` listens on. */
const EXAMPLE_ENDPOINTS = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003,127.0.0.1:8004";

export interface Example {
  file: string;
  args: string[];
}

/** The configs committed under envoy/generated/ (regenerate with --examples). */
export const EXAMPLES: readonly Example[] = Object.freeze([
  { file: "envoy/generated/envoy.yaml", args: ["--endpoints", EXAMPLE_ENDPOINTS] },
  // The last Envoy release without override_host, to show what older Envoy gets.
  { file: "envoy/generated/envoy-original-dst.yaml", args: ["--endpoints", EXAMPLE_ENDPOINTS, "--variant", "original_dst", "--envoy-version", "1.34.0"] },
  { file: "envoy/generated/filter-config.json", args: ["--endpoints", EXAMPLE_ENDPOINTS, "--format", "filter"] },
  // Endpoint discovery: the cluster's hosts from a file (EXAMPLE_EDS), followed by the filter.
  { file: "envoy/generated/envoy-eds.yaml", args: ["--eds", "envoy/generated/eds/models.json"] },
  // One of two replicas that trade decisions, the token in Envoy's environment (EXAMPLE_PEER_TOKEN_ENV).
  { file: "envoy/generated/envoy-peers.yaml", args: ["--endpoints", EXAMPLE_ENDPOINTS, "--peers", "127.0.0.1:10000,127.0.0.1:10001", "--peer-token-env", "PREFIX_ROUTER_PEER_TOKEN"] },
]);

/** The variable the peers example reads its token from: set it in Envoy's environment to run it. */
export const EXAMPLE_PEER_TOKEN_ENV = "PREFIX_ROUTER_PEER_TOKEN";

/**
 * The EDS file the --eds example reads, with the same four hosts, one of them
 * draining (relative to the repository root, where the example runs).
 */
export const EXAMPLE_EDS = Object.freeze({
  file: "envoy/generated/eds/models.json",
  hosts: [
    { address: "127.0.0.1:8001" }, { address: "127.0.0.1:8002" }, { address: "127.0.0.1:8003" },
    { address: "127.0.0.1:8004", health: "DRAINING" as const },
  ],
  version: "1",
});

export function renderExample(ex: Example): { text: string; config: GatewayConfig } {
  const req = parseGenerateArgs([...ex.args, "--out", ex.file]);
  return render(req, ex.args);
}
