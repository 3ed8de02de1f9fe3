// How often a VM's root ticks: every tickMs while anything goes on, slower
// once nothing has for a while.
//
// Envoy wakes every worker's VM for its tick, so with 8 workers an idle
// gateway was woken 360 times a second, for ticks that found nothing to do:
// 32.5 ms of CPU per second with 64 endpoints, 6.3 with this pace (README
// "In real Envoy", npm run bench:envoy-ab -- --idle). A VM is
// idle when, for IDLE_AFTER_MS, it decided and ended no request, held none in
// flight or parked, and no other VM appended to the journal; then its tick
// runs every idle period instead: IDLE_TICK_MS, or half the metrics,
// discovery or peers interval if that is shorter, so that scrapes, polls, asks and their
// leases keep their schedule and a published snapshot reaches every VM within
// an interval (the holder publishes on a tick, the others read it on theirs;
// metrics go stale only after staleAfterIntervals). Proxy-wasm has no way to wake a timer early
// except setting the period again, which Envoy does at once (it cancels the
// timer and arms a new one: source/extensions/common/wasm/wasm.cc
// Wasm::setTimerPeriod), so the first request a slow VM routes sets it back
// to tickMs; a VM that routes nothing sees another's appends on its next slow
// tick, and a request it gets meanwhile reads them from the journal itself.
import { Config } from "./config";
import { HEARTBEAT_MS } from "./limits";

/** The slowest tick of an idle VM. */
const IDLE_TICK_MS: i32 = 250;
/** How long a VM must have had nothing to do before its ticks slow down. */
const IDLE_AFTER_MS: i64 = 250;

@final
export class TickPace {
  readonly activeMs: u32;
  readonly idleMs: u32;
  /** Whether Envoy runs the idle period now. */
  private slow: bool = false;
  private quietSinceMs: i64 = -1;

  constructor(config: Config) {
    let idle = min(IDLE_TICK_MS, HEARTBEAT_MS);
    const m = config.metrics;
    if (m !== null) idle = min(idle, m.intervalMs / 2);
    const d = config.discovery;
    if (d !== null) idle = min(idle, d.intervalMs / 2);
    const p = config.peers;
    if (p !== null) idle = min(idle, p.intervalMs / 2);
    const pm = p !== null ? p.members : null;
    if (pm !== null) idle = min(idle, pm.intervalMs / 2);
    this.activeMs = <u32>config.tickMs;
    this.idleMs = <u32>max(idle, config.tickMs);
  }

  /**
   * After a tick: whether anything happened since the one before. Returns the
   * period to set (0: keep the one running).
   */
  afterTick(nowMs: i64, active: bool): u32 {
    if (active) {
      this.quietSinceMs = -1;
      return this.wake();
    }
    if (this.slow || this.idleMs == this.activeMs) return 0;
    if (this.quietSinceMs < 0) this.quietSinceMs = nowMs;
    if (nowMs - this.quietSinceMs < IDLE_AFTER_MS) return 0;
    this.slow = true;
    return this.idleMs;
  }

  /** Work arrived: the period to set now (0 if the ticks are not slow). */
  wake(): u32 {
    if (!this.slow) return 0;
    this.slow = false;
    this.quietSinceMs = -1;
    return this.activeMs;
  }
}
