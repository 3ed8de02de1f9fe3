// The end-to-end scenarios, written once against plain HTTP so they run the same
// against real Envoy (envoy.test.ts) and the dev gateway (dev-gateway.test.ts):
// prefix stickiness, spread over endpoints, the client's destination header
// stripped, pass-through of non-inference requests, the stat names in
// /stats/prometheus, and a lone gateway's visible share under load. The
// simulated servers answer with `x-served-by: ip:port`, which is how a
// scenario sees where a request went.
import assert from "node:assert/strict";
import { request } from "node:http";
import type { TestContext } from "node:test";
import { prometheusEndpointSeries, prometheusPassthroughSeries } from "../../scripts/gateway/stats-tags.ts";
import { DEFAULT_INDEX_STRIDE } from "../../scripts/gateway/envoy-config.ts";

/** The filter's default indexStride: predicted matches come in whole entries of this many 64-character blocks. */
export { DEFAULT_INDEX_STRIDE } from "../../scripts/gateway/envoy-config.ts";

/**
 * Of a prompt's (or a capacity's) `bytes` in 64-character blocks, those the
 * index counts: whole entries of DEFAULT_INDEX_STRIDE blocks, the rest dropped.
 */
export function wholeEntryBlocks(bytes: number): number {
  return Math.floor(Math.floor(bytes / 64) / DEFAULT_INDEX_STRIDE) * DEFAULT_INDEX_STRIDE;
}

export interface Target {
  /** http://ip:port of the gateway's listener. */
  url: string;
  /** http://ip:port of its admin API. */
  adminUrl: string;
  /** The endpoint addresses, as configured. */
  endpoints: string[];
  model: string;
  destinationHeader: string;
  /** Distinguishes the prompts of one run from another's against the same servers. */
  seed: number;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  servedBy: string;
}

