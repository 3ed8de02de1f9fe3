// Load measured in work: per endpoint, the prefill work this proxy has sent
// and not yet seen finish, the context of its requests still in flight, and
// the server's prefill rate, so the scorer can estimate a request's time to
// first token on each endpoint instead of counting requests.
//
//   pending_e: uncached prompt tokens of this VM's requests at e whose
//     response has not started (a streaming server answers with its first
//     token; a stream that ends first takes its work along). Exact.
//   remote_e(now) = max(0, remote_e(t) − rate_e × (now − t))
//     other VMs' picks, replicated through the journal, which carries no
//     first-token events: a fluid queue the server works off at its rate.
//   peer_e(now): the same for other Envoy replicas' picks (peers.ts), which
//     come with no release either, so nothing caps them but the draining.
//   context_e: prompt tokens of this proxy's requests in flight at e. Decoding
//     requests read their whole context every step, which slows the steps the
//     next prefill shares (vLLM batches prefill chunks with decodes).
//   rate_e: prefill tokens per ms: the configured prefillTokensPerSecond,
//     with "prefillSpeed": "measured" scaled by the server's speed relative
//     to the others, as the scraping VM measures it from its counters
//     (scraper.ts measureRate). Only the ratio is ever trusted: the counters
//     move when requests are admitted, not as their prefill runs. Even the
//     ratio is noise in a fleet of equal servers and cost 55% on mean TTFT
//     there, so it is opt-in (scripts/eval/README.md, "Work scoring").
//
//   TTFT_e ≈ (max(pending_e + remote_e + peer_e, queued_e × meanUncached) + uncached_e
//             + decodeWeight × context_e) / rate_e
//
// where queued_e is the server's reported queue corrected by what was sent and
// ended since (load.ts), which also covers work other proxies sent, and
// meanUncached the mean uncached prompt of this proxy's requests. Pure
// arithmetic over fixed arrays: O(1) per endpoint, no allocation.

/** Characters per token assumed when converting prompt text to work (English text with Llama-class tokenizers). */
export const CHARS_PER_TOKEN: f64 = 4;

const MIN_SPEED: f64 = 0.25;
const MAX_SPEED: f64 = 4;

/** Weight of a new sample in the mean uncached prompt (an EWMA over requests). */
const MEAN_ALPHA: f64 = 0.05;

@final
export class WorkLedger {
  private readonly pending: StaticArray<f64>;
  private readonly backlog: StaticArray<f64>;
  private readonly backlogAtMs: StaticArray<i64>;
  /** Uncached prefill of other VMs' requests still in flight at e, and how many they are. */
  private readonly remoteUncached: StaticArray<f64>;
  private readonly remoteRequests: StaticArray<f64>;
  readonly context: StaticArray<f64>;
  /**
   * Uncached prefill other Envoy replicas sent e (peers.ts) and when: drained
   * at e's rate, with no release to cap it. Empty without peers, so that a
   * filter that trades nothing carries nothing for it.
   */
  private readonly peerBacklog: StaticArray<f64>;
  private readonly peerBacklogAtMs: StaticArray<i64>;
  private readonly withPeers: bool;
  /** Measured prefill tokens per ms, NaN until the server reports one. */
  readonly measuredRate: StaticArray<f64>;
  /** Each endpoint's measured rate over the mean of those measured (1 when unknown). */
  private readonly speed: StaticArray<f64>;
  /** Mean uncached prompt tokens of the requests this proxy routed. */
  meanUncached: f64 = 0;
  private samples: i32 = 0;

  /**
   * Before this VM has routed anything the mean is unknown, and a reported
   * queue would count for nothing (queued × 0): a new filter would send its
   * first requests to the server with the longest queue as readily as to an
   * idle one. Until the first sample, a queued request is taken to be as long
   * as the one being routed; the first sample replaces the guess outright.
   */
  assumeMeanUntilSampled(promptTokens: f64): void {
    if (this.samples == 0) this.meanUncached = promptTokens;
  }

