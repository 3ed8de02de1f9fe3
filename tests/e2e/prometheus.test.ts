// The operator's view, checked for real: promtool accepts the rules, and
// Debian's Prometheus scrapes a real Envoy 1.40 running the filter (simulated
// model servers behind it, endpoints from EDS so the discovery stats exist)
// every second, with envoy/observability/prefix-router-rules.yaml loaded. A
// second Envoy carries Istio's stats configuration instead (Envoy's default
// tags off, Istio's tags, the stats matcher keeping only Istio's required
// prefixes and the ones envoy/k8s/istio/gateway-stats.yaml adds, and that
// file's stats_tags), so the same checks show the dashboard and the rules work
// unchanged behind an Istio gateway. Then, for each Envoy:
//   - while only requests the filter passes through arrive (GETs, bodies that
//     are not JSON) and Envoy's request counter rises, PrefixRouterNotRouting
//     fires; once chat requests are routed it stops;
//   - under routed traffic, every query of every dashboard panel returns data
//     with at least one number in it (template variables substituted, $instance
//     with that Envoy), and every rule's expression evaluates; Prometheus
//     reports every rule healthy.
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
const ISTIO_STATS = join(ROOT, "envoy/k8s/istio/gateway-stats.yaml");
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

/** Every panel query with the template variables as Grafana fills them when one Envoy is chosen. */
function panelQueries(dashboard: { panels: Panel[] }, instance: string): Array<{ panel: string; legend: string; expr: string }> {
  const out: Array<{ panel: string; legend: string; expr: string }> = [];
  const visit = (p: Panel) => {
    for (const t of p.targets ?? []) {
      const expr = t.expr.replaceAll("$__rate_interval", RATE_INTERVAL).replaceAll("$instance", instance.replaceAll(".", String.raw`\\.`));
      assert.ok(!expr.includes("$"), `${p.title}: an unsubstituted variable in ${expr}`);
      out.push({ panel: p.title, legend: t.legendFormat ?? "", expr });
    }
    p.panels?.forEach(visit);
  };
  dashboard.panels.forEach(visit);
  return out;
}

/**
 * An Istio gateway's stats configuration on a generated bootstrap: Istio's
 * bootstrap turns Envoy's default tags off and brings its own (these four are
 * the ones that touch the stats read here; istio/istio
 * tools/packaging/common/envoy_bootstrap.json), keeps only the stats its
 * matcher includes (pkg/bootstrap/config.go requiredEnvoyStatsMatcherInclusionPrefixes,
 * plus the pod annotation's inclusionPrefixes), and appends the stats_tags of
 * the custom bootstrap in gateway-stats.yaml.
 */
async function istioStats(yaml: string): Promise<string> {
  const manifest = await readFile(ISTIO_STATS, "utf8");
  const configMap = YAML.parseAllDocuments(manifest).map((d) => d.toJS()).find((d) => d?.kind === "ConfigMap");
  const ours = (JSON.parse(configMap.data["custom_bootstrap.json"]) as { stats_config: { stats_tags: unknown[] } }).stats_config.stats_tags;
  const annotated = [...manifest.matchAll(/^#\s+- ((?:wasmcustom|http|extension_config_discovery)\.\S+)$/gm)].map((m) => m[1]);
  assert.ok(annotated.length >= 3, `inclusionPrefixes not found in ${ISTIO_STATS}`);
  const doc = YAML.parse(yaml) as Record<string, unknown>;
  doc.stats_config = {
    use_all_default_tags: false,
    stats_tags: [
      { tag_name: "cluster_name", regex: String.raw`^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)` },
      { tag_name: "response_code", regex: String.raw`_rq(_(\d{3}))$` },
      { tag_name: "response_code_class", regex: String.raw`_rq(_(\dxx))$` },
      { tag_name: "http_conn_manager_prefix", regex: String.raw`^http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)` },
      ...ours,
    ],
    stats_matcher: {
      inclusion_list: {
        patterns: ["cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm", ...annotated].map((prefix) => ({ prefix })),
      },
    },
  };
  return YAML.stringify(doc);
}

interface Alert { labels: Record<string, string>; state: "pending" | "firing" }

async function alertState(prom: RunningPrometheus, name: string, instance: string): Promise<string> {
  const { alerts } = await prom.api<{ alerts: Alert[] }>("alerts");
  return alerts.find((a) => a.labels.alertname === name && a.labels.instance === instance)?.state ?? "inactive";
}

/** Requests the filter leaves to Envoy: GETs (not_inference) and chat posts whose body is not JSON (not_json). */
function passThroughLoop(gateways: EnvoyGateway[]): { stop: () => Promise<number> } {
  let stopped = false;
  let sent = 0;
  const loop = (async () => {
    while (!stopped) {
      for (const gw of gateways) {
        await http(`${gw.url}/v1/models`).catch(() => null);
        await http(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "text/plain" }, body: "not json" }).catch(() => null);
        sent += 2;
      }
      await sleep(20);
    }
  })();
  return { stop: async () => { stopped = true; await loop; return sent; } };
}

/** Chat requests over a few shared system prompts, so prefixes repeat: predicted and reported hits both move. */
function routedLoop(gateways: EnvoyGateway[]): { stop: () => Promise<number[]> } {
  let stopped = false;
  const statuses: number[] = [];
  const systems = Array.from({ length: 6 }, (_, i) => `Operator view ${i}. ${text(7000 + i, 1200)}`);
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const gw = gateways[i % gateways.length];
      const body = JSON.stringify({ model: MODEL, messages: [{ role: "system", content: systems[(i >> 1) % systems.length] }, { role: "user", content: `question ${i}` }], max_tokens: 2 });
      const r = await http(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body }).catch(() => null);
      statuses.push(r?.status ?? 0);
      await sleep(10);
    }
  })();
  return { stop: async () => { stopped = true; await loop; return statuses; } };
}