/** One HTTP exchange on its own connection (no pooling left behind). */
export function http(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? "GET", headers: init.headers, agent: false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const servedBy = res.headers["x-served-by"];
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), servedBy: typeof servedBy === "string" ? servedBy : "" });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout: ${init.method ?? "GET"} ${url}`)));
    req.on("error", reject);
    req.end(init.body);
  });
}

/** Deterministic filler text of `n` characters. */
export function text(seed: number, n: number): string {
  const words = ["prefix", "cache", "token", "router", "envoy", "block", "model", "server", "query", "answer", "context", "system"];
  let x = (seed * 2654435761) >>> 0;
  let out = "";
  while (out.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out += `${words[x % words.length]} `;
  }
  return out.slice(0, n);
}

export function chat(t: Target, system: string, user: string, headers: Record<string, string> = {}): Promise<Reply> {
  const body = JSON.stringify({ model: t.model, messages: [{ role: "system", content: system }, { role: "user", content: user }], max_tokens: 2 });
  return http(`${t.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

async function routed(t: Target, system: string, user: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await chat(t, system, user, headers);
  assert.equal(r.status, 200, `chat completion failed: ${r.status} ${r.body}`);
  assert.ok(t.endpoints.includes(r.servedBy), `served by ${r.servedBy}, not one of ${t.endpoints.join(", ")}`);
  return r.servedBy;
}

/** Requests sharing a long system prompt stay on the endpoint that served the first. */
export async function prefixStickiness(t: Target): Promise<void> {
  const system = `Sticky ${t.seed}. ${text(t.seed, 3000)}`;
  const home = await routed(t, system, "question 0");
  for (let i = 1; i <= 6; i++) {
    assert.equal(await routed(t, system, `question ${i}: ${text(t.seed + i, 80)}`), home, `request ${i} left the endpoint holding its prefix`);
  }
}

/** Distinct prompts are spread over the endpoints (rendezvous placement of cold prefixes, bounded load). */
export async function spread(t: Target): Promise<void> {
  const counts = new Map<string, number>();
  const n = 40;
  for (let batch = 0; batch < n; batch += 4) {
    const served = await Promise.all(
      [0, 1, 2, 3].map((k) => routed(t, `Document ${t.seed}-${batch + k}. ${text(t.seed * 1000 + batch + k, 1200)}`, "summarize")),
    );
    for (const s of served) counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const most = Math.max(...counts.values());
  assert.ok(counts.size >= Math.min(3, t.endpoints.length), `only ${counts.size} endpoints used: ${JSON.stringify([...counts])}`);
  assert.ok(most <= n * 0.6, `one endpoint took ${most} of ${n}: ${JSON.stringify([...counts])}`);
}

/** A client cannot pick its upstream: the filter removes the destination header it sends. */
export async function clientHeaderStripped(t: Target): Promise<void> {
  const system = `Stripped ${t.seed}. ${text(t.seed + 7, 2000)}`;
  const home = await routed(t, system, "first");
  const other = t.endpoints.find((e) => e !== home)!;
  // Routed request: the filter's choice wins over the client's.
  assert.equal(await routed(t, system, "second", { [t.destinationHeader]: other }), home);
  // Pass-through requests: without the header the fallback policy spreads them;
  // a surviving client header would send every one of them to `other`.
  const served: string[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await http(`${t.url}/v1/models`, { headers: { [t.destinationHeader]: other } });
    assert.equal(r.status, 200);
    served.push(r.servedBy);
  }
  assert.ok(new Set(served).size >= 2, `every pass-through request went to ${served[0]}: the client's ${t.destinationHeader} was obeyed`);
}

/** Requests the filter does not route (GET /v1/models) still reach a model server. */
export async function passThrough(t: Target): Promise<void> {
  const r = await http(`${t.url}/v1/models`);
  assert.equal(r.status, 200);
  assert.ok(t.endpoints.includes(r.servedBy));
  const models = JSON.parse(r.body) as { data: Array<{ id: string }> };
  assert.equal(models.data[0].id, t.model);
  // A request with no body on an inference path is passed through too.
  const empty = await http(`${t.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json", "content-length": "0" } });
  assert.ok(t.endpoints.includes(empty.servedBy), "a bodiless POST did not reach a model server");
}

function value(page: string, series: string): number | null {
  const line = page.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.substring(series.length + 1));
}

/**
 * The filter's stats reach /stats/prometheus with labels. The filter flushes
 * counters on its tick (100 ms), so the page is polled briefly.
 */
export async function prometheusNames(t: Target, minRouted: number): Promise<void> {
  let page = "";
  let missing: string[] = [];
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 150))) {
    const r = await http(`${t.adminUrl}/stats/prometheus`);
    assert.equal(r.status, 200);
    page = r.body;
    missing = [];
    for (const e of t.endpoints) {
      for (const stat of ["picks", "in_flight", "index_blocks", "scrape_successes"]) {
        if (value(page, prometheusEndpointSeries(stat, e)) === null) missing.push(prometheusEndpointSeries(stat, e));
      }
    }
    const notInference = value(page, prometheusPassthroughSeries("not_inference"));
    if (notInference === null || notInference < 1) missing.push(`${prometheusPassthroughSeries("not_inference")} >= 1`);
    const routedCount = value(page, "prefix_router_routed{}") ?? value(page, "prefix_router_routed");
    if (routedCount === null || routedCount < minRouted) missing.push(`prefix_router_routed >= ${minRouted}`);
    const picks = t.endpoints.reduce((sum, e) => sum + (value(page, prometheusEndpointSeries("picks", e)) ?? 0), 0);
    if (picks < minRouted) missing.push(`sum of prefix_router_endpoint_picks >= ${minRouted} (is ${picks})`);
    // Envoy held the headers while the filter read each body (allow_on_headers_stop_iteration).
    if (value(page, prometheusPassthroughSeries("headers_not_held")) !== 0) missing.push(`${prometheusPassthroughSeries("headers_not_held")} 0`);
    if (missing.length === 0) break;
  }
  assert.deepEqual(missing, [], `/stats/prometheus lacks:\n${missing.join("\n")}`);
  assert.match(page, /^# TYPE prefix_router_endpoint_picks counter$/m);
  assert.match(page, /^# TYPE prefix_router_endpoint_in_flight gauge$/m);
  // The address is a label, never part of a series name.
  assert.doesNotMatch(page, /^prefix_router_endpoint_\d/m, "a per-endpoint stat kept its address in the name");
  assert.doesNotMatch(page, /^prefix_router_passthrough_[a-z]/m, "a pass-through stat kept its reason in the name");
}

/**
 * `clients` clients at once, each sending chat completions (one of four
 * system prompts, 40 tokens each) one after another to `urls[k % urls.length]`
 * for `ms`, while `sample` runs every 200 ms; returns how many were served.
 * Every reply must be a 200.
 */
export async function chatLoad(
  urls: readonly string[], model: string, seed: number, clients: number, ms: number, sample: () => Promise<void>,
): Promise<number> {
  let stop = false;
  let served = 0;
  const client = async (k: number) => {
    const system = `Load ${seed}-${k % 4}. ${text(seed * 7 + (k % 4), 1500)}`;
    for (let n = 0; !stop; n++) {
      const body = JSON.stringify({ model, messages: [{ role: "system", content: system }, { role: "user", content: `question ${k}-${n}` }], max_tokens: 40 });
      const r = await http(`${urls[k % urls.length]}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      assert.equal(r.status, 200, `chat completion failed: ${r.status} ${r.body}`);
      served++;
    }
  };
  const runs = Array.from({ length: clients }, (_, k) => client(k));
  try {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) await sample();
  } finally {
    stop = true;
    await Promise.all(runs);
  }
  return served;
}

