// Picks one endpoint for a request from its prefix matches and the endpoints'
// loads. Pure: no host calls, no allocation per pick.
//
//   0. Only members of the cluster in the pickable state count (endpoints.ts):
//      healthy by Envoy's account, or degraded when none is healthy.
//   1. Guard: an endpoint is eligible only if taking this request keeps its load
//      within max(loadFactor × mean, mean + slack), mean counted with this
//      request (bounded-load consistent hashing's rule, with an absolute slack
//      so that small absolute differences at low load do not break affinity).
//      Unhealthy endpoints are not eligible unless every endpoint is unhealthy,
//      and saturated ones (fresh metrics showing KV usage ≥ kvSaturation, or,
//      with weighted scoring, a queue at least queueSaturation longer than the
//      shortest; work scoring has the queue in its estimate) are not eligible
//      unless every candidate is.
//      LoRA: for a model seen running as an adapter on some endpoint, the
//      eligible set narrows to endpoints running it, plus those with room to
//      load it (fewer than max_lora running) that hold more of the prompt
//      than any endpoint running it; with none running it, to those with
//      room; else it stays as it is. Keeping an adapter where it runs packs
//      adapters into few slots; the exception keeps a prompt where it is
//      cached (without it, 70 of 1,500 LoRA-mix requests on 16 servers went
//      cold to a server that happened to run the adapter; reports/eval).
//   Steps 2 and 3 are the weighted score's; work scoring (the default) has its
//   own, pickByWork.
//   2. No useful match on any eligible endpoint (fewer than minMatchBlocks
//      blocks; matches are counted in index entries of indexStride blocks, so
//      the threshold is minMatchBlocks rounded up to whole entries):
//      rendezvous hashing of the request's first block over the eligible
//      endpoints whose load score (the score below without its prefix term) is
//      within coldBand × (sum of the load weights) of the best one. A new
//      prefix loses no cache affinity by avoiding a busy server, so it goes to
//      a lightly loaded one; among those, rendezvous hashing lets independent
//      Envoy replicas that share nothing (and so see similar loads) agree.
//   3. Otherwise the highest weighted score wins:
//        w_prefix · matched/total + w_inFlight · (1 − inFlight/inFlightSat)
//      + w_queue · (1 − queue/queueSat) + w_kvCache · (1 − kv)
//      (queue and KV from fresh metrics; an endpoint without them is assumed
//      as loaded as the average eligible one that has them, and with none
//      fresh anywhere the terms score alike for every endpoint;
//      the load terms go negative past their scale rather than stopping at 0,
//      so under overload the shorter queue still wins)
//      with ties broken by the rendezvous weight, so picks are deterministic.
//   4. Runners-up: the next fallbackHosts eligible endpoints in the same order
//      (step 2: in the band before outside it, each by rendezvous weight; step
//      3: by score; work scoring: the band's order, then by estimate), for the
//      destination header's fallback list. Kept in a
//      fixed array of at most MAX_RANKED while the loop above runs.
import { Config } from "./config";
import { Endpoints } from "./endpoints";
import { mix64 } from "./hash";
import { LoadView } from "./load";
import { CHARS_PER_TOKEN } from "./work";
import { MAX_RANKED } from "./limits";

/**
 * With R ≥ 2 replicas sharing the servers (Config.replicas, or judged by
 * LoadView.replicas), the bands are these multiples of R times their setting.
 * Each replica's own in-flight work is a smaller part of each server's load
 * and its estimates differ from the others' by more. A prompt no endpoint is
 * known to hold may well be one another replica placed already, on its
 * rendezvous choice, so the cold band is wider: coldBandMs 50 × 5 × 4 = 1 s
 * for four replicas. The factor was chosen from 3, 5, 7, 10 and 15 (one
 * build each; 2, 4 and 8 replicas; shared-prefix, multi-turn, agent,
 * bursts, the trace; 1× and 4×; 8 servers) by the worst mean TTFT against
 * the best baseline with as many replicas: agent with eight at 4× is the
 * worst whatever the factor (1.90), and of the cells the factor moves, 5
 * leaves the worst lowest (the trace with eight at 4×, 1.38; 15: 1.78, its
 * rendezvous placement putting the trace's long, rarely shared prompts on
 * busy servers; 3: shared-prefix with eight, 1.89). Shared-prefix with four
 * at 4× pays for it: 1.22 against 0.81 (reports/eval/replica-cold-band.md).
 */
