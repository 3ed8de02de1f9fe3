// Envoy admin `/clusters` text for fuzzing the filter's reader of it
// (assembly/router/admin_clusters.ts): a generator of plausible answers, and
// a reference reading in JavaScript that the module's record is compared
// with, byte for byte.
//
// The answer comes from Envoy, not from a client, but a bug there, a proxy in
// between, or a cluster name that is a prefix of another must still never
// trap the VM or put an address the destination header cannot carry into the
// membership.
import type { Rng } from "./rng.ts";

/** The cluster assembly/fuzz.ts reads every input for. */
export const ADMIN_CLUSTER = "outbound|8000||vllm.models.svc.cluster.local";
/** assembly/fuzz.ts FUZZ_ADMIN_MAX_HOSTS. */
export const ADMIN_MAX_HOSTS = 64;
const MARKER = "::health_flags::";

export const ADMIN_TOKENS: readonly string[] = Object.freeze([
  ADMIN_CLUSTER, `${ADMIN_CLUSTER}::`, `${ADMIN_CLUSTER}-canary::`, MARKER, "::", "healthy", "/failed_active_hc",
  "/failed_outlier_check", "/failed_eds_health", "/degraded_active_hc", "/degraded_eds_health", "/pending_dynamic_removal",
  "/eds_status_draining", "/", "\n", "\r\n", "[", "]", ":", ",", " ", "10.0.0.1:8000", "[fd00::1]:8000", "::cx_active::0",
  "::hostname::", "::weight::1", "\u0000", "\u00ff",
]);

const FLAGS = [
  "healthy", "healthy", "healthy", "/failed_active_hc", "/failed_eds_health", "/eds_status_draining", "/degraded_eds_health",
  "/degraded_active_hc/degraded_eds_health", "/failed_active_hc/pending_active_hc", "/pending_dynamic_removal",
  "/failed_outlier_check/degraded_eds_health", "/future_flag", "", "healthy\r", "/",
];

function address(rng: Rng): string {
  switch (rng.int(6)) {
    case 0: return `[fd00::${rng.int(0xffff).toString(16)}]:${rng.range(1, 65535)}`;
    case 1: return `[::ffff:10.0.0.${rng.int(256)}]:8000`;
    case 2: return `10.0.0.${rng.int(256)}:8000,10.0.0.9:8000`; // a comma: never into the header
    case 3: return `host name:${rng.int(9)}`;
    default: return `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}:${rng.range(1, 65535)}`;
  }
}

/** An answer with hosts of the cluster, of a cluster whose name extends it, and the other lines Envoy writes. */
export function generateAdminText(rng: Rng): string {
  const lines = [`${ADMIN_CLUSTER}::observability_name::${ADMIN_CLUSTER}`, `${ADMIN_CLUSTER}::added_via_api::true`];
  const hosts = rng.chance(0.05) ? rng.range(60, 90) : rng.range(0, 20);
  for (let i = 0; i < hosts; i++) {
    const cluster = rng.chance(0.1) ? `${ADMIN_CLUSTER}-canary` : ADMIN_CLUSTER;
    const a = address(rng);
    lines.push(`${cluster}::${a}::cx_active::${rng.int(100)}`, `${cluster}::${a}::hostname::`);
    lines.push(`${cluster}::${a}${MARKER}${rng.pick(FLAGS)}`, `${cluster}::${a}::weight::1`);
  }
  if (rng.chance(0.5)) lines.sort(() => rng.int(3) - 1);
  return lines.join(rng.chance(0.1) ? "\r\n" : "\n") + (rng.chance(0.5) ? "\n" : "");
}

/** 1 healthy, 2 degraded, 3 excluded: the rule in admin_clusters.ts stateOfFlags. */
export function expectedState(flags: string): number {
  if (flags === "healthy") return 1;
  if (!flags.startsWith("/")) return 3;
  return flags.slice(1).split("/").every((t) => t.startsWith("degraded")) ? 2 : 3;
}

function usable(address: string): boolean {
  if (address.length < 1 || address.length > 255) return false;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c <= 0x20 || c === 0x2c || c >= 0x7f) return false;
  }
  return true;
}

export interface ExpectedHosts {
  /** Some line names the cluster. */
  known: boolean;
  hosts: Array<{ address: string; state: number }>;
  overflow: number;
}

/** What the filter should read out of `bytes` for ADMIN_CLUSTER, independently of its code. */
export function expectedHosts(bytes: Uint8Array): ExpectedHosts {
  const text = Buffer.from(bytes).toString("latin1");
  const prefix = `${ADMIN_CLUSTER}::`;
  const out: ExpectedHosts = { known: false, hosts: [], overflow: 0 };
  for (const line of text.split("\n")) {
    if (!line.startsWith(prefix) || line.length <= prefix.length) continue;
    out.known = true;
    const at = line.lastIndexOf(MARKER);
    if (at <= prefix.length) continue;
    const address = line.slice(prefix.length, at);
    if (!usable(address)) continue;
    if (out.hosts.length >= ADMIN_MAX_HOSTS) out.overflow++;
    else out.hosts.push({ address, state: expectedState(line.slice(at + MARKER.length)) });
  }
  return out;
}

/** The record the module wrote (membership.ts layout), or a reason it is malformed. */
export function decodeRecord(record: Uint8Array): Array<{ address: string; state: number }> | string {
  if (record.length < 8) return `record of ${record.length} bytes`;
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const count = view.getUint32(0, true);
  const hosts: Array<{ address: string; state: number }> = [];
  let p = 8;
  for (let i = 0; i < count; i++) {
    if (p + 2 > record.length) return `record cut at host ${i}`;
    const state = record[p];
    const length = record[p + 1];
    if (p + 2 + length > record.length) return `host ${i} runs past the record`;
    hosts.push({ address: Buffer.from(record.subarray(p + 2, p + 2 + length)).toString("latin1"), state });
    p += 2 + length;
  }
  if (p !== record.length) return `${record.length - p} bytes after the last host`;
  return hosts;
}
