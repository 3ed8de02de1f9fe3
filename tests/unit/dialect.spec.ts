// Dialects (assembly/metrics/dialect.ts): realistic pages from each model
// server fold into the expected ServerLoad; several series of one family are
// summed (KV averaged); _created is never read as the counter; LoRA takes the
// newest series; a body cut at any byte never reports a value from a partial
// line or a half-read family.
import {
  Dialect,
  DialectBuilder,
  Fold,
  LORA_LIST_BYTES,
  MAX_LORA_ADAPTERS,
  MAX_LORA_NAME_BYTES,
  MetricNames,
  ServerLoad,
  Signal,
  SIGNAL_COUNT,
  dialectNamed,
  explicitDialect,
  parseLoad,
  sglangDialect,
  trtllmDialect,
  vllmDialect,
} from "../../assembly/metrics/dialect";
import { ParseOutcome } from "../../assembly/metrics/prometheus";
import { SGLANG_PAGE, TRTLLM_PAGE, VLLM_V1_DP2_PAGE, VLLM_V1_LEGACY_PAGE } from "./fixtures/metrics_pages";

const vllm = vllmDialect();
const sglang = sglangDialect();
const trtllm = trtllmDialect();

function parsePage(page: string, dialect: Dialect, out: ServerLoad): ParseOutcome {
  const body = String.UTF8.encode(page);
  return parseLoad(changetype<usize>(body), body.byteLength, dialect, out);
}

function adapters(list: ServerLoad, running: bool): string {
  const names = running ? list.runningAdapters : list.waitingAdapters;
  let joined = "";
  for (let i = 0; i < names.count; i++) joined += (i > 0 ? "|" : "") + names.nameAt(i);
  return joined;
}

function signalValue(load: ServerLoad, signal: Signal): f64 {
  switch (signal) {
    case Signal.Queue: return load.waiting;
    case Signal.Running: return load.running;
    case Signal.KvUtilization: return load.kvUtilization;
    case Signal.BlockSize: return <f64>load.blockSizeTokens;
    case Signal.NumBlocks: return <f64>load.numGpuBlocks;
    case Signal.PrefixQueries: return load.prefixQueries;
    case Signal.PrefixHits: return load.prefixHits;
    case Signal.Lora: return <f64>load.maxLora;
    default: return -1;
  }
}

/** Every reported signal of `a` equals the same signal in `b` (LoRA lists included). */
function reportedAgree(a: ServerLoad, b: ServerLoad): bool {
  for (let s = 0; s < SIGNAL_COUNT; s++) {
    if (!a.has(<Signal>s)) continue;
    if (!b.has(<Signal>s)) return false;
    if (signalValue(a, <Signal>s) != signalValue(b, <Signal>s)) return false;
  }
  if (a.has(Signal.Lora)) {
    if (adapters(a, true) != adapters(b, true) || adapters(a, false) != adapters(b, false)) return false;
  }
  return true;
}

function sameReport(a: ServerLoad, b: ServerLoad): bool {
  return a.present == b.present && reportedAgree(a, b);
}

describe("vLLM V1, two data-parallel engines", () => {
  it("sums per-engine series, averages KV and reads geometry from cache_config_info", () => {
    const load = new ServerLoad();
    const outcome = parsePage(VLLM_V1_DP2_PAGE, vllm, load);
    expect<i32>(outcome.malformed).toBe(0);
    expect<bool>(outcome.truncated).toBe(false);
    expect<f64>(load.waiting).toBe(3);
    expect<f64>(load.running).toBe(12);
    expect<f64>(load.kvUtilization).toBeCloseTo((0.4213 + 0.2875) / 2);
    expect<i64>(load.blockSizeTokens).toBe(16);
    expect<i64>(load.numGpuBlocks).toBe(62500);
    expect<f64>(load.prefixQueries).toBe(1843712 + 1697280);
    expect<f64>(load.prefixHits).toBe(1203904 + 1102848);
    expect<bool>(load.has(Signal.Lora)).toBe(false); // LoRA is not supported with DP in vLLM
    expect<f64>(load.startTimeSeconds).toBe(1.7392180307914e+09); // the API server process's, which restarts with the engines
    expect<u32>(load.present).toBe(((1 << 7) - 1) | (1 << Signal.StartTime));
    expect<i32>(load.ignoredSamples).toBe(0);
  });

  it("selects only the lines it needs", () => {
    const load = new ServerLoad();
    const outcome = parsePage(VLLM_V1_DP2_PAGE, vllm, load);
    // 2 engines × (running, waiting, kv, queries, hits, cache_config_info), and the process start time
    expect<i32>(outcome.samples).toBe(13);
    expect<i32>(outcome.sampleLines).toBeGreaterThan(700);
  });
});