/*
 * Replicas that trade decisions (peers.ts) share the index, so "auto" keeps
 * one gateway's bands for them: with four at 4× the trace's mean TTFT was
 * 592 ms with those bands against 988 with the wide ones (whose rendezvous
 * placement piled the trace's long prompts up), multi-turn 39 against 45,
 * agent 117 against 119, shared-prefix 125 against 120 (8 servers,
 * `--policies prefix-router-peers --router-config '{"replicas":1}'` against
 * the default; README "How well it routes").
 */
const COLD_BAND_PER_REPLICA: f64 = 5;
const MATCH_BAND_PER_REPLICA: f64 = 0.75;

/** Ranks an endpoint within the band above any outside it (whose key is minus an estimate in ms). */
const IN_BAND: f64 = 1e12;

@final
export class Scorer {
  /** The last pick first, then its runners-up, best first; rankedCount of them are valid. */
  readonly ranked: StaticArray<i32> = new StaticArray<i32>(MAX_RANKED);
  rankedCount: i32 = 0;
  private rankedKey: StaticArray<f64> = new StaticArray<f64>(MAX_RANKED);
  private rankedTie: StaticArray<u64> = new StaticArray<u64>(MAX_RANKED);
  private rankLimit: i32;
  /** minMatchBlocks in index entries (each indexStride blocks), rounded up. */
  private minMatchEntries: i32;
  /** Prompt tokens one index entry covers (indexStride blocks of hashBlockSize characters). */
  private tokensPerEntry: f64;
  private eligible: StaticArray<bool>;
  /** Load scores of the eligible endpoints, for the rendezvous band. */
  private loadScores: StaticArray<f64>;
  /** Why the last pick went where it did, for stats. */
  lastWasRendezvous: bool = false;
  /** The guard kept the request off the endpoint with the longest match. */
  lastDiverted: bool = false;
  /** The longest match among the eligible endpoints, and among all (surveyEligible). */
  private bestMatch: i32 = 0;
  private bestMatchAnywhere: i32 = 0;
  /** Queue and KV usage assumed for an eligible endpoint whose metrics are missing or stale. */
  private assumedQueue: f64 = NaN;
  private assumedKv: f64 = NaN;
  /** The least load of any candidate (surveyEligible with the guard). */
  private minCandidateLoad: f64 = 0;

  /** Endpoint keys by slot, for rendezvous weights. */
  private keys: StaticArray<u64>;

  constructor(private config: Config, private endpoints: Endpoints) {
    this.keys = endpoints.keys.keys;
    this.eligible = new StaticArray<bool>(endpoints.capacity);
    this.loadScores = new StaticArray<f64>(endpoints.capacity);
    this.rankLimit = min(MAX_RANKED, config.fallbackHosts + 1);
    this.minMatchEntries = (config.minMatchBlocks + config.indexStride - 1) / config.indexStride;
    this.tokensPerEntry = <f64>config.indexStride * <f64>config.hashBlockSize / CHARS_PER_TOKEN;
  }

  /**
   * Keeps e among the best rankLimit by (key, tie), both descending, the tie
   * being e's rendezvous weight for `placementKey`. An earlier endpoint stays
   * ahead of a later one that equals it on both, as the single-pick loop this
   * replaced did. The weight is only computed for a key that may rank: most
   * endpoints fall behind the ranked ones on the key alone.
   */
  // @ts-ignore: decorator
  @inline private offer(e: i32, key: f64, placementKey: u64): void {
    let i = this.rankedCount;
    const limit = this.rankLimit;
    let tie: u64;
    if (i == limit) {
      const lastKey = unchecked(this.rankedKey[limit - 1]);
      if (key < lastKey) return;
      tie = mix64(placementKey ^ unchecked(this.keys[e]));
      if (key == lastKey && tie <= unchecked(this.rankedTie[limit - 1])) return;
      i--;
    } else {
      tie = mix64(placementKey ^ unchecked(this.keys[e]));
      this.rankedCount = i + 1;
    }
    while (i > 0) {
      const k = unchecked(this.rankedKey[i - 1]);
      if (key < k || (key == k && tie <= unchecked(this.rankedTie[i - 1]))) break;
      unchecked(this.ranked[i] = this.ranked[i - 1]);
      unchecked(this.rankedKey[i] = this.rankedKey[i - 1]);
      unchecked(this.rankedTie[i] = this.rankedTie[i - 1]);
      i--;
    }
    unchecked(this.ranked[i] = e);
    unchecked(this.rankedKey[i] = key);
    unchecked(this.rankedTie[i] = tie);
  }

