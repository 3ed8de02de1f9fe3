// Fuzz entry (build/fuzz.wasm, `asc assembly/fuzz.ts --target fuzz`): the four
// parsers that read outside input, each behind one thin export that runs it on
// [ptr, ptr+len) and returns its outcome, plus the probes the Node driver
// (scripts/hardening/fuzz.ts) checks results and leaks with. Never shipped and
// never loaded by Envoy: it has no proxy_on_* exports, and its only import is
// proxy_log, through the same abort handler as the filter, so an abort shows up
// as a logged message followed by a trap. It is compiled with the release
// target's flags, so the code under test is the code that ships.
//
// The driver writes each input so that it ends exactly at the end of linear
// memory (in pages it grew itself, outside the heap): any read past the input
// is an out-of-bounds trap. Module-level state here is the parsers' own
// long-lived objects, as in the filter, where they live as long as the VM.
import "./abi/abort";
import { ROOT } from "~lib/rt/tlsf";
import { PromptExtractor } from "./router/request";
import { parseConfig, Config } from "./router/config";
import { Dialect, ServerLoad, Signal, SIGNAL_COUNT, MetricNames, dialectNamed, explicitDialect } from "./metrics/dialect";
import { ParseOutcome } from "./metrics/prometheus";
import { BlockChain, xxh64 } from "./router/hash";
import { readClusterHosts } from "./router/admin_clusters";
import { MemberRecordWriter } from "./router/membership";

// ---------------------------------------------------------------------------
// Request bodies (router/request.ts)

let extractor = new PromptExtractor(256 * 64);

/** Rebuilds the extractor with another prompt cap (maxPrefixBlocks × hashBlockSize). */
export function fuzz_body_setup(promptCap: u32): void {
  extractor.free();
  extractor = new PromptExtractor(<usize>promptCap);
}

/** Extract.* outcome of one body of `api` (request.ts Api: 0 completions, 1 chat, 2 responses, 3 messages). */
export function fuzz_body(ptr: usize, len: usize, api: i32): i32 {
  return extractor.extract(ptr, len, api & 3);
}
export function fuzz_body_salt_len(): usize { return extractor.salt.len; }

export function fuzz_body_model_ptr(): usize { return extractor.model.ptr; }
export function fuzz_body_model_len(): usize { return extractor.model.len; }
export function fuzz_body_prompt_ptr(): usize { return extractor.prompt.ptr; }
export function fuzz_body_prompt_len(): usize { return extractor.prompt.len; }
export function fuzz_body_prompt_cap(): usize { return extractor.prompt.cap; }

// ---------------------------------------------------------------------------
// Plugin configuration (router/config.ts)

let lastConfig: Config | null = null;
let lastError: string = "";
/** The last string handed out (kept alive until the next call). */
let scratch: ArrayBuffer = new ArrayBuffer(0);

/** 1 if the configuration is valid, 0 if rejected (the reason is in fuzz_config_error). */
export function fuzz_config(ptr: usize, len: usize): i32 {
  const result = parseConfig(ptr, len);
  lastConfig = result.config;
  lastError = result.error;
  return result.config !== null ? 1 : 0;
}

function handOut(s: string): usize {
  scratch = String.UTF8.encode(s);
  return changetype<usize>(scratch);
}

/** The last string handed out by a fuzz_config_* getter: its length in bytes. */
export function fuzz_string_len(): i32 { return scratch.byteLength; }

export function fuzz_config_error(): usize { return handOut(lastError); }
export function fuzz_config_endpoints(): i32 { return lastConfig !== null ? lastConfig!.endpoints.length : -1; }
/** 1 when the accepted configuration follows a cluster (discovery) instead of listing endpoints. */
export function fuzz_config_discovery(): i32 { return lastConfig !== null && lastConfig!.discovery !== null ? 1 : 0; }
export function fuzz_config_address(i: i32): usize { return handOut(lastConfig!.endpoints[i].address); }
export function fuzz_config_metrics_address(i: i32): usize { return handOut(lastConfig!.endpoints[i].metricsAddress); }
export function fuzz_config_header(): usize { return handOut(lastConfig!.destinationHeader); }
export function fuzz_config_paths(): i32 { return lastConfig!.paths.length; }
export function fuzz_config_path(i: i32): usize { return handOut(lastConfig!.paths[i]); }
export function fuzz_config_metrics_path(): usize {
  const m = lastConfig!.metrics;
  return handOut(m !== null ? m.path : "");
}
/** Prompt bytes a request may hash, and the body limit: what bounds per-request work. */
export function fuzz_config_prompt_cap(): u32 { return <u32>lastConfig!.promptCap(); }
export function fuzz_config_max_body(): i32 { return lastConfig!.maxBodyBytes; }