describe("older vLLM V1 (gpu_ names), one engine with LoRA", () => {
  it("falls back to the gpu_ names and takes the newest LoRA series", () => {
    const load = new ServerLoad();
    const outcome = parsePage(VLLM_V1_LEGACY_PAGE, vllm, load);
    expect<i32>(outcome.malformed).toBe(0);
    expect<f64>(load.waiting).toBe(2);
    expect<f64>(load.running).toBe(4);
    expect<f64>(load.kvUtilization).toBe(0.6318);
    expect<f64>(load.prefixQueries).toBe(74112);
    expect<f64>(load.prefixHits).toBe(41856);
    expect<i64>(load.blockSizeTokens).toBe(16);
    expect<i64>(load.numGpuBlocks).toBe(27114);
    expect<bool>(load.has(Signal.Lora)).toBe(true);
    expect<i32>(load.maxLora).toBe(4);
    expect<string>(adapters(load, true)).toBe("sql-lora|finance-lora");
    expect<string>(adapters(load, false)).toBe("support-lora");
    const name = String.UTF8.encode("finance-lora");
    expect<bool>(load.runningAdapters.contains(changetype<usize>(name), name.byteLength)).toBe(true);
    const other = String.UTF8.encode("finance-lor");
    expect<bool>(load.runningAdapters.contains(changetype<usize>(other), other.byteLength)).toBe(false);
  });
});

describe("SGLang, two DP ranks with priority scheduling", () => {
  it("sums DP ranks, skips the per-priority breakdown and reads the page gauges", () => {
    const load = new ServerLoad();
    const outcome = parsePage(SGLANG_PAGE, sglang, load);
    expect<i32>(outcome.malformed).toBe(0);
    expect<f64>(load.waiting).toBe(6);
    expect<f64>(load.running).toBe(13);
    expect<f64>(load.kvUtilization).toBeCloseTo(0.445);
    expect<i64>(load.blockSizeTokens).toBe(1);
    expect<i64>(load.numGpuBlocks).toBe(683520);
    expect<f64>(load.prefixQueries).toBe(901233 + 2212871);
    expect<f64>(load.prefixHits).toBe(1763008 + 121344);
    expect<bool>(load.has(Signal.Lora)).toBe(false);
  });

  it("reads geometry from sglang:cache_config_info on releases without the gauges", () => {
    const load = new ServerLoad();
    parsePage(
      "# HELP sglang:cache_config_info Cache configuration information.\n" +
      "# TYPE sglang:cache_config_info gauge\n" +
      "sglang:cache_config_info{num_pages=\"11147\",page_size=\"64\"} 1.0\n",
      sglang, load,
    );
    expect<i64>(load.blockSizeTokens).toBe(64);
    expect<i64>(load.numGpuBlocks).toBe(11147);
  });
});

describe("TensorRT-LLM trtllm-serve", () => {
  it("reads iteration stats and counts lookups as reused plus missed blocks", () => {
    const load = new ServerLoad();
    const outcome = parsePage(TRTLLM_PAGE, trtllm, load);
    expect<i32>(outcome.malformed).toBe(0);
    expect<f64>(load.waiting).toBe(6);
    expect<f64>(load.running).toBe(14);
    expect<f64>(load.kvUtilization).toBe(0.7125);
    expect<i64>(load.blockSizeTokens).toBe(32);
    expect<i64>(load.numGpuBlocks).toBe(12032);
    expect<f64>(load.prefixQueries).toBe(198211 + 103419);
    expect<f64>(load.prefixHits).toBe(198211);
  });
});

