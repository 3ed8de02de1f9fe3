// In-flight requests per endpoint, as this proxy sees them across all its VMs.
//
// Each VM knows its own streams exactly (counted on pick, released when the
// stream ends for any reason). Other VMs' picks and releases arrive through the
// journal, tagged with the VM that made them; they are tallied per source VM so
// that (1) a release whose pick predates this VM's view is clamped at zero for
// that source only, and (2) a VM that disappears (trap, shutdown) without
// releasing can be forgotten as a whole once it has been silent too long.
// Totals are kept incrementally, so reading a load is one array load.

class RemoteVm {
  counts: StaticArray<i32>;
  lastSeenMs: i64 = 0;
  constructor(public tag: u32, endpoints: i32) {
    this.counts = new StaticArray<i32>(endpoints);
  }
}

@final
export class InFlightLedger {
  readonly own: StaticArray<i32>;
  readonly total: StaticArray<i32>;
  private remotes: RemoteVm[] = [];
  /** The VM remote() found last: one journal event's calls (alive, releases, pick) all name the same VM. */
  private lastRemote: RemoteVm | null = null;

  constructor(readonly endpointCount: i32) {
    this.own = new StaticArray<i32>(endpointCount);
    this.total = new StaticArray<i32>(endpointCount);
  }

  // @ts-ignore: decorator
  @inline load(e: i32): i32 { return unchecked(this.total[e]); }

  pickOwn(e: i32): void {
    unchecked(this.own[e]++);
    unchecked(this.total[e]++);
  }

  releaseOwn(e: i32): void {
    if (unchecked(this.own[e]) > 0) {
      unchecked(this.own[e]--);
      unchecked(this.total[e]--);
    }
  }

  ownTotal(): i32 {
    let sum = 0;
    for (let e = 0; e < this.endpointCount; e++) sum += unchecked(this.own[e]);
    return sum;
  }

  private remote(tag: u32, nowMs: i64): RemoteVm {
    const last = this.lastRemote;
    if (last !== null && last.tag == tag) {
      last.lastSeenMs = nowMs;
      return last;
    }
    const list = this.remotes;
    const n = list.length;
    for (let i = 0; i < n; i++) {
      const vm = unchecked(list[i]);
      if (vm.tag == tag) {
        vm.lastSeenMs = nowMs;
        this.lastRemote = vm;
        return vm;
      }
    }
    const vm = new RemoteVm(tag, this.endpointCount);
    vm.lastSeenMs = nowMs;
    list.push(vm);
    this.lastRemote = vm;
    return vm;
  }

  /** Other VMs heard from within the timeout (expire forgets the rest). */
  remoteVms(): i32 {
    return this.remotes.length;
  }

  /** Marks a VM as alive (it wrote an event) without changing counts. */
  seen(tag: u32, nowMs: i64): void {
    this.remote(tag, nowMs);
  }

  pickRemote(tag: u32, e: i32, nowMs: i64): void {
    const vm = this.remote(tag, nowMs);
    unchecked(vm.counts[e]++);
    unchecked(this.total[e]++);
  }

  releaseRemote(tag: u32, e: i32, nowMs: i64): void {
    const vm = this.remote(tag, nowMs);
    if (unchecked(vm.counts[e]) > 0) {
      unchecked(vm.counts[e]--);
      unchecked(this.total[e]--);
    }
  }

  /** Endpoint e left: no request of any VM counts there any more. */
  drop(e: i32): void {
    unchecked(this.own[e] = 0);
    unchecked(this.total[e] = 0);
    const list = this.remotes;
    for (let i = 0; i < list.length; i++) unchecked(unchecked(list[i]).counts[e] = 0);
  }

  /** Forgets VMs silent for longer than `timeoutMs`; returns how many. */
  expire(nowMs: i64, timeoutMs: i64): i32 {
    const list = this.remotes;
    let dropped = 0;
    for (let i = list.length - 1; i >= 0; i--) {
      const vm = unchecked(list[i]);
      if (nowMs - vm.lastSeenMs <= timeoutMs) continue;
      for (let e = 0; e < this.endpointCount; e++) unchecked(this.total[e] -= vm.counts[e]);
      list.splice(i, 1);
      if (vm === this.lastRemote) this.lastRemote = null;
      dropped++;
    }
    return dropped;
  }
}