  /** `withPeers`: the filter trades decisions with other Envoy replicas (addPeer is called). */
  constructor(endpoints: i32, private defaultRate: f64, withPeers: bool = false) {
    this.pending = new StaticArray<f64>(endpoints);
    this.backlog = new StaticArray<f64>(endpoints);
    this.backlogAtMs = new StaticArray<i64>(endpoints);
    this.remoteUncached = new StaticArray<f64>(endpoints);
    this.remoteRequests = new StaticArray<f64>(endpoints);
    this.context = new StaticArray<f64>(endpoints);
    this.withPeers = withPeers;
    this.peerBacklog = new StaticArray<f64>(withPeers ? endpoints : 0);
    this.peerBacklogAtMs = new StaticArray<i64>(withPeers ? endpoints : 0);
    this.measuredRate = new StaticArray<f64>(endpoints);
    this.speed = new StaticArray<f64>(endpoints);
    for (let e = 0; e < endpoints; e++) {
      unchecked(this.measuredRate[e] = NaN);
      unchecked(this.speed[e] = 1);
    }
  }

  /** Endpoint slot e starts over: no work known, rate unmeasured. */
  reset(e: i32): void {
    unchecked(this.pending[e] = 0);
    unchecked(this.backlog[e] = 0);
    unchecked(this.backlogAtMs[e] = 0);
    unchecked(this.remoteUncached[e] = 0);
    unchecked(this.remoteRequests[e] = 0);
    unchecked(this.context[e] = 0);
    if (this.withPeers) {
      unchecked(this.peerBacklog[e] = 0);
      unchecked(this.peerBacklogAtMs[e] = 0);
    }
    unchecked(this.measuredRate[e] = NaN);
    unchecked(this.speed[e] = 1);
  }

  /** Prefill tokens per ms endpoint e works at. */
  // @ts-ignore: decorator
  @inline rate(e: i32): f64 {
    return this.defaultRate * unchecked(this.speed[e]);
  }

  /** Recomputes the relative speeds from measuredRate (after each load snapshot), bounded to [1/4, 4]. */
  updateSpeeds(): void {
    const n = this.speed.length;
    let sum: f64 = 0;
    let known = 0;
    for (let e = 0; e < n; e++) {
      const r = unchecked(this.measuredRate[e]);
      if (r > 0) {
        sum += r;
        known++;
      }
    }
    const mean = known > 0 ? sum / <f64>known : 0;
    for (let e = 0; e < n; e++) {
      const r = unchecked(this.measuredRate[e]);
      unchecked(this.speed[e] = r > 0 && mean > 0 ? min(max(r / mean, MIN_SPEED), MAX_SPEED) : 1.0);
    }
  }

  /** What is left at `now` of `tokens` of prefill queued at e at `sinceMs`, e working them off at its rate. */
  // @ts-ignore: decorator
  @inline private drained(e: i32, tokens: f64, sinceMs: i64, now: i64): f64 {
    const elapsed = <f64>max<i64>(now - sinceMs, 0);
    return max(tokens - this.rate(e) * elapsed, 0.0);
  }

  /** Uncached prefill other VMs sent to e and not yet worked off at `now`, in tokens. */
  // @ts-ignore: decorator
  @inline backlogAt(e: i32, now: i64): f64 {
    const inFlight = unchecked(this.remoteUncached[e]);
    if (inFlight == 0) return 0; // the usual case with one worker, or an endpoint idle of others' work
    // Never more than the prefill of the requests still in flight: a request
    // that ended has certainly been prefilled. This also nets out a journal
    // replayed at once (a new VM catching up), whose picks and releases all
    // arrive at the same instant.
    return min(this.drained(e, unchecked(this.backlog[e]), unchecked(this.backlogAtMs[e]), now), inFlight);
  }

