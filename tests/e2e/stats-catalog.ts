// The filter's stats as README documents them ("Stats reference" and "In
// /stats/prometheus"), written once as data: every name, its type, and the
// label it carries in /stats/prometheus. The real-Envoy test
// (envoy-metrics.test.ts) checks Envoy's three stats pages against this list
// in both directions (nothing missing, nothing undocumented), and a plain test
// there checks README's table against it, so README, this list and the filter
// (assembly/router/stats.ts, whose names Envoy prints) cannot drift apart.
// Owns: the list and the names it expands to on each admin page. Must not:
// start anything.
// (It lives here rather than in scripts/gateway/stats-tags.ts because that
// file is shared with the config generator and the dev gateway, which others
// are changing; nothing outside the tests needs the list.)
import { ENDPOINT_TAG, PASSTHROUGH_REASON_TAG } from "../../scripts/gateway/stats-tags.ts";

export type StatType = "counter" | "gauge";

export interface StatSpec {
  /** The name after `prefix_router.` (global) or `prefix_router.endpoint.<address>.` (per endpoint). */
  name: string;
  type: StatType;
}

/** Pass-through reasons, in assembly/router/stats.ts PASS_NAMES order. */
export const PASSTHROUGH_REASONS: readonly string[] = Object.freeze([
  "not_inference", "no_body", "body_too_large", "not_json", "no_model",
  "no_prompt", "token_prompt", "aborted", "headers_not_held", "request_trailers",
  "body_timeout", "no_endpoint",
]);

/** `prefix_router.<name>`: one series each, no label. */
export const GLOBAL_STATS: readonly StatSpec[] = Object.freeze([
  { name: "requests", type: "counter" },
  { name: "routed", type: "counter" },
  { name: "prefix_blocks_matched", type: "counter" },
  { name: "prefix_blocks_total", type: "counter" },
  { name: "rendezvous_placements", type: "counter" },
  { name: "guard_diversions", type: "counter" },
  { name: "index.journal_gaps", type: "counter" },
  { name: "index.journal_cas_conflicts", type: "counter" },
  { name: "index.placements_written_at_once", type: "counter" },
  { name: "index.placements_written_by_tick", type: "counter" },
  { name: "index.journal_append_failures", type: "counter" },
  { name: "index.stale_vms_dropped", type: "counter" },
  { name: "index.memory_bytes", type: "gauge" },
  { name: "server_prefix_cache_queries", type: "counter" },
  { name: "server_prefix_cache_hits", type: "counter" },
  { name: "server_restarts", type: "counter" },
  { name: "endpoints.members", type: "gauge" },
  { name: "endpoints.pickable", type: "gauge" },
  { name: "visible_share_permille", type: "gauge" },
  { name: "discovery.polls", type: "counter" },
  { name: "discovery.poll_failures", type: "counter" },
  { name: "peers.asks_answered", type: "counter" },
  { name: "peers.ask_failures", type: "counter" },
  { name: "peers.decisions_imported", type: "counter" },
  { name: "peers.answers_sent", type: "counter" },
  { name: "peers.asks_refused", type: "counter" },
  { name: "peers.member_poll_failures", type: "counter" },
  { name: "discovery.endpoints_added", type: "counter" },
  { name: "discovery.endpoints_removed", type: "counter" },
  { name: "discovery.endpoints_over_limit", type: "counter" },
  { name: "affinity.response_hits", type: "counter" },
  { name: "affinity.response_misses", type: "counter" },
  { name: "affinity.response_diverted", type: "counter" },
  { name: "affinity.responses_learned", type: "counter" },
  { name: "affinity.session_hits", type: "counter" },
  { name: "affinity.session_misses", type: "counter" },
  { name: "affinity.session_diverted", type: "counter" },
] as StatSpec[]);

/** `prefix_router.passthrough.<reason>`: one counter, labelled `reason`. */
export const PASSTHROUGH_STAT: StatSpec = Object.freeze({ name: "passthrough", type: "counter" });

/** `prefix_router.endpoint.<address>.<name>`: labelled `endpoint`. */
export const ENDPOINT_STATS: readonly StatSpec[] = Object.freeze([
  { name: "picks", type: "counter" },
  { name: "in_flight", type: "gauge" },
  { name: "index_blocks", type: "gauge" },
  { name: "index_capacity_blocks", type: "gauge" },
  { name: "prefix_blocks_matched", type: "counter" },
  { name: "prefix_blocks_total", type: "counter" },
  { name: "server_prefix_cache_queries", type: "counter" },
  { name: "server_prefix_cache_hits", type: "counter" },
  { name: "server_restarts", type: "counter" },
  { name: "scrape_successes", type: "counter" },
  { name: "scrape_failures", type: "counter" },
  { name: "healthy", type: "gauge" },
  { name: "queue", type: "gauge" },
  { name: "running", type: "gauge" },
  { name: "kv_cache_usage_permille", type: "gauge" },
] as StatSpec[]);

/**
 * Every stat the filter defines for these endpoints, by its full Envoy name
 * (what /stats and /stats?format=json print: Envoy keeps the `wasmcustom.`
 * namespace and the tagged parts in the name there), with its type.
 */
export function envoyStatNames(endpoints: readonly string[]): Map<string, StatType> {
  const out = new Map<string, StatType>();
  const p = "wasmcustom.prefix_router.";
  for (const s of GLOBAL_STATS) out.set(p + s.name, s.type);
  for (const r of PASSTHROUGH_REASONS) out.set(`${p}passthrough.${r}`, PASSTHROUGH_STAT.type);
  for (const e of endpoints) for (const s of ENDPOINT_STATS) out.set(`${p}endpoint.${e}.${s.name}`, s.type);
  return out;
}

/** Prometheus family name: `.` (and any other non-[a-zA-Z0-9_]) becomes `_` (source/server/admin/prometheus_stats.cc). */
export function promFamily(name: string): string {
  return `prefix_router_${name.replace(/[^a-zA-Z0-9_]/g, "_")}`;
}

export interface PromSeries {
  family: string;
  type: StatType;
  /** Labels as Envoy prints them; {} for an untagged stat. */
  labels: Record<string, string>;
}

/** Every series /stats/prometheus should carry for these endpoints, keyed `family{labels}`. */
export function prometheusSeries(endpoints: readonly string[]): Map<string, PromSeries> {
  const out = new Map<string, PromSeries>();
  const add = (s: PromSeries) => out.set(seriesKey(s.family, s.labels), s);
  for (const s of GLOBAL_STATS) add({ family: promFamily(s.name), type: s.type, labels: {} });
  for (const r of PASSTHROUGH_REASONS) {
    add({ family: promFamily(PASSTHROUGH_STAT.name), type: PASSTHROUGH_STAT.type, labels: { [PASSTHROUGH_REASON_TAG]: r } });
  }
  for (const e of endpoints) {
    for (const s of ENDPOINT_STATS) add({ family: promFamily(`endpoint_${s.name}`), type: s.type, labels: { [ENDPOINT_TAG]: e } });
  }
  return out;
}

export function seriesKey(family: string, labels: Record<string, string>): string {
  const l = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(",");
  return `${family}{${l}}`;
}
