// The replay driver: one workload, one policy, N in-process simulated servers,
// all in virtual time. Owns: the event loop (engine step ends, arrivals, and
// the timers of the shared clock), the policy's periodic metric scrapes, and
// the per-request record of what happened. Must not: compute summary
// statistics (stats.ts) or know any particular policy.
//
// Time is the host emulator's VirtualClock (scripts/host/clock.ts), handed to
// the policy as ctx.clock, so a wrapped filter's ticks and callout timeouts run
// on the same clock as the servers. The loop moves it to the next timer, engine
// event or arrival, whichever is first, and after each move awaits the
// policy's settle() (if it has one) so asynchronous work due by then, such as
// the emulator delivering a callout reply, completes before anything else
// happens. At one instant timers run first, then engine step ends (so
// completions reach the policy before a simultaneous arrival), then arrivals.
// Everything is deterministic; the only wall-clock reading is the time spent
// in pick(), which feeds decisionsPerS and nothing else.
//
// Latencies a router lives with (Latencies; DEFAULT_LATENCIES, switched off
// with NO_LATENCIES):
// - the server's per-request overhead (HTTP, tokenization, hand-off to the
//   engine core) delays the moment a request joins the engine's queue;
// - a router outside Envoy's process (ext_proc picker, its own proxy) adds
//   one round trip per request before the request goes upstream;
// - a metrics page reflects state metricsAgeMs old when rendered, and reaches
//   the router scrapeLatencyMs after it asked: the driver's scrapes install
//   what was true at (ask − age) at (ask + latency). A policy that reads
//   ctx.metricsText synchronously (the filter's callouts, answered in the same
//   instant by its adapter) gets the page as it stood age + latency ago, the
//   same staleness on arrival.

import { performance } from "node:perf_hooks";
import { VirtualClock, type Clock, type TimerHandle } from "../host/clock.ts";
import { Engine, type EngineRequest, type EngineSnapshot, type RequestOutcome } from "../sim/engine.ts";
import { renderMetrics, scrapedFromSnapshot } from "../sim/metrics.ts";
import { simParams, type SimParams } from "../sim/params.ts";
import type { Policy, PolicyContext, PolicyFactory, RouteRequest, Scrape, ServerInspector } from "./policy.ts";
import { KvEventFeed } from "./kv-events.ts";
import type { RequestSpec, Workload } from "./workload.ts";

/**
 * The host VirtualClock, plus the one thing the loop needs that it does not
 * expose: when the next live timer is due. Timers are armed on the inner clock
 * (so they fire exactly as the emulator expects) and mirrored in a heap of due
 * times.
 */
class ReplayClock implements Clock {
  private readonly inner = new VirtualClock();
  private readonly heap: { due: number; live: boolean }[] = [];

  now(): number {
    return this.inner.now();
  }

  monotonicNs(): bigint {
    return this.inner.monotonicNs();
  }

  setTimer(delayMs: number, fire: () => void): TimerHandle {
    const entry = { due: this.inner.now() + Math.max(0, delayMs), live: true };
    this.push(entry);
    const handle = this.inner.setTimer(delayMs, () => {
      entry.live = false;
      fire();
    });
    return {
      cancel: () => {
        entry.live = false;
        handle.cancel();
      },
    };
  }

  /** Absolute due time of the earliest live timer, or Infinity. */
  nextDueMs(): number {
    while (this.heap.length > 0 && !this.heap[0].live) this.pop();
    return this.heap.length > 0 ? this.heap[0].due : Infinity;
  }

  /** Move to absolute time t (never back), firing the timers due by then. */
  advanceTo(t: number): void {
    this.inner.advance(Math.max(0, t - this.inner.now()));
  }

  private push(e: { due: number; live: boolean }): void {
    const h = this.heap;
    h.push(e);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (h[p].due <= h[i].due) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l].due < h[m].due) m = l;
      if (r < h.length && h[r].due < h[m].due) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}

/** The request object policies see: a spec at a (time-scaled) arrival, text built on demand. */
class RoutedRequest implements RouteRequest {
  readonly id: string;
  readonly model: string;
  readonly path: string;
  readonly promptTokens: number;
  readonly maxTokens: number;
  private text: string | null = null;
  private bodyText: string | null = null;
  constructor(readonly spec: RequestSpec, readonly arrivalMs: number) {
    this.id = `req-${spec.id}`;
    this.model = spec.model;
    this.path = spec.path;
    this.promptTokens = spec.promptTokens;
    this.maxTokens = spec.maxTokens;
  }
  body(): string {
    return (this.bodyText ??= this.spec.source.body());
  }
  promptText(): string {
    return (this.text ??= this.spec.source.promptText());
  }
  promptPrefix(chars: number): string {
    return this.text !== null ? this.text.slice(0, chars) : this.spec.source.promptPrefix(chars);
  }
  engineBlockHashes(): Float64Array {
    return this.spec.hashes;
  }
}

