// Process-wide shared queues keyed by (vm_id, name), as cpp-host
// src/shared_queue.cc: register returns the queue's token (creating it with the
// next nonzero token, or reusing it; the last registrant is the one notified),
// resolve finds a token or 0, dequeue is Empty on an empty queue and NotFound
// on an unknown token, enqueue posts proxy_on_queue_ready to the registrant's
// current thread-local VM.
import { WasmResult } from "./enums.ts";

interface Queue {
  items: Uint8Array[];
  thread: number;
  vmKey: string;
  contextId: number;
}

export interface QueueNotify {
  (thread: number, vmKey: string, contextId: number, token: number): void;
}

export class SharedQueues {
  private readonly tokens = new Map<string, number>();
  private readonly queues = new Map<number, Queue>();
  private nextToken = 1;

  constructor(private readonly notify: QueueNotify) {}

  register(vmId: string, name: string, thread: number, vmKey: string, contextId: number): number {
    const key = JSON.stringify([vmId, name]);
    let token = this.tokens.get(key);
    if (token === undefined) {
      do token = this.nextToken++ >>> 0;
      while (token === 0 || this.queues.has(token));
      this.tokens.set(key, token);
    }
    const existing = this.queues.get(token);
    this.queues.set(token, { items: existing?.items ?? [], thread, vmKey, contextId });
    return token;
  }

  resolve(vmId: string, name: string): number {
    return this.tokens.get(JSON.stringify([vmId, name])) ?? 0;
  }

  dequeue(token: number): { result: number; data?: Uint8Array } {
    const q = this.queues.get(token);
    if (q === undefined) return { result: WasmResult.NotFound };
    const data = q.items.shift();
    return data === undefined ? { result: WasmResult.Empty } : { result: WasmResult.Ok, data };
  }

  enqueue(token: number, data: Uint8Array): number {
    const q = this.queues.get(token);
    if (q === undefined) return WasmResult.NotFound;
    q.items.push(data);
    this.notify(q.thread, q.vmKey, q.contextId, token);
    return WasmResult.Ok;
  }
}