  /**
   * `match[e]`: how many of the request's `entries` index entries endpoint e
   * holds, from the first; `promptTokens`: the request's prompt, for work
   * scoring. Returns the pick (ranked[0]), or -1.
   */
  pick(match: StaticArray<i32>, entries: i32, loads: LoadView, placementKey: u64, model: u64 = 0, promptTokens: f64 = 0): i32 {
    const n = this.endpoints.span;
    const endpoints = this.endpoints;
    const c = this.config;
    // 1. The guard, over the members that may be picked, and among those the
    //    ones whose metrics say healthy (all of them if none does).
    let members = 0;
    let memberLoad: f64 = 0;
    let healthyCount = 0;
    let totalLoad: f64 = 0;
    for (let e = 0; e < n; e++) {
      if (!endpoints.isCandidate(e)) continue;
      members++;
      memberLoad += loads.load(e);
      if (loads.isHealthy(e)) {
        healthyCount++;
        totalLoad += loads.load(e);
      }
    }
    if (members == 0) {
      this.rankedCount = 0;
      return -1;
    }
    const considerAll = healthyCount == 0;
    const candidates = considerAll ? members : healthyCount;
    if (considerAll) totalLoad = memberLoad;
    const mean = (totalLoad + 1) / <f64>candidates;
    const cap = max(c.guardLoadFactor * mean, mean + c.guardSlack);
    const eligibleCount = this.surveyEligible(loads, match, cap, considerAll);
    let narrowed = false;
    if (eligibleCount == 0) {
      // Only possible with slack 0: fall back to the least loaded candidates.
      const minLoad = this.minCandidateLoad;
      for (let e = 0; e < n; e++) {
        unchecked(this.eligible[e] = endpoints.isCandidate(e) && (considerAll || loads.isHealthy(e)) && loads.load(e) == minLoad);
      }
      narrowed = true;
    }
    if (this.excludeSaturated(loads)) narrowed = true;
    // LoRA affinity: an adapter goes where it runs, else where it can be loaded.
    if (model != 0 && loads.isKnownAdapter(model)) {
      this.keepAdapterHosts(loads, model, match);
      narrowed = true;
    }
    // 2. Any useful match among the eligible? (With the assumed loads.)
    if (narrowed) this.surveyEligible(loads, match, NaN, considerAll);
    const bestMatch = this.bestMatch;
    const bestMatchAnywhere = this.bestMatchAnywhere;
    this.lastDiverted = bestMatchAnywhere >= this.minMatchEntries && bestMatchAnywhere > bestMatch;
    this.rankedCount = 0;
    if (c.workScoring) return this.pickByWork(match, bestMatch >= this.minMatchEntries && entries > 0, loads, placementKey, promptTokens);
    if (bestMatch < this.minMatchEntries || entries == 0) {
      this.lastWasRendezvous = true;
      const scores = this.loadScores;
      let bestLoad = -f64.MAX_VALUE;
      for (let e = 0; e < n; e++) {
        if (!unchecked(this.eligible[e])) continue;
        const score = this.loadScore(e, loads);
        unchecked(scores[e] = score);
        bestLoad = max(bestLoad, score);
      }
      const w = c.weights;
      const floor = bestLoad - c.coldBand * (w.inFlight + w.queue + w.kvCache);
      // In the band first (key 1), then the other eligible endpoints (key 0),
      // each by rendezvous weight: the pick is the band's highest weight.
      for (let e = 0; e < n; e++) {
        if (!unchecked(this.eligible[e])) continue;
        this.offer(e, unchecked(scores[e]) < floor ? 0 : 1, placementKey);
      }
      return this.rankedCount > 0 ? unchecked(this.ranked[0]) : -1;
    }
    // 3. Weighted score.
    this.lastWasRendezvous = false;
    const w = c.weights;
    const invEntries = 1.0 / <f64>entries;
    for (let e = 0; e < n; e++) {
      if (!unchecked(this.eligible[e])) continue;
      const score = w.prefix * <f64>unchecked(match[e]) * invEntries + this.loadScore(e, loads);
      this.offer(e, score, placementKey);
    }
    return this.rankedCount > 0 ? unchecked(this.ranked[0]) : -1;
  }

