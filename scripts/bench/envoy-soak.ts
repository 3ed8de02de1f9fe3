// Soak through real Envoy (npm run soak:envoy): --requests N (default 10^6)
// through Envoy with the filter and 4 workers, in front of 8 loopback servers
// that answer at once (loopback-upstream.ts). The mix (wrk-scripts.ts
// SOAK_MIX): chat completions and completions over 16 shared system prompts
// with user turns no other request has, which the filter routes; GET
// /v1/models, non-JSON bodies and bodies without a model, which it passes
// through. wrk sends them in ten slices of N/10 (each stops its thread after
// its share of answers); after each slice the report samples Envoy's resident
// memory (VmRSS, /proc/<pid>/status), the filter's index.memory_bytes and the
// slice's rate. At the end it checks, from the admin API's /stats:
//   - no 5xx: none in wrk's answers and none in Envoy's downstream_rq_5xx;
//   - the filter saw every request: prefix_router.requests equals the
//     requests wrk wrote (and Envoy's downstream_rq_total);
//   - routed + the pass-through reasons = requests, and each kind got its
//     verdict (routed for chats and completions, not_inference, not_json,
//     no_model for the others);
//   - memory flat after warm-up: resident memory at the end is within
//     FLAT_BYTES of what it was after the first WARMUP_SLICES slices;
//   - every worker saw every other's decisions: no journal gap, no append
//     given up (index.journal_gaps, index.journal_append_failures).
// Each slice sends exactly its share and waits for every answer before wrk
// stops (wrk-scripts.ts), so nothing is cut off in flight and every count is
// exact. Exits 1 if a check fails. Linux only (/proc).
//
// Usage: node --import tsx scripts/bench/envoy-soak.ts [--requests N] [--connections N] [--workers N] [--out FILE]
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { machineFacts, residentBytes } from "./proc.ts";
import { startLoopbackUpstream } from "./loopback-upstream.ts";
import { ROOT, envoyUnderTestVersion, startEnvoyUnderTest } from "./envoy-under-test.ts";
import { StopOnExit } from "./stop-on-exit.ts";
import { INSTALL_WRK, findWrk, runWrk, wrkVersion } from "./wrk.ts";
import { SOAK_MIX, soakMixScript } from "./wrk-scripts.ts";
import { positiveInteger } from "./options.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "1000000" },
    connections: { type: "string", default: "32" },
    workers: { type: "string", default: "4" },
    out: { type: "string", default: "reports/envoy-soak.md" },
  },
});
const REQUESTS = positiveInteger("requests", values.requests!);
const CONNECTIONS = positiveInteger("connections", values.connections!);
const WORKERS = positiveInteger("workers", values.workers!);
const SLICES = 10;
const UPSTREAMS = 8;
/** Slices counted as warm-up: the index and Envoy's pools grow to their working size in them. */
const WARMUP_SLICES = 2;
/** How much resident memory may move after warm-up and still count as flat. */
const FLAT_BYTES = 8 * 2 ** 20;
/** A slice's time cap for wrk; the slice normally ends on its answer quota long before. */
const SLICE_CAP_SECONDS = 1800;

/**
 * The filter adds its counters up inside each VM and hands them to Envoy on
 * its tick (assembly/router/stats.ts flush; tickMs 100 by default), so stats
 * are read only after a few ticks with no traffic.
 */
const STATS_SETTLE_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const STATS = "^(wasmcustom\\.prefix_router\\.(requests|routed|passthrough\\..+|index\\.(memory_bytes|journal_gaps|journal_append_failures))|http\\.prefix_router\\.downstream_rq_(total|[1-5]xx))$";
const P = "wasmcustom.prefix_router.";
const HCM = "http.prefix_router.";

