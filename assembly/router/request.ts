// Extracts the model and a canonical prompt from an inference request body:
// OpenAI completions, chat completions and Responses, and Anthropic Messages.
//
// The canonical prompt is what the prefix index hashes. It follows the order
// in which the engine's chat template renders the request, so that two
// requests share a canonical prefix exactly when they share a rendered one:
// system text first, then tools, then the conversation. It depends only on the
// JSON value, not its spelling, for text (key order, whitespace and escapes
// such as \u00e9 vs é do not change it): every string is written as
// JavaScript's JSON.stringify spells its value, without the quotes
// (json.ts canonicalStringInto), so a line break is the two bytes \n. Most
// clients send that spelling already, so text is copied as it came, never
// decoded. Layout (each message is role 0x1F content 0x1E):
//
//   completions:  prompt                         (a string)
//                 p1 0x00 p2 0x00 … pn           (an array of strings)
//                 0x1B t1 t2 …                   (token ids: u32 little-endian each)
//   chat:         the leading system/developer messages, then tools, then the
//                 other messages, in order
//   responses:    "system" 0x1F instructions 0x1E, tools, then input: a string
//                 as one user message; a list item with a role as a message;
//                 any other item 0x1D type 0x1C digest 0x1E
//   messages:     "system" 0x1F system 0x1E (a string or text blocks), tools,
//                 then the messages
//   tools:        0x1C + the tools value as compact JSON (whitespace dropped,
//                 strings in canonical spelling) + 0x1E
//   content:      the string, or its parts in order: a text part (text,
//                 input_text, output_text) contributes its text, any other
//                 part (an image, a file, a tool call or result) 0x1D + its
//                 type + 0x1C + the xxHash64 of its JSON text, so that equal
//                 text with different images does not match
//
// Chat templates checked for where tools go (README "What the filter hashes"):
// Llama 3.1/3.2 and Qwen 2.5/3 render the tool list inside or right after the
// system message, before the conversation; Mistral's puts it before the last
// user message, which this layout does not follow.
//
// `cache_salt` (vLLM: a per-tenant salt mixed into its block hashes) is read
// into `salt`; the router folds it into the chain's seed, so requests with
// different salts never match. Only the first `prompt.cap` bytes are produced
// (maxPrefixBlocks × block size); past that the body is still validated but no
// longer copied. The body is never modified. Nothing here allocates per
// request: the reader and the sinks belong to the extractor, which lives as
// long as the VM.
import { ByteSink } from "./bytes";
import { JsonReader, JsonKind, StringSpan } from "./json";
import { xxh64 } from "./hash";
import { MAX_MODEL_BYTES, MAX_SALT_BYTES } from "./limits";

/** Which API a body is for, from the path it was sent to (Router.apiOfPath). */
export namespace Api {
  export const Completions: i32 = 0;
  export const Chat: i32 = 1;
  export const Responses: i32 = 2;
  export const Messages: i32 = 3;
}

/** Why a body was not routed; the values index the pass-through counters. */
export namespace Extract {
  export const Ok: i32 = 0;
  export const NotJson: i32 = 1;
  export const NoModel: i32 = 2;
  export const NoPrompt: i32 = 3;
  export const TokenPrompt: i32 = 4;
}


// @ts-ignore: decorator
@inline const ROLE_END: u32 = 0x1F;
// @ts-ignore: decorator
@inline const MESSAGE_END: u32 = 0x1E;
// @ts-ignore: decorator
@inline const OTHER_PART: u32 = 0x1D;
// @ts-ignore: decorator
@inline const PROMPT_SEPARATOR: u32 = 0x00;
// @ts-ignore: decorator
@inline const DIGEST_MARK: u32 = 0x1C;
// @ts-ignore: decorator
@inline const TOKEN_IDS: u32 = 0x1B;
// @ts-ignore: decorator
@inline const CLOSE_OBJECT: u32 = 0x7D;
// @ts-ignore: decorator
@inline const CLOSE_ARRAY: u32 = 0x5D;

/** Seeds the hash of a response id, so that it never equals a session's (stream.ts). */
const RESPONSE_ID_SEED: u64 = 0x7265737030494421;

/** The hash a response id is remembered and looked up by: the id's bytes as they appear in JSON. */
export function responseIdHash(p: usize, n: usize): u64 {
  return n == 0 ? 0 : xxh64(p, n, RESPONSE_ID_SEED) | 1;
}

