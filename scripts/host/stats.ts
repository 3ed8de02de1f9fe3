// Envoy's stats store as the Wasm filter and an operator see it: counters,
// gauges and histograms by full name, shared by every VM and thread (a Wasm
// metric is the Envoy stat "wasmcustom.<name>", envoy stats_handler.h), plus
// the /stats/prometheus text rendering (envoy source/server/admin/
// prometheus_stats.cc): tag extraction by stats_tags regexes and Envoy's
// default extractors that can match a custom name, the registered "wasmcustom."
// prefix stripped with no "envoy_" prefix, names sanitized, names that would
// start with a digit omitted.
import { CUSTOM_STAT_NAMESPACE, DEFAULT_HISTOGRAM_BUCKETS } from "./limits.ts";

export class Counter {
  readonly kind = "counter";
  value = 0n;
  constructor(readonly name: string) {}
  add(v: bigint): void {
    this.value = BigInt.asUintN(64, this.value + v);
  }
}

export class Gauge {
  readonly kind = "gauge";
  value = 0n;
  constructor(readonly name: string) {}
  add(v: bigint): void {
    this.value = BigInt.asUintN(64, this.value + v);
  }
  sub(v: bigint): void {
    this.value = BigInt.asUintN(64, this.value - v);
  }
  set(v: bigint): void {
    this.value = BigInt.asUintN(64, v);
  }
}

export class Histogram {
  readonly kind = "histogram";
  readonly samples: number[] = [];
  constructor(readonly name: string) {}
  record(v: bigint): void {
    this.samples.push(Number(v));
  }
}

export type Stat = Counter | Gauge | Histogram;

export interface HistogramSummary {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

/** bootstrap stats_config.stats_tags: the first capture group is removed from the name, the second (or first) is the value. */
export interface StatsTagRule {
  tagName: string;
  regex: string;
}

/**
 * Envoy's default tag extractors (source/common/config/well_known_names.cc)
 * that can match a "wasmcustom." name; the others are anchored to other
 * prefixes (cluster., http., listener., …).
 */
const DEFAULT_TAG_RULES: readonly StatsTagRule[] = [
  { tagName: "envoy.response_code", regex: String.raw`_rq(_(\d{3}))$` },
  { tagName: "envoy.response_code_class", regex: String.raw`_rq_((\d))xx$` },
  // Tokenized "$.http_local_rate_limit.**" written as a regex.
  { tagName: "envoy.local_http_ratelimit_prefix", regex: String.raw`^(([^.]+)\.)http_local_rate_limit\.` },
];

interface CompiledRule {
  tagName: string;
  regex: RegExp;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function summarize(h: Histogram): HistogramSummary {
  const sorted = [...h.samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    sum,
    min: sorted[0] ?? 0,
    max: sorted[sorted.length - 1] ?? 0,
    mean: sorted.length === 0 ? 0 : sum / sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
  };
}

/** prometheus_stats.cc sanitizeName. */
function sanitizeName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, "_");
}

