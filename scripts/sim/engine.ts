// One simulated model server's engine in virtual time: vLLM v1's continuous
// batching over the KV block pool in kvcache.ts. Owns: the waiting queue, the
// running batch, step formation and step timing, LoRA slots, preemption, and
// the counters behind the metrics page. Must not: read a clock (the caller
// passes `now` in ms and asks for the next event time), do I/O, or route.
//
// Step formation follows vllm/v1/core/sched/scheduler.py schedule():
// - a token budget of max_num_batched_tokens per step; running requests first
//   (each decode takes 1 token, an unfinished prefill takes what is left of the
//   budget: chunked prefill), then waiting requests in arrival order;
// - a waiting request is admitted only if its new blocks fit in the free pool;
//   otherwise admission stops for this step (FCFS), which is the concurrency
//   limit that KV capacity imposes;
// - when a running request cannot get a block, the last running request is
//   preempted (RECOMPUTE: its blocks are freed, it returns to the head of the
//   waiting queue with no computed tokens) and no waiting request is admitted
//   in that step;
// - a waiting request whose LoRA adapter is not in the batch is skipped while
//   the batch already holds max_loras adapters.
// Timing: step time = β0 + β1·(prefill tokens computed) + β2·(decode tokens)
// (params.ts has the figures and their source), + loraLoadMs per adapter
// brought into a GPU slot; under the "context" step model (the default) also
// + γp·Σ over prefill chunks of n·c + n(n+1)/2 (n new tokens after c already
// in the KV cache) + γd·Σ over decodes of the context length. Cached prompt tokens cost nothing: that is the whole
// point of routing for the cache. The first token is sampled at the end of the
// step that computes the last prompt token, so TTFT = queueing + prefill of
// the uncached tokens, with other requests' tokens sharing each step.
//
// Speed: a batch of pure decodes with no admissible waiting request repeats
// identically until a request finishes or a new one arrives, so it runs as one
// "macro step" of k steps; an arrival cuts the macro step at the next step
// boundary (truncate in submit), exactly when vLLM would see it. Under the
// context model each of those steps is γd·(batch size) longer than the one
// before (every context grew by a token), so step j of a macro step lasts
// stepMs + j·stepGrowthMs and boundaries solve a quadratic.

import { BLOCK_TOKENS } from "./hash.ts";
import { KvCache } from "./kvcache.ts";
import type { SimParams } from "./params.ts";

export interface EngineRequest {
  /** The caller's handle, returned in callbacks. */
  readonly id: number;
  readonly promptTokens: number;
  /** Output tokens to generate (max_tokens; the simulator never stops early). */
  readonly maxTokens: number;
  /** Chained hashes of the prompt's full blocks (hash.ts). */
  readonly hashes: Float64Array;
  /** LoRA adapter name, or null for the base model. */
  readonly adapter: string | null;
}

export interface RequestOutcome {
  /** Prompt tokens served from the prefix cache when the request was first scheduled. */
  hitTokens: number;
  /** When the first output token was sampled, ms. */
  firstTokenMs: number;
  preemptions: number;
}

export interface EngineListener {
  onFirstToken(req: EngineRequest, timeMs: number): void;
  onComplete(req: EngineRequest, timeMs: number, outcome: RequestOutcome): void;
}

/** The values vLLM's metrics page reports (metrics.ts renders them). */
export interface EngineSnapshot {
  numRequestsRunning: number;
  numRequestsWaiting: number;
  kvCacheUsagePerc: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
  promptTokens: number;
  generationTokens: number;
  numPreemptions: number;
  requestSuccess: number;
  runningLoraAdapters: string[];
  waitingLoraAdapters: string[];
}

class Seq {
  computed = 0;
  generated = 0;
  blocks: number[] = [];
  cachedBlocks = 0;
  hitTokens = -1;
  firstTokenMs = -1;
  preemptions = 0;
  /** Its prompt hashes are counted in Engine.pending (until all its prompt blocks are cached). */
  pending = true;
  constructor(readonly req: EngineRequest, readonly estHitTokens: number) {}
  get numTokens(): number {
    return this.req.promptTokens + this.generated;
  }
}