@final
export class PromptExtractor {
  readonly reader: JsonReader = new JsonReader();
  readonly model: ByteSink = new ByteSink(MAX_MODEL_BYTES);
  readonly salt: ByteSink = new ByteSink(MAX_SALT_BYTES);
  readonly prompt: ByteSink;
  /**
   * Responses: the hash of `previous_response_id` (its JSON text between the
   * quotes, as a response's id is read from the response), 0 when absent.
   */
  previousResponse: u64 = 0;
  /** Position of the request's tools value while the prompt is written; 0 when none is pending. */
  private toolsAt: usize = 0;
  // The strings a message or a content part names, kept while the rest of it is read.
  private readonly role: StringSpan = new StringSpan();
  private readonly partType: StringSpan = new StringSpan();
  private readonly partText: StringSpan = new StringSpan();

  constructor(promptCap: usize) {
    this.prompt = new ByteSink(promptCap);
  }

  /** Frees both sinks (raw heap memory); the extractor must not be used afterwards. */
  free(): void {
    this.model.free();
    this.salt.free();
    this.prompt.free();
  }

  /** Parses [ptr, ptr+len) as a body of `api`; on Ok, `model`, `prompt` and `salt` hold the canonical bytes. */
  extract(ptr: usize, len: usize, api: i32): i32 {
    const r = this.reader;
    r.reset(ptr, len);
    this.model.reset();
    this.salt.reset();
    this.prompt.reset();
    this.previousResponse = 0;
    this.toolsAt = 0;
    let hasModel = false;
    // Positions of the values that make the prompt (last occurrence wins); 0 = absent.
    let promptAt: usize = 0;
    let toolsAt: usize = 0;
    let systemAt: usize = 0;
    const promptKey = api == Api.Chat || api == Api.Messages ? "messages" : api == Api.Responses ? "input" : "prompt";
    const systemKey = api == Api.Responses ? "instructions" : "system";
    if (!r.beginObject()) return Extract.NotJson;
    let first = true;
    while (r.more(CLOSE_OBJECT, first)) {
      first = false;
      if (!r.readKey()) break;
      if (r.stringEquals("model")) {
        // Last occurrence wins, as in JSON.parse and Go's encoding/json.
        hasModel = false;
        if (r.peekKind() == JsonKind.String) {
          if (!r.readString()) break;
          this.model.reset();
          r.decodeStringInto(this.model);
          hasModel = this.model.len > 0 && this.model.dropped == 0;
        } else if (!r.skipValue()) {
          break;
        }
      } else if (r.stringEquals(promptKey)) {
        promptAt = r.peek() != 0 ? r.pos : 0;
        if (!r.skipValue()) break;
      } else if (api != Api.Completions && r.stringEquals("tools")) {
        toolsAt = r.peekKind() == JsonKind.Array ? r.pos : 0;
        if (!r.skipValue()) break;
      } else if ((api == Api.Responses || api == Api.Messages) && r.stringEquals(systemKey)) {
        systemAt = r.peek() != 0 ? r.pos : 0;
        if (!r.skipValue()) break;
      } else if (api == Api.Responses && r.stringEquals("previous_response_id")) {
        this.previousResponse = 0;
        if (r.peekKind() == JsonKind.String) {
          if (!r.readString()) break;
          this.previousResponse = responseIdHash(r.strStart, r.strEnd - r.strStart);
        } else if (!r.skipValue()) {
          break;
        }
      } else if (r.stringEquals("cache_salt")) {
        this.salt.reset();
        if (r.peekKind() == JsonKind.String) {
          if (!r.readString()) break;
          r.decodeStringInto(this.salt);
        } else if (!r.skipValue()) {
          break;
        }
      } else if (!r.skipValue()) {
        break;
      }
    }
    if (r.failed || !r.atEnd()) return Extract.NotJson;
    if (!hasModel) return Extract.NoModel;
    if (promptAt == 0) return Extract.NoPrompt;
    // Second walks over the (already validated) values only.
    if (api == Api.Completions) {
      r.pos = promptAt;
      return this.canonicalCompletion();
    }
    this.toolsAt = toolsAt;
    if (api == Api.Responses) return this.canonicalResponses(systemAt, promptAt);
    if (api == Api.Messages && systemAt != 0) {
      r.pos = systemAt;
      this.writeSystem();
    }
    r.pos = promptAt;
    return this.canonicalChat();
  }

  /** "system" 0x1F content 0x1E from a string or a list of text blocks. */
  private writeSystem(): void {
    const kind = this.reader.peekKind();
    if (kind == JsonKind.String || kind == JsonKind.Array) this.writeMessage("system");
  }

  /** role 0x1F content 0x1E, the content being the value at the reader. */
  private writeMessage(role: string): void {
    this.writeAscii(role);
    this.prompt.writeByte(ROLE_END);
    this.canonicalContent();
    this.prompt.writeByte(MESSAGE_END);
  }

