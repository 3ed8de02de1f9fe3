// Time for the emulated Envoy: wall-clock time (proxy_get_current_time_nanoseconds,
// WASI realtime), monotonic time (WASI monotonic, reload backoff) and one-shot
// timers (tick timers, HTTP callout timeouts). Envoy reads both clocks from the
// dispatcher's TimeSource (envoy source/extensions/common/wasm/context.cc
// getCurrentTimeNanoseconds / getMonotonicTimeNanoseconds).
//
// VirtualClock is deterministic: time moves only in advance(), which fires due
// timers in time order (ties in creation order). RealClock uses Node timers.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock time, milliseconds since the Unix epoch. */
  now(): number;
  /** Monotonic time in nanoseconds (arbitrary origin). */
  monotonicNs(): bigint;
  /** Calls `fire` once after `delayMs` (>= 0). */
  setTimer(delayMs: number, fire: () => void): TimerHandle;
}

interface VirtualTimer {
  due: number;
  seq: number;
  fire: () => void;
  cancelled: boolean;
}

/** 2025-01-01T00:00:00Z: a fixed, realistic epoch so runs are reproducible. */
const DEFAULT_VIRTUAL_EPOCH_MS = Date.UTC(2025, 0, 1);

export class VirtualClock implements Clock {
  private current: number;
  private readonly origin: number;
  private seq = 0;
  /** A binary min-heap on (due, seq); cancelled timers are dropped when they surface. */
  private readonly heap: VirtualTimer[] = [];

  constructor(startMs: number = DEFAULT_VIRTUAL_EPOCH_MS) {
    this.current = startMs;
    this.origin = startMs;
  }

  /** What the wall clock has been stepped by (stepWall): NTP, a VM migration, an operator. */
  private wallStepMs = 0;

  now(): number {
    return this.current + this.wallStepMs;
  }

  monotonicNs(): bigint {
    return BigInt(Math.round((this.current - this.origin) * 1e6));
  }

  /**
   * Steps the wall clock by `ms` (either way) without time passing: the
   * monotonic clock and the timers do not move, as on a host whose clock is
   * set.
   */
  stepWall(ms: number): void {
    this.wallStepMs += ms;
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const timer: VirtualTimer = { due: this.current + Math.max(0, delayMs), seq: this.seq++, fire, cancelled: false };
    this.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Number of armed timers (for inspection). */
  pendingTimers(): number {
    return this.heap.filter((t) => !t.cancelled).length;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way, in
   * time order. Timers armed by a firing timer fire in the same advance if due.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(${ms}): time only moves forward`);
    const target = this.current + ms;
    while (this.heap.length > 0 && this.heap[0].due <= target) {
      const next = this.pop();
      if (next.cancelled) continue;
      next.cancelled = true;
      this.current = Math.max(this.current, next.due);
      next.fire();
    }
    this.current = target;
  }

  private static before(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private push(timer: VirtualTimer): void {
    const h = this.heap;
    h.push(timer);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!VirtualClock.before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  private pop(): VirtualTimer {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && VirtualClock.before(h[l], h[m])) m = l;
        if (r < h.length && VirtualClock.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

export class RealClock implements Clock {
  now(): number {
    return Date.now();
  }

  monotonicNs(): bigint {
    return process.hrtime.bigint();
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const handle = setTimeout(fire, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(handle) };
  }
}

/**
 * `clock` with a monotonic origin of process `index`'s own (index 0: the
 * clock itself). Separate Envoy processes never read their clocks at the same
 * nanosecond, and the filter draws its instance id from them (assembly/router/
 * peers.ts); emulated Envoys on one virtual clock would draw the same id and
 * each take the other for itself. Only the origin moves (Clock allows any),
 * so every interval and timer is the shared clock's.
 */
export function withOwnMonotonicOrigin(clock: Clock, index: number): Clock {
  if (index === 0) return clock;
  const offset = BigInt(index) * 1_000_003n;
  return { now: () => clock.now(), monotonicNs: () => clock.monotonicNs() + offset, setTimer: (ms, fire) => clock.setTimer(ms, fire) };
}