function blocksFor(tokens: number): number {
  return Math.ceil(tokens / BLOCK_TOKENS);
}

/** Attention cost of computing `uncached` prompt tokens after `cached` ones, in any chunking (context model; 0 under linear). */
export function prefillAttentionMs(p: SimParams, uncached: number, cached: number): number {
  if (p.stepModel !== "context") return 0;
  return p.attnPrefillMsPerPair * (uncached * cached + (uncached * (uncached + 1)) / 2);
}

/**
 * A request's TTFT alone on an idle server that already holds `cachedTokens`
 * of its prompt: its uncached tokens in chunks of max_num_batched_tokens, one
 * step each, with nothing else in the batch. The zero-queue bound of the
 * evaluator's report (with the ideal hit for cachedTokens).
 */
export function isolatedTtftMs(p: SimParams, promptTokens: number, cachedTokens: number): number {
  const uncached = Math.max(1, promptTokens - cachedTokens);
  const steps = Math.ceil(uncached / p.maxNumBatchedTokens);
  return steps * p.stepBaseMs + uncached * p.prefillMsPerToken + prefillAttentionMs(p, uncached, promptTokens - uncached);
}

export class Engine {
  readonly p: SimParams;
  readonly cache: KvCache;
  private readonly listener: EngineListener;

  private waiting: Seq[] = [];
  private wHead = 0;
  private running: Seq[] = [];
  private runningAdapters = new Map<string, number>();
  private loraSlots: string[] = []; // resident adapters, least recently used first
  // Prompt block hashes of queued and prefilling requests, counted: blocks this
  // server will hold once the work ahead is done. Only the oracle's estimates read it.
  private readonly pending = new Map<number, number>();

  // The step in flight.
  private busy = false;
  private wakeAt = Infinity;
  private stepStart = 0;
  private stepEnd = 0;
  private stepMs = 0; // duration of the first step of a macro step
  private stepGrowthMs = 0; // how much longer each further step of a macro step is (context model)
  private macroK = 1;
  private batch: Seq[] = [];
  private batchTokens: number[] = [];

  /** Sum of step durations, ms (the "busy time" of the imbalance figure). */
  busyMs = 0;
  steps = 0;
  promptTokensTotal = 0;
  generationTokensTotal = 0;
  preemptionsTotal = 0;
  completedTotal = 0;

  constructor(params: SimParams, listener: EngineListener) {
    this.p = params;
    this.cache = new KvCache(params.numGpuBlocks);
    this.listener = listener;
  }

  get numWaiting(): number {
    return this.waiting.length - this.wHead;
  }

  get numRunning(): number {
    return this.running.length;
  }

  /** Time of the next event this engine must process (a step end or a wake-up), or Infinity when idle. */
  nextEventMs(): number {
    return this.busy ? this.stepEnd : this.wakeAt;
  }

  /**
   * Validate and enqueue a request. Returns null, or the reason it is refused
   * (vLLM answers such requests with HTTP 400 before they reach the engine).
   */
  submit(req: EngineRequest, now: number): string | null {
    const total = req.promptTokens + req.maxTokens;
    if (req.promptTokens < 1) return "the prompt is empty";
    if (total > this.p.maxModelLen) {
      return `This model's maximum context length is ${this.p.maxModelLen} tokens. However, you requested ${total} tokens (${req.promptTokens} in the messages, ${req.maxTokens} in the completion).`;
    }
    if (blocksFor(total) > this.p.numGpuBlocks - 1) return `the request needs more KV blocks than the server has`;
    const est = this.expectedHitTokens(req.hashes, req.promptTokens);
    for (const h of req.hashes) this.pending.set(h, (this.pending.get(h) ?? 0) + 1);
    this.waiting.push(new Seq(req, est));
    if (this.busy) {
      if (this.macroK > 1) this.truncateMacro(now);
    } else if (this.wakeAt > now) {
      this.wakeAt = now;
    }
    return null;
  }

