// The operator's view, checked for real: promtool accepts the rules, and
// Debian's Prometheus scrapes a real Envoy 1.40 running the filter (simulated
// model servers behind it, endpoints from EDS so the discovery stats exist)
// every second, with envoy/observability/prefix-router-rules.yaml loaded. Then:
//   - while only requests the filter passes through arrive (GETs, bodies that
//     are not JSON) and Envoy's request counter rises, PrefixRouterNotRouting
//     fires; once chat requests are routed it stops;
//   - under routed traffic, every query of every dashboard panel returns data
//     with at least one number in it (template variables substituted), and
//     every rule's expression evaluates; Prometheus reports every rule healthy.
// The rules are tested as committed: the copy Prometheus loads differs only in
// `for:`, shortened so an alert fires within a test. Everything listens on
// 127.0.0.1; Prometheus, Envoy and the servers stop in `finally`.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import YAML from "yaml";
import { startServers, type SimServer } from "../../scripts/sim/server.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { ROOT, startEnvoyGateway, type EnvoyGateway } from "./real-envoy.ts";
import { prometheusTest, startPrometheus, type RunningPrometheus } from "./real-prometheus.ts";
import { http, text } from "./scenarios.ts";
import { waitFor } from "./live-traffic.ts";

const MODEL = DEFAULT_SIM_PARAMS.model;
const RULES = join(ROOT, "envoy/observability/prefix-router-rules.yaml");
const DASHBOARD = join(ROOT, "envoy/observability/prefix-router-dashboard.json");
/** What the dashboard's $__rate_interval becomes: Grafana's floor is 4 scrape intervals, and the test scrapes every second. */
const RATE_INTERVAL = "10s";

interface Rule { alert: string; expr: string; for?: string }
interface Panel { type: string; title: string; targets?: Array<{ expr: string; legendFormat?: string }>; panels?: Panel[] }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rulesOf(text: string): Rule[] {
  const doc = YAML.parse(text) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

/** The committed rules with every `for:` cut to 1 s, and nothing else changed (checked). */
function withShortFor(committed: string): string {
  const copy = committed.replace(/^(\s+for:\s*)\S+$/gm, "$11s");
  const a = rulesOf(committed);
  const b = rulesOf(copy);
  assert.deepEqual(b.map(({ alert, expr }) => ({ alert, expr })), a.map(({ alert, expr }) => ({ alert, expr })));
  assert.ok(b.every((r) => r.for === undefined || r.for === "1s"));
  return copy;
}

/** Every panel query with the template variables as Grafana would fill them for "All" Envoys. */
function panelQueries(dashboard: { panels: Panel[] }): Array<{ panel: string; legend: string; expr: string }> {
  const out: Array<{ panel: string; legend: string; expr: string }> = [];
  const visit = (p: Panel) => {
    for (const t of p.targets ?? []) {
      const expr = t.expr.replaceAll("$__rate_interval", RATE_INTERVAL).replaceAll("$instance", ".*");
      assert.ok(!expr.includes("$"), `${p.title}: an unsubstituted variable in ${expr}`);
      out.push({ panel: p.title, legend: t.legendFormat ?? "", expr });
    }
    p.panels?.forEach(visit);
  };
  dashboard.panels.forEach(visit);
  return out;
}

interface Alert { labels: Record<string, string>; state: "pending" | "firing" }

async function alertState(prom: RunningPrometheus, name: string): Promise<string> {
  const { alerts } = await prom.api<{ alerts: Alert[] }>("alerts");
  return alerts.find((a) => a.labels.alertname === name)?.state ?? "inactive";
}

/** Requests the filter leaves to Envoy: GETs (not_inference) and chat posts whose body is not JSON (not_json). */
function passThroughLoop(gw: EnvoyGateway): { stop: () => Promise<number> } {
  let stopped = false;
  let sent = 0;
  const loop = (async () => {
    while (!stopped) {
      await http(`${gw.url}/v1/models`).catch(() => null);
      await http(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "text/plain" }, body: "not json" }).catch(() => null);
      sent += 2;
      await sleep(20);
    }
  })();
  return { stop: async () => { stopped = true; await loop; return sent; } };
}

/** Chat requests over a few shared system prompts, so prefixes repeat: predicted and reported hits both move. */
function routedLoop(gw: EnvoyGateway): { stop: () => Promise<number[]> } {
  let stopped = false;
  const statuses: number[] = [];
  const systems = Array.from({ length: 6 }, (_, i) => `Operator view ${i}. ${text(7000 + i, 1200)}`);
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const body = JSON.stringify({ model: MODEL, messages: [{ role: "system", content: systems[i % systems.length] }, { role: "user", content: `question ${i}` }], max_tokens: 2 });
      const r = await http(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body }).catch(() => null);
      statuses.push(r?.status ?? 0);
      await sleep(15);
    }
  })();
  return { stop: async () => { stopped = true; await loop; return statuses; } };
}