interface Sample {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  rssBytes: number;
  indexBytes: number;
  /** Requests so far as the filter counted them (prefix_router.requests) and as Envoy did (downstream_rq_total). */
  filterRequests: number;
  envoyRequests: number;
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const int = (n: number) => Math.round(n).toLocaleString("en-US");

async function main(): Promise<boolean> {
  const stops = new StopOnExit();
  try {
    const wrk = findWrk();
    if (wrk === null) throw new Error(`wrk not found: ${INSTALL_WRK}`);
    const envoyVersion = await envoyUnderTestVersion();
    const upstream = await startLoopbackUpstream(UPSTREAMS, ROOT);
    stops.add(upstream.stop);
    const envoy = await startEnvoyUnderTest({ endpoints: upstream.addresses, workers: WORKERS, filter: true });
    stops.add(envoy.stop);
    const rssAtStart = await residentBytes(envoy.pid);

    const script = soakMixScript();
    const sent = new Map<string, number>(SOAK_MIX.map(({ kind }) => [kind, 0]));
    let written = 0;
    let answered = 0;
    let answered5xx = 0;
    let wrkErrors = 0;
    let capped = false;
    const samples: Sample[] = [];
    const started = Date.now();
    for (let slice = 0; slice < SLICES; slice++) {
      const quota = Math.round((REQUESTS * (slice + 1)) / SLICES) - Math.round((REQUESTS * slice) / SLICES);
      const r = await runWrk(wrk, {
        url: envoy.url, connections: CONNECTIONS, durationSeconds: SLICE_CAP_SECONDS, timeoutSeconds: 10, script,
        args: [String(written), String(quota)],
      });
      for (const { kind } of SOAK_MIX) {
        const n = r.counters[`sent_${kind}`];
        sent.set(kind, sent.get(kind)! + n);
        written += n;
      }
      answered += r.counters.answers;
      answered5xx += r.counters.answers_5xx;
      wrkErrors += r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
      if (r.counters.answers < quota) capped = true;
      await sleep(STATS_SETTLE_MS);
      const stats = await envoy.stats(STATS);
      samples.push({
        requests: written,
        seconds: r.durationSeconds,
        requestsPerSecond: r.counters.answers / r.durationSeconds,
        rssBytes: await residentBytes(envoy.pid),
        indexBytes: stats.get(`${P}index.memory_bytes`) ?? 0,
        filterRequests: stats.get(`${P}requests`) ?? 0,
        envoyRequests: stats.get(`${HCM}downstream_rq_total`) ?? 0,
      });
      const s = samples[samples.length - 1];
      process.stderr.write(`${int(written)} requests, ${int(s.requestsPerSecond)}/s, Envoy RSS ${mib(s.rssBytes)} MiB\n`);
    }
    const wallSeconds = (Date.now() - started) / 1000;
    await sleep(STATS_SETTLE_MS);
    const stats = await envoy.stats(STATS);
    const stat = (name: string) => stats.get(name) ?? 0;
    const passthrough = [...stats].filter(([name]) => name.startsWith(`${P}passthrough.`));
    const passedTotal = passthrough.reduce((a, [, v]) => a + v, 0);
    const requests = stat(`${P}requests`);
    const routed = stat(`${P}routed`);
    const routable = SOAK_MIX.filter((k) => k.expect === "routed").reduce((a, k) => a + sent.get(k.kind)!, 0);

    const warm = samples[WARMUP_SLICES - 1].rssBytes;
    const afterWarm = samples.slice(WARMUP_SLICES - 1).map((s) => s.rssBytes);
    const drift = Math.max(...afterWarm) - warm;
    const checks: Array<[string, boolean]> = [
      [`no 5xx: ${answered5xx} in wrk's answers, ${stat(`${HCM}downstream_rq_5xx`)} in Envoy's downstream_rq_5xx`, answered5xx === 0 && stat(`${HCM}downstream_rq_5xx`) === 0],
      [`the filter saw every request: prefix_router.requests ${int(requests)} = written ${int(written)} = Envoy's downstream_rq_total ${int(stat(`${HCM}downstream_rq_total`))}`,
        requests === written && requests === stat(`${HCM}downstream_rq_total`)],
      [`routed ${int(routed)} + passed through ${int(passedTotal)} = requests ${int(requests)}`, routed + passedTotal === requests],
      [`chats and completions (${int(routable)}) routed: ${int(routed)}`, routed === routable],
      ...SOAK_MIX.filter((k) => k.expect !== "routed").map((k): [string, boolean] =>
        [`${k.kind} (${int(sent.get(k.kind)!)}) passed through as ${k.expect.slice("passthrough.".length)}: ${int(stat(P + k.expect))}`, stat(P + k.expect) === sent.get(k.kind)]),
      [`memory flat after warm-up: Envoy RSS ${mib(warm)} MiB after ${WARMUP_SLICES} of ${SLICES} slices, at most ${mib(warm + drift)} MiB after (+${mib(drift)}, allowed +${mib(FLAT_BYTES)})`, drift <= FLAT_BYTES],
      [`every worker saw every other's decisions: journal gaps ${int(stat(`${P}index.journal_gaps`))}, appends given up ${int(stat(`${P}index.journal_append_failures`))}`,
        stat(`${P}index.journal_gaps`) === 0 && stat(`${P}index.journal_append_failures`) === 0],
      [`every request answered (${int(answered)} of ${int(written)}), every slice within ${SLICE_CAP_SECONDS} s, no socket errors in wrk (${wrkErrors})`,
        answered === written && written === REQUESTS && !capped && wrkErrors === 0],
    ];
    const ok = checks.every(([, pass]) => pass);

    const m = machineFacts();
    const lines = [
      "# Soak: requests through real Envoy with the filter",
      "",
      `\`node --import tsx scripts/bench/envoy-soak.ts --requests ${REQUESTS} --connections ${CONNECTIONS} --workers ${WORKERS}\` (npm run soak:envoy), ${new Date().toISOString().slice(0, 10)}.`,
      "",
      `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}; Envoy ${envoyVersion} with ${WORKERS} workers, wrk ${wrkVersion(wrk)} (one thread,`,
      `${CONNECTIONS} connections), ${UPSTREAMS} loopback servers answering at once in a process of their own, all on these cores.`,
      `${int(written)} requests in ${int(wallSeconds)} s, ${int(answered)} answered.`,
      "",
      "The mix: " + SOAK_MIX.map((k) => `${k.kind} ${k.percent}% (${k.expect})`).join(", ") + ".",
      "Chats and completions use 16 shared system prompts of 1.5 to 3 KB and a user turn no other request has.",
      "",
      `${ok ? "All checks passed." : "SOME CHECKS FAILED."}`,
      "",
      ...checks.map(([text, pass]) => `- ${pass ? "ok" : "FAILED"}: ${text}`),
      "",
      "After each tenth of the requests:",
      "",
      "| requests sent | Envoy's downstream_rq_total | the filter's requests | req/s in the slice | Envoy RSS, MiB | filter index, MiB (one VM's) |",
      "|---|---|---|---|---|---|",
      `| 0 | | | | ${mib(rssAtStart)} | |`,
      ...samples.map((s) => `| ${int(s.requests)} | ${int(s.envoyRequests)} | ${int(s.filterRequests)} | ${int(s.requestsPerSecond)} | ${mib(s.rssBytes)} | ${mib(s.indexBytes)} |`),
      "",
      "Pass-through reasons at the end: " + (passthrough.length === 0 ? "none" : passthrough.filter(([, v]) => v > 0).map(([n, v]) => `${n.slice(P.length + "passthrough.".length)} ${int(v)}`).join(", ")) + ".",
      "",
    ];
    const text = lines.join("\n");
    process.stdout.write(text);
    if (values.out) await writeFile(values.out, text);
    return ok;
  } finally {
    await stops.stopAll();
  }
}

main().then(
  (ok) => {
    process.exitCode = ok ? 0 : 1;
  },
  (e: unknown) => {
    process.stderr.write(`soak:envoy: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