  private writeAscii(s: string): void {
    for (let i = 0; i < s.length; i++) this.prompt.writeByte(<u32>s.charCodeAt(i));
  }

  /** The tools, if any are pending: 0x1C + compact JSON + 0x1E, once. */
  private flushTools(): void {
    const at = this.toolsAt;
    if (at == 0) return;
    this.toolsAt = 0;
    const r = this.reader;
    const resume = r.pos;
    r.pos = at;
    r.skipValue();
    this.prompt.writeByte(DIGEST_MARK);
    this.writeCompact(at, r.pos);
    this.prompt.writeByte(MESSAGE_END);
    r.pos = resume;
  }

  /**
   * The validated JSON text [start, end) without insignificant whitespace and
   * with strings in canonical spelling, so that spelling does not change it
   * (JSON.stringify's text of the value, but for key order and numbers).
   */
  private writeCompact(start: usize, end: usize): void {
    const r = this.reader;
    const out = this.prompt;
    let p = start;
    while (p < end && !out.full()) {
      const c = <u32>load<u8>(p);
      if (c == 0x22) {
        r.pos = p;
        r.readString();
        out.writeByte(0x22);
        r.canonicalStringInto(out);
        out.writeByte(0x22);
        p = r.pos;
      } else {
        if (c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09) out.writeByte(c);
        p++;
      }
    }
  }

  private canonicalResponses(instructionsAt: usize, inputAt: usize): i32 {
    const r = this.reader;
    if (instructionsAt != 0) {
      r.pos = instructionsAt;
      if (r.peekKind() == JsonKind.String) this.writeSystem();
    }
    this.flushTools();
    r.pos = inputAt;
    const kind = r.peekKind();
    if (kind == JsonKind.String) {
      this.writeMessage("user");
      return Extract.Ok;
    }
    if (kind != JsonKind.Array) return Extract.NoPrompt;
    r.beginArray();
    let count = 0;
    while (!this.prompt.full() && r.more(CLOSE_ARRAY, count == 0)) {
      if (r.peekKind() != JsonKind.Object) return Extract.NoPrompt;
      this.canonicalMessage(true);
      count++;
    }
    return count > 0 ? Extract.Ok : Extract.NoPrompt;
  }

  private canonicalCompletion(): i32 {
    const r = this.reader;
    const kind = r.peekKind();
    if (kind == JsonKind.String) {
      r.readString();
      r.canonicalStringInto(this.prompt);
      return Extract.Ok;
    }
    if (kind != JsonKind.Array) return Extract.NoPrompt;
    r.beginArray();
    if (r.peekKind() == JsonKind.Number) return this.canonicalTokenIds();
    let count = 0;
    while (r.more(CLOSE_ARRAY, count == 0)) {
      const k = r.peekKind();
      // A batch of token-id prompts ([[1,2],[3]]) is several requests in one: not routed.
      if (k == JsonKind.Number || k == JsonKind.Array) return Extract.TokenPrompt;
      if (k != JsonKind.String) return Extract.NoPrompt;
      if (count > 0) this.prompt.writeByte(PROMPT_SEPARATOR);
      r.readString();
      r.canonicalStringInto(this.prompt);
      count++;
      if (this.prompt.full()) break;
    }
    return count > 0 ? Extract.Ok : Extract.NoPrompt;
  }

  /**
   * A prompt of token ids ([1, 2, 3], the reader inside the array): 0x1B and
   * each id as a u32, little-endian. Such prompts match each other, never a
   * text prompt (the filter does not tokenize). Anything but whole numbers in
   * [0, 2^32) is not routed.
   */
  private canonicalTokenIds(): i32 {
    const r = this.reader;
    this.prompt.writeByte(TOKEN_IDS);
    let count = 0;
    while (r.more(CLOSE_ARRAY, count == 0)) {
      if (r.peekKind() != JsonKind.Number || !r.readNumber()) return Extract.TokenPrompt;
      let id: u64 = 0;
      for (let p = r.strStart; p < r.strEnd; p++) {
        const d = <u32>load<u8>(p) - 0x30;
        if (d >= 10 || id > 0xFFFFFFFF) return Extract.TokenPrompt;
        id = id * 10 + <u64>d;
      }
      if (id > 0xFFFFFFFF) return Extract.TokenPrompt;
      const t = <u32>id;
      this.prompt.writeByte(t & 0xFF);
      this.prompt.writeByte((t >> 8) & 0xFF);
      this.prompt.writeByte((t >> 16) & 0xFF);
      this.prompt.writeByte(t >> 24);
      count++;
      if (this.prompt.full()) return Extract.Ok;
    }
    return count > 0 ? Extract.Ok : Extract.NoPrompt;
  }

