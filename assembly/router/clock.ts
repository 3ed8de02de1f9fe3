// The one clock the filter's timers, leases, timeouts and staleness checks read.
import * as host from "../abi/host";

/**
 * Now, in ms on the monotonic clock (host.monotonicNanos), shifted by
 * MONOTONIC_BASE_MS so that a time is never 0 or near it: 0 stands for
 * "never" in several places, and a host's monotonic origin may be its start.
 * Shared data carries these times between VMs of one process, which share the
 * clock; the namespace's SHARED_FORMAT keeps them from meeting wall-clock
 * times that an older build wrote under the same vm_id.
 */
export function nowMs(): i64 {
  return <i64>(host.monotonicNanos() / 1000000) + MONOTONIC_BASE_MS;
}

const MONOTONIC_BASE_MS: i64 = 1 << 40;
