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

describe("JsonReader walking the same values twice", () => {
  it("reads long strings the second time as the first, escapes and rewinds included", () => {
    const plain = "p".repeat(300);
    const escaped = "e".repeat(150) + "\\n\\u0041" + "e".repeat(150);
    const text = "[\"" + plain + "\",\"short\",\"" + escaped + "\",\"" + plain + "\"]";
    const bytes = String.UTF8.encode(text);
    const r = new JsonReader();
    r.reset(changetype<usize>(bytes), <usize>bytes.byteLength);
    const at = r.pos;
    // First walk: validation only.
    expect<bool>(r.skipValue()).toBe(true);
    expect<bool>(r.atEnd()).toBe(true);
    // Second and third walks, from the start again: every string, its escapes decoded.
    for (let walk = 0; walk < 2; walk++) {
      r.pos = at;
      expect<bool>(r.beginArray()).toBe(true);
      const want: string[] = [plain, "short", "e".repeat(150) + "\nA" + "e".repeat(150), plain];
      for (let i = 0; i < want.length; i++) {
        expect<bool>(r.more(0x5D, i == 0)).toBe(true);
        expect<bool>(r.readString()).toBe(true);
        expect<bool>(r.strEscaped).toBe(i == 2);
        expect<string>(decoded(r)).toBe(want[i]);
      }
      expect<bool>(r.more(0x5D, false)).toBe(false);
      expect<bool>(r.failed).toBe(false);
    }
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
