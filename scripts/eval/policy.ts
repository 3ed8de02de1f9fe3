// The contract between the replay driver and a routing policy. Owns: the
// Policy, PolicyFactory, RouteRequest and PolicyContext types, the virtual
// clock and timer types, and InFlight (a router's own outstanding-request
// count). Must not: implement a policy or the driver.
//
// A policy sees what a router in front of the servers would see: each request
// (model, the raw OpenAI JSON body, the prompt as the server will hash it,
// arrival time), the endpoint list as "ip:port" strings, its own in-flight
// counts, and the servers' /metrics pages as of its last scrape. Only a
// factory marked `privileged` (the oracle) also gets `inspect`, which reads the
// simulated servers' real caches and queues; a factory that sets
// `kvEventDelayMs` gets `kvEvents`, the servers' KV block events as vLLM
// publishes them, delayed.
//
// Built so an adapter can wrap the real filter: `pick` is synchronous; the
// replay's clock is the host emulator's own Clock (a VirtualClock the driver
// advances), so `new Envoy({ clock: ctx.clock })` ticks and times out on the
// servers' time; `metricsText` answers a metric scrape callout for an endpoint
// with that server's page at the current virtual time; `onComplete` is where
// the adapter closes the stream.

import type { Clock } from "../host/clock.ts";
import type { ScrapedMetrics } from "../sim/metrics.ts";
import type { KvEventSource } from "./kv-events.ts";
import type { SimParams } from "../sim/params.ts";

export interface RouteRequest {
  /** Unique within a run; a router may forward it as x-request-id. */
  readonly id: string;
  /** Arrival at the router, virtual ms since the start of the workload (ctx.clock.now() − ctx.startMs). */
  readonly arrivalMs: number;
  /** The body's `model` (a LoRA adapter name selects that adapter). */
  readonly model: string;
  /** "/v1/completions" or "/v1/chat/completions". */
  readonly path: string;
  readonly promptTokens: number;
  readonly maxTokens: number;
  /** The raw OpenAI JSON body a client sent. Built on first call; can be large. */
  body(): string;
  /** The prompt as the server tokenizes and hashes it (chat: after the chat template). */
  promptText(): string;
  /** promptText().slice(0, chars), without building the whole prompt. */
  promptPrefix(chars: number): string;
  /**
   * The prompt's KV block hashes exactly as the server computes them: what a
   * router that tokenizes with the engine's own tokenizer gets (llm-d's vLLM
   * render token producer, Dynamo's frontend). Only for policies modelling
   * such routers; absent on hand-made requests.
   */
  engineBlockHashes?(): Float64Array;
}

/** A router's view of one endpoint's metrics page, refreshed every scrapeIntervalMs. */
export interface Scrape extends ScrapedMetrics {
  /** Virtual ms since the start of the workload when it was scraped; -1 before the first. */
  atMs: number;
}

/** The oracle's privileged view of the simulated servers. */
export interface ServerInspector {
  /** Prompt tokens of `req` the server's cache would serve now. */
  probeHitTokens(endpoint: string, req: RouteRequest): number;
  /** …or by the time its turn comes: also counting blocks of requests queued there ahead of it. */
  expectedHitTokens(endpoint: string, req: RouteRequest): number;
  /** The server's own estimate of `req`'s TTFT if it arrived now (engine.ts estimateTtftMs). */
  estimateTtftMs(endpoint: string, req: RouteRequest): number;
}

export interface PolicyContext {
  /** Endpoint addresses, "ip:port"; the replay uses 10.0.0.1:8000, 10.0.0.2:8000, … */
  readonly endpoints: readonly string[];
  /**
   * The replay's clock (scripts/host/clock.ts): now() in epoch ms, setTimer()
   * for timers that fire inside the replay loop, in time order.
   */
  readonly clock: Clock;
  /** clock.now() when the workload starts (trace time 0). */
  readonly startMs: number;
  /** Seed for the policy's own random choices (tie-breaks, sampling). */
  readonly seed: number;
  /** The simulated servers' parameters (served model name, block size…), as a deployment would configure a router. */
  readonly sim: Readonly<SimParams>;
  /** An endpoint's /metrics page now (Prometheus text), as a scrape at this instant would return it. */
  metricsText(endpoint: string): string;
  /** An endpoint's metrics as of the last scrape at this factory's scrapeIntervalMs. */
  scraped(endpoint: string): Scrape;
  /** Only for privileged factories. */
  readonly inspect?: ServerInspector;
  /** The servers' KV block stored / removed events, for factories that set kvEventDelayMs (kv-events.ts). */
  readonly kvEvents?: KvEventSource;
  /** Under replicated() (replicas.ts): which replica this instance is, of how many. Absent: one gateway. */
  readonly replica?: { readonly index: number; readonly of: number };
}

export interface Policy {
  /** Choose the endpoint for `req`; must return one of ctx.endpoints. */
  pick(req: RouteRequest): string;
  /**
   * Awaited after every move of the clock, before the next timer, engine event
   * or arrival is handled: finish asynchronous work due by now (a wrapped
   * filter's callout replies, which the emulator delivers on promises).
   */
  settle?(): Promise<void>;
  /** The first token reached the client (optional). */
  onFirstToken?(req: RouteRequest, endpoint: string): void;
  /** The response finished (or the server refused the request). */
  onComplete?(req: RouteRequest, endpoint: string): void;
  /** The replay is over. */
  close?(): void | Promise<void>;
}

export interface PolicyFactory {
  readonly name: string;
  /** One line for the report. */
  readonly description: string;
  /** How often the driver refreshes ctx.scraped(); 0 for never. Default 200 ms. */
  readonly scrapeIntervalMs?: number;
  /** Receives ctx.inspect. Only the oracle. */
  readonly privileged?: boolean;
  /** Subscribe to the servers' KV events (ctx.kvEvents), delivered this many ms after the server emits them. */
  readonly kvEventDelayMs?: number;
  create(ctx: PolicyContext): Policy | Promise<Policy>;
}

/** A router's own count of requests it has sent and not yet seen finish, per endpoint. */
export class InFlight {
  readonly counts: Int32Array;
  total = 0;
  private readonly index = new Map<string, number>();

  constructor(readonly endpoints: readonly string[]) {
    this.counts = new Int32Array(endpoints.length);
    endpoints.forEach((e, i) => this.index.set(e, i));
  }

  indexOf(endpoint: string): number {
    const i = this.index.get(endpoint);
    if (i === undefined) throw new Error(`unknown endpoint ${endpoint}`);
    return i;
  }

  add(i: number): void {
    this.counts[i]++;
    this.total++;
  }

  done(endpoint: string): void {
    const i = this.indexOf(endpoint);
    this.counts[i]--;
    this.total--;
  }
}
