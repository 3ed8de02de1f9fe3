// Markdown for the hardening figures: one section per command (fuzz, faults,
// soak, abuse), tables only, so reports/hardening.md and the README quote the
// same numbers. Formatting only; the scenarios compute everything.
import type { ParserReport, ReplayReport } from "./fuzz.ts";
import type { RouterFuzzReport } from "./fuzz-router.ts";
import type { MetricsFaultReport, HugePageReport, RestartReport, RaceReport, StallReport } from "./faults.ts";
import type { SoakReport } from "./soak.ts";
import type { HeaderReport, OversizeReport, EndlessReport, WorkReport, FloodReport, SmuggleReport, FailOpenReport } from "./abuse.ts";

const n = (x: number) => x.toLocaleString("en-US");
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const s = (x: number) => `${x.toFixed(1)} s`;

function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map((c) => String(c).replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function problems(list: string[]): string {
  return list.length === 0 ? "" : `\n\nProblems:\n${list.map((p) => `- ${p}`).join("\n")}`;
}

export function fuzzSection(parsers: ParserReport[], replays: ReplayReport[], router: RouterFuzzReport[]): string {
  const parts: string[] = ["## Fuzzing (`npm run fuzz`)", ""];
  parts.push(table(
    ["parser", "seed", "inputs", "generated / mutated / truncated / extreme", "largest", "reference compared", "before-input checks", "traps", "violations", "heap in use after warm-up → end", "time"],
    parsers.map((p) => [
      p.parser, p.seed, n(p.inputs),
      `${n(p.byOrigin.generated)} / ${n(p.byOrigin.mutated)} / ${n(p.byOrigin.truncated)} / ${n(p.byOrigin.special)}`,
      mib(p.largestInput), n(p.oracleCompared), n(p.underreadChecked), p.traps, p.violations,
      `${n(p.memory.baseline.usedBytes)} → ${n(p.memory.end.usedBytes)} B (${p.memory.leakedBytes >= 0 ? "+" : ""}${p.memory.leakedBytes})`,
      s(p.seconds),
    ]),
  ));
  parts.push("", "Outcomes:", "");
  for (const p of parsers) {
    parts.push(`- ${p.parser}: ${Object.entries(p.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${n(v)}`).join(", ")}`);
  }
  const findings = parsers.flatMap((p) => p.findings.map((f) => `${p.parser}: ${f.kind} ${f.message}${f.file ? ` (${f.file.replace(/.*tests\//, "tests/")})` : ""}`));
  if (findings.length > 0) parts.push("", "Findings:", "", ...findings.slice(0, 30).map((f) => `- ${f}`));
  parts.push("", `Regression inputs replayed: ${replays.map((r) => `${r.parser} ${r.files} files (${r.runs} runs, ${r.failures.length} failures)`).join("; ")}.`);
  parts.push("", "Through the filter in the emulator:", "");
  parts.push(table(
    ["what", "seed", "inputs", "routed", "accepted / rejected (configs) or scrapes ok / failed (pages)", "VM failures", "altered bodies", "bad destinations", "local replies", "in flight after", "time"],
    router.map((r) => [r.kind, r.seed, n(r.inputs), n(r.routed), r.kind === "bodies" ? "" : `${n(r.accepted)} / ${n(r.rejected)}`, r.vmFailures, r.altered, r.badDestinations, r.localReplies, r.inFlightAfter, s(r.seconds)]),
  ));
  const rp = router.flatMap((r) => r.problems.map((p) => `${r.kind}: ${p}`));
  return parts.join("\n") + problems(rp);
}

export function faultsSection(m: MetricsFaultReport, huge: HugePageReport, restart: RestartReport, race: RaceReport, stall: StallReport): string {
  const parts: string[] = ["## Faults (`npm run faults`)", ""];
  parts.push("### Metrics servers (real loopback servers, real time; scrape every 100 ms, timeout 300 ms, unhealthy after 3 failures)", "");
  parts.push(table(
    ["endpoint", "metrics server", "scrapes ok", "scrapes failed", "healthy", "picks (faults / all failing / recovered)"],
    Object.entries(m.endpoints).map(([a, f]) => [a, f.behaviour, f.scrapesOk, f.scrapesFailed, f.healthyGauge, f.picks.join(" / ")]),
  ));
  parts.push("", `${n(m.requests)} requests; health settled after ${m.settleMs.join(" / ")} ms; endpoints picked once settled: ${m.pickedSettled.join(" / ")} (of ${Object.keys(m.endpoints).length}); at most ${m.maxPendingCallouts} callouts pending; largest VM ${mib(m.maxVmMemoryBytes)}; VM failures ${m.vmFailures}; bad destinations ${m.badDestinations}; in flight after ${m.inFlightAfter}.` + problems(m.problems));
  parts.push("", "### Big pages", "");
  parts.push(table(["page", "served", "scrapes ok", "scrapes failed"], huge.pages.map((p) => [mib(p.bytes), p.served, p.scrapesOk, p.scrapesFailed])));
  parts.push("", `Largest VM linear memory ${mib(huge.vmMemoryBytesBefore)} before, ${mib(huge.vmMemoryBytesAfter)} after; VM failures ${huge.vmFailures}; routing afterwards: ${huge.routedAfter ? "yes" : "no"}.` + problems(huge.problems));
  parts.push("", "### A VM that traps mid-request (FAIL_RELOAD, backoff 1 s, 4 workers)", "");
  parts.push(table(["", ""], [
    ["the request whose callback trapped", `Envoy ${restart.trappedRequestStatus}`],
    ["other worker VMs failed", restart.otherVmsFailed],
    ["streams open on the failed VM", `${restart.openOnFailedVm.streams}: ${restart.openOnFailedVm.answered503} answered 503, ${restart.openOnFailedVm.reset} reset, ${restart.openOnFailedVm.completed} completed`],
    ["new streams on that worker during the backoff", `${restart.duringBackoff503} × 503`],
    ["reloads", restart.reloads],
    ["prompts routed just before the failure that the reloaded VM sends where VM 0 did", `${restart.warmProbes.sameDestination} / ${restart.warmProbes.probes} (${n(restart.warmProbes.matchedBlocks)} blocks matched: it replayed the journal's last events into its empty index)`],
    ["VMs presumed gone after 5 s of silence, their in-flight counts dropped (stale_vms_dropped, summed over VMs)", restart.staleVmsDropped],
    ["in flight after", restart.inFlightAfter],
    ["shared-data keys", restart.sharedDataKeys],
  ]) + problems(restart.problems));
  parts.push("", "### Eight VMs racing on the same shared-data keys", "");
  parts.push(table(["", ""], [
    ["requests", n(race.requests)],
    ["run inside another VM's proxy_set_shared_data (between its get and set)", n(race.interleaved)],
    ["CAS conflicts (retried appends)", n(race.casConflicts)],
    ["appends given up / journal gaps", `${race.appendFailures} / ${race.journalGaps}`],
    ["journal slots read / routing events / release-only events", `${n(race.journal.slotsRead)} / ${n(race.journal.routingEvents)} / ${n(race.journal.releaseOnlyEvents)}`],
    ["routing events equal to their request (endpoint and every block hash)", `${n(race.journal.matched)}; corrupt: ${race.journal.corrupt}`],
    ["earlier prompts re-sent on each of the 8 VMs, same destination", `${n(race.probes.sameDestination)} / ${n(race.probes.sent)}`],
    ["in flight after", race.inFlightAfter],
    ["shared data", `${n(race.sharedDataKeys)} keys, ${mib(race.sharedDataBytes)}`],
    ["VM failures", race.vmFailures],
    ["time", s(race.seconds)],
  ]) + problems(race.problems));
  parts.push("", "### A worker stalled between its journal page swap and its slot write (8 workers; one more worker only ticks meanwhile)", "");
  parts.push(table(["", ""], [
    ["stalled decisions / requests the other workers routed meanwhile", `${n(stall.stalls)} / ${n(stall.requestsDuringStalls)}`],
    ["requests in all", n(stall.requests)],
    ["journal gaps", stall.journalGaps],
    ["stalled decisions' prompts re-sent on each worker, same destination", `${n(stall.probes.sameDestination)} / ${n(stall.probes.sent)}`],
    ["in flight after", stall.inFlightAfter],
  ]) + problems(stall.problems));
  return parts.join("\n");
}

