// Envoy's override_host load balancer and the generated route's retries, as the
// dev gateway plays them for one request.
//
// override_host splits the destination header on commas and, on every host
// selection of a request (the first attempt and each retry), takes the next
// listed address that is one of the cluster's hosts; once the list is used up
// (or named none), its fallback policy picks
// (source/extensions/load_balancing_policies/override_host/load_balancer.cc
// getSelectedHosts, getEndpoint; override_host_filter_state.h consumeNextHost).
// The fallback is round robin, and the route's previous_hosts predicate makes
// it pick again, up to host_selection_retry_max_attempts (3) times, when it
// lands on a host this request already tried (retry/host/previous_hosts).
//
// Owns: the per-request cursor over the list and the hosts tried. Must not:
// look at host health (override_host does not: findHost's "TODO: Validate that
// host health status did not change").

/** The route's host_selection_retry_max_attempts (envoy-config.ts retryPolicy). */
const HOST_SELECTION_ATTEMPTS = 3;

/** The fallback policy, shared by every request of one gateway. */
export class RoundRobin {
  private next = 0;
  constructor(readonly hosts: readonly string[]) {}

  pick(): string {
    const host = this.hosts[this.next % this.hosts.length];
    this.next++;
    return host;
  }
}

export class OverrideHostSelection {
  private readonly listed: string[];
  private cursor = 0;
  private readonly tried = new Set<string>();

  /** `header` is the destination header's first value as the router sees it, if any. */
  constructor(
    header: string | undefined,
    private readonly cluster: ReadonlySet<string>,
    private readonly fallback: RoundRobin,
  ) {
    // absl::StrSplit(..., ',', SkipWhitespace()), each entry stripped.
    this.listed = header === undefined ? [] : header.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }

  /** The host for the next attempt. */
  next(): string {
    while (this.cursor < this.listed.length) {
      const candidate = this.listed[this.cursor++];
      if (this.cluster.has(candidate)) return this.use(candidate);
    }
    let host = this.fallback.pick();
    for (let attempt = 1; attempt < HOST_SELECTION_ATTEMPTS && this.tried.has(host); attempt++) host = this.fallback.pick();
    return this.use(host);
  }

  private use(host: string): string {
    this.tried.add(host);
    return host;
  }
}
