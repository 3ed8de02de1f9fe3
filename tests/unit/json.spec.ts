import { JsonReader } from "../../assembly/router/json";
import { ByteSink } from "../../assembly/router/bytes";

/** The reader's current string span, decoded, or with `spelled` in its canonical spelling. */
function textOf(r: JsonReader, spelled: bool = false): string {
  const sink = new ByteSink(4096);
  if (spelled) r.canonicalStringInto(sink);
  else r.decodeStringInto(sink);
  const s = String.UTF8.decodeUnsafe(sink.ptr, sink.len);
  sink.free();
  return s;
}

/**
 * Walks the JSON array of strings `text` three times from its start: once to
 * validate it, then twice reading each string, which must decode to `want`.
 * `escapedAt` >= 0: only that string reports escapes (-1: not checked).
 */
function expectWalks(text: string, want: string[], escapedAt: i32): void {
  const bytes = String.UTF8.encode(text);
  const r = new JsonReader();
  r.reset(changetype<usize>(bytes), <usize>bytes.byteLength);
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
      expect<string>(textOf(r)).toBe(want[i]);
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
    expectWalks(text, [plain, "short", "e".repeat(150) + "\nA" + "e".repeat(150), plain], 2);
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
 * Reads `["<body>",1]` and returns the string's decoded text, or with
 * `spelled` its canonical spelling, or null if the reader fails anywhere.
 * A second walk from the start must read the same text (the first was
 * remembered if the string was long). The same with 40 spaces after the
 * string must read the same: there the scan's wide loops run up to the
 * closing quote, where without them they leave the last bytes to the
 * byte-by-byte loop.
 */
function readArrayString(body: string, spelled: bool = false): string | null {
  const tight = readArrayStringWith(body, spelled, "");
  const padded = readArrayStringWith(body, spelled, " ".repeat(40));
  if (tight != padded) return "padded: " + (padded === null ? "null" : padded!);
  return tight;
}

function readArrayStringWith(body: string, spelled: bool, padding: string): string | null {
  const bytes = String.UTF8.encode("[\"" + body + "\"," + padding + "1]");
  const r = new JsonReader();
  r.reset(changetype<usize>(bytes), <usize>bytes.byteLength);
  const at = r.pos;
  let text: string | null = null;
  for (let walk = 0; walk < 2; walk++) {
    r.pos = at;
    if (!r.beginArray() || !r.more(0x5D, true) || !r.readString()) return null;
    const t = textOf(r, spelled);
    // The reader must stand just past the closing quote: the element after it reads.
    if (!r.more(0x5D, false) || !r.readNumber() || r.more(0x5D, false) || r.failed) return null;
    if (text !== null && t != text) return "second walk: " + t;
    text = t;
  }
  return text;
}

describe("JsonReader escapes at every position of a 16-byte lane and of the four-lane turn", () => {
  it("decodes each escape wherever it falls, next to others and at the string's end", () => {
    // JSON escape, what it decodes to, and its canonical spelling (JSON.stringify's).
    const escapes: string[] = [
      "\\n", "\n", "\\n", "\\\"", "\"", "\\\"", "\\\\", "\\", "\\\\", "\\/", "/", "/",
      "\\t", "\t", "\\t", "\\b", "\b", "\\b", "\\f", "\f", "\\f", "\\r", "\r", "\\r",
      "\\u0041", "A", "A", "\\u00e9", "é", "é", "\\ud83d\\ude00", "😀", "😀",
      "\\u000a", "\n", "\\n", "\\u0022", "\"", "\\\"", "\\u005C", "\\", "\\\\", "\\u001F", "\u001f", "\\u001f",
      "\\u007f", "\u007f", "\u007f", "\\ud800x", "\uFFFDx", "\uFFFDx",
      "\\\\\\\"", "\\\"", "\\\\\\\"", "\\\\\\\\", "\\\\", "\\\\\\\\", "\\\"\\\"", "\"\"", "\\\"\\\"",
      "\\r\\n", "\r\n", "\\r\\n", "\\n\\\\n", "\n\\n", "\\n\\\\n",
    ];
    for (let e = 0; e < escapes.length; e += 3) {
      for (let k = 0; k < 132; k++) {
        const a = "a".repeat(k);
        // Alone, then followed by more text and a second copy 17 bytes on, then last before the quote.
        const tail = "b".repeat(17);
        expect<string | null>(readArrayString(a + escapes[e])).toBe(a + escapes[e + 1]);
        expect<string | null>(readArrayString(a + escapes[e] + tail + escapes[e] + "c")).toBe(a + escapes[e + 1] + tail + escapes[e + 1] + "c");
        expect<string | null>(readArrayString(a + escapes[e], true)).toBe(a + escapes[e + 2]);
        expect<string | null>(readArrayString(a + escapes[e] + tail + escapes[e] + "c", true)).toBe(a + escapes[e + 2] + tail + escapes[e + 2] + "c");
        // Among common escapes, as prompts hold them: every lane of the string has one.
        const lines = "x\\n".repeat(k % 9) + "line \\\"q\\\" \\t".repeat(3);
        expect<string | null>(readArrayString(lines + a + escapes[e] + lines, true)).toBe(lines + a + escapes[e + 2] + lines);
      }
    }
  });

  it("fails on a bad escape, a raw control byte, or a quote an escape covers, wherever they fall", () => {
    for (let k = 0; k < 132; k++) {
      const a = "a".repeat(k);
      const lead = "\\n".repeat(k % 3); // with and without good escapes in the same lane
      expect<string | null>(readArrayString(lead + a + "\\x" + "b".repeat(20))).toBeNull();
      expect<string | null>(readArrayString(lead + a + "\\u00g1" + "b".repeat(20))).toBeNull();
      expect<string | null>(readArrayString(lead + a + "\\ud83d\\u00g1" + "b".repeat(20))).toBeNull();
      expect<string | null>(readArrayString(lead + a + "\\\n" + "b".repeat(20))).toBeNull();
      expect<string | null>(readArrayString(lead + a + "\t" + "b".repeat(20))).toBeNull();
      expect<string | null>(readArrayString(lead + a + "\\n\t" + "b".repeat(20))).toBeNull();
      // Runs of backslashes among common escapes: an even run is escaped
      // backslashes, an odd one escapes the byte after it, here a bad escape.
      const lines = "x\\n".repeat(k % 9) + "line \\\"q\\\" \\t".repeat(3);
      for (let run = 1; run <= 5; run++) {
        const body = lines + a + "\\".repeat(run) + "x" + lines + "\\\\".repeat(k % 4) + lines;
        expect<string | null>(readArrayString(body, true)).toBe(run % 2 == 0 ? body : null);
      }
      // An escape of a byte the escape loop does not take, after lanes it did take.
      expect<string | null>(readArrayString("\\n".repeat(20) + a + "\\q" + "b".repeat(20))).toBeNull();
      expect<string | null>(readArrayString("\\n".repeat(20) + a + "\\" + "\n" + "b".repeat(20))).toBeNull();
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

describe("JsonReader canonical spelling", () => {
  it("tells a string already canonically spelled from one with \\u or \\/ escapes", () => {
    const cases: string[] = ["plain", "a\\nb\\\"c\\\\d\\te", "x".repeat(40) + "\\r\\n", "\\/", "a\\u00e9", "x".repeat(300) + "\\u0041"];
    const spelled: bool[] = [true, true, true, false, false, false];
    for (let i = 0; i < cases.length; i++) {
      for (let walk = 0; walk < 2; walk++) {
        const bytes = String.UTF8.encode("\"" + cases[i] + "\"");
        const r = new JsonReader();
        r.reset(changetype<usize>(bytes), <usize>bytes.byteLength);
        expect<bool>(r.readString()).toBe(true);
        expect<bool>(r.strCanonical).toBe(spelled[i]);
      }
    }
  });

  it("reads 300 escaped strings the same on a second walk, past the memory of long strings", () => {
    let text = "[";
    const want: string[] = [];
    for (let i = 0; i < 300; i++) {
      if (i > 0) text += ",";
      text += "\"" + i.toString() + "\\n" + "x".repeat(i % 40) + "\\u00e9\"";
      want.push(i.toString() + "\n" + "x".repeat(i % 40) + "é");
    }
    text += "]";
    expectWalks(text, want, -1);
  });

  it("compares an escaped key by its decoded text", () => {
    const bytes = String.UTF8.encode("{\"mod\\u0065l\":1}");
    const r = new JsonReader();
    r.reset(changetype<usize>(bytes), <usize>bytes.byteLength);
    expect<bool>(r.beginObject() && r.more(0x7D, true) && r.readKey()).toBe(true);
    expect<bool>(r.stringEquals("model")).toBe(true);
    expect<bool>(r.readNumber() && !r.more(0x7D, false) && r.atEnd()).toBe(true);
  });
});
