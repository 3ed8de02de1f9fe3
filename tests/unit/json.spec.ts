import { JsonReader } from "../../assembly/router/json";
import { ByteSink } from "../../assembly/router/bytes";

/** The decoded text of the reader's current string span. */
function decoded(r: JsonReader): string {
  const sink = new ByteSink(4096);
  r.decodeStringInto(sink);
  const s = String.UTF8.decodeUnsafe(sink.ptr, sink.len);
  sink.free();
  return s;
}

/**
 * Walks the JSON array of strings `text` three times from its start: once to
 * validate it, then twice reading each string, which must decode to `want`.
 * `escapedAt` >= 0: only that string reports escapes (-1: not checked).
 */
function expectWalks(text: string, want: string[], inPlace: bool, escapedAt: i32): void {
  const bytes = String.UTF8.encode(text);
  const r = new JsonReader();
  r.reset(changetype<usize>(bytes), <usize>bytes.byteLength, inPlace);
  const at = r.pos;
  expect<bool>(r.skipValue()).toBe(true);
  expect<bool>(r.atEnd()).toBe(true);
  for (let walk = 0; walk < 2; walk++) {
    r.pos = at;
    expect<bool>(r.beginArray()).toBe(true);
    for (let i = 0; i < want.length; i++) {
      expect<bool>(r.more(0x5D, i == 0)).toBe(true);
      expect<bool>(r.readString()).toBe(true);
      if (escapedAt >= 0) expect<bool>(r.strEscaped).toBe(i == escapedAt);
      expect<string>(decoded(r)).toBe(want[i]);
    }
    expect<bool>(r.more(0x5D, false)).toBe(false);
    expect<bool>(r.failed).toBe(false);
  }
}

describe("JsonReader walking the same values twice", () => {
  it("reads long strings the second time as the first, escapes and rewinds included", () => {
    const plain = "p".repeat(300);
    const escaped = "e".repeat(150) + "\\n\\u0041" + "e".repeat(150);
    const text = "[\"" + plain + "\",\"short\",\"" + escaped + "\",\"" + plain + "\"]";
    // Only the third string has escapes.
    expectWalks(text, [plain, "short", "e".repeat(150) + "\nA" + "e".repeat(150), plain], false, 2);
  });

  it("forgets what it scanned when reset to another input", () => {
    const first = String.UTF8.encode("\"" + "a".repeat(400) + "\"");
    const r = new JsonReader();
    r.reset(changetype<usize>(first), <usize>first.byteLength);
    expect<bool>(r.readString()).toBe(true);
    // The same bytes, now an unterminated string: nothing remembered may answer for it.
    store<u8>(changetype<usize>(first) + <usize>first.byteLength - 1, 0x61);
    r.reset(changetype<usize>(first), <usize>first.byteLength);
    expect<bool>(r.readString()).toBe(false);
  });
});

/**
 * Reads `["<body>",1]` and returns the string's decoded text, or null if the
 * reader fails anywhere. With `inPlace`, the reader decodes escapes where they
 * stand (reset's decodeInPlace), and a second walk from the start must read
 * the same text.
 */
function readArrayString(body: string, inPlace: bool = false): string | null {
  const bytes = String.UTF8.encode("[\"" + body + "\",1]");
  const r = new JsonReader();
  r.reset(changetype<usize>(bytes), <usize>bytes.byteLength, inPlace);
  const at = r.pos;
  let text: string | null = null;
  const walks = inPlace ? 2 : 1;
  for (let walk = 0; walk < walks; walk++) {
    r.pos = at;
    if (!r.beginArray() || !r.more(0x5D, true) || !r.readString()) return null;
    const t = decoded(r);
    // The reader must stand just past the closing quote: the element after it reads.
    if (!r.more(0x5D, false) || !r.readNumber() || r.more(0x5D, false) || r.failed) return null;
    if (text !== null && t != text) return "second walk: " + t;
    text = t;
  }
  return text;
}

