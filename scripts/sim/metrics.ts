// The simulated server's /metrics page in vLLM's Prometheus format, and a
// small parser for it. Owns: metric names, HELP texts, label sets and value
// formatting. Must not: compute the values (the engine's snapshot does).
//
// Format sources (vllm-project/vllm):
// - vllm/v1/metrics/loggers.py PrometheusStatLogger: gauges
//   vllm:num_requests_running, vllm:num_requests_waiting,
//   vllm:kv_cache_usage_perc and counters vllm:prefix_cache_queries,
//   vllm:prefix_cache_hits, vllm:prompt_tokens, vllm:generation_tokens,
//   vllm:num_preemptions, vllm:request_success, all labelled
//   [model_name, engine]; vllm:cache_config_info is a gauge set to 1 whose
//   labels are CacheConfig.metrics_info() (every cache_config field as a
//   string) plus engine; vllm:lora_requests_info has labels max_lora,
//   waiting_lora_adapters, running_lora_adapters (comma-joined) and is
//   set_to_current_time(), so its value is a Unix timestamp.
// - prometheus_client's text exposition: counters get the _total suffix on
//   their samples and family lines plus a _created sample, labels print sorted
//   by name, floats print Python-style ("1.0", "0.25").

import type { EngineSnapshot } from "./engine.ts";
import type { SimParams } from "./params.ts";

/** Wall-clock origin of virtual time on metrics pages (created timestamps, lora_requests_info). */
export const EPOCH_S = 1_750_000_000;

/** prometheus_client's floatToGoString: Python repr, but exponent form past 6 integer digits, as Go prints. */
export function pyFloat(v: number): string {
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN";
  const s = Number.isInteger(v) && Math.abs(v) < 1e16 ? v.toFixed(1) : String(v);
  const dot = s.indexOf(".");
  if (v > 0 && dot > 6) {
    const mantissa = `${s[0]}.${s.slice(1, dot)}${s.slice(dot + 1)}`.replace(/[0.]+$/, "");
    return `${mantissa}e+0${dot - 1}`;
  }
  return s;
}

function labels(pairs: Record<string, string>): string {
  const keys = Object.keys(pairs).sort();
  return "{" + keys.map((k) => `${k}="${pairs[k].replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",") + "}";
}

/** Labels of vllm:cache_config_info: CacheConfig fields as vLLM prints them. */
function cacheConfigLabels(p: SimParams): Record<string, string> {
  return {
    block_size: String(p.blockSize),
    cache_dtype: "auto",
    calculate_kv_scales: "False",
    cpu_offload_gb: "0",
    enable_prefix_caching: "True",
    engine: "0",
    gpu_memory_utilization: "0.9",
    is_attention_free: "False",
    num_cpu_blocks: "None",
    num_gpu_blocks: String(p.numGpuBlocks),
    num_gpu_blocks_override: "None",
    prefix_caching_hash_algo: "builtin",
    sliding_window: "None",
    swap_space: "4",
  };
}

/**
 * `startedAtS`: the server process's start, as prometheus_client's process
 * collector reports it on vLLM's single-process registry
 * (process_start_time_seconds); a restarted server shows a new one.
 */
export function renderMetrics(snap: EngineSnapshot, p: SimParams, nowMs: number, startedAtS?: number): string {
  const base = { engine: "0", model_name: p.model };
  const created = pyFloat(EPOCH_S);
  const out: string[] = [];
  const gauge = (name: string, help: string, v: number, lab: Record<string, string> = base): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${labels(lab)} ${pyFloat(v)}`);
  };
  const counter = (name: string, help: string, v: number): void => {
    out.push(`# HELP ${name}_total ${help}`, `# TYPE ${name}_total counter`, `${name}_total${labels(base)} ${pyFloat(v)}`);
    out.push(`# HELP ${name}_created ${help}`, `# TYPE ${name}_created gauge`, `${name}_created${labels(base)} ${created}`);
  };
  gauge("vllm:num_requests_running", "Number of requests in model execution batches.", snap.numRequestsRunning);
  gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", snap.numRequestsWaiting);
  gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", snap.kvCacheUsagePerc);
  counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", snap.prefixCacheQueries);
  counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", snap.prefixCacheHits);
  counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", snap.numPreemptions);
  counter("vllm:prompt_tokens", "Number of prefill tokens processed.", snap.promptTokens);
  counter("vllm:generation_tokens", "Number of generation tokens processed.", snap.generationTokens);
  out.push(
    "# HELP vllm:request_success_total Count of successfully processed requests.",
    "# TYPE vllm:request_success_total counter",
    `vllm:request_success_total${labels({ ...base, finished_reason: "length" })} ${pyFloat(snap.requestSuccess)}`,
  );
  gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", 1, cacheConfigLabels(p));
  if (p.maxLoras > 0) {
    gauge("vllm:lora_requests_info", "Running stats on lora requests.", EPOCH_S + nowMs / 1000, {
      max_lora: String(p.maxLoras),
      running_lora_adapters: snap.runningLoraAdapters.join(","),
      waiting_lora_adapters: snap.waitingLoraAdapters.join(","),
    });
  }
  if (startedAtS !== undefined) {
    out.push("# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
      "# TYPE process_start_time_seconds gauge", `process_start_time_seconds ${pyFloat(startedAtS)}`);
  }
  return out.join("\n") + "\n";
}