describe("counters and their _created samples", () => {
  it("never reads a _created timestamp as the counter", () => {
    const load = new ServerLoad();
    parsePage(
      "# TYPE vllm:prefix_cache_queries counter\n" +
      "vllm:prefix_cache_queries_created{engine=\"0\"} 1.7392180316652305e+09\n" +
      "vllm:prefix_cache_queries_total{engine=\"0\"} 100.0\n" +
      "vllm:prefix_cache_queries_created{engine=\"1\"} 1.7392180316653612e+09\n" +
      "vllm:prefix_cache_queries_total{engine=\"1\"} 23.0\n" +
      "# TYPE vllm:prefix_cache_hits counter\n" +
      "vllm:prefix_cache_hits_created{engine=\"0\"} 1.7392180316652305e+09\n",
      vllm, load,
    );
    expect<f64>(load.prefixQueries).toBe(123);
    expect<bool>(load.has(Signal.PrefixHits)).toBe(false);
  });

  it("prefers the current name when a page carries both generations", () => {
    const load = new ServerLoad();
    parsePage(
      "vllm:gpu_cache_usage_perc{engine=\"0\"} 0.9\n" +
      "vllm:kv_cache_usage_perc{engine=\"0\"} 0.25\n" +
      "vllm:gpu_prefix_cache_hits_total{engine=\"0\"} 999\n" +
      "vllm:prefix_cache_hits_total{engine=\"0\"} 5\n",
      vllm, load,
    );
    expect<f64>(load.kvUtilization).toBe(0.25);
    expect<f64>(load.prefixHits).toBe(5);
  });
});

describe("series that cannot be used", () => {
  it("ignores NaN and infinite values and keeps the rest of the family", () => {
    const load = new ServerLoad();
    parsePage(
      "vllm:num_requests_waiting{engine=\"0\"} NaN\n" +
      "vllm:num_requests_waiting{engine=\"1\"} 4\n" +
      "vllm:num_requests_waiting{engine=\"2\"} +Inf\n" +
      "vllm:num_requests_running{engine=\"0\"} NaN\n",
      vllm, load,
    );
    expect<f64>(load.waiting).toBe(4);
    expect<bool>(load.has(Signal.Running)).toBe(false);
    expect<i32>(load.ignoredSamples).toBe(3);
  });

  it("ignores geometry labels that are not integers", () => {
    const load = new ServerLoad();
    parsePage("vllm:cache_config_info{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"None\"} 1.0\n", vllm, load);
    expect<i64>(load.blockSizeTokens).toBe(16);
    expect<bool>(load.has(Signal.NumBlocks)).toBe(false);
    expect<i32>(load.ignoredSamples).toBe(1);
  });

  it("clamps KV utilization into 0..1", () => {
    const load = new ServerLoad();
    parsePage("vllm:kv_cache_usage_perc 1.5\n", vllm, load);
    expect<f64>(load.kvUtilization).toBe(1);
    parsePage("vllm:kv_cache_usage_perc -0.5\n", vllm, load);
    expect<f64>(load.kvUtilization).toBe(0);
  });

  it("finds nothing in empty, garbage and invalid UTF-8 bodies, without trapping", () => {
    const load = new ServerLoad();
    expect<i32>(parsePage("", vllm, load).lines).toBe(0);
    expect<u32>(load.present).toBe(0);
    parsePage("}}}{{{\"\"\"\n=== 1\n\\\n#\n", vllm, load);
    expect<u32>(load.present).toBe(0);
    const body = new ArrayBuffer(3000);
    for (let i = 0; i < 3000; i++) store<u8>(changetype<usize>(body) + <usize>i, <u8>(0x80 + (i * 37) % 0x7F));
    parseLoad(changetype<usize>(body), body.byteLength, vllm, load);
    expect<u32>(load.present).toBe(0);
  });

  it("resets the snapshot on every parse", () => {
    const load = new ServerLoad();
    parsePage(VLLM_V1_LEGACY_PAGE, vllm, load);
    expect<bool>(load.has(Signal.Lora)).toBe(true);
    parsePage(VLLM_V1_DP2_PAGE, vllm, load);
    expect<bool>(load.has(Signal.Lora)).toBe(false);
    expect<i32>(load.runningAdapters.count).toBe(0);
    expect<i32>(load.maxLora).toBe(-1);
  });
});

