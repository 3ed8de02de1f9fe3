// Reads one cluster's hosts and health out of Envoy's admin `/clusters` text.
//
// Envoy 1.40's Wasm ABI has no call that lists a cluster's hosts (the host
// functions are proxy-wasm-cpp-host include/proxy-wasm/exports.h; Envoy's
// properties, source/extensions/common/wasm/context.cc, describe only the
// host already chosen for a stream), so the filter asks the admin API:
// `GET /clusters?filter=^<cluster>$` answers with only that cluster, in lines
//
//   <cluster>::<address>::health_flags::<flags>
//
// among others of the same `<cluster>::` prefix (source/server/admin/
// clusters_handler.cc writeClustersAsText). <address> is the host's
// Address::asString(), "ip:port" or "[ipv6]:port": IPv6 text holds "::", so
// the marker is searched for after the cluster prefix, not split on. <flags>
// is "healthy" or "/flag" tokens (source/common/upstream/host_utility.cc
// healthFlagsToString). The filter must leave out every host that is not
// healthy itself: override_host routes to any host of the cluster it is
// given, whatever its health (override_host/load_balancer.cc findHost).
import { Member, MemberRecordWriter } from "./membership";
import { MAX_ADDRESS_BYTES } from "./limits";

const MARKER = String.UTF8.encode("::health_flags::");
const HEALTHY = String.UTF8.encode("healthy");
const DEGRADED = String.UTF8.encode("degraded");

export namespace ClustersAnswer {
  export const Ok: i32 = 0;
  /** No line names the cluster: Envoy does not know it (or the answer is not /clusters text). */
  export const UnknownCluster: i32 = 1;
}

function startsWith(p: usize, end: usize, word: ArrayBuffer): bool {
  const n = <usize>word.byteLength;
  return p + n <= end && memory.compare(p, changetype<usize>(word), n) == 0;
}

/**
 * The state a health_flags value gives a host: healthy; degraded when every
 * flag is a degraded_* one (usable as Envoy's load balancers use degraded
 * hosts, when too few are healthy); excluded for any other flag: failed
 * active or EDS health, outlier ejection, draining, pending removal or a
 * first health check, and flags newer Envoys add, whose meaning we cannot
 * know.
 */
export function stateOfFlags(p: usize, end: usize): u8 {
  if (end - p == <usize>HEALTHY.byteLength && startsWith(p, end, HEALTHY)) return Member.Healthy;
  if (p >= end || load<u8>(p) != 0x2F /* / */) return Member.Excluded;
  let state = Member.Degraded;
  while (p < end) {
    p++; // the '/'
    if (!startsWith(p, end, DEGRADED)) state = Member.Excluded;
    while (p < end && load<u8>(p) != 0x2F) p++;
  }
  return state;
}

/**
 * An address the destination header can carry: 1..255 bytes with no comma
 * (override_host splits its list on commas), whitespace or control bytes.
 */
function usableAddress(p: usize, n: usize): bool {
  if (n == 0 || n > MAX_ADDRESS_BYTES) return false;
  for (let i: usize = 0; i < n; i++) {
    const c = load<u8>(p + i);
    if (c <= 0x20 || c == 0x2C || c >= 0x7F) return false;
  }
  return true;
}

/**
 * Adds every host of `cluster` in the text [ptr, ptr+len) to `out` (reset
 * first). Returns a ClustersAnswer; `skipped` counts host lines whose address
 * could not be used.
 */
export function readClusterHosts(ptr: usize, len: usize, cluster: ArrayBuffer, out: MemberRecordWriter): i32 {
  out.reset();
  const end = ptr + len;
  const prefix = <usize>cluster.byteLength;
  const marker = <usize>MARKER.byteLength;
  let seen = false;
  let line = ptr;
  while (line < end) {
    let eol = line;
    while (eol < end && load<u8>(eol) != 0x0A) eol++;
    // "<cluster>::" opens every line about the cluster.
    if (eol - line > prefix + 2 && memory.compare(line, changetype<usize>(cluster), prefix) == 0 &&
        load<u16>(line + prefix) == 0x3A3A) {
      seen = true;
      const from = line + prefix + 2;
      // The marker sits after the address; the flags after it hold no "::".
      let at = eol >= marker ? eol - marker : 0;
      while (at > from && memory.compare(at, changetype<usize>(MARKER), marker) != 0) at--;
      if (at > from && usableAddress(from, at - from)) {
        out.add(stateOfFlags(at + marker, eol), from, at - from);
      }
    }
    line = eol + 1;
  }
  out.finish();
  return seen ? ClustersAnswer.Ok : ClustersAnswer.UnknownCluster;
}

/**
 * The admin path for a cluster: `/clusters?filter=^P$`, where P is the name
 * with every byte outside [A-Za-z0-9_-] replaced by '.'. The filter is an
 * RE2 partial match (clusters_handler.cc), hence the anchors; '.' keeps the
 * query free of characters that need escaping in a regex or a URL (Istio
 * names clusters `outbound|8000||svc.ns.svc.cluster.local`), and the exact
 * name is checked on every line read back. The guard listener the generator
 * writes allows exactly this path (scripts/gateway: adminClustersPath).
 */
export function adminClustersPath(cluster: string): string {
  let pattern = "";
  for (let i = 0; i < cluster.length; i++) {
    const c = cluster.charCodeAt(i);
    const plain = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D;
    pattern += plain ? String.fromCharCode(c) : ".";
  }
  return "/clusters?filter=^" + pattern + "$";
}
