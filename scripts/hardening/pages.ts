// Generated Prometheus pages for the metrics parser's fuzzer and the fault
// scenarios: what vLLM, SGLang and trtllm-serve print (and the explicit-names
// dialect of assembly/fuzz.ts reads), with HELP/TYPE lines, one series per
// engine, histogram noise, escaped and huge label values, every number form
// (NaN, ±Inf, exponents, timestamps), CRLF endings and OpenMetrics "# EOF".
// A `clean` page keeps each family in one contiguous group, finite values and
// no fallback names, so a page cut anywhere must report, for every signal it
// still has, exactly the full page's value (fuzz.ts checks that).
import type { Rng } from "./rng.ts";

export const DIALECTS = ["vllm", "sglang", "trtllm", "explicit"] as const;

interface Family {
  name: string;
  labels?: Record<string, string>;
  /** Integer-valued info labels instead of a sample value. */
  info?: boolean;
}

/** Load-bearing families per dialect (index as in DIALECTS); the first entry of a pair is the current name. */
const FAMILIES: Family[][] = [
  [
    { name: "vllm:num_requests_waiting" }, { name: "vllm:num_requests_running" }, { name: "vllm:kv_cache_usage_perc" },
    { name: "vllm:cache_config_info", info: true }, { name: "vllm:prefix_cache_queries_total" }, { name: "vllm:prefix_cache_hits_total" },
    { name: "vllm:lora_requests_info", info: true },
  ],
  [
    { name: "sglang:num_queue_reqs" }, { name: "sglang:num_running_reqs" }, { name: "sglang:token_usage" }, { name: "sglang:page_size" },
    { name: "sglang:num_pages" }, { name: "sglang:prompt_tokens_total" }, { name: "sglang:cached_tokens_total", labels: { cache_source: "device" } },
  ],
  [
    { name: "trtllm_num_requests_waiting" }, { name: "trtllm_num_requests_running" }, { name: "trtllm_kv_cache_utilization" },
    { name: "trtllm_kv_cache_tokens_per_block" }, { name: "trtllm_kv_cache_max_blocks" }, { name: "trtllm_kv_cache_reused_blocks_total" },
    { name: "trtllm_kv_cache_missed_blocks_total" },
  ],
  [
    { name: "nv_trt_llm_request_metrics", labels: { request_type: "waiting" } }, { name: "nv_trt_llm_kv_cache_block_metrics", labels: { kv_cache_block_type: "fraction" } },
    { name: "custom:cache_config_info", info: true }, { name: "custom:prefix_queries_total" }, { name: "custom:prefix_hits_total" },
    { name: "custom:lora_requests_info", info: true },
  ],
];

/** Names a clean page leaves out: fallbacks (older names) that would change which rule wins after a cut. */
const FALLBACKS = ["vllm:gpu_cache_usage_perc", "vllm:gpu_prefix_cache_queries_total", "vllm:gpu_prefix_cache_hits_total", "sglang:cache_config_info"];

const NOISE = ["vllm:time_to_first_token_seconds", "process_resident_memory_bytes", "python_gc_objects_collected_total", "http_requests_total"];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(rng: Rng, labels: Record<string, string>, clean: boolean): string {
  const keys = rng.shuffle(Object.keys(labels));
  const parts = keys.map((k) => `${k}${clean || rng.chance(0.9) ? "" : " "}="${escapeLabel(labels[k])}"`);
  return `{${parts.join(",")}${rng.chance(0.05) ? "," : ""}}`;
}

function value(rng: Rng, clean: boolean, integer: boolean, fraction: boolean): string {
  const v = fraction ? rng.float() : integer ? rng.int(5000) : rng.float() * 100;
  if (!clean && rng.chance(0.05)) return rng.pick(["NaN", "+Inf", "-Inf", "inf", "1e999", "-1e-400", "nan", "+1", "-0"]);
  switch (rng.int(4)) {
    case 0: return String(v);
    case 1: return integer ? `${v}.0` : v.toExponential(rng.int(12));
    case 2: return integer ? `${v}e0` : v.toPrecision(rng.range(1, 17));
    default: return Number.isInteger(v) ? String(v) : v.toFixed(rng.int(10));
  }
}

function adapterList(rng: Rng): string {
  const n = rng.chance(0.95) ? rng.int(6) : rng.range(30, 60);
  return Array.from({ length: n }, (_, i) => (rng.chance(0.98) ? `lora-${i}` : "x".repeat(rng.range(100, 300)))).join(rng.chance(0.8) ? "," : ", ");
}

export interface GeneratedPage {
  text: string;
  dialect: number;
  clean: boolean;
}