  /**
   * Work scoring (work.ts): each endpoint's estimated time to first token,
   * less the cached prefill counted (affinity − 1) × pressure more times
   * (README "Scoring"). The endpoints within a band of the best compete
   * (matchBandMs with a useful match, coldBandMs without); within it the
   * longest match wins, then the rendezvous weight of the first block. With
   * no match anywhere the estimates differ only by load: when every server
   * is idle they are equal, so cold misses spread by their keys instead of
   * herding onto one endpoint, and each pick adds its work at once, so the
   * next request of a burst sees it. With a match, independent Envoy
   * replicas, whose own in-flight work differs by less than the band, still
   * agree where a prompt family goes (the prompt's own first block decides
   * between equal matches, not small differences in load). matchBandMs 0:
   * the lowest estimate wins, ties by rendezvous weight. One of R ≥ 2
   * replicas widens the bands R-fold and more (COLD_BAND_PER_REPLICA).
   */
  private pickByWork(match: StaticArray<i32>, useful: bool, loads: LoadView, placementKey: u64, promptTokens: f64): i32 {
    const n = this.endpoints.span;
    const c = this.config;
    const estimates = this.loadScores;
    const now = loads.nowMs;
    loads.work.assumeMeanUntilSampled(promptTokens);
    // Prefill a request adds costs more than its own wait when the fleet has
    // none to spare: once even the least loaded eligible endpoint has a mean
    // request's worth waiting, each cached token saved counts `affinity` times
    // (a miss then delays every request behind it, and its second copy of the
    // prefix displaces others and splits later hits). While one is free, extra
    // work there delays no one and cached tokens count twice: once for this
    // request's wait, once for the copy, which also keeps a prefix home when
    // scraped queues lag by a request.
    // First pass: each eligible endpoint's backlog, kept in `estimates` for the second.
    let leastBacklog = f64.MAX_VALUE;
    const work = loads.work;
    for (let e = 0; e < n; e++) {
      if (!unchecked(this.eligible[e])) continue;
      const backlog = work.backlogTokens(e, this.queueOf(e, loads), now);
      unchecked(estimates[e] = backlog);
      leastBacklog = min(leastBacklog, backlog);
    }
    const mean = loads.work.meanUncached;
    const pressure = mean > 0 ? min(leastBacklog / mean, 1.0) : 0.0;
    const extraWeight = max((c.affinity - 1.0) * pressure, min(c.affinity - 1.0, 1.0));
    // Second pass: the estimates, and the best of them for the band. With
    // matchBandMs 0 a useful match takes the lowest estimate, ranked at once.
    // One of several replicas: both bands widen (COLD_BAND_PER_REPLICA), unless
    // they trade decisions (peers), which is what the bands stand in for.
    const replicas = c.replicas > 0 ? c.replicas : c.peers !== null ? 1 : loads.replicas();
    const band = replicas == 1 ? (useful ? c.matchBandMs : c.coldBandMs)
      : <f64>replicas * (useful ? c.matchBandMs * MATCH_BAND_PER_REPLICA : c.coldBandMs * COLD_BAND_PER_REPLICA);
    const byEstimate = band == 0 && useful;
    let best = f64.MAX_VALUE;
    this.lastWasRendezvous = !useful;
    for (let e = 0; e < n; e++) {
      if (!unchecked(this.eligible[e])) continue;
      const uncached = max(promptTokens - <f64>unchecked(match[e]) * this.tokensPerEntry, 0.0);
      // The extra credit for cached tokens, in tokens, rides with the backlog: one division by the rate for both.
      const estimate = loads.work.estimateBehindMs(e, unchecked(estimates[e]) - extraWeight * (promptTokens - uncached), uncached, c.decodeWeight);
      if (byEstimate) {
        this.offer(e, -estimate, placementKey);
      } else {
        unchecked(estimates[e] = estimate);
        best = min(best, estimate);
      }
    }
    if (!byEstimate) {
      // Within the band: the longest match (a match below minMatchBlocks is
      // none), then the rendezvous weight; after it, by estimate.
      for (let e = 0; e < n; e++) {
        if (!unchecked(this.eligible[e])) continue;
        const estimate = unchecked(estimates[e]);
        const key = estimate <= best + band ? IN_BAND + (useful ? <f64>unchecked(match[e]) : 0.0) : -estimate;
        this.offer(e, key, placementKey);
      }
    }
    return this.rankedCount > 0 ? unchecked(this.ranked[0]) : -1;
  }

