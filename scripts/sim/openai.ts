// What the simulated server makes of an OpenAI request body, and the bodies
// the workloads send. Owns: body parsing for /v1/completions and
// /v1/chat/completions, the chat template that turns messages into the prompt
// the server tokenizes and hashes, and the response/SSE shapes. Must not:
// schedule or hash (engine.ts, hash.ts).
//
// The chat template is Llama 3's (header tokens around each message, then an
// open assistant header), written out as text: what matters for routing is
// that equal message prefixes give equal prompt prefixes, as real templates do.
// A `model` other than the served model names a LoRA adapter, which is how
// vLLM selects adapters (unknown names are accepted here rather than 404).

import { tokensOf } from "./hash.ts";
import type { SimParams } from "./params.ts";

export const COMPLETIONS_PATH = "/v1/completions";
export const CHAT_PATH = "/v1/chat/completions";

export interface ChatMessage {
  role: string;
  content: string | { type: string; text?: string }[];
}

export interface ParsedRequest {
  model: string;
  adapter: string | null;
  /** The prompt as the server tokenizes it (chat: after the template). */
  promptText: string;
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
}

export class BadRequest extends Error {}

function contentText(c: ChatMessage["content"]): string {
  if (typeof c === "string") return c;
  if (!Array.isArray(c)) throw new BadRequest("message content must be a string or an array of parts");
  return c.map((part) => (part && part.type === "text" && typeof part.text === "string" ? part.text : "")).join("");
}

/** Llama 3 chat template, ending with an open assistant turn (add_generation_prompt). */
export function applyChatTemplate(messages: readonly ChatMessage[]): string {
  let s = "<|begin_of_text|>";
  for (const m of messages) s += `<|start_header_id|>${m.role}<|end_header_id|>\n\n${contentText(m.content)}<|eot_id|>`;
  return s + "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

export function parseRequest(path: string, body: string, p: SimParams): ParsedRequest {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body);
  } catch {
    throw new BadRequest("the body is not JSON");
  }
  if (j === null || typeof j !== "object" || Array.isArray(j)) throw new BadRequest("the body is not a JSON object");
  const model = j.model;
  if (typeof model !== "string" || model === "") throw new BadRequest("model is required");
  let promptText: string;
  if (path === COMPLETIONS_PATH) {
    const pr = j.prompt;
    if (typeof pr === "string") promptText = pr;
    else if (Array.isArray(pr) && pr.length === 1 && typeof pr[0] === "string") promptText = pr[0];
    else throw new BadRequest("prompt must be a string (or an array of one string)");
  } else if (path === CHAT_PATH) {
    const msgs = j.messages;
    if (!Array.isArray(msgs) || msgs.length === 0) throw new BadRequest("messages must be a non-empty array");
    for (const m of msgs) {
      if (!m || typeof m !== "object" || typeof (m as ChatMessage).role !== "string") throw new BadRequest("each message needs a role");
    }
    promptText = applyChatTemplate(msgs as ChatMessage[]);
  } else {
    throw new BadRequest(`unknown path ${path}`);
  }
  const mt = j.max_tokens ?? j.max_completion_tokens ?? p.defaultMaxTokens;
  if (typeof mt !== "number" || !Number.isInteger(mt) || mt < 1) throw new BadRequest("max_tokens must be a positive integer");
  return {
    model,
    adapter: model === p.model ? null : model,
    promptText,
    promptTokens: tokensOf(promptText.length),
    maxTokens: mt,
    stream: j.stream === true,
  };
}

// ---- bodies the workloads send (JSON text built once, as a client would) ----

/** Completions body. `prompt` must need no JSON escaping beyond what JSON.stringify does. */
export function completionsBody(model: string, prompt: string, maxTokens: number): string {
  return `{"model":${JSON.stringify(model)},"prompt":${JSON.stringify(prompt)},"max_tokens":${maxTokens},"ignore_eos":true}`;
}

export function chatBody(model: string, messages: readonly ChatMessage[], maxTokens: number): string {
  return JSON.stringify({ model, messages, max_tokens: maxTokens, ignore_eos: true });
}

// ---- responses ----

/** Generated text of n tokens (4 characters each). */
export function syntheticText(n: number): string {
  return "tok ".repeat(n);
}

export function completionResponse(id: string, path: string, r: ParsedRequest, created: number, cachedTokens: number): string {
  const usage = {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.maxTokens,
    total_tokens: r.promptTokens + r.maxTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
  const text = syntheticText(r.maxTokens);
  if (path === CHAT_PATH) {
    return JSON.stringify({
      id, object: "chat.completion", created, model: r.model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "length" }],
      usage,
    });
  }
  return JSON.stringify({
    id, object: "text_completion", created, model: r.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: "length" }],
    usage,
  });
}

/** One SSE `data:` event carrying `tokens` generated tokens (finish set on the last). */
export function streamChunk(id: string, path: string, model: string, created: number, tokens: number, finish: boolean): string {
  const text = syntheticText(tokens);
  const reason = finish ? "length" : null;
  const chunk =
    path === CHAT_PATH
      ? { id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta: { content: text }, finish_reason: reason }] }
      : { id, object: "text_completion", created, model, choices: [{ index: 0, text, logprobs: null, finish_reason: reason }] };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}