describe("LoRA adapter lists", () => {
  it("takes the series with the largest timestamp wherever it sits, first on ties", () => {
    const load = new ServerLoad();
    parsePage(
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"old\",waiting_lora_adapters=\"\"} 1.7e+09\n" +
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"newest\",waiting_lora_adapters=\"w1,w2\"} 1.9e+09\n" +
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"tie\",waiting_lora_adapters=\"\"} 1.9e+09\n" +
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"nan\",waiting_lora_adapters=\"\"} NaN\n",
      vllm, load,
    );
    expect<string>(adapters(load, true)).toBe("newest");
    expect<string>(adapters(load, false)).toBe("w1|w2");
    expect<i32>(load.maxLora).toBe(2);
  });

  it("reports an empty running list when no adapter is loaded", () => {
    const load = new ServerLoad();
    parsePage("vllm:lora_requests_info{max_lora=\"8\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"} 1.7e+09\n", vllm, load);
    expect<bool>(load.has(Signal.Lora)).toBe(true);
    expect<i32>(load.runningAdapters.count).toBe(0);
    expect<i32>(load.maxLora).toBe(8);
  });

  it("decodes escapes, trims spaces and skips empty names", () => {
    const load = new ServerLoad();
    parsePage("vllm:lora_requests_info{running_lora_adapters=\" a ,, b\\\"q , c\\\\d,\",waiting_lora_adapters=\"x\"} 1\n", vllm, load);
    expect<string>(adapters(load, true)).toBe("a|b\"q|c\\d");
    expect<i32>(load.maxLora).toBe(-1);
  });

  it("keeps at most MAX_LORA_ADAPTERS names and leaves out names that are too long", () => {
    let many = "";
    for (let i = 0; i < MAX_LORA_ADAPTERS + 5; i++) many += (i > 0 ? "," : "") + "adapter-" + i.toString();
    const tooLong = "y".repeat(MAX_LORA_NAME_BYTES + 1);
    const load = new ServerLoad();
    parsePage("vllm:lora_requests_info{running_lora_adapters=\"" + many + "\",waiting_lora_adapters=\"ok," + tooLong + ",fine\"} 1\n", vllm, load);
    expect<i32>(load.runningAdapters.count).toBe(MAX_LORA_ADAPTERS);
    expect<bool>(load.runningAdapters.overflowed).toBe(true);
    expect<string>(load.runningAdapters.nameAt(MAX_LORA_ADAPTERS - 1)).toBe("adapter-" + (MAX_LORA_ADAPTERS - 1).toString());
    expect<string>(adapters(load, false)).toBe("ok|fine");
    expect<bool>(load.waitingAdapters.overflowed).toBe(true);
  });

  it("stays within LORA_LIST_BYTES for a megabyte of adapter names", () => {
    const names = ("n".repeat(MAX_LORA_NAME_BYTES) + ",").repeat((1 << 20) / (MAX_LORA_NAME_BYTES + 1));
    const load = new ServerLoad();
    parsePage("vllm:lora_requests_info{running_lora_adapters=\"" + names + "\"} 1\n", vllm, load);
    expect<i32>(load.runningAdapters.count).toBe(LORA_LIST_BYTES / MAX_LORA_NAME_BYTES);
    expect<bool>(load.runningAdapters.overflowed).toBe(true);
    expect<i32>(load.runningAdapters.nameLength(0)).toBe(MAX_LORA_NAME_BYTES);
    expect<i32>(load.runningAdapters.nameLength(-1)).toBe(0);
    expect<i32>(load.runningAdapters.nameLength(999)).toBe(0);
  });
});

/**
 * Cuts `page` at every byte offset (the rest of the page stays in memory
 * right after the cut, so any read past `len` would show) and checks:
 *  - no trap;
 *  - the report equals the report for the page cut back to its last '\n':
 *    nothing from the partial line is ever used;
 *  - when the cut falls inside a line (truncated), every reported signal
 *    equals the full page's value: a family still open at the cut is
 *    dropped (cutOff), never reported short.
 * All four pages, every offset: about 13 s under as-pect's debug build.
 */