  /** Whether the last pick let e take the request (health, the guard, saturation, LoRA). */
  // @ts-ignore: decorator
  @inline isEligible(e: i32): bool { return unchecked(this.eligible[e]); }

  /**
   * Puts e first in the last ranking (a sticky route the score did not
   * choose), the others keeping their order after it; e must be eligible.
   */
  promote(e: i32): void {
    let at = this.rankedCount;
    for (let i = 0; i < this.rankedCount; i++) {
      if (unchecked(this.ranked[i]) == e) {
        at = i;
        break;
      }
    }
    if (at == this.rankedCount) {
      if (this.rankedCount < this.rankLimit) this.rankedCount++;
      at = this.rankedCount - 1;
    }
    for (let i = at; i > 0; i--) unchecked(this.ranked[i] = this.ranked[i - 1]);
    unchecked(this.ranked[0] = e);
  }

  /** The queue e reported, or the one assumed for endpoints without fresh metrics. */
  // @ts-ignore: decorator
  @inline private queueOf(e: i32, loads: LoadView): f64 {
    const q = loads.queue(e);
    return isNaN(q) ? this.assumedQueue : q;
  }

  /**
   * Drops saturated endpoints from the eligible set, unless that would empty
   * it: KV usage at kvSaturation, or (weighted scoring) a queue at least
   * queueSaturation longer than the shortest eligible one. The queue test is
   * relative because under overload every queue is long; an absolute
   * threshold then flaps endpoints in and out as their queues cross it and
   * scatters prefixes for nothing. Work scoring has no queue test: its
   * estimate holds the queue, and the cut-off, binding only under overload,
   * sent shared prefixes where they had to be prefilled again (README
   * "Scoring").
   */
  private excludeSaturated(loads: LoadView): bool {
    // Nothing to test: work scoring has no queue test and kvSaturation 1 is off (the default).
    if (this.config.workScoring && this.config.kvSaturation >= 1.0) return false;
    const n = this.endpoints.span;
    let queueLimit = f64.MAX_VALUE;
    if (!this.config.workScoring) {
      let shortest = f64.MAX_VALUE;
      for (let e = 0; e < n; e++) {
        const q = loads.queue(e);
        if (unchecked(this.eligible[e]) && q < shortest) shortest = q; // NaN compares false
      }
      if (shortest != f64.MAX_VALUE) queueLimit = shortest + this.config.queueSaturation;
    }
    let remaining = 0;
    let saturatedCount = 0;
    for (let e = 0; e < n; e++) {
      if (!unchecked(this.eligible[e])) continue;
      if (this.saturated(e, loads, queueLimit)) saturatedCount++;
      else remaining++;
    }
    if (remaining == 0 || saturatedCount == 0) return false;
    for (let e = 0; e < n; e++) {
      if (unchecked(this.eligible[e]) && this.saturated(e, loads, queueLimit)) unchecked(this.eligible[e] = false);
    }
    return true;
  }

  private saturated(e: i32, loads: LoadView, queueLimit: f64): bool {
    const kv = loads.kvUtilization(e);
    // kvSaturation 1 is "off" (README): a server reporting its cache exactly full is not cut off.
    const kvLimit = this.config.kvSaturation;
    return loads.queue(e) >= queueLimit || (kvLimit < 1.0 && !isNaN(kv) && kv >= kvLimit);
  }

