// Parameters of one simulated model server, their defaults and where each
// default comes from. Owns: the SimParams type, DEFAULT_SIM_PARAMS and their
// validation. Must not: hold state; engines copy what they need.
//
// Defaults model meta-llama/Llama-3.1-8B-Instruct on one NVIDIA H100 80GB
// (tensor parallel 1) under vLLM:
// - Step time and KV capacity come from the BLIS inference simulator's
//   coefficients fitted to vLLM v0.8.4 measurements of exactly that model and
//   GPU (inference-sim/inference-sim, defaults.yaml, entry
//   `id: meta-llama/llama-3.1-8b-instruct, GPU: H100, tensor_parallelism: 1`):
//   step time (µs) = β0 + β1·(uncached prefill tokens in the step)
//   + β2·(decode tokens in the step), β = [5752.7, 17.25, 6.0], and
//   total_kv_blocks = 29,205. The prefill term is ≈58,000 prefill tokens/s,
//   the decode step ≈5.8 ms at small batch.
// - The capacity cross-checks with the Gateway API Inference Extension's own
//   sizing for the same model and GPU (≈500k tokens of KV → 31,250 blocks,
//   pkg/epp/.../approximateprefix/types.go, defaultLRUCapacityPerServer): with
//   128 KiB of KV per token (32 layers × 8 KV heads × 128 dims × 2 × bf16),
//   29,205 × 16 tokens ≈ 57 GiB.
// - Scheduler limits are vLLM's defaults for the OpenAI server on a ≥70 GiB
//   GPU other than A100: max_num_batched_tokens = 8192, max_num_seqs = 1024
//   (vllm/engine/arg_utils.py, get_batch_defaults); max_model_len = 131,072 is
//   Llama 3.1's context.

export interface SimParams {
  /** Served model name: the `model` field that selects the base model; any other name selects a LoRA adapter. */
  model: string;
  /** KV blocks on the GPU (vllm:cache_config_info num_gpu_blocks). One is vLLM's reserved null block. */
  numGpuBlocks: number;
  /** Tokens per KV block (vllm:cache_config_info block_size). The hash geometry in hash.ts assumes 16. */
  blockSize: number;
  /** Token budget of one engine step: prefill chunks and decode tokens together (chunked prefill). */
  maxNumBatchedTokens: number;
  /** Most requests in the running batch. */
  maxNumSeqs: number;
  /** Longest prompt + output accepted; longer requests get HTTP 400, as in vLLM. */
  maxModelLen: number;
  /** β0: fixed cost of one engine step, ms. */
  stepBaseMs: number;
  /** β1: cost per uncached prompt token computed in a step, ms. */
  prefillMsPerToken: number;
  /** β2: cost per decode token in a step, ms. */
  decodeMsPerToken: number;
  /** GPU LoRA slots (vLLM --max-loras); adapters in the running batch never exceed it. 0 disables LoRA metrics. */
  maxLoras: number;
  /** Added to a step that brings an adapter into a GPU slot, ms (an assumption, not a measured figure). */
  loraLoadMs: number;
  /** max_tokens when a request gives none. */
  defaultMaxTokens: number;
}

export const DEFAULT_SIM_PARAMS: Readonly<SimParams> = Object.freeze({
  model: "meta-llama/Llama-3.1-8B-Instruct",
  numGpuBlocks: 29205,
  blockSize: 16,
  maxNumBatchedTokens: 8192,
  maxNumSeqs: 1024,
  maxModelLen: 131072,
  stepBaseMs: 5.7527,
  prefillMsPerToken: 0.01725,
  decodeMsPerToken: 0.006,
  maxLoras: 4,
  loraLoadMs: 10,
  defaultMaxTokens: 16,
});

export function simParams(overrides: Partial<SimParams> = {}): SimParams {
  const p: SimParams = { ...DEFAULT_SIM_PARAMS, ...overrides };
  const positive: (keyof SimParams)[] = [
    "numGpuBlocks", "maxNumBatchedTokens", "maxNumSeqs", "maxModelLen", "defaultMaxTokens",
  ];
  for (const k of positive) {
    const v = p[k] as number;
    if (!Number.isInteger(v) || v <= 0) throw new Error(`sim parameter ${k} must be a positive integer, got ${v}`);
  }
  if (p.blockSize !== 16) throw new Error("sim parameter blockSize must be 16: the hash geometry (hash.ts) is 16 tokens × 4 chars");
  if (p.numGpuBlocks < 2) throw new Error("sim parameter numGpuBlocks must be at least 2 (one is the null block)");
  for (const k of ["stepBaseMs", "prefillMsPerToken", "decodeMsPerToken", "loraLoadMs"] as const) {
    if (!(p[k] >= 0)) throw new Error(`sim parameter ${k} must be >= 0, got ${p[k]}`);
  }
  if (!Number.isInteger(p.maxLoras) || p.maxLoras < 0) throw new Error(`sim parameter maxLoras must be an integer >= 0`);
  return p;
}
