// What the scorer knows about each endpoint: this proxy's in-flight requests
// (exact for its own VM, replicated for the others) and what the servers
// report on their metrics pages (queue, KV-cache utilization, health, running
// LoRA adapters). A value a server has not reported, or reported too long ago,
// is NaN, and the scorer then assumes the average of the endpoints that did.
import { InFlightLedger } from "./inflight";
import { WorkLedger } from "./work";
import { MAX_ADAPTERS, KNOWN_ADAPTERS } from "./limits";

/** Weight of one round of scrapes in visibleShare. */
const VISIBLE_SHARE_ALPHA: f64 = 0.2;
/** Fewer requests at the servers than this tell nothing about who sent them. */
const MIN_SERVER_REQUESTS: f64 = 4;
/** visibleShare's floor: 16 replicas or more are treated as 16. */
const MIN_VISIBLE_SHARE: f64 = 1.0 / 16;

@final
export class LoadView {
  readonly queueDepth: StaticArray<f64>;
  /** Requests sent to each endpoint (by any VM) since its load was last reported. */
  readonly sentSinceReport: StaticArray<i32>;
  /** Requests to each endpoint (from any VM) that ended since its load was last reported. */
  readonly doneSinceReport: StaticArray<i32>;
  /** When each endpoint's applied report was scraped (to tell a new report from the same one). */
  readonly reportedAtMs: StaticArray<i64>;
  readonly kvUsage: StaticArray<f64>;
  readonly healthy: StaticArray<bool>;
  /** Per endpoint: hashes of the LoRA adapters it runs (MAX_ADAPTERS slots each). */
  readonly adapters: StaticArray<u64>;
  readonly adapterCount: StaticArray<i32>;
  /** max_lora, or -1 when the server does not report LoRA state. */
  readonly maxLora: StaticArray<i32>;
  /** Adapters seen running anywhere: a model in this set is treated as an adapter. */
  private known: StaticArray<u64> = new StaticArray<u64>(KNOWN_ADAPTERS);
  private knownNext: i32 = 0;
  private knownCount: i32 = 0;

  /**
   * The share of the servers' requests that this proxy has in flight (0–1]:
   * 1 for a proxy alone in front of its servers, about 1/R for one of R
   * replicas that share them. The ratio of two averages over rounds of
   * scrapes (noteServerLoad), 1 until the servers have reported enough.
   */
  visibleShare: f64 = 1;
  private ownAverage: f64 = 0;
  private serverAverage: f64 = 0;

  /** Work sent and in flight per endpoint, for the work score (work.ts). */
  readonly work: WorkLedger;
  /** The time of the current decision (set by the router before each pick). */
  nowMs: i64 = 0;

  /** `prefillTokensPerMs`: the rate assumed for a server that has not shown its own; `withPeers`: see WorkLedger. */
  constructor(readonly inFlightLedger: InFlightLedger, prefillTokensPerMs: f64 = 20, withPeers: bool = false) {
    const n = inFlightLedger.endpointCount;
    this.work = new WorkLedger(n, prefillTokensPerMs, withPeers);
    this.queueDepth = new StaticArray<f64>(n);
    this.sentSinceReport = new StaticArray<i32>(n);
    this.doneSinceReport = new StaticArray<i32>(n);
    this.reportedAtMs = new StaticArray<i64>(n);
    this.kvUsage = new StaticArray<f64>(n);
    this.healthy = new StaticArray<bool>(n);
    this.adapters = new StaticArray<u64>(n * MAX_ADAPTERS);
    this.adapterCount = new StaticArray<i32>(n);
    this.maxLora = new StaticArray<i32>(n);
    for (let e = 0; e < n; e++) {
      unchecked(this.queueDepth[e] = NaN);
      unchecked(this.kvUsage[e] = NaN);
      unchecked(this.healthy[e] = true);
      unchecked(this.maxLora[e] = -1);
    }
  }

  /** Endpoint slot e starts over (its endpoint left, or a new one arrived): nothing reported, nothing sent. */
  reset(e: i32): void {
    unchecked(this.queueDepth[e] = NaN);
    unchecked(this.sentSinceReport[e] = 0);
    unchecked(this.doneSinceReport[e] = 0);
    unchecked(this.reportedAtMs[e] = 0);
    unchecked(this.kvUsage[e] = NaN);
    unchecked(this.healthy[e] = true);
    unchecked(this.adapterCount[e] = 0);
    unchecked(this.maxLora[e] = -1);
    this.work.reset(e);
  }

  // @ts-ignore: decorator
  @inline inFlight(e: i32): f64 { return <f64>this.inFlightLedger.load(e); }

  /** The load the guard balances: this proxy's in-flight requests. */
  // @ts-ignore: decorator
  @inline load(e: i32): f64 { return this.inFlight(e); }

