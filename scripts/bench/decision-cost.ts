// One benchmark cell's measurement, shared by npm run bench (router.ts) and
// npm run bench:ab (ab.ts): a build of the filter in the host emulator, its
// index warmed, then each request's proxy_on_request_body timed, wall and
// module time (scripts/host/vm.ts moduleMs), worker VMs taking turns, a
// 100 ms tick every 100 requests with the ticks' module time counted apart.
import { performance } from "node:perf_hooks";
import { HEADERS, benchGateway, chatBody } from "./router-workload.ts";

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Requests per batch for the batched mean: one module-time reading per batch, so no per-call timer error accumulates in it. */
export const BATCH = 100;

export interface CellRun {
  p50: number;
  p99: number;
  moduleP50: number;
  moduleP99: number;
  /** Module time per request, the median over batches of BATCH requests (ticks excluded). */
  batchMean: number;
  bytes: number;
  tickPerRequestUs: number;
  hostCallsPerRequest: number;
}

/**
 * One build's gateway, driven a number of requests at a time, so that several
 * builds can take turns batch by batch (ab.ts). Requests take
 * turns across the worker VMs, so each decision also reads the events the
 * others appended since its last one. Each measured request's module time is
 * kept, and the ticks' module time is counted apart.
 */
export class DecisionRun {
  private readonly times: number[] = [];
  private readonly module: number[] = [];
  private readonly batches: number[] = [];
  private batchMs = 0;
  private batchCount = 0;
  /** Module time of the ticks during the measured requests (their catch-up, mostly), ms. */
  private tickModuleMs = 0;
  private hostCalls = 0;
  private i = 0;
  private readonly bodies: Buffer[];

  private constructor(
    private readonly gateway: Awaited<ReturnType<typeof benchGateway>>,
    private readonly size: number,
    private readonly vms: number,
    private readonly lineBreaks: boolean | undefined,
  ) {
    this.bodies = Array.from({ length: 64 }, (_, i) => Buffer.from(chatBody(size, i, lineBreaks)));
    for (const v of gateway.plugin.vms) v.profileTime = true;
  }

  static async start(size: number, endpoints: number, vms: number, o: { wasm?: string; lineBreaks?: boolean } = {}): Promise<DecisionRun> {
    return new DecisionRun(await benchGateway(endpoints, vms, o.wasm), size, vms, o.lineBreaks);
  }

  get bodyBytes(): number {
    return this.bodies[0].length;
  }

  /** Warm-up requests: the first bodies again and again (64 of them), nothing recorded. */
  warm(count: number): void {
    this.step(count, false);
  }

  /** `count` measured requests, each a body no request had before; returns their module time, ms. */
  measure(count: number): number {
    return this.step(count, true);
  }

  private step(count: number, measuring: boolean): number {
    const { clock, plugin } = this.gateway;
    const calls = () => plugin.vms.reduce((n, v) => n + [...v.hostCallCounts.values()].reduce((a, b) => a + b, 0), 0);
    let total = 0;
    for (let k = 0; k < count; k++, this.i++) {
      const i = this.i;
      const body = measuring ? Buffer.from(chatBody(this.size, i, this.lineBreaks)) : this.bodies[i % this.bodies.length];
      const worker = i % this.vms;
      const vm = plugin.vms[worker];
      const s = plugin.newStream(worker);
      s.sendRequestHeaders(HEADERS, false);
      const m0 = vm.moduleMs();
      const c0 = calls();
      const t0 = performance.now();
      s.sendRequestBody(body, true);
      const t1 = performance.now();
      if (measuring) {
        const m = vm.moduleMs() - m0;
        total += m;
        this.times.push((t1 - t0) * 1000);
        this.module.push(m * 1000);
        this.hostCalls += calls() - c0;
        this.batchMs += m;
        if (++this.batchCount === BATCH) {
          this.batches.push((this.batchMs * 1000) / BATCH);
          this.batchMs = 0;
          this.batchCount = 0;
        }
      }
      s.complete();
      if (i % 100 === 0) {
        const before = plugin.vms.reduce((a, v) => a + v.moduleMs(), 0);
        clock.advance(100);
        if (measuring) this.tickModuleMs += plugin.vms.reduce((a, v) => a + v.moduleMs(), 0) - before;
      }
    }
    return total;
  }

  result(): CellRun {
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const times = sorted(this.times);
    const module = sorted(this.module);
    return {
      p50: percentile(times, 50), p99: percentile(times, 99), moduleP50: percentile(module, 50), moduleP99: percentile(module, 99),
      batchMean: percentile(sorted(this.batches), 50), bytes: this.bodyBytes,
      tickPerRequestUs: (this.tickModuleMs * 1000) / this.module.length, hostCallsPerRequest: this.hostCalls / this.module.length,
    };
  }
}

/** One cell: `warmup` requests to warm the index, then `measured` ones timed. */
export async function decisionCost(size: number, endpoints: number, vms: number, o: { warmup: number; measured: number; wasm?: string; lineBreaks?: boolean }): Promise<CellRun> {
  const run = await DecisionRun.start(size, endpoints, vms, o);
  run.warm(o.warmup);
  run.measure(o.measured);
  return run.result();
}