function checkEveryCut(page: string, dialect: Dialect): void {
  const body = String.UTF8.encode(page);
  const base = changetype<usize>(body);
  const length = body.byteLength;
  const full = new ServerLoad();
  parseLoad(base, length, dialect, full);
  const cut = new ServerLoad();
  const lineAligned = new ServerLoad();
  let lastNewlineEnd = 0; // offset just past the last '\n' before the cut
  let truncatedCuts = 0;
  let cutOffSeen = 0;
  for (let at = 0; at <= length; at++) {
    if (at > 0 && load<u8>(base + <usize>(at - 1)) == 0x0A) lastNewlineEnd = at;
    const outcome = parseLoad(base, at, dialect, cut);
    const truncated = outcome.truncated;
    parseLoad(base, lastNewlineEnd, dialect, lineAligned);
    if (!sameReport(cut, lineAligned) && !truncated) {
      expect<i32>(at).toBe(-1, "a cut at a line boundary changed the report");
    }
    if (truncated) {
      truncatedCuts++;
      if (cut.cutOff != 0) cutOffSeen++;
      // Everything reported is complete, and is what the line-aligned cut reports.
      if (!reportedAgree(cut, full)) expect<i32>(at).toBe(-1, "a truncated body reported a short family");
      if (!reportedAgree(cut, lineAligned)) expect<i32>(at).toBe(-1, "a partial line changed a value");
    }
  }
  expect<i32>(truncatedCuts).toBeGreaterThan(0);
  expect<i32>(cutOffSeen).toBeGreaterThan(0);
  // The whole page, for reference, is complete.
  expect<bool>(sameReport(cut, full)).toBe(true);
}

describe("a body cut at every byte", () => {
  it("never reports a value from a partial line: older vLLM page, every offset", () => {
    checkEveryCut(VLLM_V1_LEGACY_PAGE, vllm);
  });

  it("never reports a value from a partial line: TensorRT-LLM page, every offset", () => {
    checkEveryCut(TRTLLM_PAGE, trtllm);
  });

  it("never reports a value from a partial line: SGLang page, every offset", () => {
    checkEveryCut(SGLANG_PAGE, sglang);
  });

  it("never reports a value from a partial line: vLLM two-engine page, every offset", () => {
    checkEveryCut(VLLM_V1_DP2_PAGE, vllm);
  });

  it("drops the family that was open at the cut instead of reporting one engine", () => {
    const page =
      "# TYPE vllm:num_requests_waiting gauge\n" +
      "vllm:num_requests_waiting{engine=\"0\"} 3.0\n" +
      "vllm:num_requests_waiting{engine=\"1\"} 4";
    const load = new ServerLoad();
    const outcome = parsePage(page, vllm, load);
    expect<bool>(outcome.truncated).toBe(true);
    expect<bool>(load.has(Signal.Queue)).toBe(false);
    expect<u32>(load.cutOff).toBe(1 << Signal.Queue);
    // A partial HELP line does not close the family; a complete one does.
    parsePage(page + ".0\n# HELP vllm:kv_cache_usage_perc KV", vllm, load);
    expect<bool>(load.has(Signal.Queue)).toBe(false);
    parsePage(page + ".0\n# HELP vllm:kv_cache_usage_perc KV-cache usage.\nvllm:kv_cache_usage_perc{engine=\"0\"} 0.", vllm, load);
    expect<f64>(load.waiting).toBe(7);
    expect<bool>(load.has(Signal.KvUtilization)).toBe(false);
  });
});

