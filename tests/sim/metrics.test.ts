// The metrics page: valid Prometheus text with vLLM's exact names and labels.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EngineSnapshot } from "../../scripts/sim/engine.ts";
import { parseMetrics, pyFloat, readVllmPage, renderMetrics } from "../../scripts/sim/metrics.ts";
import { simParams } from "../../scripts/sim/params.ts";

const snap: EngineSnapshot = {
  numRequestsRunning: 3,
  numRequestsWaiting: 7,
  kvCacheUsagePerc: 0.625,
  prefixCacheQueries: 123456789,
  prefixCacheHits: 42,
  promptTokens: 1000,
  generationTokens: 200,
  numPreemptions: 1,
  requestSuccess: 9,
  runningLoraAdapters: ["a", "b"],
  waitingLoraAdapters: [],
};

test("the page parses as Prometheus text and carries vLLM's names, labels and types", () => {
  const p = simParams();
  const text = renderMetrics(snap, p, 2500);
  const page = parseMetrics(text);
  const byName = new Map(page.samples.map((s) => [s.name, s]));
  for (const name of [
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:cache_config_info", "vllm:lora_requests_info",
  ]) assert.ok(byName.has(name), `${name} present`);
  assert.equal(page.types.get("vllm:num_requests_waiting"), "gauge");
  assert.equal(page.types.get("vllm:prefix_cache_hits_total"), "counter");
  // Exact sample lines: labels sorted, Python float formatting.
  assert.ok(text.includes(`vllm:num_requests_waiting{engine="0",model_name="${p.model}"} 7.0\n`));
  assert.ok(text.includes(`vllm:kv_cache_usage_perc{engine="0",model_name="${p.model}"} 0.625\n`));
  assert.ok(text.includes(`vllm:prefix_cache_queries_total{engine="0",model_name="${p.model}"} 1.23456789e+08\n`));
  const cc = byName.get("vllm:cache_config_info")!;
  assert.equal(cc.labels.block_size, "16");
  assert.equal(cc.labels.num_gpu_blocks, String(p.numGpuBlocks));
  assert.equal(cc.labels.enable_prefix_caching, "True");
  assert.equal(cc.value, 1);
  assert.match(text, /vllm:cache_config_info\{block_size="16",[^}]*num_gpu_blocks="29205"[^}]*\} 1\.0\n/);
  const lora = byName.get("vllm:lora_requests_info")!;
  assert.deepEqual(lora.labels, { max_lora: "4", running_lora_adapters: "a,b", waiting_lora_adapters: "" });
  assert.ok(lora.value > 1.7e9, "set_to_current_time(): a Unix timestamp");
});

test("a router's reading of the page matches the snapshot", () => {
  const m = readVllmPage(renderMetrics(snap, simParams(), 0));
  assert.equal(m.waiting, 7);
  assert.equal(m.running, 3);
  assert.equal(m.kvCacheUsage, 0.625);
  assert.equal(m.prefixCacheQueries, 123456789);
  assert.equal(m.prefixCacheHits, 42);
  assert.equal(m.blockSize, 16);
  assert.equal(m.numGpuBlocks, 29205);
  assert.deepEqual(m.runningLoraAdapters, ["a", "b"]);
});

test("without LoRA slots there is no lora_requests_info", () => {
  assert.ok(!renderMetrics(snap, simParams({ maxLoras: 0 }), 0).includes("lora_requests_info"));
});

test("floats print like prometheus_client", () => {
  assert.equal(pyFloat(0), "0.0");
  assert.equal(pyFloat(12), "12.0");
  assert.equal(pyFloat(0.25), "0.25");
  assert.equal(pyFloat(123456), "123456.0");
  assert.equal(pyFloat(1234567), "1.234567e+06");
  assert.equal(pyFloat(1750000000), "1.75e+09");
});

test("the parser rejects malformed lines", () => {
  assert.throws(() => parseMetrics("vllm:x{a=\"1\" 2\n"));
  assert.throws(() => parseMetrics("vllm:x not-a-number\n"));
});
