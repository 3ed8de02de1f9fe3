// KV events from the simulated servers to a policy, as a router subscribed to
// vLLM's KV events publisher would receive them. Owns: listening to each
// server's block pool (KvCache.onKvEvent), batching what one server emits at
// one virtual instant into one message, and delivering it after a delay on the
// replay's clock. Must not: interpret events (the policies keep their own
// indexes) or touch the engines otherwise.
//
// What it models (vLLM vllm/distributed/kv_events.py, v1 scheduler.py
// update_from_output): the engine gathers the BlockStored / BlockRemoved
// events of one step and publishes them as one KVEventBatch on a ZMQ PUB socket
// from a background thread; a subscriber (llm-d-kv-cache kvevents/pool.go,
// sharded worker queues; Dynamo's publisher relaying to its router's indexer)
// applies them. The simulated block pool reports its changes at the step where
// vLLM would publish them, so what remains is transport and queueing: the
// `delayMs` parameter (default in KV_EVENT_DELAY_MS, an assumption: neither
// project publishes a latency figure; ZMQ on a pod network is well under a
// millisecond, the rest is the subscriber's queue).

import type { Clock } from "../host/clock.ts";
import type { KvCache, KvEvent } from "../sim/kvcache.ts";

/** Transport + subscriber delay of one event batch, ms (see the header). */
export const KV_EVENT_DELAY_MS = 5;

/** One server's events of one virtual instant, in emission order. */
export interface KvEventBatch {
  readonly endpoint: string;
  /** Virtual ms since the start of the workload when the server emitted them. */
  readonly emittedMs: number;
  readonly events: readonly KvEvent[];
}

/** What a policy subscribes to. */
export interface KvEventSource {
  readonly delayMs: number;
  /** Every batch from every server, in emission order, `delayMs` after it was emitted. */
  subscribe(listener: (batch: KvEventBatch) => void): void;
}

/**
 * Listens to the servers' block pools and delivers their events through timers
 * on the replay clock. Listening starts at construction; a feed with no
 * subscriber still batches (so subscribe before traffic starts).
 */
export class KvEventFeed implements KvEventSource {
  private readonly listeners: ((batch: KvEventBatch) => void)[] = [];
  private open: { endpoint: string; at: number; events: KvEvent[] } | null = null;

  constructor(
    caches: readonly KvCache[],
    endpoints: readonly string[],
    private readonly clock: Clock,
    private readonly startMs: number,
    readonly delayMs: number = KV_EVENT_DELAY_MS,
  ) {
    if (!(delayMs >= 0)) throw new Error("KV event delay must be ≥ 0");
    caches.forEach((cache, i) => {
      const endpoint = endpoints[i];
      cache.onKvEvent = (e) => this.emit(endpoint, e);
    });
  }

  subscribe(listener: (batch: KvEventBatch) => void): void {
    this.listeners.push(listener);
  }

  private emit(endpoint: string, e: KvEvent): void {
    const now = this.clock.now();
    const o = this.open;
    if (o !== null && o.endpoint === endpoint && o.at === now) {
      o.events.push(e);
      return;
    }
    const batch = { endpoint, at: now, events: [e] };
    this.open = batch;
    this.clock.setTimer(this.delayMs, () => {
      if (this.open === batch) this.open = null;
      const out: KvEventBatch = { endpoint, emittedMs: batch.at - this.startMs, events: batch.events };
      for (const l of this.listeners) l(out);
    });
  }
}