describe("JsonReader escapes at every position of a 16-byte lane", () => {
  it("decodes each escape wherever it falls, next to others and at the string's end", () => {
    // JSON escape, then what it decodes to.
    const escapes: string[] = ["\\n", "\n", "\\\"", "\"", "\\\\", "\\", "\\/", "/", "\\t", "\t", "\\b", "\b", "\\f", "\f", "\\r", "\r",
      "\\u0041", "A", "\\u00e9", "é", "\\ud83d\\ude00", "😀", "\\\\\\\"", "\\\"", "\\\\\\\\", "\\\\", "\\\"\\\"", "\"\""];
    for (let e = 0; e < escapes.length; e += 2) {
      for (let k = 0; k < 36; k++) {
        const a = "a".repeat(k);
        // Alone, then followed by more text and a second copy 17 bytes on, then last before the quote.
        const tail = "b".repeat(17);
        for (let inPlace = 0; inPlace < 2; inPlace++) {
          expect<string | null>(readArrayString(a + escapes[e], inPlace == 1)).toBe(a + escapes[e + 1]);
          expect<string | null>(readArrayString(a + escapes[e] + tail + escapes[e] + "c", inPlace == 1)).toBe(a + escapes[e + 1] + tail + escapes[e + 1] + "c");
        }
      }
    }
  });

  it("fails on a bad escape, a raw control byte, or a quote an escape covers, wherever they fall", () => {
    for (let k = 0; k < 36; k++) {
      const a = "a".repeat(k);
      const lead = "\\n".repeat(k % 3); // with and without good escapes in the same lane
      for (let inPlace = 0; inPlace < 2; inPlace++) {
        expect<string | null>(readArrayString(lead + a + "\\x" + "b".repeat(20), inPlace == 1)).toBeNull();
        expect<string | null>(readArrayString(lead + a + "\\u00g1" + "b".repeat(20), inPlace == 1)).toBeNull();
        expect<string | null>(readArrayString(lead + a + "\\ud83d\\u00g1" + "b".repeat(20), inPlace == 1)).toBeNull();
        expect<string | null>(readArrayString(lead + a + "\\\n" + "b".repeat(20), inPlace == 1)).toBeNull();
        expect<string | null>(readArrayString(lead + a + "\t" + "b".repeat(20), inPlace == 1)).toBeNull();
        expect<string | null>(readArrayString(lead + a + "\\n\t" + "b".repeat(20), inPlace == 1)).toBeNull();
      }
      // `"\"` is not a whole string: the second quote is escaped, so the text runs on to `,1]` and ends unterminated.
      const bytes = String.UTF8.encode("[\"" + lead + a + "\\\"" + "b".repeat(k));
      const r = new JsonReader();
      r.reset(changetype<usize>(bytes), <usize>bytes.byteLength);
      expect<bool>(r.beginArray() && r.more(0x5D, true) && r.readString()).toBe(false);
    }
  });

  it("stops decoding at the sink's cap, counting what it dropped", () => {
    const text = ("line of text\\n").repeat(40);
    const bytes = String.UTF8.encode("\"" + text + "\"");
    const r = new JsonReader();
    r.reset(changetype<usize>(bytes), <usize>bytes.byteLength);
    expect<bool>(r.readString()).toBe(true);
    for (let cap = 0; cap < 40; cap++) {
      const sink = new ByteSink(<usize>cap);
      r.decodeStringInto(sink);
      expect<i32>(<i32>sink.len).toBe(cap);
      expect<string>(String.UTF8.decodeUnsafe(sink.ptr, sink.len)).toBe(("line of text\n").repeat(40).slice(0, cap));
      expect<bool>(sink.dropped > 0).toBe(true);
      sink.free();
    }
  });
});

describe("JsonReader decoding in place", () => {
  it("reads every string again on later walks, past the memory of what it decoded", () => {
    // 300 escaped strings: more than the reader remembers, so the last ones are scanned as before.
    let text = "[";
    const want: string[] = [];
    for (let i = 0; i < 300; i++) {
      if (i > 0) text += ",";
      text += "\"" + i.toString() + "\\n" + "x".repeat(i % 40) + "\\u00e9\"";
      want.push(i.toString() + "\n" + "x".repeat(i % 40) + "é");
    }
    text += "]";
    // Those the reader remembers read as decoded; the rest it decodes again: no escape flag to check.
    expectWalks(text, want, true, -1);
  });

  it("compares a key decoded in place by its decoded text", () => {
    const bytes = String.UTF8.encode("{\"mod\\u0065l\":1}");
    const r = new JsonReader();
    r.reset(changetype<usize>(bytes), <usize>bytes.byteLength, true);
    expect<bool>(r.beginObject() && r.more(0x7D, true) && r.readKey()).toBe(true);
    expect<bool>(r.stringEquals("model")).toBe(true);
    expect<bool>(r.readNumber() && !r.more(0x7D, false) && r.atEnd()).toBe(true);
  });
});
