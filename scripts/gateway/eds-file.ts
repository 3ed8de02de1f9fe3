// The model cluster's hosts served through filesystem EDS (`config.ts --eds FILE`):
// the DiscoveryResponse FILE holds, written atomically so a running Envoy
// applies one whole new version. Also a CLI for whatever keeps FILE current:
//
//   node --import tsx scripts/gateway/eds-file.ts --out FILE --hosts 10.0.0.5:8000,10.0.0.6:8000=DRAINING
//
// Envoy reacts to a rename into the watched directory (inotify IN_MOVED_TO:
// source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc),
// so the file is written next to FILE and renamed over it; a file edited in
// place gives Envoy no event, or a torn read. A file Envoy cannot parse is
// rejected and the previous hosts stay. Envoy refuses to start while FILE does
// not exist ("paths must refer to an existing path in the system"), which is
// why the generator writes an empty one first.
//
// Owns: the DiscoveryResponse and its atomic replacement. Must not: know the
// bootstrap (envoy-config.ts names the cluster and the file).
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { replaceFileAtomically } from "./files.ts";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { addressError, parseEndpointAddress } from "./address.ts";

/** envoy.config.core.v3.HealthStatus values an EDS host may carry (api/envoy/config/core/v3/health_check.proto). */
export const HEALTH_STATUSES = ["HEALTHY", "UNHEALTHY", "DRAINING", "DEGRADED", "TIMEOUT"] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export interface EdsHost {
  /** "ip:port" or "[ipv6]:port". */
  address: string;
  /** Absent: UNKNOWN, which Envoy treats as healthy. */
  health?: HealthStatus;
}

const CLA_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/** The DiscoveryResponse (envoy.service.discovery.v3) with one ClusterLoadAssignment for `clusterName`. */
export function edsDiscoveryResponse(clusterName: string, hosts: readonly EdsHost[], version: string): Record<string, unknown> {
  const lbEndpoints = hosts.map((h, i) => {
    const bad = addressError(h.address);
    if (bad !== null) throw new Error(`hosts[${i}]: "${h.address}": ${bad}`);
    if (h.health !== undefined && !HEALTH_STATUSES.includes(h.health)) throw new Error(`hosts[${i}]: health "${h.health}" is not one of ${HEALTH_STATUSES.join(", ")}`);
    const socket = parseEndpointAddress(h.address);
    const endpoint = { address: { socket_address: { address: socket.ip, port_value: socket.port } } };
    return h.health === undefined ? { endpoint } : { endpoint, health_status: h.health };
  });
  return {
    version_info: version,
    // An empty lb_endpoints list is a valid assignment: the cluster has no hosts.
    resources: [{ "@type": CLA_TYPE, cluster_name: clusterName, endpoints: [{ lb_endpoints: lbEndpoints }] }],
  };
}

/** The file's text: the DiscoveryResponse as indented JSON. */
export function edsFileText(clusterName: string, hosts: readonly EdsHost[], version: string): string {
  return `${JSON.stringify(edsDiscoveryResponse(clusterName, hosts, version), null, 2)}\n`;
}

/**
 * Replaces `path` atomically with the hosts of `clusterName`: a temporary file
 * in the same directory (a rename is atomic only within one filesystem), then
 * a rename over `path`. The directory is created if missing.
 */
export async function writeEdsFile(path: string, clusterName: string, hosts: readonly EdsHost[], version: string = String(Date.now())): Promise<void> {
  if (!path.endsWith(".json")) throw new Error(`EDS file "${path}": the name must end in .json (Envoy picks the parser by extension)`);
  const text = edsFileText(clusterName, hosts, version);
  await mkdir(dirname(path), { recursive: true });
  await replaceFileAtomically(path, text);
}

/** "ip:port[=HEALTH],…" as the CLI takes it. */
export function parseEdsHosts(list: string): EdsHost[] {
  return list.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const eq = s.lastIndexOf("=");
    if (eq < 0) return { address: s };
    const health = s.substring(eq + 1).toUpperCase() as HealthStatus;
    if (!HEALTH_STATUSES.includes(health)) throw new Error(`--hosts: "${s}": health must be one of ${HEALTH_STATUSES.join(", ")}`);
    return { address: s.substring(0, eq), health };
  });
}

const USAGE = `usage: node --import tsx scripts/gateway/eds-file.ts --out FILE --hosts ip:port[=HEALTH],... [--cluster NAME] [--version V]
  --out FILE       the file the bootstrap's --eds names; replaced atomically (a rename, which Envoy watches for)
  --hosts LIST     the model cluster's hosts; HEALTH is one of ${HEALTH_STATUSES.join(", ")} (default: healthy).
                   An empty list leaves the cluster with no hosts
  --cluster NAME   default prefix_router_models (the generator's model cluster)
  --version V      version_info (default: the current time in ms)`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      out: { type: "string" },
      hosts: { type: "string" },
      cluster: { type: "string", default: "prefix_router_models" },
      version: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.out === undefined || values.hosts === undefined) throw new Error(`--out and --hosts are required\n${USAGE}`);
  const hosts = parseEdsHosts(values.hosts);
  await writeEdsFile(values.out, values.cluster!, hosts, values.version);
  process.stderr.write(`wrote ${values.out} (${hosts.length} host${hosts.length === 1 ? "" : "s"} of ${values.cluster})\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`eds-file: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
