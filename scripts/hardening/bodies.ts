// Generated OpenAI-style request bodies for the body parser's fuzzer: chat and
// completions requests in every shape the extractor distinguishes (string and
// part-array content, token-id prompts, missing or non-string models, models
// past the 512-byte limit, non-object messages), with extra fields holding
// arbitrary and deeply nested values, duplicate keys, shuffled key order and
// random spelling. Mutation and truncation happen in fuzz.ts.
import type { Rng } from "./rng.ts";
import { arr, lit, maybeDuplicate, nested, num, obj, randomNumber, randomString, randomValue, serialize, str, type Json } from "./json-gen.ts";

const MODELS = ["llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "lora-finance", "m", "10.0.0.1:8000"];
const ROLES = ["system", "user", "assistant", "tool", "developer"];

export interface GeneratedBody {
  text: string;
  chat: boolean;
}

function model(rng: Rng): Json {
  const r = rng.int(20);
  if (r < 14) return str(rng.pick(MODELS));
  if (r < 16) return str(randomString(rng, 40, 700));
  if (r === 16) return str("x".repeat(rng.range(500, 530)));
  if (r === 17) return str("");
  return randomValue(rng, 2);
}

function text(rng: Rng): Json {
  return str(randomString(rng, 200, rng.chance(0.01) ? 2 << 20 : 16384));
}

function content(rng: Rng): Json {
  const r = rng.int(10);
  if (r < 6) return text(rng);
  if (r < 8) {
    return arr(Array.from({ length: rng.int(5) }, () => {
      const k = rng.int(8);
      if (k < 4) return obj(shuffle(rng, [["type", str("text")], ["text", text(rng)]]));
      if (k < 6) return obj([["type", str(rng.pick(["image_url", "input_audio", "file", "text"]))], ["image_url", obj([["url", str("https://example.com/a.png")]])]]);
      return randomValue(rng, 2);
    }));
  }
  if (r === 8) return lit("null");
  return randomValue(rng, 2);
}

function message(rng: Rng): Json {
  if (rng.chance(0.03)) return randomValue(rng, 2);
  const entries: Array<[string, Json]> = [];
  if (rng.chance(0.95)) entries.push(["role", rng.chance(0.95) ? str(rng.pick(ROLES)) : randomValue(rng, 1)]);
  if (rng.chance(0.95)) entries.push(["content", content(rng)]);
  if (rng.chance(0.1)) entries.push(["name", str(randomString(rng, 8, 64))]);
  if (rng.chance(0.05)) entries.push(["tool_calls", randomValue(rng, 4)]);
  return obj(maybeDuplicate(rng, shuffle(rng, entries), 0.05, () => randomValue(rng, 1)));
}

function prompt(rng: Rng): Json {
  const r = rng.int(12);
  if (r < 6) return text(rng);
  if (r < 8) return arr(Array.from({ length: rng.int(6) }, () => text(rng)));
  if (r === 8) return arr(Array.from({ length: rng.int(64) }, () => num(rng.int(128000))));
  if (r === 9) return arr(Array.from({ length: rng.int(4) }, () => arr(Array.from({ length: rng.int(16) }, () => num(rng.int(128000))))));
  if (r === 10) return arr([text(rng), rng.chance(0.5) ? num(1) : lit("null"), text(rng)]);
  return randomValue(rng, 3);
}

function extras(rng: Rng): Array<[string, Json]> {
  const out: Array<[string, Json]> = [];
  if (rng.chance(0.6)) out.push(["max_tokens", num(rng.int(4096))]);
  if (rng.chance(0.4)) out.push(["temperature", num(randomNumber(rng))]);
  if (rng.chance(0.3)) out.push(["stream", lit(rng.pick(["true", "false"] as const))]);
  if (rng.chance(0.2)) out.push(["tools", randomValue(rng, 5)]);
  if (rng.chance(0.1)) out.push([randomString(rng, 8, 32), randomValue(rng, 3)]);
  if (rng.chance(0.02)) {
    // Around the reader's nesting limit (512 inside a member), and far past it.
    const depth = rng.pick([510, 511, 512, 513, 514, 1000, 20000]);
    out.push(["deep", nested(rng, depth)]);
  }
  return out;
}

/** One body (valid JSON, though not necessarily a routable request). */
export function generateBody(rng: Rng): GeneratedBody {
  const chat = rng.chance(0.6);
  let entries: Array<[string, Json]> = [];
  if (rng.chance(0.95)) entries.push(["model", model(rng)]);
  if (chat) {
    if (rng.chance(0.95)) {
      entries.push(["messages", rng.chance(0.95) ? arr(Array.from({ length: rng.int(8) }, () => message(rng))) : randomValue(rng, 2)]);
    }
  } else if (rng.chance(0.95)) {
    entries.push(["prompt", prompt(rng)]);
  }
  entries.push(...extras(rng));
  entries = maybeDuplicate(rng, shuffle(rng, entries), 0.1, () => (rng.chance(0.5) ? str(rng.pick(MODELS)) : randomValue(rng, 1)));
  // Rarely a top level that is not an object at all.
  const top = rng.chance(0.01) ? randomValue(rng, 2) : obj(entries);
  const space = rng.pick([0, 0, 0.05, 0.3]);
  return { text: serialize(rng, top, { space, escape: rng.pick([0, 0, 0.01, 0.2]) }), chat };
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  return rng.chance(0.5) ? items : rng.shuffle(items.slice());
}

/** Grammar fragments the mutator inserts into bodies. */
export const BODY_TOKENS = [
  "{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "\\ud800", "\\udc00", "\\u0000", "\\x", "null", "true", "fals", "-", "0", "01",
  "1e", "1.", ".5", "-0", "1e999999", '"model"', '"messages"', '"prompt"', '"role"', '"content"', '"type"', '"text"',
  '{"model":"m"', '"messages":[', '{"role":"user","content":"', '"prompt":[1,2]', "\u0000", "\u00ff", "\ud800", "😀",
  "[".repeat(600), "]".repeat(600), " ", "\n", "\t", "\r",
];
