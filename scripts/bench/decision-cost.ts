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

/** With several VMs, requests take turns across them, so each decision also reads the events the others appended since its last one. */
export async function decisionCost(size: number, endpoints: number, vms: number, o: { warmup: number; measured: number; wasm?: string; lineBreaks?: boolean }): Promise<CellRun> {
  const { warmup, measured } = o;
  const { clock, plugin } = await benchGateway(endpoints, vms, o.wasm);
  const bodies = Array.from({ length: 64 }, (_, i) => Buffer.from(chatBody(size, i, o.lineBreaks)));
  const times: number[] = [];
  const module: number[] = [];
  const batches: number[] = [];
  let batchMs = 0;
  let batchCount = 0;
  /** Module time of the ticks during the measured requests (their catch-up, mostly), ms. */
  let tickModuleMs = 0;
  let hostCalls = 0;
  const calls = () => plugin.vms.reduce((n, v) => n + [...v.hostCallCounts.values()].reduce((a, b) => a + b, 0), 0);
  for (const v of plugin.vms) v.profileTime = true;
  for (let i = 0; i < warmup + measured; i++) {
    const body = i < warmup ? bodies[i % bodies.length] : Buffer.from(chatBody(size, i, o.lineBreaks));
    const worker = i % vms;
    const vm = plugin.vms[worker];
    const s = plugin.newStream(worker);
    s.sendRequestHeaders(HEADERS, false);
    const m0 = vm.moduleMs();
    const c0 = calls();
    const t0 = performance.now();
    s.sendRequestBody(body, true);
    const t1 = performance.now();
    if (i >= warmup) {
      const m = vm.moduleMs() - m0;
      times.push((t1 - t0) * 1000);
      module.push(m * 1000);
      hostCalls += calls() - c0;
      batchMs += m;
      if (++batchCount === BATCH) {
        batches.push((batchMs * 1000) / BATCH);
        batchMs = 0;
        batchCount = 0;
      }
    }
    s.complete();
    if (i % 100 === 0) {
      const before = plugin.vms.reduce((a, v) => a + v.moduleMs(), 0);
      clock.advance(100);
      if (i >= warmup) tickModuleMs += plugin.vms.reduce((a, v) => a + v.moduleMs(), 0) - before;
    }
  }
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  sorted(times);
  sorted(module);
  sorted(batches);
  return {
    p50: percentile(times, 50), p99: percentile(times, 99), moduleP50: percentile(module, 50), moduleP99: percentile(module, 99),
    batchMean: percentile(batches, 50), bytes: bodies[0].length,
    tickPerRequestUs: (tickModuleMs * 1000) / measured, hostCallsPerRequest: hostCalls / measured,
  };
}