  private canonicalChat(): i32 {
    const r = this.reader;
    if (r.peekKind() != JsonKind.Array) return Extract.NoPrompt;
    r.beginArray();
    let count = 0;
    while (!this.prompt.full() && r.more(CLOSE_ARRAY, count == 0)) {
      if (r.peekKind() != JsonKind.Object) return Extract.NoPrompt;
      this.canonicalMessage();
      count++;
    }
    // Only system messages: the tools come after them.
    this.flushTools();
    return count > 0 ? Extract.Ok : Extract.NoPrompt;
  }

  /**
   * role 0x1F content 0x1E, whatever order the keys come in. `item`: a
   * Responses input item, which is a message only if it has a role; any
   * other item (function_call, function_call_output, reasoning, …) is
   * written as 0x1D type 0x1C digest 0x1E. The keys are read once either way.
   */
  private canonicalMessage(item: bool = false): void {
    const r = this.reader;
    const start = r.pos;
    const role = this.role;
    role.clear();
    let hasRole = false;
    let contentAt: usize = 0;
    r.beginObject();
    let first = true;
    while (r.more(CLOSE_OBJECT, first)) {
      first = false;
      r.readKey();
      if (r.stringEquals("role")) {
        hasRole = true;
        // The last "role" wins, as for "model"; one that is not a string leaves no role.
        if (r.peekKind() == JsonKind.String) {
          r.readString();
          r.keepString(role);
        } else {
          role.clear();
          r.skipValue();
        }
      } else if (r.stringEquals("content")) {
        contentAt = r.peek() != 0 ? r.pos : 0;
        r.skipValue();
      } else {
        r.skipValue();
      }
    }
    const after = r.pos;
    if (item && !hasRole) {
      this.flushTools();
      r.pos = start;
      this.canonicalPart();
      this.prompt.writeByte(MESSAGE_END);
      r.pos = after;
      return;
    }
    r.useString(role);
    // The tools go after the leading system (or developer) messages, where chat templates render them.
    if (this.toolsAt != 0 && !r.stringEquals("system") && !r.stringEquals("developer")) {
      this.flushTools();
      r.useString(role);
    }
    r.canonicalStringInto(this.prompt);
    this.prompt.writeByte(ROLE_END);
    if (contentAt != 0) {
      r.pos = contentAt;
      this.canonicalContent();
    }
    this.prompt.writeByte(MESSAGE_END);
    r.pos = after;
  }

  private canonicalContent(): void {
    const r = this.reader;
    const kind = r.peekKind();
    if (kind == JsonKind.String) {
      r.readString();
      r.canonicalStringInto(this.prompt);
      return;
    }
    if (kind != JsonKind.Array) return; // null or anything else: no text
    r.beginArray();
    let first = true;
    while (!this.prompt.full() && r.more(CLOSE_ARRAY, first)) {
      first = false;
      if (r.peekKind() != JsonKind.Object) {
        r.skipValue();
        continue;
      }
      this.canonicalPart();
    }
  }

  /** A text part contributes its text; any other part 0x1D + its type + 0x1C + the digest of its JSON text. */
  private canonicalPart(): void {
    const r = this.reader;
    const start = r.pos;
    const type = this.partType;
    const text = this.partText;
    type.clear();
    let hasText = false;
    r.beginObject();
    let first = true;
    while (r.more(CLOSE_OBJECT, first)) {
      first = false;
      r.readKey();
      const isType = r.stringEquals("type");
      const isText = !isType && r.stringEquals("text");
      if ((isType || isText) && r.peekKind() == JsonKind.String) {
        r.readString();
        if (isType) {
          r.keepString(type);
        } else {
          r.keepString(text);
          hasText = true;
        }
      } else {
        // Last key wins: a later non-string "type" or "text" undoes an earlier string one.
        if (isType) {
          type.clear();
        } else if (isText) {
          hasText = false;
        }
        r.skipValue();
      }
    }
    const after = r.pos;
    r.useString(type);
    if (hasText && (r.stringEquals("text") || r.stringEquals("input_text") || r.stringEquals("output_text"))) {
      r.useString(text);
      r.canonicalStringInto(this.prompt);
    } else {
      // Its JSON text as sent: an image's URL or data, a tool call's arguments.
      // Spelled differently (key order, escapes), the same part gets another
      // digest and matches less, never wrongly.
      this.prompt.writeByte(OTHER_PART);
      r.canonicalStringInto(this.prompt);
      this.prompt.writeByte(DIGEST_MARK);
      const digest = xxh64(start, after - start, 0);
      for (let i: u64 = 0; i < 64; i += 8) this.prompt.writeByte(<u32>((digest >> i) & 0xFF));
    }
    r.pos = after;
  }
}