/** One page for `dialect` (0–3); `clean` as described in the file comment. */
export function generatePage(rng: Rng, dialect: number, clean: boolean): GeneratedPage {
  const eol = !clean && rng.chance(0.1) ? "\r\n" : "\n";
  const lines: string[] = [];
  const engines = rng.chance(0.7) ? 1 : rng.range(2, 8);
  const model = rng.chance(0.9) ? "meta-llama/Llama-3.1-8B-Instruct" : `m"${rng.int(9)}\\x\n`;
  // A rare huge page: one enormous label value or thousands of histogram buckets.
  const huge = !clean && rng.chance(0.002);
  let hugeLabelLeft = huge && rng.chance(0.5) ? 1 : 0;
  const noise = () => {
    const name = rng.pick(NOISE);
    const buckets = huge && hugeLabelLeft === 0 ? rng.int(50000) : rng.int(12);
    lines.push(`# HELP ${name} Noise.`, `# TYPE ${name} histogram`);
    for (let b = 0; b < buckets; b++) lines.push(`${name}_bucket{le="${(b * 0.01).toFixed(2)}",model_name="${escapeLabel(model)}"} ${b}`);
    lines.push(`${name}_sum 1.5`, `${name}_count ${buckets}`);
  };
  const families = FAMILIES[dialect].filter(() => rng.chance(0.9));
  if (!clean && rng.chance(0.3)) families.push({ name: rng.pick(FALLBACKS) });
  for (const f of rng.chance(0.7) ? families : rng.shuffle(families.slice())) {
    if (rng.chance(0.3)) noise();
    if (rng.chance(0.7)) lines.push(`# HELP ${f.name} Generated.`);
    if (rng.chance(0.7)) lines.push(`# TYPE ${f.name} ${f.name.endsWith("_total") ? "counter" : "gauge"}`);
    for (let e = 0; e < engines; e++) {
      const labels: Record<string, string> = { model_name: model, engine: String(e), ...f.labels };
      let v: string;
      if (f.info && f.name.includes("lora")) {
        labels.max_lora = rng.chance(0.9) ? String(rng.range(1, 8)) : rng.pick(["None", "", "-1", "99999999999999999999"]);
        labels.running_lora_adapters = adapterList(rng);
        labels.waiting_lora_adapters = adapterList(rng);
        v = String(1_700_000_000 + rng.int(1000));
      } else if (f.info) {
        labels.block_size = rng.chance(0.95) ? String(rng.pick([16, 32, 64])) : rng.pick(["None", "16.5", "", "0"]);
        labels.num_gpu_blocks = rng.chance(0.95) ? String(rng.range(1000, 100000)) : rng.pick(["None", "-5", "1e3"]);
        v = "1.0";
      } else {
        v = value(rng, clean, !f.name.includes("perc") && !f.name.includes("usage") && !f.name.includes("utilization") && !f.name.includes("fraction"),
          f.name.includes("perc") || f.name.includes("usage") || f.name.includes("utilization") || f.name.includes("fraction"));
      }
      if (hugeLabelLeft > 0 && rng.chance(0.3)) {
        hugeLabelLeft--;
        labels.huge = "y".repeat(rng.range(1 << 20, 4 << 20));
      } else if (!clean && rng.chance(0.005)) {
        labels.long = "y".repeat(rng.range(1000, 20000));
      }
      const timestamp = rng.chance(0.1) ? ` ${1_700_000_000_000 + rng.int(1000)}` : "";
      lines.push(`${f.name}${labelText(rng, labels, clean)} ${v}${timestamp}${clean || rng.chance(0.95) ? "" : "  "}`);
    }
    if (f.name.endsWith("_total") && rng.chance(0.5)) lines.push(`${f.name.replace(/_total$/, "_created")}{engine="0"} 1.7e9`);
    if (!clean && rng.chance(0.05)) lines.push("", "# a comment", "  ");
  }
  if (rng.chance(0.2)) noise();
  if (!clean && rng.chance(0.05)) lines.push("# EOF");
  return { text: lines.join(eol) + eol, dialect, clean };
}

export const PAGE_TOKENS = [
  "{", "}", '="', '"', "\\", "\\n", "\\x", ",", "=", " ", "\t", "\n", "\r\n", "\r", "#", "# HELP ", "# TYPE vllm:num_requests_waiting gauge\n",
  "# EOF\n", "NaN", "+Inf", "-Inf", "1e999", "1e-999", "0x10", "1_000", " 17", " 1712345678000", "vllm:num_requests_waiting ",
  'vllm:num_requests_waiting{engine="0"} 3\n', 'vllm:lora_requests_info{running_lora_adapters="a,b",max_lora="2"} 9e9\n',
  'vllm:cache_config_info{block_size="16",num_gpu_blocks="99999999999999999999"} 1\n', "\u0000", "\u00ff", "😀",
];