// ---- parsing ----

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedPage {
  samples: Sample[];
  /** # TYPE lines: family name → type. */
  types: Map<string, string>;
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;

/** Parse Prometheus text exposition format 0.0.4; throws on a malformed line. */
export function parseMetrics(text: string): ParsedPage {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      // HELP and other comments carry nothing a router needs; TYPE lines are kept.
      const m = /^#\s+TYPE\s+(\S+)\s+(counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m) types.set(m[1], m[2]);
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const lab: Record<string, string> = {};
    if (m[3] !== undefined && m[3] !== "") {
      // Sticky, so it carries a position: a fresh one per line, never shared.
      const labelRe = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
      let pos = 0;
      while (pos < m[3].length) {
        labelRe.lastIndex = pos;
        const lm = labelRe.exec(m[3]);
        if (!lm) throw new Error(`bad labels: ${m[3]}`);
        lab[lm[1]] = lm[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
        pos = labelRe.lastIndex;
      }
    }
    const v = m[4] === "+Inf" ? Infinity : m[4] === "-Inf" ? -Infinity : Number(m[4]);
    if (Number.isNaN(v) && m[4] !== "NaN") throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1], labels: lab, value: v });
  }
  return { samples, types };
}

/** What a router learns from one scrape of a vLLM page. Engines (data parallel) are summed. */
export interface ScrapedMetrics {
  waiting: number;
  running: number;
  kvCacheUsage: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
  blockSize: number;
  numGpuBlocks: number;
  maxLora: number;
  runningLoraAdapters: string[];
  waitingLoraAdapters: string[];
}

export function readVllmPage(text: string): ScrapedMetrics {
  const page = parseMetrics(text);
  const m: ScrapedMetrics = {
    waiting: 0, running: 0, kvCacheUsage: 0, prefixCacheQueries: 0, prefixCacheHits: 0,
    blockSize: 0, numGpuBlocks: 0, maxLora: 0, runningLoraAdapters: [], waitingLoraAdapters: [],
  };
  let kvEngines = 0;
  for (const s of page.samples) {
    switch (s.name) {
      case "vllm:num_requests_waiting": m.waiting += s.value; break;
      case "vllm:num_requests_running": m.running += s.value; break;
      case "vllm:kv_cache_usage_perc": m.kvCacheUsage += s.value; kvEngines++; break;
      case "vllm:prefix_cache_queries_total": m.prefixCacheQueries += s.value; break;
      case "vllm:prefix_cache_hits_total": m.prefixCacheHits += s.value; break;
      case "vllm:cache_config_info":
        m.blockSize = Number(s.labels.block_size ?? 0);
        m.numGpuBlocks += Number(s.labels.num_gpu_blocks ?? 0);
        break;
      case "vllm:lora_requests_info":
        m.maxLora = Number(s.labels.max_lora ?? 0);
        m.runningLoraAdapters = s.labels.running_lora_adapters ? s.labels.running_lora_adapters.split(",") : [];
        m.waitingLoraAdapters = s.labels.waiting_lora_adapters ? s.labels.waiting_lora_adapters.split(",") : [];
        break;
    }
  }
  if (kvEngines > 1) m.kvCacheUsage /= kvEngines;
  return m;
}

/** The same view straight from an engine snapshot, for in-process scrapes (no text round trip). */
export function scrapedFromSnapshot(snap: EngineSnapshot, p: SimParams): ScrapedMetrics {
  return {
    waiting: snap.numRequestsWaiting,
    running: snap.numRequestsRunning,
    kvCacheUsage: snap.kvCacheUsagePerc,
    prefixCacheQueries: snap.prefixCacheQueries,
    prefixCacheHits: snap.prefixCacheHits,
    blockSize: p.blockSize,
    numGpuBlocks: p.numGpuBlocks,
    maxLora: p.maxLoras,
    runningLoraAdapters: snap.runningLoraAdapters,
    waitingLoraAdapters: snap.waitingLoraAdapters,
  };
}