  /** Process the event due at `now` (= nextEventMs()): finish the step in flight, start the next. */
  processEvent(now: number): void {
    if (this.busy) {
      if (now < this.stepEnd) return;
      this.finishStep();
    } else if (now < this.wakeAt) {
      return;
    }
    this.wakeAt = Infinity;
    this.startStep(now);
  }

  snapshot(): EngineSnapshot {
    const waitingAdapters = new Set<string>();
    for (let i = this.wHead; i < this.waiting.length; i++) {
      const a = this.waiting[i].req.adapter;
      if (a !== null) waitingAdapters.add(a);
    }
    return {
      numRequestsRunning: this.running.length,
      numRequestsWaiting: this.numWaiting,
      kvCacheUsagePerc: this.cache.usage(),
      prefixCacheQueries: this.cache.queries,
      prefixCacheHits: this.cache.hits,
      promptTokens: this.promptTokensTotal,
      generationTokens: this.generationTokensTotal,
      numPreemptions: this.preemptionsTotal,
      requestSuccess: this.completedTotal,
      runningLoraAdapters: [...this.runningAdapters.keys()].sort(),
      waitingLoraAdapters: [...waitingAdapters].sort(),
    };
  }

  /** Prompt tokens of `hashes` the cache would serve right now (the oracle's view). */
  probeHitTokens(hashes: Float64Array, promptTokens: number): number {
    return this.cache.longestHit(hashes, Math.floor((promptTokens - 1) / BLOCK_TOKENS)) * BLOCK_TOKENS;
  }

  /**
   * Prompt tokens a request submitted now should find cached when its turn
   * comes: the longest prefix of blocks cached now or being computed for
   * requests already queued here (eviction in between is ignored).
   */
  expectedHitTokens(hashes: Float64Array, promptTokens: number): number {
    const n = Math.min(Math.floor((promptTokens - 1) / BLOCK_TOKENS), hashes.length);
    let i = 0;
    while (i < n && (this.cache.isCached(hashes[i]) || this.pending.has(hashes[i]))) i++;
    return i * BLOCK_TOKENS;
  }

  /**
   * Estimated TTFT of a new request arriving now: the rest of the step in
   * flight, then every queued uncached prompt token ahead of it and its own,
   * in steps of max_num_batched_tokens that also carry the running decodes;
   * plus a wait for KV room or a LoRA slot when it would need one. Used by the
   * oracle only; it reads the real cache and queue.
   */
  estimateTtftMs(req: EngineRequest, now: number): number {
    const p = this.p;
    const own = req.promptTokens - this.expectedHitTokens(req.hashes, req.promptTokens);
    let ahead = 0;
    let attention = prefillAttentionMs(p, own, req.promptTokens - own);
    let decoding = 0;
    let decodeContext = 0;
    let minLeft = Infinity;
    // Per running adapter, the decode steps until its last request finishes.
    const adapterLeft = new Map<string, number>();
    for (const s of this.running) {
      const left = s.req.maxTokens - s.generated;
      if (s.generated === 0) {
        ahead += s.numTokens - s.computed;
        attention += prefillAttentionMs(p, s.numTokens - s.computed, s.computed);
      } else {
        decoding++;
        decodeContext += s.numTokens;
        minLeft = Math.min(minLeft, left);
      }
      const a = s.req.adapter;
      if (a !== null) adapterLeft.set(a, Math.max(adapterLeft.get(a) ?? 0, left));
    }
    for (let i = this.wHead; i < this.waiting.length; i++) {
      const s = this.waiting[i];
      const hit = s.preemptions > 0 ? 0 : s.estHitTokens;
      ahead += s.numTokens - hit;
      attention += prefillAttentionMs(p, s.numTokens - hit, hit);
    }
    const tokens = ahead + own;
    const steps = Math.max(1, Math.ceil(tokens / p.maxNumBatchedTokens));
    const decodeAttention = p.stepModel === "context" ? p.attnDecodeMsPerContextToken * decodeContext : 0;
    const stepBase = p.stepBaseMs + p.decodeMsPerToken * decoding + decodeAttention;
    let t = Math.max(0, this.nextBoundaryMs(now) - now) + tokens * p.prefillMsPerToken + attention + steps * stepBase;
    // Not enough free KV for its blocks: it waits for the soonest finishing decode.
    const newBlocks = blocksFor(req.promptTokens) - (req.promptTokens - own) / BLOCK_TOKENS;
    if (newBlocks > this.cache.numFree && minLeft < Infinity) t += minLeft * stepBase;
    const a = req.adapter;
    if (a !== null && p.maxLoras > 0 && !adapterLeft.has(a)) {
      // Every slot taken by other adapters: it waits until one adapter leaves the batch.
      if (adapterLeft.size >= p.maxLoras) t += Math.min(...adapterLeft.values()) * stepBase;
      if (!this.loraSlots.includes(a)) t += p.loraLoadMs;
    }
    return t;
  }