/** Delays between the router, the servers and their metrics pages, in virtual ms. */
export interface Latencies {
  /** Server-side cost of accepting a request before the engine can schedule it: fixed part. */
  requestOverheadMs: number;
  /** …and per prompt token (tokenization). */
  requestOverheadMsPerToken: number;
  /** Round trip to a router that runs outside Envoy's process, per request (policies in OUT_OF_PROCESS). */
  decisionCalloutMs: number;
  /** Age of the state a /metrics page shows when the server renders it. */
  metricsAgeMs: number;
  /** From a scrape's request to its answer reaching the router. */
  scrapeLatencyMs: number;
}

/**
 * Defaults. vLLM's OpenAI server parses, applies the chat template and
 * tokenizes on its API-server process before handing the request to the engine
 * core: 2 ms fixed plus 1.5 µs per prompt token (a Hugging Face fast
 * tokenizer on long inputs; short inputs measure 10–20 µs per token with the
 * fixed costs included, tenstorrent/tt-inference-server issue 2173), i.e.
 * ~25 ms for the shared trace's mean 15k-token prompt. An out-of-process
 * picker costs one in-cluster gRPC/HTTP round trip plus its own work, ~1 ms
 * (the reference picker's prefix scheduling alone measured ~0.3 ms, BRIEF).
 * vLLM updates its Prometheus gauges from the engine core's per-step stats on
 * the API-server side, so a page trails the engine by about a step (10 ms);
 * answering takes a few ms more on a busy Python server (5 ms). All are
 * estimates, not measurements of ours, hence switches.
 */
export const DEFAULT_LATENCIES: Readonly<Latencies> = Object.freeze({
  requestOverheadMs: 2,
  requestOverheadMsPerToken: 0.0015,
  decisionCalloutMs: 1,
  metricsAgeMs: 10,
  scrapeLatencyMs: 5,
});

export const NO_LATENCIES: Readonly<Latencies> = Object.freeze({
  requestOverheadMs: 0,
  requestOverheadMsPerToken: 0,
  decisionCalloutMs: 0,
  metricsAgeMs: 0,
  scrapeLatencyMs: 0,
});

/**
 * Policies whose anchor decides outside Envoy's process, so each request waits
 * one decisionCalloutMs: ext_proc pickers (the Gateway API Inference Extension
 * and llm-d endpoint pickers, AIBrix's gateway plugin) and routers that are
 * their own proxy (SGLang's router, Dynamo's frontend, KubeAI). Envoy's own
 * balancers, the in-Envoy filter and the oracle decide in-process.
 */
export const OUT_OF_PROCESS: ReadonlySet<string> = new Set([
  "chwbl", "gaie-approx", "llm-d-approx", "llm-d-precise", "sglang-cache-aware", "aibrix-prefix", "dynamo-kv",
]);

/** Server-side overhead of one request (DEFAULT_LATENCIES explains the figures). */
export function requestOverheadMs(l: Latencies, promptTokens: number): number {
  return l.requestOverheadMs + l.requestOverheadMsPerToken * promptTokens;
}

/**
 * Each engine's metric snapshots over time, so a page can show the state of a
 * moment ago. No read looks further back than `lagMs` before the latest
 * record (the virtual clock only moves forward), which lets old entries go.
 */
class SnapshotHistory {
  private times: number[] = [];
  private snaps: EngineSnapshot[] = [];
  private head = 0;

  constructor(private readonly lagMs: number) {}

  record(t: number, snap: EngineSnapshot): void {
    const last = this.times.length - 1;
    if (last >= this.head && this.times[last] === t) this.snaps[last] = snap;
    else {
      this.times.push(t);
      this.snaps.push(snap);
    }
    this.forget(t - this.lagMs);
  }

  /** The snapshot in force at time t (t ≥ the latest record − lagMs; the oldest kept if t precedes it). */
  at(t: number): EngineSnapshot {
    let i = this.times.length - 1;
    while (i > this.head && this.times[i] > t) i--;
    return this.snaps[i];
  }

  /** Drop entries superseded by one at or before t. */
  private forget(t: number): void {
    while (this.head + 1 < this.times.length && this.times[this.head + 1] <= t) this.head++;
    if (this.head > 1024) {
      this.times = this.times.slice(this.head);
      this.snaps = this.snaps.slice(this.head);
      this.head = 0;
    }
  }
}