// ---------------------------------------------------------------------------
// Prometheus pages (metrics/prometheus.ts + dialect.ts)

/** 0 vllm, 1 sglang, 2 trtllm, 3 explicit names with label matchers. */
const dialects: Dialect[] = [
  dialectNamed("vllm")!,
  dialectNamed("sglang")!,
  dialectNamed("trtllm")!,
  explicitNames(),
];
const server = new ServerLoad();
let outcome: ParseOutcome | null = null;

function explicitNames(): Dialect {
  const names = new MetricNames();
  names.queue = "nv_trt_llm_request_metrics{request_type=\"waiting\"}";
  names.running = "nv_trt_llm_request_metrics{request_type=\"scheduled\"}";
  names.kvUtilization = "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\"}";
  names.cacheInfo = "custom:cache_config_info";
  names.prefixQueries = "custom:prefix_queries";
  names.prefixHits = "custom:prefix_hits";
  names.lora = "custom:lora_requests_info";
  return explicitDialect(names).dialect!;
}

/** Parses one page; returns ServerLoad.present (bit per signal found). */
export function fuzz_metrics(ptr: usize, len: usize, dialect: i32): u32 {
  outcome = dialects[dialect].parseLoad(ptr, len, server);
  return server.present;
}

export function fuzz_metrics_cut(): u32 { return server.cutOff; }
export function fuzz_metrics_lines(): i32 { return outcome!.lines; }
export function fuzz_metrics_sample_lines(): i32 { return outcome!.sampleLines; }
export function fuzz_metrics_samples(): i32 { return outcome!.samples; }
export function fuzz_metrics_malformed(): i32 { return outcome!.malformed; }
export function fuzz_metrics_truncated(): i32 { return outcome!.truncated ? 1 : 0; }
export function fuzz_metrics_ignored(): i32 { return server.ignoredSamples; }
export function fuzz_metrics_max_lora(): i32 { return server.maxLora; }

/** A signal's value as parsed (meaningful only when its bit is in `present`). */
export function fuzz_metrics_value(signal: i32): f64 {
  switch (signal) {
    case Signal.Queue: return server.waiting;
    case Signal.Running: return server.running;
    case Signal.KvUtilization: return server.kvUtilization;
    case Signal.BlockSize: return <f64>server.blockSizeTokens;
    case Signal.NumBlocks: return <f64>server.numGpuBlocks;
    case Signal.PrefixQueries: return server.prefixQueries;
    case Signal.PrefixHits: return server.prefixHits;
    case Signal.StartTime: return server.startTimeSeconds;
    default: return NaN;
  }
}

export function fuzz_signal_count(): i32 { return SIGNAL_COUNT; }