describe("explicit metric names", () => {
  it("reads Triton TRT-LLM metrics through label matchers", () => {
    const names = new MetricNames();
    names.queue = "nv_trt_llm_request_metrics{request_type=\"waiting\"}";
    names.running = "nv_trt_llm_request_metrics{request_type=scheduled}";
    names.kvUtilization = "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\"}";
    names.blockSize = "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"tokens_per\"}";
    names.numBlocks = "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"max\"}";
    const choice = explicitDialect(names);
    expect<string>(choice.error).toBe("");
    const dialect = changetype<Dialect>(choice.dialect);
    const load = new ServerLoad();
    parsePage(
      "nv_trt_llm_request_metrics{model=\"ensemble\",request_type=\"waiting\",version=\"1\"} 2\n" +
      "nv_trt_llm_request_metrics{model=\"ensemble\",request_type=\"scheduled\",version=\"1\"} 9\n" +
      "nv_trt_llm_request_metrics{model=\"ensemble\",request_type=\"context\",version=\"1\"} 1\n" +
      "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\",model=\"ensemble\",version=\"1\"} 0.5\n" +
      "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"tokens_per\",model=\"ensemble\",version=\"1\"} 64\n" +
      "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"max\",model=\"ensemble\",version=\"1\"} 8192\n" +
      "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"used\",model=\"ensemble\",version=\"1\"} 4096\n",
      dialect, load,
    );
    expect<f64>(load.waiting).toBe(2);
    expect<f64>(load.running).toBe(9);
    expect<f64>(load.kvUtilization).toBe(0.5);
    expect<i64>(load.blockSizeTokens).toBe(64);
    expect<i64>(load.numGpuBlocks).toBe(8192);
  });

  it("matches a counter named without _total, and an info metric's labels", () => {
    const names = new MetricNames();
    names.prefixQueries = "my:lookups";
    names.prefixHits = "my:hits_total";
    names.cacheInfo = "my:cache_info";
    names.cacheBlockSizeLabel = "page";
    names.cacheNumBlocksLabel = "pages";
    names.lora = "my:lora_info";
    const dialect = changetype<Dialect>(explicitDialect(names).dialect);
    const load = new ServerLoad();
    parsePage(
      "my:lookups_total 10\nmy:lookups_created 1.7e9\nmy:hits_total 4\n" +
      "my:cache_info{page=\"32\",pages=\"100\"} 1\nmy:cache_info{page=\"32\",pages=\"50\"} 1\n" +
      "my:lora_info{running_lora_adapters=\"a\",max_lora=\"3\"} 5\n",
      dialect, load,
    );
    expect<f64>(load.prefixQueries).toBe(10);
    expect<f64>(load.prefixHits).toBe(4);
    expect<i64>(load.blockSizeTokens).toBe(32);
    expect<i64>(load.numGpuBlocks).toBe(150);
    expect<string>(adapters(load, true)).toBe("a");
    expect<i32>(load.maxLora).toBe(3);
  });

  it("rejects specs that do not parse", () => {
    const bad = ["9abc", "name{", "name{label}", "name{label=\"x}", "name}", "name{=x}", "na me", "name{a=b}x"];
    for (let i = 0; i < bad.length; i++) {
      const names = new MetricNames();
      names.queue = bad[i];
      const choice = explicitDialect(names);
      expect<bool>(choice.dialect === null).toBe(true, bad[i]);
      expect<bool>(choice.error.length > 0).toBe(true);
    }
  });

  it("refuses to combine rules that fold differently at one priority", () => {
    const builder = new DialectBuilder();
    builder.add(Signal.Queue, "a", Fold.Sum);
    builder.add(Signal.Queue, "b", Fold.Mean);
    expect<bool>(builder.build("mixed") === null).toBe(true);
  });
});

describe("dialect names", () => {
  it("maps metrics.dialect values to the built-in tables, vLLM by default", () => {
    expect<string>(changetype<Dialect>(dialectNamed("")).kind).toBe("vllm");
    expect<string>(changetype<Dialect>(dialectNamed("vllm")).kind).toBe("vllm");
    expect<string>(changetype<Dialect>(dialectNamed("sglang")).kind).toBe("sglang");
    expect<string>(changetype<Dialect>(dialectNamed("trtllm")).kind).toBe("trtllm");
    expect<string>(changetype<Dialect>(dialectNamed("trtllm-serve")).kind).toBe("trtllm");
    expect<bool>(dialectNamed("triton") === null).toBe(true);
  });
});