/** Endpoint addresses of the in-process replay: 10.0.0.1:8000, 10.0.0.2:8000, … */
export function replayEndpoints(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.${Math.floor((i + 1) / 65536) % 256}.${Math.floor((i + 1) / 256) % 256}.${(i + 1) % 256}:8000`);
}

export interface ReplayOptions {
  servers: number;
  /** Multiplies every arrival time: 0.5 doubles the arrival rate. */
  timeScale?: number;
  sim?: Partial<SimParams>;
  seed?: number;
  /** Default DEFAULT_LATENCIES. */
  latencies?: Latencies;
  /** Called with (routed, total) now and then. */
  onProgress?: (done: number, total: number) => void;
}

/** What happened to each request, indexed by spec id. Times in virtual ms. */
export interface ReplayRecord {
  policy: string;
  timeScale: number;
  endpoints: string[];
  sim: SimParams;
  arrivalMs: Float64Array;
  /** NaN when the request never produced a token (refused). */
  firstTokenMs: Float64Array;
  completeMs: Float64Array;
  server: Int32Array;
  hitTokens: Float64Array;
  promptTokens: Float64Array;
  outputTokens: Float64Array;
  refused: Uint8Array;
  /** Per server, from the engines. */
  busyMs: number[];
  prefixQueries: number[];
  prefixHits: number[];
  preemptions: number[];
  decisions: number;
  decisionWallMs: number;
  wallMs: number;
}

export async function replay(workload: Workload, factory: PolicyFactory, opts: ReplayOptions): Promise<ReplayRecord> {
  const wallStart = performance.now();
  const params = simParams(opts.sim);
  const timeScale = opts.timeScale ?? 1;
  if (!(timeScale > 0)) throw new Error("timeScale must be > 0");
  const endpoints = replayEndpoints(opts.servers);
  const addrIndex = new Map(endpoints.map((e, i) => [e, i]));
  const specs = workload.requests;
  const n = specs.length;
  const clock = new ReplayClock();
  const startMs = clock.now();
  /** Virtual ms since the start of the workload. */
  const rel = (): number => clock.now() - startMs;

  const rec: ReplayRecord = {
    policy: factory.name,
    timeScale,
    endpoints,
    sim: params,
    arrivalMs: new Float64Array(n),
    firstTokenMs: new Float64Array(n).fill(NaN),
    completeMs: new Float64Array(n).fill(NaN),
    server: new Int32Array(n).fill(-1),
    hitTokens: new Float64Array(n),
    promptTokens: new Float64Array(n),
    outputTokens: new Float64Array(n),
    refused: new Uint8Array(n),
    busyMs: [],
    prefixQueries: [],
    prefixHits: [],
    preemptions: [],
    decisions: 0,
    decisionWallMs: 0,
    wallMs: 0,
  };

  const routed: (RoutedRequest | null)[] = new Array(n).fill(null);
  let policy: Policy | null = null;
  let outstanding = 0;

  const engines = endpoints.map((addr) => new Engine(params, {
    onFirstToken(req: EngineRequest, t: number): void {
      rec.firstTokenMs[req.id] = t;
      policy!.onFirstToken?.(routed[req.id]!, addr);
    },
    onComplete(req: EngineRequest, t: number, outcome: RequestOutcome): void {
      rec.completeMs[req.id] = t;
      rec.hitTokens[req.id] = outcome.hitTokens;
      const r = routed[req.id]!;
      routed[req.id] = null;
      outstanding--;
      policy!.onComplete?.(r, addr);
    },
  }));

  // What a metrics page shows: the live state, or (with a lag) the state pageLag ms ago.
  const lat = opts.latencies ?? DEFAULT_LATENCIES;
  const pageLag = lat.metricsAgeMs + lat.scrapeLatencyMs;
  const history = pageLag > 0 ? engines.map((e) => {
    const h = new SnapshotHistory(pageLag);
    h.record(0, e.snapshot());
    return h;
  }) : null;
  const noteState = (i: number): void => history?.[i].record(rel(), engines[i].snapshot());
  const snapshotAt = (i: number, t: number): EngineSnapshot => (history ? history[i].at(t) : engines[i].snapshot());

  // The router's view of the metrics pages, refreshed at its scrape interval:
  // asked at t, it shows the state at t − metricsAgeMs and arrives at t + scrapeLatencyMs.
  const scrapes: Scrape[] = endpoints.map(() => ({ ...scrapedFromSnapshot(engines[0].snapshot(), params), atMs: -1 }));
  const scrapeAll = (): void => {
    const now = rel();
    const pages = engines.map((_, i) => ({ ...scrapedFromSnapshot(snapshotAt(i, now - lat.metricsAgeMs), params), atMs: now }));
    const install = (): void => pages.forEach((page, i) => void (scrapes[i] = page));
    if (lat.scrapeLatencyMs > 0) clock.setTimer(lat.scrapeLatencyMs, install);
    else install();
  };
  const engineOf = (endpoint: string): Engine => {
    const i = addrIndex.get(endpoint);
    if (i === undefined) throw new Error(`unknown endpoint ${endpoint}`);
    return engines[i];
  };
  const inspect: ServerInspector = {
    probeHitTokens: (endpoint, req) => {
      const spec = (req as RoutedRequest).spec;
      return engineOf(endpoint).probeHitTokens(spec.hashes, spec.promptTokens);
    },
    expectedHitTokens: (endpoint, req) => {
      const spec = (req as RoutedRequest).spec;
      return engineOf(endpoint).expectedHitTokens(spec.hashes, spec.promptTokens);
    },
    estimateTtftMs: (endpoint, req) => {
      const spec = (req as RoutedRequest).spec;
      return engineOf(endpoint).estimateTtftMs(spec, rel());
    },
  };
  const ctx: PolicyContext = {
    endpoints,
    clock,
    startMs,
    seed: opts.seed ?? 1,
    sim: params,
    metricsText: (endpoint) => {
      const i = addrIndex.get(endpoint);
      if (i === undefined) throw new Error(`unknown endpoint ${endpoint}`);
      return renderMetrics(snapshotAt(i, rel() - pageLag), params, rel() - pageLag);
    },
    scraped: (endpoint) => {
      const i = addrIndex.get(endpoint);
      if (i === undefined) throw new Error(`unknown endpoint ${endpoint}`);
      return scrapes[i];
    },
    inspect: factory.privileged ? inspect : undefined,
    // Only a factory that asks for KV events makes the block pools report them.
    kvEvents: factory.kvEventDelayMs !== undefined ? new KvEventFeed(engines.map((e) => e.cache), endpoints, clock, startMs, factory.kvEventDelayMs) : undefined,
  };
  const interval = factory.scrapeIntervalMs ?? 200;
  if (interval > 0) {
    const scrapeTick = (): void => {
      scrapeAll();
      clock.setTimer(interval, scrapeTick);
    };
    scrapeTick();
  }
  policy = await factory.create(ctx);
  const settle = policy.settle?.bind(policy);

  const outOfProcess = OUT_OF_PROCESS.has(factory.name);
  const submit = (spec: RequestSpec, req: RoutedRequest, si: number, endpoint: string): void => {
    const refused = engines[si].submit(spec, rel());
    if (refused !== null) {
      rec.refused[spec.id] = 1;
      routed[spec.id] = null;
      outstanding--;
      policy!.onComplete?.(req, endpoint);
    } else {
      noteState(si);
    }
  };

  const progressEvery = Math.max(1, Math.floor(n / 200));
  let ai = 0;
  for (;;) {
    const tA = ai < n ? specs[ai].arrivalMs * timeScale : Infinity;
    let tE = Infinity;
    let ei = -1;
    for (let i = 0; i < engines.length; i++) {
      const t = engines[i].nextEventMs();
      if (t < tE) {
        tE = t;
        ei = i;
      }
    }
    if (ai >= n && outstanding === 0 && tE === Infinity) break;
    const next = startMs + Math.min(tA, tE);
    const due = clock.nextDueMs();
    if (due < next) {
      // A timer first (a scrape, a filter's tick): fire it, let the policy settle, look again.
      clock.advanceTo(due);
      if (settle) await settle();
      continue;
    }
    clock.advanceTo(next);
    if (settle) await settle();
    if (tE <= tA) {
      engines[ei].processEvent(tE);
      noteState(ei);
      continue;
    }
    const spec = specs[ai++];
    const req = new RoutedRequest(spec, tA);
    const w0 = performance.now();
    const endpoint = policy.pick(req);
    rec.decisionWallMs += performance.now() - w0;
    rec.decisions++;
    const si = addrIndex.get(endpoint);
    if (si === undefined) throw new Error(`policy ${factory.name} picked ${endpoint}, not an endpoint`);
    rec.arrivalMs[spec.id] = tA;
    rec.server[spec.id] = si;
    rec.promptTokens[spec.id] = spec.promptTokens;
    rec.outputTokens[spec.id] = spec.maxTokens;
    routed[spec.id] = req;
    outstanding++;
    // The engine sees the request once the router's callout (if any) and the server's own intake are done.
    const delay = (outOfProcess ? lat.decisionCalloutMs : 0) + requestOverheadMs(lat, spec.promptTokens);
    if (delay > 0) clock.setTimer(delay, () => submit(spec, req, si, endpoint));
    else submit(spec, req, si, endpoint);
    if (opts.onProgress && ai % progressEvery === 0) opts.onProgress(ai, n);
  }
  await policy.close?.();
  opts.onProgress?.(n, n);
  for (const e of engines) {
    rec.busyMs.push(e.busyMs);
    rec.prefixQueries.push(e.cache.queries);
    rec.prefixHits.push(e.cache.hits);
    rec.preemptions.push(e.preemptionsTotal);
  }
  rec.wallMs = performance.now() - wallStart;
  return rec;
}
