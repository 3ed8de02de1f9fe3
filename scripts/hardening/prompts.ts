// The prompt mix the fault and soak scenarios send: shared system prompts (16
// of them, 1.5–3 KB), RAG-sized contexts (4–12 KB), multi-turn chats that grow
// by a turn (200 conversations), a few LoRA models, and one-off completions.
// Deterministic for a given generator and request number.
import type { Rng } from "./rng.ts";
import { chatBody, filler, send, type Gateway, type Sent } from "./gateway.ts";

/** A prompt from a realistic mix: shared system prompts, RAG-sized contexts, multi-turn chats, one-offs. */
export function mixedBody(rng: Rng, i: number): { body: string; path: string } {
  const body = mixedText(rng, i);
  return { body, path: body.includes('"prompt":') ? "/v1/completions" : "/v1/chat/completions" };
}

function mixedText(rng: Rng, i: number): string {
  const r = rng.int(10);
  const model = rng.chance(0.85) ? "llama-3.1-8b" : rng.pick(["lora-finance", "lora-legal", "qwen-7b"]);
  if (r < 4) {
    const system = filler(1000 + rng.int(16), 1500 + rng.int(4) * 500);
    return chatBody([["system", system], ["user", `question ${i}: ${filler(i, 60 + rng.int(200))}`]], model);
  }
  if (r < 6) {
    const doc = filler(5000 + rng.int(64), 4000 + rng.int(8000));
    return chatBody([["system", "Answer from the context."], ["user", `${doc}\n\nQ${i}: ${filler(i, 80)}`]], model);
  }
  if (r < 9) {
    const conversation = rng.int(200);
    const turns = 1 + rng.int(8);
    const messages: Array<[string, string]> = [["system", filler(2000, 800)]];
    for (let t = 0; t < turns; t++) {
      messages.push(["user", filler(conversation * 100 + t, 150)]);
      if (t < turns - 1) messages.push(["assistant", filler(conversation * 100 + t + 50, 250)]);
    }
    return chatBody(messages, model);
  }
  return JSON.stringify({ model, prompt: `${i} ${filler(i + 1e6, 100 + rng.int(3000))}`, max_tokens: 32 });
}

/** Sends a mixed-prompt request to its path on worker `vm`. */
export function sendMixed(gw: Gateway, m: { body: string; path: string }, vm: number): Sent {
  return send(gw, m.body, { vm, path: m.path });
}
