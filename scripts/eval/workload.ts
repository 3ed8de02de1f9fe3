// What a workload is: requests with arrival times, their real OpenAI bodies
// and the block hashes the simulated servers will compute for them, all built
// once per workload and shared by every policy's replay. Owns: RequestSpec,
// Workload, the deterministic filler text, and specs built from literal
// prompts. Must not: route, simulate, or read the clock; equal inputs and seed
// give identical workloads.

import { tokenizer as tokenizerNamed, type Tokenizer } from "../sim/hash.ts";
import { applyChatTemplate, chatBody, CHAT_PATH, completionsBody, COMPLETIONS_PATH, type ChatMessage } from "../sim/openai.ts";
import type { Rng } from "../sim/random.ts";

/** Lazily built request text; a trace prompt can be hundreds of kilobytes. */
export interface PromptSource {
  promptText(): string;
  promptPrefix(chars: number): string;
  body(): string;
}

export interface RequestSpec {
  /** Index in the workload, also the engine request id. */
  readonly id: number;
  /** Arrival, ms from the start, before any time scaling. */
  readonly arrivalMs: number;
  readonly model: string;
  readonly adapter: string | null;
  readonly path: string;
  readonly promptTokens: number;
  readonly maxTokens: number;
  /** Chained hashes of the prompt's full KV blocks, as the server computes them. */
  readonly hashes: Float64Array;
  readonly source: PromptSource;
}

export interface Workload {
  readonly name: string;
  readonly description: string;
  /** Sorted by arrivalMs; spec.id is the index. */
  readonly requests: readonly RequestSpec[];
}

// ---- deterministic text ----

// Plain lowercase words and spaces: no character needs JSON escaping, so body
// length and prompt length stay in step, and 4 characters ≈ 1 token holds.
const WORDS = (
  "the of and to in is was for on that with as by at from his her are this be it an not or have which one had " +
  "were but they all their there been has when who will more no if out so said what up its about into than them " +
  "can only other new some could time these two may then do first any my now such like our over man me even most " +
  "made after also did many before must through back years where much your way well down should because each just " +
  "those people how too little state good very make world still own see men work long get here between both life " +
  "being under never day same another know while last might us great old year off come since against go came right " +
  "used take three states himself few house use during without again place american around however home small found " +
  "thought went say part once general high upon school every number water system data model cache token prefix " +
  "router server request kernel memory block engine batch query answer context document section table report value"
).split(" ");

/**
 * One word from `rng`. `skew` in [−1, 1] tilts the choice towards longer
 * (> 0) or shorter (< 0) words: of two draws the longer (shorter) is kept with
 * probability |skew|. Texts drawn with different skews have different
 * characters per token, as prose, lists and technical text do.
 */
export function fillerWord(rng: Rng, skew = 0): string {
  const w = WORDS[rng.u32() % WORDS.length];
  if (skew === 0) return w;
  const v = WORDS[rng.u32() % WORDS.length];
  if (rng.float() >= Math.abs(skew)) return w;
  return (skew > 0) === (v.length > w.length) ? v : w;
}

/** Exactly `chars` characters of word-like text drawn from `rng`. */
export function fillerText(rng: Rng, chars: number, skew = 0): string {
  const parts: string[] = [];
  let len = 0;
  // The joined length is len − 1, so stop only once len is past `chars`.
  while (len <= chars) {
    const w = fillerWord(rng, skew);
    parts.push(w);
    len += w.length + 1;
  }
  return parts.join(" ").slice(0, chars);
}

// ---- specs from literal prompts ----

class LiteralSource implements PromptSource {
  constructor(private readonly text: string, private readonly bodyText: string) {}
  promptText(): string {
    return this.text;
  }
  promptPrefix(chars: number): string {
    return this.text.slice(0, chars);
  }
  body(): string {
    return this.bodyText;
  }
}

export interface LiteralRequest {
  arrivalMs: number;
  model: string;
  /** The served base model name; any other model is a LoRA adapter. */
  baseModel: string;
  maxTokens: number;
  /** Either a completions prompt… */
  prompt?: string;
  /** …or chat messages. */
  messages?: ChatMessage[];
}

/**
 * Build specs (sorted by arrival, ids assigned) from literal prompts, counting
 * tokens and hashing blocks with `tok` (default: the simulator's default
 * tokenizer, hash.ts).
 */
export function literalSpecs(reqs: LiteralRequest[], tok: Tokenizer = tokenizerNamed()): RequestSpec[] {
  const sorted = reqs.map((r, i) => ({ r, i })).sort((a, b) => a.r.arrivalMs - b.r.arrivalMs || a.i - b.i);
  return sorted.map(({ r }, id) => {
    const adapter = r.model === r.baseModel ? null : r.model;
    let text: string;
    let body: string;
    let path: string;
    if (r.messages) {
      text = applyChatTemplate(r.messages);
      body = chatBody(r.model, r.messages, r.maxTokens);
      path = CHAT_PATH;
    } else {
      text = r.prompt ?? "";
      body = completionsBody(r.model, text, r.maxTokens);
      path = COMPLETIONS_PATH;
    }
    return {
      id,
      arrivalMs: r.arrivalMs,
      model: r.model,
      adapter,
      path,
      promptTokens: tok.count(text),
      maxTokens: r.maxTokens,
      hashes: tok.blockHashes(text, adapter),
      source: new LiteralSource(text, body),
    };
  });
}

/**
 * The same workload as another tokenizer would see it: token counts and block
 * hashes recomputed from each prompt's text (which does not change).
 */
export function retokenize(w: Workload, tok: Tokenizer): Workload {
  return {
    name: w.name,
    description: w.description,
    requests: w.requests.map((r) => {
      const text = r.source.promptText();
      return { ...r, promptTokens: tok.count(text), hashes: tok.blockHashes(text, r.adapter) };
    }),
  };
}
