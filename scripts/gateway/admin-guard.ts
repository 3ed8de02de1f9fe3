// The admin guard: the only way the filter reaches Envoy's admin API. With
// endpoint discovery the filter asks `GET /clusters?filter=^P$` (P: the routed
// cluster's name as a regex, adminClustersPath) every interval through
// proxy_http_call, which needs a cluster to call. Pointing that cluster at the
// admin address itself would let any callout the filter makes, by a bug or a
// bad configuration, use the state-changing admin endpoints (POST
// /quitquitquit, /healthcheck/fail, /drain_listeners, /logging, …), since
// proxy_http_call sends whatever method and path it is given. So the filter's
// cluster is a Unix-socket listener whose one route forwards that exact GET to
// the admin API and answers 403 to everything else.
//
// What it does not confine: a module that wants the admin API can name the
// plain admin cluster (or any cluster) in its own callouts; the guard keeps
// mistakes in, not a malicious module out.
//
// Owns: the path rule (the filter's assembly/router/admin_clusters.ts
// implements the same one; tests/e2e/envoy-admin-guard.test.ts proves they
// agree in real Envoy), the guard listener and its two clusters. Must not:
// know the rest of the bootstrap.

/** Listener and cluster names; the filter's `discovery.adminCluster` is `guard`. */
export const ADMIN_GUARD_NAMES = Object.freeze({
  /** The Unix-socket listener, and the STATIC cluster pointing at that socket. */
  guard: "prefix_router_admin_guard",
  /** The STATIC cluster pointing at the admin address; only the guard's route uses it. */
  admin: "prefix_router_admin",
});

/** sun_path holds 108 bytes including the terminating NUL (unix(7)). */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * `/clusters?filter=^P$`: P is `cluster` with every character outside
 * [A-Za-z0-9_-] replaced by '.', so the regex needs no escaping and the query
 * no percent-encoding (Istio's `outbound|8000||vllm.models.svc.cluster.local`
 * becomes `^outbound.8000..vllm.models.svc.cluster.local$`). The admin
 * handler's filter is an RE2 partial match on the cluster name
 * (source/server/admin/clusters_handler.cc), hence the anchors; '.' may match
 * a neighbour's name too, so the filter checks the exact name on every line
 * it reads back.
 */
export function adminClustersPath(cluster: string): string {
  const pattern = [...cluster].map((ch) => (/^[A-Za-z0-9_-]$/.test(ch) ? ch : ".")).join("");
  return `/clusters?filter=^${pattern}$`;
}

/** Why a socket path cannot be bound, or null. */
export function socketPathError(path: string): string | null {
  if (!path.startsWith("/")) return "must be an absolute path";
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) return `longer than ${MAX_SOCKET_PATH_BYTES} bytes (a Unix socket path's limit)`;
  if (/[\s\0]/.test(path)) return "must not contain spaces or NUL";
  return null;
}

export interface AdminGuardOptions {
  /** The clusters whose hosts the filter reads (discovery.cluster, peers.members.cluster): one allowed GET each. */
  clusters: string[];
  /** Where the guard listens; the filter's callouts connect here. */
  socketPath: string;
  /** Envoy's admin address; must be a fixed port, since a cluster names it. */
  admin: { ip: string; port: number };
}

const typed = (type: string, body: Record<string, unknown> = {}) => ({ "@type": `type.googleapis.com/${type}`, ...body });

function staticCluster(name: string, address: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

/**
 * The guard listener (envoy.config.listener.v3.Listener). The route compares
 * `:path` whole and raw: Envoy does not normalize paths unless the connection
 * manager asks (normalize_path defaults to false, http_connection_manager.proto),
 * and a header matcher sees the query too, so an extra parameter, a
 * percent-encoded character or a second `filter` all fall to the 403 route.
 * Mode 0600: only Envoy's own user can connect to the socket. Envoy unlinks a
 * stale socket file at bind (source/common/network/socket_impl.cc), so a
 * restart after a crash binds again.
 */
export function adminGuardListener(o: AdminGuardOptions): Record<string, unknown> {
  const socketError = socketPathError(o.socketPath);
  if (socketError !== null) throw new Error(`admin guard socket "${o.socketPath}": ${socketError}`);
  const exact = (name: string, value: string) => ({ name, string_match: { exact: value } });
  const hcm = {
    stat_prefix: ADMIN_GUARD_NAMES.guard,
    route_config: {
      name: ADMIN_GUARD_NAMES.guard,
      virtual_hosts: [
        {
          name: "admin_guard",
          domains: ["*"],
          routes: [
            ...o.clusters.map((cluster) => ({
              match: { path: "/clusters", headers: [exact(":method", "GET"), exact(":path", adminClustersPath(cluster))] },
              route: { cluster: ADMIN_GUARD_NAMES.admin, timeout: "5s" },
            })),
            { match: { prefix: "" }, direct_response: { status: 403 } },
          ],
        },
      ],
    },
    http_filters: [{ name: "envoy.filters.http.router", typed_config: typed("envoy.extensions.filters.http.router.v3.Router") }],
  };
  return {
    name: ADMIN_GUARD_NAMES.guard,
    address: { pipe: { path: o.socketPath, mode: 0o600 } },
    filter_chains: [
      {
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typed_config: typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", hcm),
          },
        ],
      },
    ],
  };
}

/** The filter's adminCluster (to the guard socket) and the admin cluster behind the guard. */
export function adminGuardClusters(o: AdminGuardOptions): Record<string, unknown>[] {
  const socketError = socketPathError(o.socketPath);
  if (socketError !== null) throw new Error(`admin guard socket "${o.socketPath}": ${socketError}`);
  if (!Number.isInteger(o.admin.port) || o.admin.port < 1 || o.admin.port > 65535) {
    throw new Error(`admin port ${o.admin.port}: the admin guard's cluster needs a fixed port`);
  }
  return [
    staticCluster(ADMIN_GUARD_NAMES.guard, { pipe: { path: o.socketPath } }),
    staticCluster(ADMIN_GUARD_NAMES.admin, { socket_address: { address: o.admin.ip, port_value: o.admin.port } }),
  ];
}