  /** Uncached prefill other Envoys sent e and not yet worked off at `now`, in tokens. */
  // @ts-ignore: decorator
  @inline peerBacklogAt(e: i32, now: i64): f64 {
    if (!this.withPeers) return 0;
    const b = unchecked(this.peerBacklog[e]);
    return b == 0 ? 0 : this.drained(e, b, unchecked(this.peerBacklogAtMs[e]), now);
  }

  /** Prefill tokens ahead of a new request at e: this VM's exactly, other VMs' and other Envoys' as drained. */
  // @ts-ignore: decorator
  @inline ahead(e: i32, now: i64): f64 {
    return unchecked(this.pending[e]) + this.backlogAt(e, now) + this.peerBacklogAt(e, now);
  }

  /** Another Envoy replica sent e a request (a decision traded through peers.ts). */
  addPeer(e: i32, uncached: f64, now: i64): void {
    if (!this.withPeers) return;
    unchecked(this.peerBacklog[e] = this.peerBacklogAt(e, now) + uncached);
    unchecked(this.peerBacklogAtMs[e] = now);
  }

  /** This VM sent e a request: `uncached` prompt tokens to prefill, `context` tokens it holds while in flight. */
  addOwn(e: i32, uncached: f64, context: f64): void {
    unchecked(this.pending[e] += uncached);
    unchecked(this.context[e] += context);
    this.samples = min(this.samples + 1, 1000);
    // A plain mean over the first requests, then an exponential one.
    const alpha = max(MEAN_ALPHA, 1.0 / <f64>this.samples);
    this.meanUncached += alpha * (uncached - this.meanUncached);
  }

  /** Another VM sent e a request (replicated): its prefill drains at e's rate. */
  addRemote(e: i32, uncached: f64, context: f64, now: i64): void {
    unchecked(this.remoteUncached[e] += uncached);
    unchecked(this.remoteRequests[e] += 1);
    unchecked(this.backlog[e] = this.backlogAt(e, now) + uncached);
    unchecked(this.backlogAtMs[e] = now);
    unchecked(this.context[e] += context);
  }

  /** This VM's request at e got its first token (or ended before): its prefill is no longer ahead of anyone. */
  // @ts-ignore: decorator
  @inline prefillDone(e: i32, uncached: f64): void {
    unchecked(this.pending[e] = max(unchecked(this.pending[e]) - uncached, 0.0));
  }

  /** Another VM's request at e ended; the journal does not say which, so it takes the mean prefill of theirs. */
  releaseRemote(e: i32): void {
    const n = unchecked(this.remoteRequests[e]);
    if (n <= 0) return; // its pick was before this VM started reading
    unchecked(this.remoteUncached[e] = n <= 1 ? 0 : unchecked(this.remoteUncached[e]) * (n - 1) / n);
    unchecked(this.remoteRequests[e] = n - 1);
  }

  /** A request at e ended, holding `context` tokens. */
  // @ts-ignore: decorator
  @inline release(e: i32, context: f64): void {
    unchecked(this.context[e] = max(unchecked(this.context[e]) - context, 0.0));
  }

  /**
   * Estimated time to first token, in ms, of a request with `uncached` prompt
   * tokens on e, behind `queued` requests the server reports (NaN: unknown).
   */
  estimateMs(e: i32, uncached: f64, queued: f64, decodeWeight: f64, now: i64): f64 {
    return this.estimateBehindMs(e, this.backlogTokens(e, queued, now), uncached, decodeWeight);
  }

  /** The same, given the backlog at e (backlogTokens), for a caller that already has it. */
  // @ts-ignore: decorator
  @inline estimateBehindMs(e: i32, backlog: f64, uncached: f64, decodeWeight: f64): f64 {
    return (backlog + uncached + decodeWeight * unchecked(this.context[e])) / this.rate(e);
  }

  /** Prefill tokens waiting at e before a new request: what this proxy knows of, or the reported queue if longer. */
  // @ts-ignore: decorator
  @inline backlogTokens(e: i32, queued: f64, now: i64): f64 {
    const ahead = this.ahead(e, now);
    return isNaN(queued) ? ahead : max(ahead, queued * this.meanUncached);
  }
}
