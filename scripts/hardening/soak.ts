// Soak: many requests through the built filter in the emulator, 8 worker VMs,
// 16 endpoints, a realistic prompt mix (shared system prompts, RAG contexts,
// multi-turn chats, LoRA models, one-off completions), metrics scraped from a
// handler cluster, streams held open and finished in a shuffled order (some
// reset), virtual time advancing at about 5,000 requests per second. Every
// window of requests records throughput, each VM's linear memory, shared data
// and in-flight counts; the run checks that memory is flat after warm-up,
// shared data stays within its bound, in-flight counts return to zero and
// throughput does not decay.
import { performance } from "node:perf_hooks";
import { Rng } from "./rng.ts";
import { gateway, advance, stat, inFlightTotal } from "./gateway.ts";
import { vllmPage } from "./metrics-servers.ts";
import { mixedBody, sendMixed } from "./prompts.ts";
import type { HttpStream } from "../host/index.ts";
import { journalEventBound } from "./journal-check.ts";
import { DEFAULT_INDEX_STRIDE, DEFAULT_MAX_PREFIX_BLOCKS } from "../gateway/envoy-config.ts";

export interface SoakWindow {
  requests: number;
  requestsPerSecond: number;
  maxVmMemoryBytes: number;
  indexMemoryBytes: number;
  sharedDataKeys: number;
  sharedDataBytes: number;
  inFlight: number;
}

export interface SoakReport {
  requests: number;
  vms: number;
  endpoints: number;
  routed: number;
  passthrough: number;
  resets: number;
  windows: SoakWindow[];
  /** Window index from which memory must stay flat. */
  warmupWindows: number;
  sharedDataBound: { keys: number; bytes: number };
  inFlightAfter: number;
  vmFailures: number;
  predictedHitRate: number;
  problems: string[];
  seconds: number;
}

const ENDPOINTS = 16;
const VMS = 8;
const JOURNAL_SLOTS = 4096;

/**
 * `gpuBlocks` is the KV cache each simulated server reports (16-token blocks):
 * the filter sizes each endpoint's index from it, so a smaller cache fills
 * the index, and ends the warm-up, sooner.
 */