  // ---- steps ----

  private startStep(now: number): void {
    const p = this.p;
    const batch = this.batch;
    const batchTokens = this.batchTokens;
    batch.length = 0;
    batchTokens.length = 0;
    let budget = p.maxNumBatchedTokens;
    let prefill = 0;
    let decode = 0;
    let preempted = false;
    let loraLoads = 0;
    // Attention under the context model: query-key pairs of prefill chunks, context tokens read by decodes.
    let prefillPairs = 0;
    let decodeContext = 0;

    // Running requests first, in order; the last one is the preemption victim.
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const s = this.running[i];
      const n = Math.min(s.numTokens - s.computed, budget);
      if (n <= 0) continue;
      const need = blocksFor(s.computed + n) - s.blocks.length;
      let ok = true;
      while (need > this.cache.numFree) {
        const victim = this.running[this.running.length - 1];
        this.preempt(victim);
        preempted = true;
        if (victim === s) {
          ok = false;
          break;
        }
      }
      if (!ok) break;
      if (need > 0) this.cache.allocate(need, s.blocks);
      this.cacheFullBlocks(s, s.computed + n);
      batch.push(s);
      batchTokens.push(n);
      budget -= n;
      // A decode computes the one token sampled last step; anything else is (re)prefill.
      if (n === 1 && s.generated > 0 && s.computed === s.numTokens - 1) {
        decode += n;
        decodeContext += s.numTokens;
      } else {
        prefill += n;
        prefillPairs += n * s.computed + (n * (n + 1)) / 2;
      }
    }

    // Then waiting requests, oldest first, unless this step preempted.
    let admitted = 0;
    let skipped: Seq[] | null = null;
    while (!preempted && budget > 0 && this.wHead < this.waiting.length && this.running.length < p.maxNumSeqs) {
      const s = this.waiting[this.wHead];
      const adapter = s.req.adapter;
      if (adapter !== null && p.maxLoras > 0 && !this.runningAdapters.has(adapter) && this.runningAdapters.size >= p.maxLoras) {
        (skipped ??= []).push(s);
        this.wHead++;
        continue;
      }
      const hitBlocks = this.cache.longestHit(s.req.hashes, Math.floor((s.numTokens - 1) / BLOCK_TOKENS));
      const hitTokens = hitBlocks * BLOCK_TOKENS;
      const n = Math.min(s.numTokens - hitTokens, budget);
      const need = blocksFor(hitTokens + n) - hitBlocks;
      // Hit blocks sitting in the free queue stop being free once touched.
      if (need > this.cache.numFree - this.cache.freeAmongHit(s.req.hashes, hitBlocks)) break;
      this.wHead++;
      this.cache.touch(s.req.hashes, hitBlocks, s.blocks);
      this.cache.allocate(need, s.blocks);
      s.computed = hitTokens;
      s.cachedBlocks = hitBlocks;
      if (s.hitTokens < 0) {
        // Counted once per request, as vLLM's PrefixCacheStats does for a request's first scheduling.
        s.hitTokens = hitTokens;
        this.cache.queries += s.req.promptTokens;
        this.cache.hits += hitTokens;
      }
      this.cacheFullBlocks(s, hitTokens + n);
      if (adapter !== null && p.maxLoras > 0) {
        this.runningAdapters.set(adapter, (this.runningAdapters.get(adapter) ?? 0) + 1);
        if (this.loadLora(adapter)) loraLoads++;
      }
      this.running.push(s);
      batch.push(s);
      batchTokens.push(n);
      budget -= n;
      prefill += n;
      prefillPairs += n * hitTokens + (n * (n + 1)) / 2;
      admitted++;
    }
    if (skipped !== null) {
      // Skipped requests keep their place at the head of the queue.
      for (let i = skipped.length - 1; i >= 0; i--) this.pushFront(skipped[i]);
    }
    this.compactWaiting();