/** prometheus_stats.cc sanitizeValue. */
function sanitizeValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export class StatsStore {
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histogram>();
  private readonly rules: CompiledRule[];

  constructor(tags: readonly StatsTagRule[] = []) {
    const userNames = new Set(tags.map((t) => t.tagName));
    this.rules = [...tags, ...DEFAULT_TAG_RULES.filter((d) => !userNames.has(d.tagName))].map((t) => ({
      tagName: t.tagName,
      regex: new RegExp(t.regex, "d"),
    }));
  }

  counter(name: string): Counter {
    let c = this.counters.get(name);
    if (c === undefined) this.counters.set(name, (c = new Counter(name)));
    return c;
  }

  gauge(name: string): Gauge {
    let g = this.gauges.get(name);
    if (g === undefined) this.gauges.set(name, (g = new Gauge(name)));
    return g;
  }

  histogram(name: string): Histogram {
    let h = this.histograms.get(name);
    if (h === undefined) this.histograms.set(name, (h = new Histogram(name)));
    return h;
  }

  /** A counter's or gauge's value, a histogram's summary, or undefined. */
  get(name: string): number | HistogramSummary | undefined {
    const c = this.counters.get(name) ?? this.gauges.get(name);
    if (c !== undefined) return Number(c.value);
    const h = this.histograms.get(name);
    return h === undefined ? undefined : summarize(h);
  }

  /** Every stat name, sorted. */
  names(): string[] {
    return [...this.counters.keys(), ...this.gauges.keys(), ...this.histograms.keys()].sort();
  }

  /** Envoy TagExtractor: tags found by the rules and the name with their first groups removed. */
  extractTags(name: string): { extractedName: string; tags: [string, string][] } {
    const tags: [string, string][] = [];
    const removed: [number, number][] = [];
    for (const rule of this.rules) {
      const m = rule.regex.exec(name);
      if (m === null || m[1] === undefined || m.indices?.[1] === undefined) continue;
      tags.push([rule.tagName, m[2] ?? m[1]]);
      removed.push(m.indices[1]);
    }
    let extractedName = "";
    for (let i = 0; i < name.length; i++) if (!removed.some(([s, e]) => i >= s && i < e)) extractedName += name[i];
    return { extractedName, tags };
  }

  /** PrometheusStatsFormatter::metricName: null when Envoy omits the stat. */
  static metricName(extractedName: string): string | null {
    const prefix = `${CUSTOM_STAT_NAMESPACE}.`;
    if (extractedName.startsWith(prefix)) {
      const sanitized = sanitizeName(extractedName.slice(prefix.length));
      return sanitized === "" || /^[0-9]/.test(sanitized) ? null : sanitized;
    }
    return sanitizeName(`envoy_${extractedName}`);
  }

  /** The text /stats/prometheus serves: counters, then gauges, then histograms; groups sorted by name. */
  prometheus(): string {
    let out = "";
    const render = <S extends Stat>(stats: Map<string, S>, type: string, lines: (name: string, tags: string, stat: S) => string) => {
      const groups = new Map<string, { tags: string; stat: S; full: string }[]>();
      for (const stat of stats.values()) {
        const { extractedName, tags } = this.extractTags(stat.name);
        const group = groups.get(extractedName) ?? [];
        group.push({ tags: tags.map(([k, v]) => `${sanitizeName(k)}="${sanitizeValue(v)}"`).join(","), stat, full: stat.name });
        groups.set(extractedName, group);
      }
      for (const extracted of [...groups.keys()].sort()) {
        const name = StatsStore.metricName(extracted);
        if (name === null) continue;
        out += `# TYPE ${name} ${type}\n`;
        for (const { tags, stat } of groups.get(extracted)!.sort((a, b) => (a.full < b.full ? -1 : a.full > b.full ? 1 : 0))) {
          out += lines(name, tags, stat);
        }
      }
    };
    render(this.counters, "counter", (name, tags, c) => `${name}{${tags}} ${c.value}\n`);
    render(this.gauges, "gauge", (name, tags, g) => `${name}{${tags}} ${g.value}\n`);
    render(this.histograms, "histogram", (name, tags, h) => {
      const prefix = tags === "" ? "" : `${tags},`;
      let s = "";
      for (const bound of DEFAULT_HISTOGRAM_BUCKETS) {
        s += `${name}_bucket{${prefix}le="${bound}"} ${h.samples.filter((v) => v <= bound).length}\n`;
      }
      s += `${name}_bucket{${prefix}le="+Inf"} ${h.samples.length}\n`;
      s += `${name}_sum{${tags}} ${h.samples.reduce((a, b) => a + b, 0)}\n`;
      s += `${name}_count{${tags}} ${h.samples.length}\n`;
      return s;
    });
    return out;
  }
}