/** What a gateway's /stats/prometheus says of its visible share (‰) and of the load its servers report. */
export async function visibleShare(t: Pick<Target, "adminUrl" | "endpoints">): Promise<{ share: number | null; reported: number }> {
  const page = (await http(`${t.adminUrl}/stats/prometheus`)).body;
  const reported = t.endpoints.reduce((sum, e) => sum + (value(page, prometheusEndpointSeries("running", e)) ?? 0) + (value(page, prometheusEndpointSeries("queue", e)) ?? 0), 0);
  return { share: value(page, "prefix_router_visible_share_permille{}") ?? value(page, "prefix_router_visible_share_permille"), reported };
}

/**
 * A gateway alone in front of its servers does not take itself for one of
 * several replicas (README "Scoring", step 4): under load from many clients
 * at once, what its servers' pages report running or waiting is what it sent,
 * through all its workers, so its visible share stays near 1 and its bands
 * stay one gateway's. Counting one worker's requests alone would read about
 * 1 / workers (through real Envoy's two workers, a build that did read
 * 556-633‰). The servers must report enough load for the share to be judged
 * at all (MIN_SERVER_REQUESTS in load.ts), which is checked too.
 */
export async function loneGatewayShare(t: Target): Promise<void> {
  let mostReported = 0;
  let share: number | null = null;
  const served = await chatLoad([t.url], t.model, t.seed, 16, 4000, async () => {
    const v = await visibleShare(t);
    mostReported = Math.max(mostReported, v.reported);
    share = v.share;
  });
  assert.ok(mostReported >= 8, `the servers' pages never reported 8 requests running or waiting (at most ${mostReported}; ${served} served): the share was not put to the test`);
  assert.ok(share !== null && share >= 750, `visible share ${share}‰ with this gateway alone: it takes itself for one of ${share ? Math.round(1000 / share) : "?"} replicas`);
}

/** All scenarios, in order, as subtests. */
export async function runScenarios(t: TestContext, target: Target): Promise<void> {
  await t.test("prefix stickiness", () => prefixStickiness(target));
  await t.test("spread over endpoints", () => spread(target));
  await t.test("client destination header is stripped", () => clientHeaderStripped(target));
  await t.test("pass-through of non-inference requests", () => passThrough(target));
  // 7 sticky + 40 spread + 2 stripped routed requests went before.
  await t.test("stat names in /stats/prometheus", () => prometheusNames(target, 49));
  await t.test("a gateway alone under load keeps a visible share near 1", () => loneGatewayShare(target));
}
