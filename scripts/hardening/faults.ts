// Fault scenarios for the built filter in the host emulator:
//   metricsFaults   metrics servers that are down, never answer (the callout
//                   times out), reset the connection, answer 500 or garbage,
//                   then all fail at once, then recover (real loopback servers,
//                   real time);
//   hugePages       a 100 MB page and one just under the 8 MiB copy limit;
//   vmRestart       a worker VM that traps mid-request under FAIL_RELOAD;
//   raceEightVms    eight VMs racing on the same shared-data keys, another VM's
//                   request run between a VM's get and its set;
//   stalledWriter   a worker stalled between its journal page swap and its
//                   slot write while the others route on.
// Each returns its figures and a list of problems (empty when all is well);
// tests/hardening asserts on them, cli.ts prints them.
import { performance } from "node:perf_hooks";
import { Rng } from "./rng.ts";
import { FaultyMetricsServer, type Behaviour } from "./metrics-servers.ts";
import { gateway, type Gateway, send, advance, sleep, stat, inFlightTotal, chatBody, filler } from "./gateway.ts";
import { mixedBody, sendMixed } from "./prompts.ts";
import { FuzzModule } from "./fuzz-module.ts";
import { checkJournal, endpointKey, indexEntries, type ExpectedEvent, type JournalCheck, type JournalLayout } from "./journal-check.ts";
import type { HttpStream } from "../host/index.ts";

/**
 * Sends `body` again on each of the first `vms` VMs, ending every stream, and
 * returns how many sent it to `destination`; `elsewhere` hears of the others.
 */
function resendOnEveryVm(gw: Gateway, body: string, destination: string, vms: number, elsewhere: (vm: number, got: string | undefined) => void = () => {}): number {
  let same = 0;
  for (let vm = 0; vm < vms; vm++) {
    const s = send(gw, body, { vm });
    if (s.destinations[0] === destination) same++;
    else elsewhere(vm, s.destinations[0]);
    complete(s.stream);
  }
  return same;
}

function complete(s: HttpStream): void {
  if (s.ended) return;
  if (s.upstreamRequest === null || s.localResponse !== null) {
    if (!s.ended) s.reset();
    return;
  }
  s.sendResponseHeaders({ ":status": "200" }, false);
  s.sendResponseBody("{}", true);
}

// ---------------------------------------------------------------------------
// Metrics servers

export interface EndpointFigures {
  behaviour: string;
  scrapesOk: number;
  scrapesFailed: number;
  healthyGauge: number;
  picks: [number, number, number];
}

export interface MetricsFaultReport {
  requests: number;
  endpoints: Record<string, EndpointFigures>;
  /** Per phase: ms until the health gauges showed the expected state (faults, all failing, recovered). */
  settleMs: [number, number, number];
  /** Per phase: endpoints picked in the window of requests after it settled. */
  pickedSettled: [number, number, number];
  maxPendingCallouts: number;
  maxVmMemoryBytes: number;
  vmFailures: number;
  badDestinations: number;
  localReplies: number;
  inFlightAfter: number;
  problems: string[];
  seconds: number;
}

const FAULTS: Array<[string, Behaviour]> = [
  ["healthy", { kind: "healthy", waiting: 0 }],
  ["healthy", { kind: "healthy", waiting: 1 }],
  ["healthy", { kind: "healthy", waiting: 2 }],
  ["down", { kind: "down" }],
  ["slow (callout times out)", { kind: "slow" }],
  ["reset", { kind: "reset" }],
  ["HTTP 500", { kind: "status", status: 500 }],
  ["garbage", { kind: "garbage", bytes: 4096 }],
];

/**
 * Traffic in real time while the metrics servers misbehave, in three phases:
 * the faults above, every server failing, every server healthy again. Each
 * phase runs until the health gauges show what it expects (or `deadlineMs`),
 * then `window` more requests show where traffic goes once it has settled.
 */
