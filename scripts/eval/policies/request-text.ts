// The text each anchor router extracts from a request body before it hashes
// or matches it. Owns: those extraction rules, one function per rule, each
// citing where the router does it. Must not: hash, or know about indexes.
//
// The rules differ in ways that matter for prefix matching: SGLang and AIBrix
// match the message contents joined by spaces (no roles, no chat template), so
// two chats that differ only in a role share a prefix for them; llm-d's
// estimate tokenizer interleaves each role with its content.

import type { RouteRequest } from "../policy.ts";

interface ChatBody {
  messages?: { role?: unknown; content?: unknown }[];
  tools?: unknown;
}

function chatBody(req: RouteRequest): ChatBody | null {
  try {
    const j = JSON.parse(req.body()) as ChatBody;
    return j && Array.isArray(j.messages) ? j : null;
  } catch {
    return null;
  }
}

/** A message content as text: a string as is, content parts as their JSON (both routers write raw JSON for parts). */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (content === undefined || content === null) return "";
  return JSON.stringify(content);
}

/**
 * Completions: the prompt. Chat: the message contents joined by single
 * spaces, empty contents skipped. SGLang SMG crates/protocols/src/chat.rs and
 * completion.rs `extract_text_for_routing`; AIBrix
 * pkg/plugins/gateway/util.go `parseChatMessages` (which joins every message,
 * empty or not; equal for the workloads here, whose contents are never empty).
 */
export function joinedContents(req: RouteRequest): string {
  if (req.path !== "/v1/chat/completions") return req.promptText();
  const body = chatBody(req);
  if (body === null) return "";
  const parts: string[] = [];
  for (const m of body.messages!) {
    const t = contentText(m?.content);
    if (t.length > 0) parts.push(t);
  }
  return parts.join(" ");
}

/**
 * llm-d-router's `estimate` token producer input
 * (pkg/epp/framework/plugins/requestcontrol/dataproducer/tokenizer/estimate.go):
 * completions, the prompt's bytes; chat, the tools as JSON, then for each
 * message its role followed by its content, with no separators.
 */
export function llmdEstimateInput(req: RouteRequest): string {
  if (req.path !== "/v1/chat/completions") return req.promptText();
  const body = chatBody(req);
  if (body === null) return "";
  let s = Array.isArray(body.tools) && body.tools.length > 0 ? JSON.stringify(body.tools) : "";
  for (const m of body.messages!) {
    if (typeof m?.role === "string") s += m.role;
    s += contentText(m?.content);
  }
  return s;
}
