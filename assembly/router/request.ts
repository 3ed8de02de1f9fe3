// Extracts the model and a canonical prompt from an OpenAI-style request body.
//
// The canonical prompt is what the prefix index hashes. It depends only on the
// JSON value, not its spelling: key order, whitespace and escapes (\u00e9 vs é)
// do not change it. Layout:
//
//   completions:  prompt                         (a string)
//                 p1 0x00 p2 0x00 … pn           (an array of strings)
//   chat:         role 0x1F content 0x1E  (per message, in order)
//                 content = the string, or its parts in order: a text part
//                 contributes its text, any other part 0x1D + its type
//
// Only the first `prompt.cap` bytes are produced (maxPrefixBlocks × block size);
// past that the body is still validated but no longer decoded. The body is
// never modified. Nothing here allocates per request: the reader and both sinks
// belong to the extractor, which lives as long as the VM.
import { ByteSink } from "./bytes";
import { JsonReader, JsonKind } from "./json";

/** Why a body was not routed; the values index the pass-through counters. */
export namespace Extract {
  export const Ok: i32 = 0;
  export const NotJson: i32 = 1;
  export const NoModel: i32 = 2;
  export const NoPrompt: i32 = 3;
  export const TokenPrompt: i32 = 4;
}

export const MAX_MODEL_BYTES: usize = 512;

// @ts-ignore: decorator
@inline const ROLE_END: u32 = 0x1F;
// @ts-ignore: decorator
@inline const MESSAGE_END: u32 = 0x1E;
// @ts-ignore: decorator
@inline const OTHER_PART: u32 = 0x1D;
// @ts-ignore: decorator
@inline const PROMPT_SEPARATOR: u32 = 0x00;
// @ts-ignore: decorator
@inline const CLOSE_OBJECT: u32 = 0x7D;
// @ts-ignore: decorator
@inline const CLOSE_ARRAY: u32 = 0x5D;

@final
export class PromptExtractor {
  readonly reader: JsonReader = new JsonReader();
  readonly model: ByteSink = new ByteSink(MAX_MODEL_BYTES);
  readonly prompt: ByteSink;

  constructor(promptCap: usize) {
    this.prompt = new ByteSink(promptCap);
  }

  /** Frees both sinks (raw heap memory); the extractor must not be used afterwards. */
  free(): void {
    this.model.free();
    this.prompt.free();
  }

  /** Parses [ptr, ptr+len); on Ok, `model` and `prompt` hold the canonical bytes. */
  extract(ptr: usize, len: usize, chat: bool): i32 {
    const r = this.reader;
    r.reset(ptr, len);
    this.model.reset();
    this.prompt.reset();
    let hasModel = false;
    let promptAt: usize = 0; // position of the last "prompt"/"messages" value; 0 = absent
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
      } else if (r.stringEquals(chat ? "messages" : "prompt")) {
        promptAt = r.peek() != 0 ? r.pos : 0;
        if (!r.skipValue()) break;
      } else if (!r.skipValue()) {
        break;
      }
    }
    if (r.failed || !r.atEnd()) return Extract.NotJson;
    if (!hasModel) return Extract.NoModel;
    if (promptAt == 0) return Extract.NoPrompt;
    // Second walk over the (already validated) prompt value only.
    r.pos = promptAt;
    return chat ? this.canonicalChat() : this.canonicalCompletion();
  }

  private canonicalCompletion(): i32 {
    const r = this.reader;
    const kind = r.peekKind();
    if (kind == JsonKind.String) {
      r.readString();
      r.decodeStringInto(this.prompt);
      return Extract.Ok;
    }
    if (kind != JsonKind.Array) return Extract.NoPrompt;
    r.beginArray();
    let count = 0;
    while (r.more(CLOSE_ARRAY, count == 0)) {
      const k = r.peekKind();
      // Token-id prompts ([1,2,3] or [[1,2],[3]]) carry no text to hash.
      if (k == JsonKind.Number || k == JsonKind.Array) return Extract.TokenPrompt;
      if (k != JsonKind.String) return Extract.NoPrompt;
      if (count > 0) this.prompt.writeByte(PROMPT_SEPARATOR);
      r.readString();
      r.decodeStringInto(this.prompt);
      count++;
      if (this.prompt.full()) break;
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
    return count > 0 ? Extract.Ok : Extract.NoPrompt;
  }

  /** role 0x1F content 0x1E, whatever order the keys come in. */
  private canonicalMessage(): void {
    const r = this.reader;
    let roleStart: usize = 0, roleEnd: usize = 0;
    let roleEscaped = false;
    let contentAt: usize = 0;
    r.beginObject();
    let first = true;
    while (r.more(CLOSE_OBJECT, first)) {
      first = false;
      r.readKey();
      if (r.stringEquals("role")) {
        // The last "role" wins, as for "model"; one that is not a string leaves no role.
        if (r.peekKind() == JsonKind.String) {
          r.readString();
          roleStart = r.strStart;
          roleEnd = r.strEnd;
          roleEscaped = r.strEscaped;
        } else {
          roleStart = 0;
          roleEnd = 0;
          roleEscaped = false;
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
    r.strStart = roleStart;
    r.strEnd = roleEnd;
    r.strEscaped = roleEscaped;
    r.decodeStringInto(this.prompt);
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
      r.decodeStringInto(this.prompt);
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

  /** A text part contributes its text; any other part 0x1D + its type. */
  private canonicalPart(): void {
    const r = this.reader;
    let typeStart: usize = 0, typeEnd: usize = 0;
    let typeEscaped = false;
    let textStart: usize = 0, textEnd: usize = 0;
    let textEscaped = false;
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
          typeStart = r.strStart; typeEnd = r.strEnd; typeEscaped = r.strEscaped;
        } else {
          textStart = r.strStart; textEnd = r.strEnd; textEscaped = r.strEscaped;
          hasText = true;
        }
      } else {
        // Last key wins: a later non-string "type" or "text" undoes an earlier string one.
        if (isType) {
          typeStart = 0; typeEnd = 0; typeEscaped = false;
        } else if (isText) {
          hasText = false;
        }
        r.skipValue();
      }
    }
    const after = r.pos;
    r.strStart = typeStart; r.strEnd = typeEnd; r.strEscaped = typeEscaped;
    if (hasText && r.stringEquals("text")) {
      r.strStart = textStart; r.strEnd = textEnd; r.strEscaped = textEscaped;
      r.decodeStringInto(this.prompt);
    } else {
      this.prompt.writeByte(OTHER_PART);
      r.decodeStringInto(this.prompt);
    }
    r.pos = after;
  }
}