export async function metricsFaults(o: { window: number; deadlineMs: number; seed: number }): Promise<MetricsFaultReport> {
  const started = performance.now();
  const rng = new Rng(o.seed);
  const servers = await Promise.all(FAULTS.map(([, b]) => FaultyMetricsServer.start(b)));
  const entries = servers.map((s, i) => ({ address: `10.0.0.${i + 1}:8000`, metricsAddress: s.address }));
  const report: MetricsFaultReport = {
    requests: 0, endpoints: {}, settleMs: [0, 0, 0], pickedSettled: [0, 0, 0], maxPendingCallouts: 0, maxVmMemoryBytes: 0,
    vmFailures: 0, badDestinations: 0, localReplies: 0, inFlightAfter: 0, problems: [], seconds: 0,
  };
  const gw = await gateway({
    endpointEntries: entries,
    vms: 4,
    realTime: true,
    clusters: { metrics: { type: "original_dst" } },
    config: { metrics: { cluster: "metrics", intervalMs: 100, timeoutMs: 300, unhealthyAfter: 3 } },
  });
  const configured = new Set(gw.endpoints);
  const picks = entries.map(() => [0, 0, 0] as [number, number, number]);
  const open: HttpStream[] = [];
  const healthy = (e: number) => stat(gw, `prefix_router.endpoint.${entries[e].address}.healthy`);
  const oneRequest = (phase: number, settled: Set<string> | null) => {
    const sent = sendMixed(gw, mixedBody(rng, report.requests), report.requests % 4);
    report.requests++;
    if (sent.stream.localResponse !== null) report.localReplies++;
    for (const d of sent.destinations) {
      if (!configured.has(d)) report.badDestinations++;
      const e = gw.endpoints.indexOf(d);
      if (e >= 0) picks[e][phase]++;
      settled?.add(d);
    }
    open.push(sent.stream);
    while (open.length > 16) complete(open.shift()!);
    report.maxPendingCallouts = Math.max(report.maxPendingCallouts, gw.envoy.pendingCallouts().length);
  };
  const expectations: Array<(e: number) => number> = [
    (e) => (FAULTS[e][1].kind === "healthy" ? 1 : 0),
    () => 0,
    () => 1,
  ];
  try {
    for (let phase = 0; phase < 3; phase++) {
      if (phase === 1) await Promise.all(servers.map((s) => s.set({ kind: "status", status: 500 })));
      if (phase === 2) await Promise.all(servers.map((s, i) => s.set({ kind: "healthy", waiting: i % 3 })));
      const phaseStart = performance.now();
      const want = expectations[phase];
      while (performance.now() - phaseStart < o.deadlineMs && !entries.every((_, e) => healthy(e) === want(e))) {
        for (let k = 0; k < 4; k++) oneRequest(phase, null);
        await sleep(5);
      }
      report.settleMs[phase] = Math.round(performance.now() - phaseStart);
      if (!entries.every((_, e) => healthy(e) === want(e))) report.problems.push(`phase ${phase + 1}: health gauges did not settle within ${o.deadlineMs} ms`);
      // The gauge is the last VM's view; give every VM a tick to apply the same snapshot.
      await sleep(250);
      const settled = new Set<string>();
      for (let k = 0; k < o.window; k++) {
        oneRequest(phase, settled);
        if (k % 4 === 3) await sleep(2);
      }
      report.pickedSettled[phase] = settled.size;
      if (phase === 0) {
        for (let e = 0; e < entries.length; e++) {
          report.endpoints[entries[e].address] = {
            behaviour: FAULTS[e][0],
            scrapesOk: stat(gw, `prefix_router.endpoint.${entries[e].address}.scrape_successes`),
            scrapesFailed: stat(gw, `prefix_router.endpoint.${entries[e].address}.scrape_failures`),
            healthyGauge: healthy(e),
            picks: picks[e],
          };
        }
        const wrong = [...settled].filter((d) => FAULTS[gw.endpoints.indexOf(d)][1].kind !== "healthy");
        if (wrong.length > 0) report.problems.push(`with faults: requests went to ${wrong.join(", ")}, whose metrics fail`);
      }
    }
    while (open.length > 0) complete(open.shift()!);
    await sleep(400);
    report.inFlightAfter = inFlightTotal(gw);
    report.maxVmMemoryBytes = Math.max(...gw.plugin.allVms().map((vm) => vm.memoryBytes()));
    report.vmFailures = gw.plugin.allVms().filter((vm) => vm.failed).length;
  } finally {
    gw.envoy.shutdown();
    await Promise.all(servers.map((s) => s.stop()));
  }
  if (report.pickedSettled[1] < entries.length) report.problems.push(`all metrics failing: only ${report.pickedSettled[1]} endpoints picked`);
  if (report.pickedSettled[2] < entries.length) report.problems.push(`recovered: only ${report.pickedSettled[2]} endpoints picked`);
  if (report.maxPendingCallouts > entries.length) report.problems.push(`${report.maxPendingCallouts} callouts pending at once`);
  if (report.vmFailures > 0) report.problems.push(`${report.vmFailures} VMs failed`);
  if (report.badDestinations > 0) report.problems.push(`${report.badDestinations} bad destinations`);
  if (report.localReplies > 0) report.problems.push(`${report.localReplies} local replies`);
  if (report.inFlightAfter !== 0) report.problems.push(`in flight after: ${report.inFlightAfter}`);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

export interface HugePageReport {
  pages: Array<{ bytes: number; served: number; scrapesOk: number; scrapesFailed: number }>;
  /** Largest linear memory of any VM (the scraping one holds the lease), before and after. */
  vmMemoryBytesBefore: number;
  vmMemoryBytesAfter: number;
  vmFailures: number;
  routedAfter: boolean;
  problems: string[];
  seconds: number;
}

/** The page limit in assembly/router/scraper.ts (MAX_PAGE_BYTES): larger pages are refused uncopied. */
export const MAX_PAGE_BYTES = 8 << 20;

/**
 * Valid pages of `sizes` bytes (e.g. 100 MB, and one just under the 8 MiB
 * copy limit) served to the scraping VM: past the limit a scrape fails without
 * a copy, under it the page is read, and linear memory grows by no more than
 * the largest page read.
 */
export async function hugePages(o: { sizes: number[]; deadlineMs?: number }): Promise<HugePageReport> {
  const started = performance.now();
  const servers = await Promise.all(o.sizes.map((bytes) => FaultyMetricsServer.start({ kind: "huge", bytes })));
  const healthy = await FaultyMetricsServer.start({ kind: "healthy" });
  const all = [...servers, healthy];
  const entries = all.map((s, i) => ({ address: `10.0.0.${i + 1}:8000`, metricsAddress: s.address }));
  const gw = await gateway({
    endpointEntries: entries,
    vms: 2,
    realTime: true,
    clusters: { metrics: { type: "original_dst" } },
    config: { metrics: { cluster: "metrics", intervalMs: 1000, timeoutMs: 30000 } },
  });
  const maxMemory = () => Math.max(...gw.plugin.allVms().map((vm) => vm.memoryBytes()));
  const report: HugePageReport = { pages: [], vmMemoryBytesBefore: maxMemory(), vmMemoryBytesAfter: 0, vmFailures: 0, routedAfter: false, problems: [], seconds: 0 };
  try {
    const counter = (i: number, name: string) => stat(gw, `prefix_router.endpoint.${entries[i].address}.${name}`);
    const judged = (i: number) => counter(i, "scrape_failures") + counter(i, "scrape_successes");
    const deadline = performance.now() + (o.deadlineMs ?? 60000);
    // Two complete exchanges of every big page, so each has been judged at least twice.
    while (performance.now() < deadline && servers.some((_, i) => judged(i) < 2)) await sleep(50);
    o.sizes.forEach((bytes, i) => report.pages.push({ bytes, served: servers[i].requests, scrapesOk: counter(i, "scrape_successes"), scrapesFailed: counter(i, "scrape_failures") }));
    const sent = send(gw, chatBody([["user", "after the big pages"]]));
    report.routedAfter = sent.destinations.length === 1;
    complete(sent.stream);
    report.vmMemoryBytesAfter = maxMemory();
    report.vmFailures = gw.plugin.allVms().filter((v) => v.failed).length;
  } finally {
    gw.envoy.shutdown();
    await Promise.all(all.map((s) => s.stop()));
  }
  for (const p of report.pages) {
    if (p.scrapesOk + p.scrapesFailed < 2) report.problems.push(`${p.bytes}-byte page judged ${p.scrapesOk + p.scrapesFailed} times`);
    else if (p.bytes > MAX_PAGE_BYTES && p.scrapesOk > 0) report.problems.push(`${p.bytes}-byte page accepted`);
    else if (p.bytes <= MAX_PAGE_BYTES && p.scrapesFailed > 0) report.problems.push(`${p.bytes}-byte page refused`);
  }
  const largestRead = Math.max(0, ...o.sizes.filter((b) => b <= MAX_PAGE_BYTES));
  if (report.vmMemoryBytesAfter > report.vmMemoryBytesBefore + largestRead + (4 << 20)) {
    report.problems.push(`VM memory grew from ${report.vmMemoryBytesBefore} to ${report.vmMemoryBytesAfter}`);
  }
  if (report.vmFailures > 0) report.problems.push(`${report.vmFailures} VMs failed`);
  if (!report.routedAfter) report.problems.push("not routing after the big pages");
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

// ---------------------------------------------------------------------------
// A VM that fails and is restarted

export interface RestartReport {
  trappedRequestStatus: number | null;
  otherVmsFailed: number;
  /** What the streams open on the failed VM got when they went on. */
  openOnFailedVm: { streams: number; answered503: number; reset: number; completed: number };
  duringBackoff503: number;
  reloads: number;
  /** Probe prompts routed before the failure that the reloaded VM sends where VM 0 does. */
  warmProbes: { probes: number; sameDestination: number; matchedBlocks: number };
  staleVmsDropped: number;
  inFlightAfter: number;
  sharedDataKeys: number;
  problems: string[];
  seconds: number;
}

/** The restart probes' shared system prompt: 4,200 characters, 65 full blocks with its framing, 4 index entries at the default stride. */
export const PROBE_SYSTEM_CHARS = 4200;

export async function vmRestart(o: { requests: number; seed: number }): Promise<RestartReport> {
  const started = performance.now();
  const rng = new Rng(o.seed);
  const gw = await gateway({ endpoints: 8, vms: 4, failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 1000, config: { journalSlots: 4096 } });
  const report: RestartReport = {
    trappedRequestStatus: null, otherVmsFailed: 0, openOnFailedVm: { streams: 0, answered503: 0, reset: 0, completed: 0 },
    duringBackoff503: 0, reloads: 0, warmProbes: { probes: 0, sameDestination: 0, matchedBlocks: 0 }, staleVmsDropped: 0,
    inFlightAfter: 0, sharedDataKeys: 0, problems: [], seconds: 0,
  };
  const probe = (g: number) => chatBody([["system", filler(7000 + g, PROBE_SYSTEM_CHARS)], ["user", "probe"]]);
  const probeDestinations: string[] = [];
  const open: HttpStream[][] = [[], [], [], []];
  for (let i = 0; i < o.requests; i++) {
    const vm = i % 4;
    const s = sendMixed(gw, mixedBody(rng, i), vm);
    open[vm].push(s.stream);
    if (open[vm].length > 8) complete(open[vm].splice(rng.int(open[vm].length), 1)[0]);
    if (i % 100 === 0) advance(gw, 10, 10);
  }
  advance(gw, 200);
  // Probe prompts routed on VM 0 just before the failure: within the journal's last journalSlots events.
  for (let g = 0; g < 32; g++) {
    const s = send(gw, probe(g), { vm: 0 });
    probeDestinations.push(s.destinations[0] ?? "");
    complete(s.stream);
  }
  // The trap: VM 1 fails inside proxy_on_request_body of its next request.
  const failing = gw.plugin.vm(1)!;
  failing.beforeGuestCall = (fn) => {
    if (fn !== "proxy_on_request_body") return;
    failing.beforeGuestCall = undefined;
    throw new WebAssembly.RuntimeError("unreachable (injected by the fault scenario)");
  };
  const trapped = sendMixed(gw, mixedBody(rng, -1), 1);
  report.trappedRequestStatus = trapped.stream.localResponse?.status ?? null;
  if (!failing.failed) report.problems.push("the injected trap did not fail the VM");
  report.otherVmsFailed = [0, 2, 3].filter((w) => gw.plugin.vm(w)!.failed).length;
  // Streams that were open on it go on: Envoy answers or resets them.
  for (const s of open[1]) {
    report.openOnFailedVm.streams++;
    if (s.upstreamRequest !== null && !s.ended) {
      s.sendResponseHeaders({ ":status": "200" }, false);
      if (!s.ended) s.sendResponseBody("{}", true);
    }
    if (s.downstreamResponse?.status === 503 || s.localResponse?.status === 503) report.openOnFailedVm.answered503++;
    else if (s.resetDetails) report.openOnFailedVm.reset++;
    else report.openOnFailedVm.completed++;
  }
  open[1] = [];
  // New streams on that worker during the backoff: 503 from Envoy.
  for (let k = 0; k < 3; k++) {
    const s = sendMixed(gw, mixedBody(rng, -2 - k), 1);
    if (s.stream.localResponse?.status === 503) report.duringBackoff503++;
    if (!s.stream.ended) s.stream.reset();
  }
  // The other workers carry on meanwhile.
  for (const w of [0, 2, 3]) {
    const s = sendMixed(gw, mixedBody(rng, 1e6 + w), w);
    if (s.destinations.length !== 1) report.problems.push(`worker ${w} stopped routing after VM 1 failed`);
    complete(s.stream);
  }
  advance(gw, 2000);
  // After the backoff the next stream reloads the VM; probes show whether its index came back.
  const before = stat(gw, "prefix_router.prefix_blocks_matched");
  for (let g = 0; g < probeDestinations.length; g++) {
    const s = send(gw, probe(g), { vm: 1 });
    report.warmProbes.probes++;
    if (s.destinations[0] === probeDestinations[g]) report.warmProbes.sameDestination++;
    complete(s.stream);
  }
  report.reloads = Number(gw.envoy.stats.get("wasm.prefix_router.vm_reload_success") ?? 0);
  const reloaded = gw.plugin.vm(1)!;
  if (reloaded === failing || reloaded.failed) report.problems.push("worker 1 was not reloaded");
  // Everything else ends; the failed VM's in-flight counts are dropped once it has been silent long enough.
  for (const list of open) for (const s of list) complete(s);
  advance(gw, 7000);
  report.warmProbes.matchedBlocks = stat(gw, "prefix_router.prefix_blocks_matched") - before;
  report.staleVmsDropped = stat(gw, "prefix_router.index.stale_vms_dropped");
  report.inFlightAfter = inFlightTotal(gw);
  report.sharedDataKeys = gw.envoy.sharedData("prefix_router").keys().length;
  if (report.trappedRequestStatus !== 503) report.problems.push(`trapped request got ${report.trappedRequestStatus}, expected Envoy's 503`);
  if (report.otherVmsFailed > 0) report.problems.push(`${report.otherVmsFailed} other VMs failed`);
  if (report.reloads !== 1) report.problems.push(`${report.reloads} reloads`);
  // Work scoring may move a probe off its home when another endpoint is idle
  // and the home is not: the reloaded VM sees other VMs' open requests as a
  // drained estimate where VM 0 counted its own exactly. More than two moved
  // would be the index, not the load.
  if (report.warmProbes.sameDestination < report.warmProbes.probes - 2) report.problems.push(`the reloaded VM sent ${report.warmProbes.probes - report.warmProbes.sameDestination} recent prompts elsewhere`);
  if (report.inFlightAfter !== 0) report.problems.push(`in flight after: ${report.inFlightAfter}`);
  if (report.staleVmsDropped < 1) report.problems.push("the failed VM's in-flight counts were never dropped");
  if (report.sharedDataKeys > 4096 + 8) report.problems.push(`${report.sharedDataKeys} shared-data keys`);
  gw.envoy.shutdown();
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

// ---------------------------------------------------------------------------
// Eight VMs racing on the same shared-data keys

export interface RaceReport {
  requests: number;
  /** Requests run from inside another VM's proxy_set_shared_data (between its get and set). */
  interleaved: number;
  casConflicts: number;
  appendFailures: number;
  journalGaps: number;
  vmFailures: number;
  inFlightAfter: number;
  journal: JournalCheck;
  /** Earlier prompts sent again on every VM: how many went where the first one went. */
  probes: { sent: number; sameDestination: number };
  sharedDataKeys: number;
  sharedDataBytes: number;
  problems: string[];
  seconds: number;
}

export async function raceEightVms(o: { requests: number; seed: number; probes?: number }): Promise<RaceReport> {
  const started = performance.now();
  const rng = new Rng(o.seed);
  const layout: JournalLayout = { rootId: "prefix_router", hashBlockSize: 64, indexStride: 4, maxPrefixBlocks: 1024, journalSlots: 4096 };
  const config = {
    journalSlots: layout.journalSlots, maxPrefixBlocks: layout.maxPrefixBlocks, hashBlockSize: layout.hashBlockSize, indexStride: layout.indexStride,
    lruCapacityPerServer: 1 << 20, maxIndexBlocks: 1 << 26,
  };
  const gw = await gateway({ endpoints: 8, vms: 8, config });
  const fm = FuzzModule.load();
  fm.exports.fuzz_body_setup(layout.maxPrefixBlocks * layout.hashBlockSize);
  const keys = new Map(gw.endpoints.map((a) => [a, endpointKey(fm, a)]));
  const expected = new Map<string, ExpectedEvent>();
  const bodies: string[] = [];
  const destinations: string[] = [];
  const open: Array<{ stream: HttpStream; vm: number }> = [];
  const report: RaceReport = {
    requests: 0, interleaved: 0, casConflicts: 0, appendFailures: 0, journalGaps: 0, vmFailures: 0, inFlightAfter: 0,
    journal: { head: 0, slotsRead: 0, routingEvents: 0, releaseOnlyEvents: 0, matched: 0, corrupt: 0, problems: [] },
    probes: { sent: 0, sameDestination: 0 }, sharedDataKeys: 0, sharedDataBytes: 0, problems: [], seconds: 0,
  };
  const one = (vm: number) => {
    const i = report.requests++;
    // Shared system prompts (64 of them) and a question of its own: requests share leading blocks, never the last.
    const body = chatBody([["system", filler(3000 + (i % 64), 640)], ["user", `request ${i}: ${filler(i, 400)}`]]);
    const sent = send(gw, body, { vm });
    const d = sent.destinations[0] ?? "";
    if (sent.destinations.length !== 1 || !keys.has(d)) report.problems.push(`request ${i}: destinations ${JSON.stringify(sent.destinations)}`);
    bodies.push(body);
    destinations.push(d);
    const entries = indexEntries(fm, Buffer.from(body), layout);
    if (entries.length > 0) expected.set(entries[entries.length - 1].toString(16), { entries, endpointKey: keys.get(d) ?? 0n, request: i });
    open.push({ stream: sent.stream, vm });
  };
  let nested = false;
  gw.envoy.onBeforeSharedDataSet = (vmIndex) => {
    if (nested || !rng.chance(0.25)) return;
    nested = true;
    try {
      let other = rng.int(8);
      if (other === vmIndex) other = (other + 1) % 8;
      report.interleaved++;
      one(other);
      // Sometimes a stream of another VM ends too (a release in the journal); never one of the busy VM's.
      const k = open.length > 0 ? rng.int(open.length) : -1;
      if (k >= 0 && open[k].vm !== vmIndex && rng.chance(0.5)) complete(open.splice(k, 1)[0].stream);
    } finally {
      nested = false;
    }
  };
  let loops = 0;
  while (report.requests < o.requests) {
    one(rng.int(8));
    while (open.length > 64) {
      const s = open.splice(rng.int(open.length), 1)[0].stream;
      if (rng.chance(0.9)) complete(s);
      else s.reset();
    }
    // ~5,000 requests per virtual second: ticks keep the idle main-thread VM within the ring.
    if (++loops % 40 === 0) advance(gw, 10, 10);
  }
  // No more interleaving: what follows must not start requests nobody finishes.
  gw.envoy.onBeforeSharedDataSet = undefined;
  for (const s of open) complete(s.stream);
  open.length = 0;
  advance(gw, 1000);
  report.inFlightAfter = inFlightTotal(gw);
  report.casConflicts = stat(gw, "prefix_router.index.journal_cas_conflicts");
  report.appendFailures = stat(gw, "prefix_router.index.journal_append_failures");
  report.journalGaps = stat(gw, "prefix_router.index.journal_gaps");
  const shared = gw.envoy.sharedData("prefix_router");
  report.journal = checkJournal(shared, layout, new Set(keys.values()), expected);
  report.sharedDataKeys = shared.keys().length;
  report.sharedDataBytes = shared.totalBytes();
  // Every VM must know where every earlier prompt went: its index lost nothing.
  const sample = o.probes ?? 128;
  for (let k = 0; k < sample; k++) {
    const i = Math.floor((k * bodies.length) / sample);
    report.probes.sent += 8;
    report.probes.sameDestination += resendOnEveryVm(gw, bodies[i], destinations[i], 8, (vm, got) => {
      if (report.problems.length < 20) report.problems.push(`VM ${vm} sends request ${i} to ${got}, first sent to ${destinations[i]}`);
    });
  }
  report.vmFailures = gw.plugin.allVms().filter((vm) => vm.failed).length;
  gw.envoy.shutdown();
  if (report.interleaved === 0 || report.casConflicts === 0) report.problems.push("no race happened (no interleaving or no CAS conflict)");
  if (report.appendFailures > 0) report.problems.push(`${report.appendFailures} journal appends given up`);
  if (report.journalGaps > 0) report.problems.push(`${report.journalGaps} journal gaps`);
  if (report.journal.corrupt > 0) report.problems.push(`${report.journal.corrupt} corrupt journal slots: ${report.journal.problems.slice(0, 3).join("; ")}`);
  if (report.inFlightAfter !== 0) report.problems.push(`in flight after: ${report.inFlightAfter}`);
  if (report.vmFailures > 0) report.problems.push(`${report.vmFailures} VMs failed`);
  if (report.sharedDataKeys > layout.journalSlots + 4) report.problems.push(`${report.sharedDataKeys} shared-data keys`);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}


// ---------------------------------------------------------------------------
// A writer stalled between its page swap and its slot write

export interface StallReport {
  /** Decisions whose slot write was held back while the other workers went on. */
  stalls: number;
  /** Requests the other workers routed while a writer was stalled. */
  requestsDuringStalls: number;
  requests: number;
  journalGaps: number;
  /** Each stalled decision's prompt sent again on every worker: how many went where it first went. */
  probes: { sent: number; sameDestination: number };
  inFlightAfter: number;
  problems: string[];
}

/** The workers: VM indexes 0..WORKERS-1 (the main thread's VM routes nothing). */
const WORKERS = 8;

/**
 * A worker VM whose thread stops right after its decision took a seq in the
 * journal's page, before it writes the event's ring slot (journal.ts), as a
 * descheduled thread does: six other workers route `burst` requests
 * meanwhile and time moves on by `burst` / 2 ms (well under PENDING_SLOT_MS), while
 * the seventh routes nothing and only ticks, so that it falls behind the
 * page, reads the ring and meets the unwritten slot. In CI, 8 workers on 2
 * cores, a window of 64 events lost such an event. Every prompt is its own,
 * so a worker that missed the stalled decision would place its prompt cold.
 */
export async function stalledWriter(o: { stalls: number; burst: number; seed: number }): Promise<StallReport> {
  const rng = new Rng(o.seed);
  const gw = await gateway({ endpoints: 8, vms: WORKERS });
  const open: Array<{ stream: HttpStream; vm: number }> = [];
  const report: StallReport = { stalls: 0, requestsDuringStalls: 0, requests: 0, journalGaps: 0, probes: { sent: 0, sameDestination: 0 }, inFlightAfter: 0, problems: [] };
  const stalled: Array<{ body: string; destination: string }> = [];
  // The request a worker is deciding, outside any stall: its decision is the one a stall holds back.
  let deciding: string | null = null;
  let stalling = false;
  let stalledVm = -1; // never drive a stream of the stalled worker: Envoy runs one call at a time per thread
  const one = (vm: number): void => {
    const i = report.requests++;
    const body = chatBody([["system", `Prompt ${i}. ${filler(i, 3000)}`], ["user", `question ${i}`]]);
    const outer = !stalling;
    const stallsBefore = stalled.length;
    if (outer) deciding = body;
    const sent = send(gw, body, { vm });
    if (outer) deciding = null;
    if (sent.destinations.length !== 1) report.problems.push(`request ${i} on worker ${vm}: destinations ${JSON.stringify(sent.destinations)}`);
    // This decision was the one held back: record where it went.
    if (stalled.length > stallsBefore && outer) stalled[stalled.length - 1].destination = sent.destinations[0] ?? "";
    open.push({ stream: sent.stream, vm });
    while (open.length > 32) {
      const k = open.findIndex((entry) => entry.vm !== stalledVm);
      if (k < 0) break;
      complete(open.splice(k, 1)[0].stream);
    }
  };
  gw.envoy.onBeforeSharedDataSet = (vm, key) => {
    // The journal's ring slot (not the affinity journal's), written for a decision.
    if (stalling || deciding === null || key.includes("affinity/") || !/slot\/\d+$/.test(key) || report.stalls >= o.stalls) return;
    stalling = true;
    stalledVm = vm;
    report.stalls++;
    stalled.push({ body: deciding, destination: "" });
    const idle = (vm + 1) % WORKERS;
    try {
      for (let k = 0; k < o.burst; k++) {
        let other = rng.int(WORKERS - 2);
        for (const skip of [Math.min(vm, idle), Math.max(vm, idle)]) if (other >= skip) other++;
        one(other);
        report.requestsDuringStalls++;
        // Two requests a ms: the idle worker, ticking every tickMs (25 ms), takes in about 50
        // events at a time, more than the page keeps (4 per worker), so it reads the ring.
        if (k % 2 === 1) advance(gw, 1, 1);
      }
    } finally {
      stalling = false;
      stalledVm = -1;
    }
  };
  while (report.stalls < o.stalls) {
    one(rng.int(WORKERS));
    advance(gw, 1, 1);
  }
  gw.envoy.onBeforeSharedDataSet = undefined;
  for (const entry of open) complete(entry.stream);
  open.length = 0;
  advance(gw, 1000);
  report.journalGaps = stat(gw, "prefix_router.index.journal_gaps");
  for (const { body, destination } of stalled) {
    report.probes.sent += WORKERS;
    report.probes.sameDestination += resendOnEveryVm(gw, body, destination, WORKERS);
  }
  advance(gw, 1000);
  report.inFlightAfter = inFlightTotal(gw);
  if (report.journalGaps > 0) report.problems.push(`${report.journalGaps} journal events missed`);
  if (report.probes.sameDestination !== report.probes.sent) report.problems.push(`${report.probes.sent - report.probes.sameDestination} of ${report.probes.sent} stalled prompts re-sent went elsewhere`);
  if (report.inFlightAfter !== 0) report.problems.push(`in flight after: ${report.inFlightAfter}`);
  gw.envoy.shutdown();
  return report;
}