  /**
   * The server's reported queue, plus what was sent to it since that report,
   * less what ended there since (each ending frees a batch slot for a waiting
   * request), never below 0. Scraped metrics lag by up to an interval: without
   * the sent count every request in that window would see the same
   * idle-looking server and pile onto it, and without the ended count a busy
   * server would look busier all interval than it has become.
   */
  // @ts-ignore: decorator
  @inline queue(e: i32): f64 {
    return max(unchecked(this.queueDepth[e]) + <f64>(unchecked(this.sentSinceReport[e]) - unchecked(this.doneSinceReport[e])), 0.0);
  }

  /** Counts a request sent to e (by this VM or, via the journal, another). */
  // @ts-ignore: decorator
  @inline noteSent(e: i32): void { unchecked(this.sentSinceReport[e]++); }

  /** Counts a request to e that ended: its place in the batch goes to a waiting one. */
  // @ts-ignore: decorator
  @inline noteDone(e: i32): void { unchecked(this.doneSinceReport[e]++); }

  /**
   * A new round of scrapes: the servers report `serverRequests` running and
   * waiting, while this proxy has `ownRequests` in flight at them. Both
   * counts are averaged over rounds (weight VISIBLE_SHARE_ALPHA each) and
   * visibleShare is their ratio: a ratio of averages, so a busy round counts
   * for more than an idle one, and unbiased from the first round on (both
   * start at 0), so a new filter knows after one round of a busy fleet. It
   * stays where it was while the servers' average is below
   * MIN_SERVER_REQUESTS × VISIBLE_SHARE_ALPHA (a first round needs
   * MIN_SERVER_REQUESTS): an idle fleet looks shared or not by chance.
   */
  noteServerLoad(ownRequests: f64, serverRequests: f64): void {
    if (!(serverRequests >= 0) || !(ownRequests >= 0)) return;
    this.ownAverage += VISIBLE_SHARE_ALPHA * (ownRequests - this.ownAverage);
    this.serverAverage += VISIBLE_SHARE_ALPHA * (serverRequests - this.serverAverage);
    if (this.serverAverage * (1.0 / VISIBLE_SHARE_ALPHA) < MIN_SERVER_REQUESTS) return;
    this.visibleShare = min(max(this.ownAverage / this.serverAverage, MIN_VISIBLE_SHARE), 1.0);
  }

  /**
   * How many proxies this one takes itself to be one of, sharing the servers
   * equally: 1 / visibleShare to the nearest whole number, so 1 for a share
   * above 2/3. One proxy alone ended evaluator runs (the trace, multi-turn,
   * LoRA-mix, agent; 1×–12×) at a share of 0.80–1.00, its scraped counts
   * lagging its own; each of four replicas near a quarter. A whole number
   * keeps decisions steady while the share moves by a little.
   */
  // @ts-ignore: decorator
  @inline replicas(): i32 {
    return <i32>Math.round(1.0 / this.visibleShare);
  }

  /** Takes a report scraped at `scrapedAtMs`; a new one resets the sent and ended counts. */
  report(e: i32, scrapedAtMs: i64, waiting: f64, kv: f64): void {
    if (scrapedAtMs != unchecked(this.reportedAtMs[e])) {
      unchecked(this.reportedAtMs[e] = scrapedAtMs);
      unchecked(this.sentSinceReport[e] = 0);
      unchecked(this.doneSinceReport[e] = 0);
    }
    unchecked(this.queueDepth[e] = waiting);
    unchecked(this.kvUsage[e] = kv);
  }
  // @ts-ignore: decorator
  @inline kvUtilization(e: i32): f64 { return unchecked(this.kvUsage[e]); }
  // @ts-ignore: decorator
  @inline isHealthy(e: i32): bool { return unchecked(this.healthy[e]); }

  runsAdapter(e: i32, model: u64): bool {
    const base = e * MAX_ADAPTERS;
    const n = unchecked(this.adapterCount[e]);
    for (let i = 0; i < n; i++) if (unchecked(this.adapters[base + i]) == model) return true;
    return false;
  }

  /** Room to load one more adapter: fewer running than max_lora. */
  hasAdapterRoom(e: i32): bool {
    const max = unchecked(this.maxLora[e]);
    return max > 0 && unchecked(this.adapterCount[e]) < max;
  }

  isKnownAdapter(model: u64): bool {
    if (model == 0) return false;
    const n = this.knownCount;
    for (let i = 0; i < n; i++) if (unchecked(this.known[i]) == model) return true;
    return false;
  }

  setAdapters(e: i32, hashes: usize, count: i32, maxLora: i32): void {
    const n = min(count, MAX_ADAPTERS);
    const base = e * MAX_ADAPTERS;
    for (let i = 0; i < n; i++) {
      const h = load<u64>(hashes + (<usize>i << 3));
      unchecked(this.adapters[base + i] = h);
      if (!this.isKnownAdapter(h)) {
        unchecked(this.known[this.knownNext] = h);
        this.knownNext = (this.knownNext + 1) % KNOWN_ADAPTERS;
        if (this.knownCount < KNOWN_ADAPTERS) this.knownCount++;
      }
    }
    unchecked(this.adapterCount[e] = n);
    unchecked(this.maxLora[e] = maxLora);
  }
}