/** Running (0) or waiting (1) LoRA adapters: how many names, and name i. */
export function fuzz_metrics_adapters(list: i32): i32 {
  return (list == 0 ? server.runningAdapters : server.waitingAdapters).count;
}
export function fuzz_metrics_adapter_len(list: i32, i: i32): i32 {
  return (list == 0 ? server.runningAdapters : server.waitingAdapters).nameLength(i);
}
export function fuzz_metrics_adapters_overflowed(list: i32): i32 {
  return (list == 0 ? server.runningAdapters : server.waitingAdapters).overflowed ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Probes

/** xxHash64 of [ptr, ptr+len): the router's block and endpoint-key hash, for JS-side checks. */
export function fuzz_xxh64(ptr: usize, len: usize, seed: u64): u64 {
  return xxh64(ptr, len, seed);
}

/** Drops what the exports above keep alive, so a heap measurement sees only the parsers' own state. */
export function fuzz_release(): void {
  lastConfig = null;
  lastError = "";
  scratch = new ArrayBuffer(0);
  outcome = null;
}

// TLSF layout (~lib/rt/tlsf.ts, wasm32): the free lists' heads start at
// HL_START in the root, one per (first level, second level) pair.
// @ts-ignore: decorator
@inline const SL_BITS: u32 = 4;
// @ts-ignore: decorator
@inline const FL_BITS: u32 = 23;
// @ts-ignore: decorator
@inline const HL_START: usize = 96;
// @ts-ignore: decorator
@inline const BLOCK_OVERHEAD: usize = 4;
// @ts-ignore: decorator
@inline const TAGS_MASK: usize = 3;

/**
 * Runs a full garbage collection, then returns the bytes on the TLSF free
 * lists (block headers included). With the heap's size known to the driver,
 * size − free is the heap in use: raw heap.alloc buffers and live objects.
 */
export function fuzz_heap_free(): usize {
  __collect();
  const root = changetype<usize>(ROOT);
  if (root == 0) return 0;
  let free: usize = 0;
  for (let fl: u32 = 0; fl < FL_BITS; fl++) {
    for (let sl: u32 = 0; sl < (1 << SL_BITS); sl++) {
      let block = load<usize>(root + ((<usize>((fl << SL_BITS) + sl)) << 2), HL_START);
      while (block != 0) {
        free += (load<usize>(block) & ~TAGS_MASK) + BLOCK_OVERHEAD;
        block = load<usize>(block, 8); // Block.next (after mmInfo and prev)
      }
    }
  }
  return free;
}

/** Where the heap starts: the TLSF root, then its first block. */
export function fuzz_heap_base(): usize { return __heap_base; }

/** One block chain for JS-side checks, as router.ts decide() runs it: start with the model's hash, then one block at a time. */
const chain = new BlockChain();
const trial = new BlockChain();
export function fuzz_chain_start(seed: u64): void { chain.start(seed); }
/** The next block's chained hash (the chain moves on). */
export function fuzz_chain_next(ptr: usize, len: usize): u64 { return chain.next(ptr, len); }

/**
 * For the hash-flooding check (scripts/hardening/abuse.ts): rewrites the 8
 * bytes at ptr+at as the hex digits of a counter until the chain's hash of
 * the block [ptr, ptr+len) has `target` in the bits of `mask`, as an
 * attacker grinding prompt blocks offline would. The chain moves on by that
 * block and its hash is returned (the bytes stay); 0 and no move if no
 * counter gave it.
 */
export function fuzz_chain_grind(ptr: usize, len: usize, at: usize, mask: u64, target: u64, maxTries: u32): u64 {
  for (let i: u32 = 0; i < maxTries; i++) {
    for (let d: u32 = 0; d < 8; d++) {
      const nibble = (i >> (28 - (d << 2))) & 15;
      store<u8>(ptr + at + <usize>d, <u8>(nibble < 10 ? 0x30 + nibble : 0x57 + nibble));
    }
    trial.copyFrom(chain);
    const h = trial.next(ptr, len);
    if ((h & mask) == target) {
      chain.copyFrom(trial);
      return h;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Envoy's admin /clusters text (router/admin_clusters.ts)

/** The cluster every admin input is read for; the driver's generator and oracle use the same name. */
const ADMIN_CLUSTER = String.UTF8.encode("outbound|8000||vllm.models.svc.cluster.local");
export const FUZZ_ADMIN_MAX_HOSTS: i32 = 64;
const members = new MemberRecordWriter(FUZZ_ADMIN_MAX_HOSTS);

/** ClustersAnswer of reading [ptr, ptr+len); the record is at fuzz_admin_record_ptr for fuzz_admin_record_len bytes. */
export function fuzz_admin(ptr: usize, len: usize): i32 {
  return readClusterHosts(ptr, len, ADMIN_CLUSTER, members);
}
export function fuzz_admin_record_ptr(): usize { return members.sink.ptr; }
export function fuzz_admin_record_len(): usize { return members.sink.len; }
export function fuzz_admin_overflow(): i32 { return members.overflow; }
