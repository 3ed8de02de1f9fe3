// The body parser's reference: what PromptExtractor.extract must answer for a
// body, computed from the JSON value with JavaScript's own JSON.parse, so the
// fuzzer checks the outcome and the canonical model and prompt bytes of every
// valid-UTF-8 input, not only that nothing traps. It follows the contract in
// assembly/router/request.ts (outcome order, last key wins, the 512-byte model
// limit, the nesting limit, the prompt cap and where extraction stops once the
// cap is reached); the layout of the canonical prompt is defined there.
//
// Inputs that are not valid UTF-8 have no JavaScript value to compare with:
// for those only the invariants apply (fuzz.ts). Neither have, here, the parts
// of the layout taken from the JSON text as sent rather than its value (a
// non-text part's digest, the tools' compact JSON, token ids spelled as
// numbers), nor the Responses and Messages APIs: bodies with any of them are
// not compared (tests/unit/request.spec.ts pins those layouts).

export const Extract = { Ok: 0, NotJson: 1, NoModel: 2, NoPrompt: 3, TokenPrompt: 4 } as const;
export const OUTCOME_NAMES = ["ok", "not_json", "no_model", "no_prompt", "token_prompt"];

const MAX_MODEL_BYTES = 512;
/** JsonReader.MAX_DEPTH: containers inside one member value of the top-level object. */
const MAX_MEMBER_DEPTH = 512;

export interface Expected {
  outcome: number;
  model?: Uint8Array;
  prompt?: Uint8Array;
}

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** The expected result, or null when the input has no JavaScript value to compare with. */
export function expectedBody(bytes: Uint8Array, chat: boolean, promptCap: number): Expected | null {
  return expectedOf(bytes, chat, promptCap);
}

/** Thrown by the canonical walk when it meets a part of the layout it does not compute. */
class NotCompared extends Error {}

function expectedOf(bytes: Uint8Array, chat: boolean, promptCap: number): Expected | null {
  let text: string;
  try {
    text = strict.decode(bytes);
  } catch {
    return null;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    if (e instanceof RangeError) return null; // too deep for V8 itself
    return { outcome: Extract.NotJson };
  }
  if (!isObject(value)) return { outcome: Extract.NotJson };
  // From the text, not the value: a member later overwritten by a duplicate key is still read.
  if (textDepth(text) - 1 > MAX_MEMBER_DEPTH) return { outcome: Extract.NotJson };
  const model = value.model;
  if (typeof model !== "string") return { outcome: Extract.NoModel };
  const modelBytes = encoder.encode(model);
  if (modelBytes.length === 0 || modelBytes.length > MAX_MODEL_BYTES) return { outcome: Extract.NoModel };
  const key = chat ? "messages" : "prompt";
  if (!Object.prototype.hasOwnProperty.call(value, key)) return { outcome: Extract.NoPrompt };
  if (chat && Array.isArray(value.tools)) return null;
  const sink = new Sink(promptCap);
  let outcome: number;
  try {
    outcome = chat ? canonicalChat(value[key], sink) : canonicalCompletion(value[key], sink);
  } catch (e) {
    if (e instanceof NotCompared) return null;
    throw e;
  }
  return outcome === Extract.Ok ? { outcome, model: modelBytes, prompt: sink.bytes() } : { outcome };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deepest nesting of containers in valid JSON text. */
function textDepth(text: string): number {
  let d = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++d > max) max = d;
    } else if (c === 0x5d || c === 0x7d) {
      d--;
    }
  }
  return max;
}

/** How json.ts canonicalStringInto writes a string's value: as JSON.stringify spells it, without the quotes. */
export function canonicalSpelling(s: string): string {
  return JSON.stringify((s as unknown as { toWellFormed(): string }).toWellFormed()).slice(1, -1);
}

/** ByteSink: writes past the cap are dropped. */
class Sink {
  private readonly parts: Uint8Array[] = [];
  len = 0;
  constructor(readonly cap: number) {}
  full(): boolean {
    return this.len >= this.cap;
  }
  write(b: Uint8Array): void {
    const take = Math.min(b.length, this.cap - this.len);
    if (take <= 0) return;
    this.parts.push(take === b.length ? b : b.subarray(0, take));
    this.len += take;
  }
  byte(c: number): void {
    this.write(Uint8Array.of(c));
  }
  /** A string of the prompt, in the extractor's canonical spelling: JSON.stringify's, a lone surrogate as U+FFFD. */
  string(s: string): void {
    if (!this.full()) this.write(encoder.encode(canonicalSpelling(s)));
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

function canonicalCompletion(prompt: unknown, sink: Sink): number {
  if (typeof prompt === "string") {
    sink.string(prompt);
    return Extract.Ok;
  }
  if (!Array.isArray(prompt)) return Extract.NoPrompt;
  if (typeof prompt[0] === "number") throw new NotCompared();
  let count = 0;
  for (const item of prompt) {
    if (typeof item === "number" || Array.isArray(item)) return Extract.TokenPrompt;
    if (typeof item !== "string") return Extract.NoPrompt;
    if (count > 0) sink.byte(0x00);
    sink.string(item);
    count++;
    if (sink.full()) break;
  }
  return count > 0 ? Extract.Ok : Extract.NoPrompt;
}

function canonicalChat(messages: unknown, sink: Sink): number {
  if (!Array.isArray(messages)) return Extract.NoPrompt;
  let count = 0;
  for (const m of messages) {
    if (sink.full()) break;
    if (!isObject(m)) return Extract.NoPrompt;
    sink.string(typeof m.role === "string" ? m.role : "");
    sink.byte(0x1f);
    canonicalContent(m.content, sink);
    sink.byte(0x1e);
    count++;
  }
  return count > 0 ? Extract.Ok : Extract.NoPrompt;
}

function canonicalContent(content: unknown, sink: Sink): void {
  if (typeof content === "string") {
    sink.string(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (sink.full()) break;
    if (!isObject(part)) continue;
    const type = typeof part.type === "string" ? part.type : "";
    if ((type === "text" || type === "input_text" || type === "output_text") && typeof part.text === "string") {
      sink.string(part.text);
    } else {
      throw new NotCompared();
    }
  }
}