export function soakSection(r: SoakReport): string {
  const parts: string[] = [`## Soak (\`npm run soak\`): ${n(r.requests)} requests, ${r.vms} worker VMs, ${r.endpoints} endpoints`, ""];
  parts.push(table(
    ["after requests", "requests/s (wall, emulator included)", "largest VM memory", "index memory (one VM)", "shared data", "in flight"],
    r.windows.map((w) => [n(w.requests), n(w.requestsPerSecond), mib(w.maxVmMemoryBytes), mib(w.indexMemoryBytes), `${n(w.sharedDataKeys)} keys, ${mib(w.sharedDataBytes)}`, w.inFlight]),
  ));
  parts.push("", `Routed ${n(r.routed)}, passed through ${n(r.passthrough)}, reset ${n(r.resets)}; predicted prefix-cache hit rate ${(100 * r.predictedHitRate).toFixed(1)}%; shared-data bound ${n(r.sharedDataBound.keys)} keys / ${mib(r.sharedDataBound.bytes)}; in flight after ${r.inFlightAfter}; VM failures ${r.vmFailures}; ${s(r.seconds)}.` + problems(r.problems));
  return parts.join("\n");
}

export function abuseSection(h: HeaderReport, o: OversizeReport, e: EndlessReport, w: WorkReport, f: FloodReport, sm: SmuggleReport, fo: FailOpenReport[]): string {
  const parts: string[] = ["## Abuse (`npm run abuse`)", ""];
  parts.push(`Client-sent destination headers: ${h.requests} requests (11 request shapes × 8 values × 1 or 3 copies, mixed case): ${h.routed} routed, ${h.passedThrough} passed through; a destination the filter did not choose reached upstream ${h.clientChosen} times; duplicated headers ${h.duplicated}.` + problems(h.problems));
  parts.push("", table(["oversized or odd request", "outcome (the filter, in the emulator)"], o.cases.map((c) => [c.name, c.outcome])));
  parts.push("", "In real Envoy the first three never reach the filter: Envoy answers 431 to request headers over `max_request_headers_kb` (60 KiB by default) before any filter runs (tests/e2e/envoy-requests.test.ts). The outcomes above are the filter's own, in the emulator, for an Envoy configured to accept such headers.");
  parts.push("", `Altered bodies ${o.altered}; VM failures ${o.vmFailures}.` + problems(o.problems));
  parts.push("", `Endless bodies: ${e.endless} bodies that never end and ${e.headersOnly} requests whose body never comes, among ${e.legit} ordinary requests: ${e.legitRouted} of those routed; VM memory grew ${n(e.vmMemoryGrowthBytes)} bytes; aborted ${e.aborted}, body_timeout ${e.bodyTimeout}; in flight after ${e.inFlightAfter}.` + problems(e.problems));
  parts.push("", table(["prompt", "blocks hashed", "module time (median)"], w.rows.map((r) => [mib(r.promptBytes), n(r.hashedBlocks), `${n(r.moduleMicros)} µs`])));
  parts.push("", `Largest journal event ${n(w.maxEventBytes)} bytes (bound ${n(w.eventBound)}).` + problems(w.problems));
  parts.push("", `Hash flooding: ${n(f.groundEntries)} index entries ground (${s(f.grindSeconds)}) to share their low ${f.collidingBits} bits, against a table of ${n(f.entriesPerEndpoint)} entries per endpoint: ${n(f.attackMicros)} µs per colliding request, ${n(f.controlMicros)} µs per ordinary one (×${f.ratio.toFixed(2)}).` + problems(f.problems));
  parts.push("", `Smuggled addresses: ${sm.configsTried} configurations with a bad address or metricsAddress, ${sm.configsAccepted.length} accepted; ${sm.metricsPagesServed} metrics pages naming other addresses in labels and adapter lists, ${n(sm.requestsAfter)} requests (models named like those addresses) afterwards, ${sm.badDestinations} sent outside the configuration; VM failures ${sm.vmFailures}.` + problems(sm.problems));
  parts.push("", table(["failure policy, VM failed", "client's destination header reaches upstream", "status"], fo.map((x) => [x.policy, x.clientHeaderReachedUpstream ? "**yes**" : "no", x.status ?? "forwarded"])));
  return parts.join("\n");
}