export async function soak(o: { requests: number; windows?: number; seed: number; gpuBlocks?: number; progress?: (line: string) => void }): Promise<SoakReport> {
  const started = performance.now();
  const rng = new Rng(o.seed);
  const gw = await gateway({
    endpoints: ENDPOINTS,
    vms: VMS,
    clusters: { metrics: { type: "handler", handle: () => ({ status: 200, body: vllmPage(rng.int(4), 1 + rng.int(8), rng.float() * 0.8, o.gpuBlocks ?? 20000) }) } },
    config: { metrics: { cluster: "metrics", intervalMs: 200, timeoutMs: 100 }, journalSlots: JOURNAL_SLOTS,
      // The defaults, given explicitly so that the shared-data bound below is exact.
      maxPrefixBlocks: DEFAULT_MAX_PREFIX_BLOCKS, indexStride: DEFAULT_INDEX_STRIDE },
  });
  // Journal slots of at most one event each (and a key of at most 64 bytes), plus the journal's and the
  // affinity ring's pages (≤ 4 KB each), tags, lease, load and its version, within 64 KiB.
  const bound = { keys: JOURNAL_SLOTS + 8, bytes: JOURNAL_SLOTS * (64 + journalEventBound(DEFAULT_MAX_PREFIX_BLOCKS, DEFAULT_INDEX_STRIDE)) + 64 * 1024 };
  const windowsCount = o.windows ?? 10;
  const perWindow = Math.ceil(o.requests / windowsCount);
  const report: SoakReport = {
    requests: 0, vms: VMS, endpoints: ENDPOINTS, routed: 0, passthrough: 0, resets: 0, windows: [], warmupWindows: Math.max(1, Math.floor(windowsCount * 0.3)),
    sharedDataBound: bound, inFlightAfter: 0, vmFailures: 0, predictedHitRate: 0, problems: [], seconds: 0,
  };
  const open: HttpStream[] = [];
  const shared = gw.envoy.sharedData("prefix_router");
  let windowStart = performance.now();
  let windowRequests = 0;
  for (let i = 0; i < o.requests; i++) {
    const sent = sendMixed(gw, mixedBody(rng, i), rng.int(VMS));
    report.requests++;
    windowRequests++;
    if (sent.destinations.length === 1) report.routed++;
    else report.passthrough++;
    open.push(sent.stream);
    // About 200 in flight; finish one at random (so durations vary), 2% by reset.
    while (open.length > 200) {
      const s = open.splice(rng.int(open.length), 1)[0];
      if (rng.chance(0.02)) {
        s.reset();
        report.resets++;
      } else {
        s.sendResponseHeaders({ ":status": "200" }, false);
        s.sendResponseBody("{}", true);
      }
    }
    if (i % 50 === 49) {
      advance(gw, 10, 10);
      // Scrape answers arrive here, before their (virtual) timeout.
      await gw.envoy.settle();
    }
    if (windowRequests === perWindow || i === o.requests - 1) {
      const seconds = (performance.now() - windowStart) / 1000;
      const w: SoakWindow = {
        requests: report.requests,
        requestsPerSecond: Math.round(windowRequests / seconds),
        maxVmMemoryBytes: Math.max(...gw.plugin.allVms().map((vm) => vm.memoryBytes())),
        indexMemoryBytes: stat(gw, "prefix_router.index.memory_bytes"),
        sharedDataKeys: shared.keys().length,
        sharedDataBytes: shared.totalBytes(),
        inFlight: inFlightTotal(gw),
      };
      report.windows.push(w);
      o.progress?.(`soak: ${w.requests} requests, ${w.requestsPerSecond}/s, VM memory ${(w.maxVmMemoryBytes / 1048576).toFixed(1)} MiB, shared data ${w.sharedDataKeys} keys ${(w.sharedDataBytes / 1048576).toFixed(2)} MiB`);
      windowRequests = 0;
      windowStart = performance.now();
    }
  }
  for (const s of open) {
    s.sendResponseHeaders({ ":status": "200" }, false);
    s.sendResponseBody("{}", true);
  }
  advance(gw, 1000);
  await gw.envoy.settle();
  report.inFlightAfter = inFlightTotal(gw);
  report.vmFailures = gw.plugin.allVms().filter((vm) => vm.failed).length;
  const total = stat(gw, "prefix_router.prefix_blocks_total");
  report.predictedHitRate = total > 0 ? stat(gw, "prefix_router.prefix_blocks_matched") / total : 0;
  gw.envoy.shutdown();

  const afterWarmup = report.windows.slice(report.warmupWindows);
  if (afterWarmup.length > 0) {
    const first = afterWarmup[0];
    const last = afterWarmup[afterWarmup.length - 1];
    if (last.maxVmMemoryBytes > first.maxVmMemoryBytes) report.problems.push(`VM memory grew after warm-up: ${first.maxVmMemoryBytes} → ${last.maxVmMemoryBytes} bytes`);
    const rates = afterWarmup.map((w) => w.requestsPerSecond).sort((a, b) => a - b);
    const median = rates[Math.floor(rates.length / 2)];
    if (last.requestsPerSecond < median * 0.5) report.problems.push(`throughput fell to ${last.requestsPerSecond}/s (median ${median}/s)`);
  }
  for (const w of report.windows) {
    if (w.sharedDataKeys > bound.keys || w.sharedDataBytes > bound.bytes) report.problems.push(`shared data ${w.sharedDataKeys} keys / ${w.sharedDataBytes} bytes over the bound`);
  }
  if (report.inFlightAfter !== 0) report.problems.push(`in flight after: ${report.inFlightAfter}`);
  if (report.vmFailures > 0) report.problems.push(`${report.vmFailures} VMs failed`);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
