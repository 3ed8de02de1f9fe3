// A short run of the real-Envoy load test (npm run bench:envoy,
// scripts/bench/envoy-load.ts) for CI, on the bench's own pieces: real Envoy
// with 2 workers and the filter beside the same bootstrap without it
// (envoy-under-test.ts), 8 loopback upstreams in a process of their own
// (loopback-upstream.ts), and wrk at saturation with 16 KB chat bodies, every
// one distinct, over 8 shared system prompts (wrk.ts, wrk-scripts.ts). A few
// seconds a side instead of minutes, and it asserts what can fail whatever
// the machine's speed:
//   - wrk counted no errors on either Envoy (connect, read, write, timeout,
//     status 400 and up), and Envoy answered nothing but 2xx: its
//     downstream_rq_1xx/3xx/4xx/5xx are 0 and downstream_rq_2xx covers every
//     answer wrk read;
//   - with the filter, its counters add up to what Envoy saw:
//     prefix_router.requests = downstream_rq_total = routed + every
//     pass-through reason; every answer wrk read was routed; and nothing
//     passed through but the streams cut off when wrk stopped (aborted, at
//     most one a connection a run);
//   - the two worker VMs saw each other's decisions through the journal under
//     real concurrency: no gap, no append given up, and the placements each
//     wrote of the other's add up to the decisions routed, less at most the
//     few made before a VM's first decision (it takes those in by replay).
// And with 8 workers (more threads than CI's 2 cores, so they preempt each
// other between a page read and its swap): no journal gap or given-up append,
// and every decision written into every other active worker's index.
// Requests per second are machine-dependent: the filter's share of plain's is
// printed as a diagnostic, never asserted.
// Needs wrk (scripts/bench/install-wrk.sh): without it a developer's run
// skips, and CI=true fails (.ci/run installs it).
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { startLoopbackUpstream } from "../../scripts/bench/loopback-upstream.ts";
import { ROOT, startEnvoyPair, startEnvoyUnderTest } from "../../scripts/bench/envoy-under-test.ts";
import { StopOnExit } from "../../scripts/bench/stop-on-exit.ts";
import { INSTALL_WRK, findWrk, runWrkWithoutErrors, type WrkResult } from "../../scripts/bench/wrk.ts";
import { chatLoadScript } from "../../scripts/bench/wrk-scripts.ts";
import { envoyTestWith } from "./real-envoy.ts";
import { waitFor } from "./live-traffic.ts";

const BODY_BYTES = 16384;
const WORKERS = 2;
const UPSTREAMS = 8;
const CONNECTIONS = 16;
/** wrk takes whole seconds. Each side: a warm-up run, then the measured one. */
const WARMUP_SECONDS = 1;
const SECONDS = 3;
const RUNS_PER_SIDE = 2;

const P = "wasmcustom.prefix_router.";
const HCM = "http.prefix_router.";
const STATS = "^(wasmcustom\\.prefix_router\\.(requests|routed|passthrough\\..+|index\\.(journal_.+|placements_written_.+))|http\\.prefix_router\\.downstream_rq_(total|[1-5]xx))$";

