// The stats_config.stats_tags that turn the filter's per-endpoint and
// pass-through stat names into Prometheus labels. One list feeds both the Envoy
// bootstrap (envoy-config.ts) and the host emulator's Prometheus rendering (the
// dev gateway, the tests), so what the tests see is what Envoy will print.
// Owns: the rules and the names they produce. Must not: know about YAML.
//
// Envoy's rule (source/common/stats/tag_extractor_impl.cc, TagExtractorStdRegexImpl
// and TagExtractorRe2Impl::extractTag): the regex is searched in the full stat
// name ("wasmcustom.<name>" for a Wasm metric, source/extensions/common/wasm/
// context.cc defineMetric); the FIRST capture group is cut out of the name, the
// SECOND (or the first, if there is one) is the tag value. /stats/prometheus
// then drops the registered "wasmcustom." prefix and maps every character
// outside [a-zA-Z0-9_] to "_" (source/server/admin/prometheus_stats.cc).
//
//   wasmcustom.prefix_router.endpoint.10.0.0.5:8000.picks
//     ─ group 1 "10.0.0.5:8000." removed, group 2 "10.0.0.5:8000" = endpoint
//   → prefix_router_endpoint_picks{endpoint="10.0.0.5:8000"}
//
//   wasmcustom.prefix_router.passthrough.not_json
//     ─ group 1 ".not_json" removed, group 2 "not_json" = reason
//   → prefix_router_passthrough{reason="not_json"}
//
// The regexes use only syntax that std::regex (ECMAScript), RE2 and JavaScript
// read alike: anchors, classes, bounded repeats, non-capturing groups. The
// endpoint pattern spells an address out (dotted quad or bracketed IPv6, then
// :port) rather than "anything up to the next dot", because IPv4 addresses are
// full of dots. Both patterns start with "^wasmcustom\." so Envoy's
// TagExtractorImplBase::extractRegexPrefix files them under the first name
// token "wasmcustom" and never tries them on Envoy's own stats.
import type { StatsTagRule } from "../host/index.ts";

/** Tag (label) names as they appear in /stats/prometheus. */
export const ENDPOINT_TAG = "endpoint";
export const PASSTHROUGH_REASON_TAG = "reason";

const ADDRESS = String.raw`(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}`;

export const STATS_TAGS: readonly StatsTagRule[] = Object.freeze([
  { tagName: ENDPOINT_TAG, regex: String.raw`^wasmcustom\.prefix_router\.endpoint\.((${ADDRESS})\.)` },
  { tagName: PASSTHROUGH_REASON_TAG, regex: String.raw`^wasmcustom\.prefix_router\.passthrough(\.([a-z0-9_]+))$` },
]);

/** The bootstrap's stats_config.stats_tags entries (envoy.config.metrics.v3.TagSpecifier). */
export function envoyStatsTags(): Array<{ tag_name: string; regex: string }> {
  return STATS_TAGS.map((t) => ({ tag_name: t.tagName, regex: t.regex }));
}

/** The Prometheus series name and labels a per-endpoint filter stat is exported as. */
export function prometheusEndpointSeries(stat: string, address: string): string {
  return `prefix_router_endpoint_${stat}{${ENDPOINT_TAG}="${address}"}`;
}

/** The Prometheus series of a pass-through reason counter. */
export function prometheusPassthroughSeries(reason: string): string {
  return `prefix_router_passthrough{${PASSTHROUGH_REASON_TAG}="${reason}"}`;
}
