// Fallback hosts in real Envoy: the filter's destination header lists its pick
// and the next fallbackHosts endpoints by the same score; override_host takes
// the next entry of that list on every host selection, retries included
// (source/extensions/load_balancing_policies/override_host/load_balancer.cc
// getEndpoint, override_host_filter_state.h consumeNextHost), and the generated
// route retries connect failures once per fallback host. So when the chosen
// model server is gone (its listening socket closed: connects are refused), the
// retry lands on the filter's second choice, not on whatever round robin
// would pick.
//
// override_host never checks host health (findHost: "TODO: Validate that host
// health status did not change"), and the model cluster has no health checks,
// so a dead server that still holds a prefix keeps being named first. What
// stops that is the filter's own scrapes: with metrics on, failed scrapes mark
// the endpoint unhealthy and it leaves both the pick and the fallback list;
// with metrics off, only the retry saves each request.
//
// Where a request went is read from Envoy's access log (the generated
// format logs chosen=<the header> upstream=<the host used>; flushed every 50 ms
// here), matched to the request by a query parameter the filter ignores, and
// from the simulated server's x-served-by.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { startServers, type SimServer } from "../../scripts/sim/server.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { envoyTest, startEnvoyGateway, type EnvoyGateway } from "./real-envoy.ts";
import { http, text } from "./scenarios.ts";
import { stats, waitFor } from "./live-traffic.ts";

const MODEL = DEFAULT_SIM_PARAMS.model;
const CLUSTER = "cluster.prefix_router_models";

interface Routed {
  status: number;
  servedBy: string;
  /** The destination header as the router saw it: the filter's pick, then its fallbacks. */
  chosen: string[];
  /** The host Envoy's last attempt used (%UPSTREAM_HOST%). */
  upstream: string;
}

let probes = 0;