envoyTestWith({ name: "wrk", path: findWrk(), install: INSTALL_WRK },
  "real Envoy under load, with the filter and without (2 workers, 16 KB chat bodies): only 2xx, and the filter's counts add up to Envoy's",
  { timeout: 90_000 },
  async (t: TestContext, wrk: string) => {
    // Stops Envoy and the upstream process however the test ends (failure, timeout, Ctrl-C); t.signal kills wrk.
    const stops = new StopOnExit();
    t.after(() => stops.stopAll());
    const upstream = await startLoopbackUpstream(UPSTREAMS, ROOT);
    stops.add(upstream.stop);
    const sides = await startEnvoyPair(stops, { endpoints: upstream.addresses, workers: WORKERS });

    const script = chatLoadScript({ bodyBytes: BODY_BYTES });
    let requestNumber = 0;
    const answered = sides.map(() => 0);
    const measured: WrkResult[] = [];
    for (const seconds of [WARMUP_SECONDS, SECONDS]) {
      for (const [i, side] of sides.entries()) {
        requestNumber += 10_000_000;
        const r = await runWrkWithoutErrors(wrk, {
          url: side.envoy.url, connections: CONNECTIONS, durationSeconds: seconds, script, args: [String(requestNumber)], signal: t.signal,
        }, `${side.name} Envoy`);
        assert.ok(r.requests > 0, `${side.name} Envoy answered no request in ${seconds} s`);
        answered[i] += r.requests;
        if (seconds === SECONDS) measured.push(r);
      }
    }
    const [plainRun, filterRun] = measured;
    t.diagnostic(`req/s over ${SECONDS} s, ${CONNECTIONS} connections: plain ${Math.round(plainRun.requestsPerSecond)}, ` +
      `filter ${Math.round(filterRun.requestsPerSecond)} (${Math.round((100 * filterRun.requestsPerSecond) / plainRun.requestsPerSecond)}% of plain; not asserted)`);

    // A stream wrk left in flight when it stopped reached Envoy but has no answer: at most one a connection a run.
    const cutOff = CONNECTIONS * RUNS_PER_SIDE;
    for (const [i, side] of sides.entries()) {
      const stats = await side.envoy.stats(STATS);
      const stat = (name: string) => stats.get(name) ?? 0;
      const total = stat(`${HCM}downstream_rq_total`);
      const classes = Object.fromEntries([1, 2, 3, 4, 5].map((c) => [`${c}xx`, stat(`${HCM}downstream_rq_${c}xx`)]));
      assert.deepEqual({ ...classes, "2xx": 0 }, { "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 }, `${side.name} Envoy answered other than 2xx`);
      assert.ok(classes["2xx"] >= answered[i] && classes["2xx"] <= total && total - answered[i] <= cutOff,
        `${side.name} Envoy: downstream_rq_total ${total}, 2xx ${classes["2xx"]}, wrk read ${answered[i]} answers (at most ${cutOff} cut off)`);
    }

    const filter = sides[1].envoy;
    assert.equal(sides[1].name, "filter");
    // The filter adds its counters up in each VM and hands them to Envoy on its tick (100 ms).
    let stats = new Map<string, number>();
    const stat = (name: string) => stats.get(name) ?? 0;
    await waitFor("the filter's requests to reach Envoy's downstream_rq_total", 5_000, async () => {
      stats = await filter.stats(STATS);
      return stat(`${P}requests`) === stat(`${HCM}downstream_rq_total`);
    }).catch((e: Error) => assert.fail(`${e.message}: prefix_router.requests ${stat(`${P}requests`)}, downstream_rq_total ${stat(`${HCM}downstream_rq_total`)}`));
    const requests = stat(`${P}requests`);
    const routed = stat(`${P}routed`);
    const passed = Object.fromEntries([...stats].filter(([name, v]) => name.startsWith(`${P}passthrough.`) && v > 0).map(([name, v]) => [name.slice(P.length), v]));
    const passedTotal = Object.values(passed).reduce((a, v) => a + v, 0);
    t.diagnostic(`filter Envoy: ${requests} requests, ${routed} routed, passed through ${JSON.stringify(passed)}`);
    assert.equal(routed + passedTotal, requests, `routed ${routed} + passed through ${passedTotal} = requests ${requests}`);
    assert.ok(routed >= answered[1], `every answer wrk read was routed: routed ${routed}, answers ${answered[1]}`);
    const { "passthrough.aborted": aborted = 0, ...others } = passed;
    assert.deepEqual(others, {}, "chat bodies of 16 KB passed through for a reason other than wrk cutting them off");
    assert.ok(aborted <= cutOff, `aborted ${aborted}: more than the ${cutOff} streams wrk can cut off`);

    // Each decision is written into the other worker's index, by its tick or at once (the main
    // thread's VM keeps no index), so the placements written add up to the decisions routed; the
    // last ones are written by the next tick, which an idle VM takes more slowly.
    const journalStat = (name: string) => stat(`${P}index.${name}`);
    const placed = () => journalStat("placements_written_at_once") + journalStat("placements_written_by_tick");
    await waitFor("the other worker to write every decision's placements", 5_000, async () => {
      stats = await filter.stats(STATS);
      return placed() >= routed - CONNECTIONS;
    }).catch(() => undefined); // the assertion below says what is missing
    const journal = Object.fromEntries(["journal_gaps", "journal_append_failures", "journal_cas_conflicts", "placements_written_at_once", "placements_written_by_tick"]
      .map((name) => [name, journalStat(name)]));
    t.diagnostic(`filter Envoy's journal: ${JSON.stringify(journal)}`);
    assert.equal(journal.journal_gaps, 0, "a worker VM missed journal events");
    assert.equal(journal.journal_append_failures, 0, "a journal append was given up");
    assert.ok(placed() <= routed && placed() >= routed - CONNECTIONS,
      `placements written by the other worker ${placed()}, decisions routed ${routed} (at most ${CONNECTIONS} taken in by replay instead)`);
  });

envoyTestWith({ name: "wrk", path: findWrk(), install: INSTALL_WRK },
  "real Envoy with 8 workers under load: every decision reaches every other active worker's index through the journal, with no gap",
  { timeout: 60_000 },
  async (t: TestContext, wrk: string) => {
    const workers = 8;
    const connections = 64; // over 8 workers: each gets some (Envoy's listeners share the port)
    const stops = new StopOnExit();
    t.after(() => stops.stopAll());
    const upstream = await startLoopbackUpstream(UPSTREAMS, ROOT);
    stops.add(upstream.stop);
    const envoy = await startEnvoyUnderTest({ endpoints: upstream.addresses, workers, filter: true });
    stops.add(envoy.stop);
    const r = await runWrkWithoutErrors(wrk, {
      url: envoy.url, connections, durationSeconds: SECONDS, script: chatLoadScript({ bodyBytes: BODY_BYTES }), args: ["1"], signal: t.signal,
    }, "filter Envoy, 8 workers");
    assert.ok(r.requests > 0, "no request answered");
    // Workers that took connections are the VMs that decided (the main thread's VM never does).
    const perWorker = await envoy.stats("^listener\\..*\\.worker_[0-9]+\\.downstream_cx_total$");
    const active = [...perWorker.values()].filter((n) => n > 0).length;
    assert.ok(active >= 2, `${active} workers took connections`);
    const journalStats = "^(wasmcustom\\.prefix_router\\.(requests|routed|index\\.(journal_.+|placements_written_.+))|http\\.prefix_router\\.downstream_rq_total)$";
    let stats = new Map<string, number>();
    const stat = (name: string) => stats.get(`${P}${name}`) ?? 0;
    const placed = () => stat("index.placements_written_at_once") + stat("index.placements_written_by_tick");
    // A VM writes another's decision from its first own one on (it replays the ring for the ones before).
    const slack = (active - 1) * connections;
    // Each VM hands Envoy its counters on its tick: first every VM's count of its own requests
    // (then `routed` is final), then the others' placements written by their ticks.
    await waitFor("every active worker to count its requests and write the others' placements", 5_000, async () => {
      stats = await envoy.stats(journalStats);
      return stat("requests") === (stats.get(`${HCM}downstream_rq_total`) ?? -1) && placed() >= (active - 1) * stat("routed") - slack;
    }).catch(() => undefined); // the assertions below say what is missing
    const routed = stat("routed");
    t.diagnostic(`8 workers, ${active} active: routed ${routed}, placements written ${placed()}, ` +
      `page swaps retried ${stat("index.journal_cas_conflicts")}`);
    assert.equal(stat("index.journal_gaps"), 0, "a worker VM missed journal events");
    assert.equal(stat("index.journal_append_failures"), 0, "a journal append was given up");
    assert.equal(stat("requests"), stats.get(`${HCM}downstream_rq_total`), "the filter's requests against Envoy's downstream_rq_total");
    assert.ok(routed >= r.requests, `routed ${routed}, answers ${r.requests}`);
    assert.ok(placed() <= (active - 1) * routed && placed() >= (active - 1) * routed - slack,
      `placements written ${placed()}: each of ${routed} decisions by ${active - 1} other active workers, less at most ${slack}`);
  });
