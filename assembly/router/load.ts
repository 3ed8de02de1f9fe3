// What the scorer knows about each endpoint's load: this proxy's in-flight
// requests (exact for its own VM, replicated for the others) and, once the
// metrics scraper has reported (metrics issue), the server's queue and KV-cache
// utilization and its health. Values the servers have not reported are NaN.
import { InFlightLedger } from "./inflight";

@final
export class LoadView {
  readonly queueDepth: StaticArray<f64>;
  readonly kvUsage: StaticArray<f64>;
  readonly healthy: StaticArray<bool>;

  constructor(readonly inFlightLedger: InFlightLedger) {
    const n = inFlightLedger.endpointCount;
    this.queueDepth = new StaticArray<f64>(n);
    this.kvUsage = new StaticArray<f64>(n);
    this.healthy = new StaticArray<bool>(n);
    for (let e = 0; e < n; e++) {
      unchecked(this.queueDepth[e] = NaN);
      unchecked(this.kvUsage[e] = NaN);
      unchecked(this.healthy[e] = true);
    }
  }

  // @ts-ignore: decorator
  @inline inFlight(e: i32): f64 { return <f64>this.inFlightLedger.load(e); }

  /** The load the guard balances: this proxy's in-flight requests. */
  // @ts-ignore: decorator
  @inline load(e: i32): f64 { return this.inFlight(e); }

  // @ts-ignore: decorator
  @inline queue(e: i32): f64 { return unchecked(this.queueDepth[e]); }
  // @ts-ignore: decorator
  @inline kvUtilization(e: i32): f64 { return unchecked(this.kvUsage[e]); }
  // @ts-ignore: decorator
  @inline isHealthy(e: i32): bool { return unchecked(this.healthy[e]); }
}