    if (batch.length === 0) {
      this.busy = false;
      return;
    }
    this.busy = true;
    this.stepStart = now;
    this.stepMs = p.stepBaseMs + p.prefillMsPerToken * prefill + p.decodeMsPerToken * decode + p.loraLoadMs * loraLoads;
    this.stepGrowthMs = 0;
    if (p.stepModel === "context") {
      this.stepMs += p.attnPrefillMsPerPair * prefillPairs + p.attnDecodeMsPerContextToken * decodeContext;
      this.stepGrowthMs = p.attnDecodeMsPerContextToken * decode;
    }
    this.macroK = 1;
    if (prefill === 0 && admitted === 0 && !preempted && loraLoads === 0 && batch.length === this.running.length) {
      this.macroK = this.macroSteps();
    }
    this.stepEnd = this.macroEnd(this.macroK);
  }

  /** End of the k-th step of the step in flight (k = 1 for a single step). */
  private macroEnd(k: number): number {
    if (this.stepGrowthMs === 0) return this.stepStart + this.stepMs * k;
    return this.stepStart + this.stepMs * k + (this.stepGrowthMs * k * (k - 1)) / 2;
  }

  /**
   * How many identical decode steps can run before something changes: the
   * first request to finish, capped so every block the steps need is free now.
   */
  private macroSteps(): number {
    let k = Infinity;
    for (const s of this.running) k = Math.min(k, s.req.maxTokens - s.generated);
    if (!(k > 1)) return 1;
    const fits = (steps: number): boolean => {
      let need = 0;
      for (const s of this.running) need += blocksFor(s.computed + steps) - s.blocks.length;
      return need <= this.cache.numFree;
    };
    if (fits(k)) return k;
    let lo = 1;
    let hi = k; // fits(lo) holds (step 1's blocks are allocated), fits(hi) does not
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (fits(mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /** When a request arriving now could first be scheduled: the end of the (single) step in flight. */
  private nextBoundaryMs(now: number): number {
    if (!this.busy) return now;
    if (this.macroK === 1) return this.stepEnd;
    return this.macroEnd(this.boundaryStep(now));
  }

  /** The first k in [1, macroK] whose step ends at or after now. */
  private boundaryStep(now: number): number {
    const dt = now - this.stepStart;
    if (this.stepGrowthMs === 0) return Math.min(this.macroK, Math.max(1, Math.ceil(dt / this.stepMs)));
    // k·stepMs + g·k(k−1)/2 = dt, solved for k, then nudged past rounding.
    const g = this.stepGrowthMs;
    const b = this.stepMs - g / 2;
    let k = Math.ceil((-b + Math.sqrt(b * b + 2 * g * Math.max(0, dt))) / g);
    k = Math.min(this.macroK, Math.max(1, k));
    while (k > 1 && this.macroEnd(k - 1) >= now) k--;
    while (k < this.macroK && this.macroEnd(k) < now) k++;
    return k;
  }

  private truncateMacro(now: number): void {
    const k = this.boundaryStep(now);
    if (k < this.macroK) {
      this.macroK = k;
      this.stepEnd = this.macroEnd(k);
    }
  }

  private finishStep(): void {
    const end = this.stepEnd;
    const k = this.macroK;
    this.busyMs += end - this.stepStart;
    this.steps += k;
    const batch = this.batch;
    const tokens = this.batchTokens;
    for (let i = 0; i < batch.length; i++) {
      const s = batch[i];
      if (k > 1) {
        // A macro step: k decodes, blocks for steps 2..k taken now (their room was checked at the start).
        const need = blocksFor(s.computed + k) - s.blocks.length;
        if (need > 0) this.cache.allocate(need, s.blocks);
        s.computed += k;
        s.generated += k;
        this.generationTokensTotal += k;
      } else {
        s.computed += tokens[i];
        if (s.computed < s.numTokens) continue; // a prefill chunk, more to come
        s.generated++;
        this.generationTokensTotal++;
        if (s.firstTokenMs < 0) {
          s.firstTokenMs = end;
          // vllm:prompt_tokens counts the whole prompt, cached or not, when the request starts producing.
          this.promptTokensTotal += s.req.promptTokens;
          this.listener.onFirstToken(s.req, end);
        }
      }
      if (s.generated >= s.req.maxTokens) this.complete(s, end);
    }
    batch.length = 0;
    tokens.length = 0;
  }

  private complete(s: Seq, now: number): void {
    const i = this.running.indexOf(s);
    this.running.splice(i, 1);
    this.releaseAdapter(s);
    this.cache.release(s.blocks);
    s.blocks = [];
    this.dropPending(s);
    this.completedTotal++;
    this.listener.onComplete(s.req, now, { hitTokens: Math.max(0, s.hitTokens), firstTokenMs: s.firstTokenMs, preemptions: s.preemptions });
  }

  private preempt(s: Seq): void {
    const i = this.running.lastIndexOf(s);
    this.running.splice(i, 1);
    this.releaseAdapter(s);
    this.cache.release(s.blocks);
    s.blocks = [];
    s.computed = 0;
    s.cachedBlocks = 0;
    s.preemptions++;
    this.preemptionsTotal++;
    this.pushFront(s);
  }

  private cacheFullBlocks(s: Seq, tokens: number): void {
    const upto = Math.min(Math.floor(tokens / BLOCK_TOKENS), s.req.hashes.length);
    for (let b = s.cachedBlocks; b < upto; b++) this.cache.cache(s.blocks[b], s.req.hashes[b]);
    if (upto > s.cachedBlocks) s.cachedBlocks = upto;
    if (upto === s.req.hashes.length) this.dropPending(s);
  }

  private dropPending(s: Seq): void {
    if (!s.pending) return;
    s.pending = false;
    for (const h of s.req.hashes) {
      const c = this.pending.get(h)! - 1;
      if (c === 0) this.pending.delete(h);
      else this.pending.set(h, c);
    }
  }

  /** Bring an adapter into a GPU slot; true when that costs a load. */
  private loadLora(adapter: string): boolean {
    const i = this.loraSlots.indexOf(adapter);
    if (i >= 0) {
      this.loraSlots.splice(i, 1);
      this.loraSlots.push(adapter);
      return false;
    }
    if (this.loraSlots.length >= this.p.maxLoras) {
      const j = this.loraSlots.findIndex((a) => !this.runningAdapters.has(a) || a === adapter);
      this.loraSlots.splice(j >= 0 ? j : 0, 1);
    }
    this.loraSlots.push(adapter);
    return true;
  }

  private releaseAdapter(s: Seq): void {
    const a = s.req.adapter;
    if (a === null || this.p.maxLoras === 0) return;
    const c = (this.runningAdapters.get(a) ?? 0) - 1;
    if (c <= 0) this.runningAdapters.delete(a);
    else this.runningAdapters.set(a, c);
  }

  private pushFront(s: Seq): void {
    if (this.wHead > 0) this.waiting[--this.wHead] = s;
    else this.waiting.unshift(s);
  }

  private compactWaiting(): void {
    if (this.wHead > 256 && this.wHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.wHead);
      this.wHead = 0;
    }
  }
}
