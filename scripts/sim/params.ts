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
// - Step-time model (stepModel): "linear" is BLIS's fit above and nothing
//   else, so a step costs the same whatever the requests' context lengths.
//   "context" (the default) adds what the fit leaves out and physics imposes,
//   in the shape Vidur uses (microsoft/vidur,
//   vidur/execution_time_predictor/sklearn_execution_time_predictor.py: the
//   prefill attention kernel predicted from (kv_cache_size, chunk_size²), the
//   decode attention kernel from (batch_size, kv_cache_size)):
//   · prefill attention is compute-bound: a chunk of n new tokens after c
//     tokens already in the KV cache (cached prefix or earlier chunks) does
//     n·c + n(n+1)/2 query-key pairs, each 4 × 32 layers × 32 heads × 128
//     dims = 524,288 FLOPs; at H100 SXM's 989.5 dense bf16 TFLOPS × 0.65 MFU
//     (BLIS's roofline hardware_config for H100, mfuPrefill) that is
//     8.15e-7 ms per pair;
//   · decode attention is memory-bound: each decode token reads its whole
//     context's KV, 128 KiB per token (32 layers × 8 KV heads × 128 dims × K,V
//     × 2 bytes); at 3.35 TB/s × 0.72 (BLIS's BwEffConstant) that is
//     5.43e-5 ms per context token per step.
//   β1 (17.25 µs per token ≈ 16 GFLOP per token at ~930 TFLOPS) is already
//   the dense layers' cost at near peak, so the attention terms come on top
//   rather than out of it. Cached prompt tokens still cost no compute, but
//   they now make the uncached tokens after them dearer, as on a real GPU.
// - Scheduler limits are vLLM's defaults for the OpenAI server on a ≥70 GiB
//   GPU other than A100: max_num_batched_tokens = 8192, max_num_seqs = 1024
//   (vllm/engine/arg_utils.py, get_batch_defaults); max_model_len = 131,072 is
//   Llama 3.1's context.

export type StepModel = "linear" | "context";
export const STEP_MODELS: readonly StepModel[] = ["linear", "context"];

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
  /** "linear": BLIS's β0 + β1·prefill + β2·decode only; "context": plus attention over the context (above). */
  stepModel: StepModel;
  /** Prefill attention, ms per (new token, token attended to) pair; used by the "context" model. */
  attnPrefillMsPerPair: number;
  /** Decode attention, ms per context token read by one decode token; used by the "context" model. */
  attnDecodeMsPerContextToken: number;
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
  stepModel: "context",
  attnPrefillMsPerPair: 524288 / (989.5e12 * 0.65) * 1000,
  attnDecodeMsPerContextToken: 131072 / (3.35e12 * 0.72) * 1000,
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
  if (!STEP_MODELS.includes(p.stepModel)) throw new Error(`sim parameter stepModel must be one of ${STEP_MODELS.join(", ")}, got ${p.stepModel}`);
  for (const k of ["stepBaseMs", "prefillMsPerToken", "decodeMsPerToken", "loraLoadMs", "attnPrefillMsPerPair", "attnDecodeMsPerContextToken"] as const) {
    if (!(p[k] >= 0)) throw new Error(`sim parameter ${k} must be >= 0, got ${p[k]}`);
  }
  if (!Number.isInteger(p.maxLoras) || p.maxLoras < 0) throw new Error(`sim parameter maxLoras must be an integer >= 0`);
  return p;
}