prometheusTest("a real Prometheus scraping real Envoy: the dashboard's queries return data, the rules evaluate, and PrefixRouterNotRouting fires while everything passes through", { timeout: 110_000 }, async (t, binary) => {
  // promtool ships beside prometheus (Debian's package puts both in /usr/bin); .ci/run runs the same check.
  const checked = await promisify(execFile)(join(dirname(binary), "promtool"), ["check", "rules", RULES]);
  assert.match(checked.stdout, /SUCCESS: \d+ rules found/);
  const committedRules = await readFile(RULES, "utf8");
  const rules = rulesOf(committedRules);
  const queries = panelQueries(JSON.parse(await readFile(DASHBOARD, "utf8")) as { panels: Panel[] });
  const started = Date.now();

  let servers: SimServer[] = [];
  let gw: EnvoyGateway | null = null;
  let prom: RunningPrometheus | null = null;
  let passing: { stop: () => Promise<number> } | null = null;
  let routing: { stop: () => Promise<number[]> } | null = null;
  try {
    servers = await startServers({ count: 3, portBase: 0, host: "127.0.0.1", speedup: 50 });
    gw = await startEnvoyGateway({ eds: servers.map((s) => ({ address: s.address })) }, { concurrency: 2 });
    const admin = new URL(gw.adminUrl).host;
    prom = await startPrometheus(binary, { envoyAdmins: [admin], ruleFiles: [withShortFor(committedRules)] });
    const p = prom;

    // Phase 1: everything passes through while Envoy counts requests.
    passing = passThroughLoop(gw);
    await waitFor("PrefixRouterNotRouting firing", 30_000, async () => (await alertState(p, "PrefixRouterNotRouting")) === "firing");
    const firedAfter = Date.now() - started;
    const passed = await passing.stop();
    passing = null;
    const routedSoFar = await p.query("prefix_router_routed");
    assert.equal(routedSoFar.length, 1, "Prometheus has the routed counter");
    assert.equal(Number(routedSoFar[0].value[1]), 0, "nothing was routed in the pass-through phase");

    // Phase 2: routed traffic (and a little pass-through, so the reasons panel has both).
    routing = routedLoop(gw);
    const extra = passThroughLoop(gw);
    await waitFor("PrefixRouterNotRouting resolved once requests are routed", 30_000, async () => (await alertState(p, "PrefixRouterNotRouting")) === "inactive");
    // A full rate window of routed traffic before the panels are read.
    await sleep(11_000);

    const empty: string[] = [];
    const nanOnly: string[] = [];
    for (const q of queries) {
      const result = await p.query(q.expr);
      if (result.length === 0) empty.push(`${q.panel} [${q.legend}]: ${q.expr}`);
      else if (!result.some((r) => Number.isFinite(Number(r.value[1])))) nanOnly.push(`${q.panel} [${q.legend}]: ${q.expr}`);
    }
    await extra.stop();
    const statuses = await routing.stop();
    routing = null;
    assert.deepEqual(empty, [], "panel queries without data");
    assert.deepEqual(nanOnly, [], "panel queries with no number (only NaN)");
    assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `routed requests: ${statuses.filter((s) => s !== 200).length} of ${statuses.length} not 200`);

    // Every rule's expression, as committed, is valid PromQL over these series.
    for (const r of rules) await p.query(r.expr);
    // And Prometheus evaluates each loaded rule without error.
    const { groups } = await p.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>("rules");
    const loaded = groups.flatMap((g) => g.rules);
    assert.deepEqual(loaded.map((r) => r.name).sort(), rules.map((r) => r.alert).sort());
    for (const r of loaded) assert.equal(r.health, "ok", `${r.name}: ${r.health} ${r.lastError ?? ""}`);

    const skipping = await p.query(rules.find((r) => r.alert === "PrefixRouterRequestsSkipFilter")!.expr.replace(/\)\s*>\s*0\.01\s*$/, ")"));
    const { alerts } = await p.api<{ alerts: Alert[] }>("alerts");
    t.diagnostic(`${queries.length} panel queries and ${rules.length} rules checked; NotRouting fired ${(firedAfter / 1000).toFixed(1)} s after start (${passed} pass-through requests); `
      + `routed ${statuses.length}; share skipping the filter at the end: ${skipping.map((r) => r.value[1]).join(",") || "none"}; `
      + `alerts now: ${alerts.map((a) => `${a.labels.alertname}=${a.state}`).join(", ") || "none"}; whole test ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await passing?.stop();
    await routing?.stop();
    await prom?.stop();
    await gw?.stop();
    await Promise.all(servers.map((s) => s.stop()));
  }
});