prometheusTest("a real Prometheus scraping real Envoy (generated and Istio stats): the dashboard's queries return data, the rules evaluate, and PrefixRouterNotRouting fires while everything passes through", { timeout: 110_000 }, async (t, binary) => {
  // promtool ships beside prometheus (Debian's package puts both in /usr/bin); .ci/run runs the same check.
  const checked = await promisify(execFile)(join(dirname(binary), "promtool"), ["check", "rules", RULES]);
  assert.match(checked.stdout, /SUCCESS: \d+ rules found/);
  const committedRules = await readFile(RULES, "utf8");
  const rules = rulesOf(committedRules);
  const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8")) as { panels: Panel[] };
  const started = Date.now();

  let servers: SimServer[] = [];
  const gateways: EnvoyGateway[] = [];
  let prom: RunningPrometheus | null = null;
  let passing: { stop: () => Promise<number> } | null = null;
  let routing: { stop: () => Promise<number[]> } | null = null;
  try {
    servers = await startServers({ count: 3, portBase: 0, host: "127.0.0.1", speedup: 50 });
    const eds = servers.map((s) => ({ address: s.address }));
    gateways.push(await startEnvoyGateway({ eds }, { concurrency: 2 }));
    gateways.push(await startEnvoyGateway({ eds }, { concurrency: 2, edit: istioStats }));
    const [generated, istio] = gateways.map((gw) => new URL(gw.adminUrl).host);
    prom = await startPrometheus(binary, { envoyAdmins: [generated, istio], ruleFiles: [withShortFor(committedRules)] });
    const p = prom;

    // Phase 1: everything passes through while Envoy counts requests.
    passing = passThroughLoop(gateways);
    for (const instance of [generated, istio]) {
      await waitFor(`PrefixRouterNotRouting firing for ${instance}`, 30_000, async () => (await alertState(p, "PrefixRouterNotRouting", instance)) === "firing");
    }
    const firedAfter = Date.now() - started;
    const passed = await passing.stop();
    passing = null;
    const routedSoFar = await p.query("prefix_router_routed");
    assert.equal(routedSoFar.length, 2, "Prometheus has each Envoy's routed counter");
    assert.ok(routedSoFar.every((r) => Number(r.value[1]) === 0), "nothing was routed in the pass-through phase");

    // Phase 2: routed traffic (and a little pass-through, so the reasons panel has both).
    routing = routedLoop(gateways);
    const extra = passThroughLoop(gateways);
    for (const instance of [generated, istio]) {
      await waitFor(`PrefixRouterNotRouting resolved for ${instance} once requests are routed`, 30_000, async () => (await alertState(p, "PrefixRouterNotRouting", instance)) === "inactive");
    }
    // A full rate window of routed traffic before the panels are read.
    await sleep(11_000);

    const empty: string[] = [];
    const nanOnly: string[] = [];
    let queries = 0;
    for (const [name, instance] of [["generated", generated], ["Istio stats", istio]]) {
      for (const q of panelQueries(dashboard, instance)) {
        queries++;
        const result = await p.query(q.expr);
        if (result.length === 0) empty.push(`${name}: ${q.panel} [${q.legend}]: ${q.expr}`);
        else if (!result.some((r) => Number.isFinite(Number(r.value[1])))) nanOnly.push(`${name}: ${q.panel} [${q.legend}]: ${q.expr}`);
      }
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
    // The 5xx share, threshold removed: both Envoys' counters are read (each under its own name).
    // (The Istio-stats Envoy really has Istio's names: otherwise the second branch would go untested.)
    assert.deepEqual((await p.query(`envoy_http_downstream_rq_xx{instance="${istio}"}`)).length, 0);
    assert.equal((await p.query(`envoy_http_downstream_rq{instance="${istio}", response_code_class="5xx", envoy_http_conn_manager_prefix="prefix_router"}`)).length, 1);
    const fiveXx = await p.query(rules.find((r) => r.alert === "PrefixRouterGateway5xx")!.expr.replace(/\s*>\s*0\.05\s*$/, ""));
    assert.deepEqual(fiveXx.map((r) => r.metric.instance).sort(), [generated, istio].sort(), "the 5xx expression has a value for each Envoy");

    const skipping = await p.query(rules.find((r) => r.alert === "PrefixRouterRequestsSkipFilter")!.expr.replace(/\)\s*>\s*0\.01\s*$/, ")"));
    const { alerts } = await p.api<{ alerts: Alert[] }>("alerts");
    t.diagnostic(`${queries} panel queries (2 Envoys) and ${rules.length} rules checked; NotRouting fired for both ${(firedAfter / 1000).toFixed(1)} s after start (${passed} pass-through requests); `
      + `routed ${statuses.length}; share skipping the filter at the end: ${skipping.map((r) => Number(r.value[1]).toFixed(4)).join(", ") || "none"}; `
      + `alerts now: ${alerts.map((a) => `${a.labels.alertname}=${a.state}`).join(", ") || "none"}; whole test ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await passing?.stop();
    await routing?.stop();
    await prom?.stop();
    await Promise.all(gateways.map((gw) => gw.stop()));
    await Promise.all(servers.map((s) => s.stop()));
  }
});