  /**
   * One pass over the endpoints: the guard's eligible set (step 1, when `cap`
   * is a number; with NaN the set stays as it is), and a survey of it: the
   * longest match among the eligible and anywhere, the least load of any
   * candidate, and the loads assumed for eligible endpoints without fresh
   * metrics. Returns how many are eligible. The steps after the guard that
   * narrow the set are rare (saturation, LoRA), and only then is the survey
   * taken again, so the usual request passes over the endpoints once for both.
   *
   * An endpoint without fresh metrics is assumed as loaded as the average of
   * the eligible endpoints that have them. Assuming it idle would send it the
   * most traffic exactly when its metrics page stops answering, which is often
   * because the server is swamped; its in-flight count still tells the truth.
   * With no fresh metrics anywhere both stay NaN and the terms drop out alike.
   */
  private surveyEligible(loads: LoadView, match: StaticArray<i32>, cap: f64, considerAll: bool): i32 {
    const endpoints = this.endpoints;
    const eligible = this.eligible;
    const guard = !isNaN(cap);
    let eligibleCount = 0;
    let minLoad = f64.MAX_VALUE;
    let queueSum: f64 = 0;
    let kvSum: f64 = 0;
    let queueCount = 0;
    let kvCount = 0;
    let bestMatch = 0;
    let bestMatchAnywhere = 0;
    for (let e = 0; e < endpoints.span; e++) {
      const m = unchecked(match[e]);
      if (m > bestMatchAnywhere) bestMatchAnywhere = m;
      if (guard) {
        const candidate = endpoints.isCandidate(e) && (considerAll || loads.isHealthy(e));
        const load = loads.load(e);
        if (candidate && load < minLoad) minLoad = load;
        unchecked(eligible[e] = candidate && load + 1 <= cap);
      }
      if (!unchecked(eligible[e])) continue;
      eligibleCount++;
      if (m > bestMatch) bestMatch = m;
      const q = loads.queue(e);
      if (!isNaN(q)) {
        queueSum += q;
        queueCount++;
      }
      const kv = loads.kvUtilization(e);
      if (!isNaN(kv)) {
        kvSum += kv;
        kvCount++;
      }
    }
    if (guard) this.minCandidateLoad = minLoad;
    this.bestMatch = bestMatch;
    this.bestMatchAnywhere = bestMatchAnywhere;
    this.assumedQueue = queueCount > 0 ? queueSum / <f64>queueCount : NaN;
    this.assumedKv = kvCount > 0 ? kvSum / <f64>kvCount : NaN;
    return eligibleCount;
  }

  /**
   * The score's load terms: in-flight, queue and KV usage, each weighted.
   * In-flight and queue are linear and not capped, so that past their scale
   * (under overload) a longer queue still scores lower than a shorter one.
   */
  private loadScore(e: i32, loads: LoadView): f64 {
    const c = this.config;
    const w = c.weights;
    let score = w.inFlight * (1.0 - loads.inFlight(e) / c.inFlightSaturation);
    let queue = loads.queue(e);
    if (isNaN(queue)) queue = this.assumedQueue;
    score += isNaN(queue) ? w.queue : w.queue * (1.0 - queue / c.queueSaturation);
    let kv = loads.kvUtilization(e);
    if (isNaN(kv)) kv = this.assumedKv;
    score += isNaN(kv) ? w.kvCache : w.kvCache * (1.0 - min(max(kv, 0.0), 1.0));
    return score;
  }

  /** Narrows the eligible set for LoRA adapter `model` (step 1 above). */
  private keepAdapterHosts(loads: LoadView, model: u64, match: StaticArray<i32>): void {
    const n = this.endpoints.span;
    let running = 0;
    let room = 0;
    let runningMatch = -1;
    for (let e = 0; e < n; e++) {
      if (!unchecked(this.eligible[e])) continue;
      if (loads.runsAdapter(e, model)) {
        running++;
        runningMatch = max(runningMatch, unchecked(match[e]));
      } else if (loads.hasAdapterRoom(e)) room++;
    }
    if (running == 0 && room == 0) return;
    for (let e = 0; e < n; e++) {
      if (!unchecked(this.eligible[e])) continue;
      const keep = loads.runsAdapter(e, model) || (loads.hasAdapterRoom(e) && unchecked(match[e]) > runningMatch);
      unchecked(this.eligible[e] = keep);
    }
  }
}