/** One chat request; where it went, from the reply and the access log line it left. */
async function send(gw: EnvoyGateway, system: string): Promise<Routed> {
  const id = `p${++probes}`;
  const body = JSON.stringify({ model: MODEL, messages: [{ role: "system", content: system }, { role: "user", content: "go" }], max_tokens: 2 });
  const r = await http(`${gw.url}/v1/chat/completions?probe=${id}`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const marker = `?probe=${id} `;
  let line = "";
  await waitFor(`the access log line of ${id}`, 10_000, () => {
    line = gw.output.find((l) => l.includes(marker)) ?? "";
    return line !== "";
  });
  const m = /chosen=(\S*) upstream=(\S*)/.exec(line);
  assert.ok(m, `unexpected access log line: ${line}`);
  return { status: r.status, servedBy: r.servedBy, chosen: m[1] === "-" ? [] : m[1].split(","), upstream: m[2] };
}

/** Distinct long system prompts, one per placement. */
const prompt = (seed: number, i: number) => `Fallback ${seed}-${i}. ${text(seed * 100 + i, 1500)}`;

/**
 * Places `count` new prefixes, then returns the endpoint that holds the most of
 * them and those prompts. Each first request must list three distinct endpoints.
 */
async function place(gw: EnvoyGateway, seed: number, count: number): Promise<{ victim: string; prompts: string[]; lists: Map<string, string[]> }> {
  const homes = new Map<string, string[]>();
  const lists = new Map<string, string[]>();
  for (let i = 0; i < count; i++) {
    const p = prompt(seed, i);
    const r = await send(gw, p);
    assert.equal(r.status, 200);
    assert.equal(r.chosen.length, 3, `pick and two fallbacks: ${r.chosen.join(",")}`);
    assert.equal(new Set(r.chosen).size, 3, `an endpoint listed twice: ${r.chosen.join(",")}`);
    assert.equal(r.servedBy, r.chosen[0], "with every server up, the pick serves");
    lists.set(p, r.chosen);
    homes.set(r.chosen[0], [...(homes.get(r.chosen[0]) ?? []), p]);
  }
  const [victim, prompts] = [...homes].sort((a, b) => b[1].length - a[1].length)[0];
  return { victim, prompts, lists };
}

async function clusterStat(gw: EnvoyGateway, name: string): Promise<number> {
  return (await stats(gw.adminUrl)).get(`${CLUSTER}.${name}`) ?? 0;
}

async function endpointStat(gw: EnvoyGateway, endpoint: string, name: string): Promise<number> {
  return (await stats(gw.adminUrl)).get(`wasmcustom.prefix_router.endpoint.${endpoint}.${name}`) ?? -1;
}

async function withServers(fn: (servers: SimServer[]) => Promise<void>): Promise<void> {
  const servers = await startServers({ count: 4, portBase: 0, host: "127.0.0.1", speedup: 50 });
  try {
    await fn(servers);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** Two workers; access log lines flushed within 50 ms so each request's line can be read at once. */
const FAST_LOG = { concurrency: 2, fileFlushIntervalMs: 50 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stop = (servers: SimServer[], address: string) => servers.find((s) => s.address === address)!.stop();

envoyTest("a refused connection to the filter's pick is retried on its second choice, not round robin", { timeout: 180_000 }, async (t: TestContext) => {
  await withServers(async (servers) => {
    const endpoints = servers.map((s) => s.address);
    // Metrics off: nothing but the filter's own in-flight counts tells it about the servers,
    // so the dead one stays the pick for its prefixes.
    const gw = await startEnvoyGateway({ endpoints, metrics: false }, FAST_LOG);
    let victim = "";
    let prompts: string[] = [];
    try {
      const placed = await place(gw, 1, 48);
      ({ victim, prompts } = placed);
      // At least 10 prompts homed on the victim: a retry left to round robin (even
      // skipping the dead host) would land on the second choice with probability
      // 1/3 each, all of them by chance with probability (1/3)^10 < 2e-5.
      assert.ok(prompts.length >= 10, `only ${prompts.length} of 48 prefixes on ${victim}`);
      await stop(servers, victim);
      const retriesBefore = await clusterStat(gw, "upstream_rq_retry");
      const picksBefore = await endpointStat(gw, victim, "picks");
      // Twice over: the dead server keeps being chosen by prefix, each time saved by the retry.
      for (let round = 0; round < 2; round++) {
        for (const p of prompts) {
          const r = await send(gw, p);
          assert.equal(r.status, 200, `a request for a prefix ${victim} held failed`);
          assert.equal(r.chosen[0], victim, "the filter still picks the server holding the prefix");
          assert.deepEqual(r.chosen, placed.lists.get(p), "the same list as before the server went away");
          assert.equal(r.servedBy, r.chosen[1], `served by ${r.servedBy}, not the second choice ${r.chosen[1]} (list ${r.chosen.join(",")})`);
          assert.equal(r.upstream, r.chosen[1]);
        }
      }
      const n = 2 * prompts.length;
      await waitFor("the filter's picks counter", 5_000, async () => (await endpointStat(gw, victim, "picks")) >= picksBefore + n);
      assert.equal(await clusterStat(gw, "upstream_rq_retry") - retriesBefore, n, "one retry per request for the dead server's prefixes");
      assert.ok((await clusterStat(gw, "upstream_cx_connect_fail")) >= n);
      t.diagnostic(`${victim} stopped; ${n} requests for its ${prompts.length} prefixes: all 200, each retried once on its second choice; the filter counted ${await endpointStat(gw, victim, "picks") - picksBefore} more picks for it`);
    } finally {
      await gw.stop();
    }
    // Negative control: without fallback hosts the generator writes no retry.
    // A fresh Envoy places the same prompts by rendezvous hashing, which agrees
    // between Envoys, so on the same dead server: each request fails.
    const bare = await startEnvoyGateway({ endpoints, metrics: false, fallbackHosts: 0 }, FAST_LOG);
    try {
      for (const p of prompts) {
        const r = await send(bare, p);
        assert.deepEqual(r.chosen, [victim], "fallbackHosts 0: the one address, the same placement");
        assert.equal(r.status, 503, "no retry: the refused connection is the client's error");
      }
      assert.equal(await clusterStat(bare, "upstream_rq_retry"), 0);
    } finally {
      await bare.stop();
    }
  });
});

envoyTest("a dead server chosen by prefix: metrics on, it turns unhealthy and leaves the list; until then the retry saves each request", { timeout: 180_000 }, async (t: TestContext) => {
  await withServers(async (servers) => {
    const endpoints = servers.map((s) => s.address);
    const gw = await startEnvoyGateway({ endpoints, metrics: { intervalMs: 200, timeoutMs: 500 } }, FAST_LOG);
    try {
      await waitFor("every endpoint scraped healthy", 10_000, async () => {
        for (const e of endpoints) if ((await endpointStat(gw, e, "healthy")) !== 1) return false;
        return true;
      });
      const { victim, prompts } = await place(gw, 2, 32);
      assert.ok(prompts.length >= 6, `only ${prompts.length} of 32 prefixes on ${victim}`);
      await stop(servers, victim);
      // Right after: the victim is still healthy to the filter, still the pick for
      // its prefixes, and the retry to the second choice saves the request.
      const early = await send(gw, prompts[0]);
      assert.equal(early.status, 200);
      // Three failed scrapes (unhealthyAfter) at 200 ms: about a second.
      await waitFor(`${victim} marked unhealthy`, 15_000, async () => (await endpointStat(gw, victim, "healthy")) === 0);
      // The gauge is the scraping VM's; the other worker's VM reads the published
      // load snapshot on its next tick (tickMs, 25 ms by default): give it five.
      await sleep(500);
      const picksBefore = await endpointStat(gw, victim, "picks");
      const retriesBefore = await clusterStat(gw, "upstream_rq_retry");
      for (const p of prompts) {
        const r = await send(gw, p);
        assert.equal(r.status, 200);
        assert.ok(!r.chosen.includes(victim), `an unhealthy endpoint is neither picked nor listed: ${r.chosen.join(",")}`);
        assert.equal(r.servedBy, r.chosen[0], "no retry needed: the first entry serves");
      }
      assert.equal(await clusterStat(gw, "upstream_rq_retry"), retriesBefore, "no retries once the filter knows");
      assert.equal(await endpointStat(gw, victim, "picks"), picksBefore, "the dead server is picked no more");
      t.diagnostic(`metrics on: first request after the stop ${early.chosen[0] === victim ? `still went to ${victim} and was retried on ${early.servedBy}` : `already avoided ${victim}`}; once unhealthy, ${prompts.length} requests for its prefixes went elsewhere with no retry`);
    } finally {
      await gw.stop();
    }
  });
});
