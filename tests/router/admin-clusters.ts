// Envoy's admin `/clusters` text for one cluster, as Envoy 1.40 writes it
// (source/server/admin/clusters_handler.cc writeClustersAsText: the cluster's
// settings, then 19 lines per host, health_flags among them), for emulator
// tests of endpoint discovery. The real-Envoy tests (tests/e2e/
// envoy-discovery.test.ts) read the real thing.

export interface AdminHost {
  address: string;
  /** "healthy" or "/flag" tokens in Envoy's order, e.g. "/failed_active_hc/eds_status_draining". */
  flags?: string;
}

export function clustersText(cluster: string, hosts: AdminHost[]): string {
  const lines = [
    `${cluster}::observability_name::${cluster}`,
    `${cluster}::default_priority::max_connections::1024`,
    `${cluster}::default_priority::max_pending_requests::1024`,
    `${cluster}::default_priority::max_requests::1024`,
    `${cluster}::default_priority::max_retries::3`,
    `${cluster}::high_priority::max_connections::1024`,
    `${cluster}::high_priority::max_pending_requests::1024`,
    `${cluster}::high_priority::max_requests::1024`,
    `${cluster}::high_priority::max_retries::3`,
    `${cluster}::added_via_api::true`,
  ];
  for (const h of hosts) {
    const p = `${cluster}::${h.address}::`;
    for (const stat of ["cx_active", "cx_connect_fail", "cx_total", "rq_active", "rq_error", "rq_pending_active", "rq_success", "rq_timeout", "rq_total"]) {
      lines.push(`${p}${stat}::0`);
    }
    lines.push(`${p}hostname::`, `${p}health_flags::${h.flags ?? "healthy"}`, `${p}weight::1`, `${p}region::`, `${p}zone::`,
      `${p}sub_zone::`, `${p}canary::false`, `${p}priority::0`, `${p}success_rate::-1`, `${p}local_origin_success_rate::-1`);
  }
  return lines.join("\n") + "\n";
}
