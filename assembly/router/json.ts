// A strict, allocation-free JSON reader over raw bytes [ptr, ptr+len).
//
// The caller drives the grammar (beginObject / more / readKey / readString /
// skipValue) and the reader validates as it goes, so one pass both checks the
// request body is JSON and finds the fields the router needs. Nothing is
// allocated per call: strings are reported as spans into the input, which is
// never modified, and copied only when a caller asks, into a ByteSink: decoded
// (escapes resolved), or in their canonical JSON spelling (canonicalStringInto).
// Every read is bounds-checked against `end`; malformed input sets `failed`
// and every later call returns false, so callers check once at the end.
// Nesting is tracked in a fixed stack (MAX_DEPTH) instead of recursion, so
// deep input cannot exhaust the Wasm stack.
import { ByteSink, storeUtf8 } from "./bytes";
import { MAX_DEPTH } from "./limits";

// @ts-ignore: decorator
@inline const QUOTE: u32 = 0x22;
// @ts-ignore: decorator
@inline const BACKSLASH: u32 = 0x5C;
// @ts-ignore: decorator
@inline const IN_OBJECT: u8 = 1;
// @ts-ignore: decorator
@inline const IN_ARRAY: u8 = 2;
/** Long strings a reader remembers per input (scanStringBody). */
const MEMO_SLOTS: i32 = 256;
/** Shorter strings are scanned again: finding them costs about what scanning does. */
const MEMO_MIN_BYTES: usize = 256;

/** Kinds of value, by their first byte (peekKind). */
export namespace JsonKind {
  export const None: i32 = 0;
  export const Object: i32 = 1;
  export const Array: i32 = 2;
  export const String: i32 = 3;
  export const Number: i32 = 4;
  export const Literal: i32 = 5; // true, false, null
}

/**
 * The value of the four hex digits at p, or 0xFFFFFFFF if any is not one.
 * All four at once in one 32-bit word, without branches: in text sent as \u
 * escapes (non-ASCII text from a client that escapes it, as Python's
 * json.dumps does by default), digits and letters alternate at random, and a
 * branch per digit was the larger part of reading such text.
 */
// @ts-ignore: decorator
@inline function hex4At(p: usize): u32 {
  const w = load<u32>(p); // the first digit in the low byte
  const lower = w | 0x20202020;
  // Per byte, bit 7 set when it is in '0'..'9', or in 'a'..'f' once lowered;
  // no byte carries into the next while every byte is below 0x80.
  const digit = (w + 0x50505050) & ~(w + 0x46464646);
  const letter = (lower + 0x1F1F1F1F) & ~(lower + 0x19191919);
  if ((((digit | letter) & 0x80808080) ^ 0x80808080) | (w & 0x80808080)) return 0xFFFFFFFF;
  // A letter has bit 6 set and its low nibble is its value less 9.
  const n = (w & 0x0F0F0F0F) + 9 * ((w >> 6) & 0x01010101);
  return ((n & 0xF) << 12) | (n & 0xF00) | ((n >> 12) & 0xF0) | (n >> 24);
}

/** By the byte after a backslash: the byte its two-character escape stands for, 0 if it is not one. */
const SHORT_ESCAPES: usize = memory.data(256);
store<u8>(SHORT_ESCAPES + 0x22, 0x22); // \"
store<u8>(SHORT_ESCAPES + 0x5C, 0x5C); // \\
store<u8>(SHORT_ESCAPES + 0x2F, 0x2F); // \/
store<u8>(SHORT_ESCAPES + 0x62, 0x08); // \b
store<u8>(SHORT_ESCAPES + 0x66, 0x0C); // \f
store<u8>(SHORT_ESCAPES + 0x6E, 0x0A); // \n
store<u8>(SHORT_ESCAPES + 0x72, 0x0D); // \r
store<u8>(SHORT_ESCAPES + 0x74, 0x09); // \t

/**
 * By code point (below 0x60): the letter of the two-character escape that
 * JSON.stringify writes for it (b f n r t, and " \ themselves), 0 if it writes
 * none. A code point below 0x20 without one is written \u00xx.
 */
const ESCAPE_LETTERS: usize = memory.data(0x60);
store<u8>(ESCAPE_LETTERS + 0x08, 0x62); // b
store<u8>(ESCAPE_LETTERS + 0x09, 0x74); // t
store<u8>(ESCAPE_LETTERS + 0x0A, 0x6E); // n
store<u8>(ESCAPE_LETTERS + 0x0C, 0x66); // f
store<u8>(ESCAPE_LETTERS + 0x0D, 0x72); // r
store<u8>(ESCAPE_LETTERS + 0x22, 0x22); // "
store<u8>(ESCAPE_LETTERS + 0x5C, 0x5C); // \

/** Where the escape whose backslash is at `at` ends, or 0 if it is malformed or runs past `end`. */
// @ts-ignore: decorator
@inline function escapeEnd(at: usize, end: usize): usize {
  if (at + 1 >= end) return 0;
  const e = <u32>load<u8>(at + 1);
  if (load<u8>(SHORT_ESCAPES + e) != 0) return at + 2;
  if (e != 0x75 || at + 6 > end) return 0;
  return hex4At(at + 2) == 0xFFFFFFFF ? 0 : at + 6;
}

/** The bytes of `lane` that end a plain run in a string: quotes, backslashes and control bytes. */
// @ts-ignore: decorator
@inline function specialBytes(lane: v128): u32 {
  return <u32>i8x16.bitmask(v128.or(quotesOrControls(lane), i8x16.eq(lane, i8x16.splat(<i8>BACKSLASH))));
}

/**
 * The lane's quotes and control bytes (below 0x20) at once: xor-ing 0x02
 * moves the quote (0x22) to 0x20 and keeps the control bytes below it, so
 * both are the bytes at most 0x20 after it, and no other byte is. Three
 * instructions where a quote test, an unsigned less-than (which x64 has
 * not for bytes: V8 builds it of four) and an or took six.
 */
// @ts-ignore: decorator
@inline function quotesOrControls(lane: v128): v128 {
  const moved = v128.xor(lane, i8x16.splat(0x02));
  return i8x16.eq(i8x16.min_u(moved, i8x16.splat(0x20)), moved);
}

/**
 * The bytes of a 16-byte lane that an escape inside it covers: each byte
 * after an escaping backslash, backslashes included (in a run of them, every
 * other one escapes the next). `backslashes` is the lane's backslash mask;
 * bit 16 of the result means the byte after the lane is covered. Branch-free,
 * by the odd-length-run method of simdjson (Langdale and Lemire, "Parsing
 * gigabytes of JSON per second", 2019): adding the runs that start on an odd
 * bit to the mask clears each of them and carries one past its end, so that,
 * shifted by one, the runs that start on an even bit are what is left. It does
 * not depend on the lane before, so lanes do not wait on each other; the
 * caller takes the lane before's carry.
 */
// @ts-ignore: decorator
@inline function coveredBytes(backslashes: u32): u32 {
  const EVEN: u32 = 0x5555;
  const ODD: u32 = 0xAAAA;
  const follows = backslashes << 1;
  const sum = (backslashes & ODD & ~follows) + backslashes;
  return ((EVEN ^ (sum << 1)) & follows & 0xFFFF) | (sum & 0x10000);
}

/** The four lanes' masks (i8x16.bitmask) from [p, p + 64) as one: bit i for byte p + i. */
// @ts-ignore: decorator
@inline function mask64(a: v128, b: v128, c: v128, d: v128): u64 {
  const low = <u32>i8x16.bitmask(a) | (<u32>i8x16.bitmask(b) << 16);
  const high = <u32>i8x16.bitmask(c) | (<u32>i8x16.bitmask(d) << 16);
  return <u64>low | (<u64>high << 32);
}

/** The bytes of `lane` a backslash may escape in the escape loop's lanes: " (given as `isQuote`) n r t. */
// @ts-ignore: decorator
@inline function escapableBytes(lane: v128, isQuote: v128): v128 {
  return v128.or(v128.or(isQuote, i8x16.eq(lane, i8x16.splat(0x6E))),
    v128.or(i8x16.eq(lane, i8x16.splat(0x72)), i8x16.eq(lane, i8x16.splat(0x74))));
}

const HEX_DIGITS = "0123456789abcdef";

/** Code point `cp` as JSON.stringify spells it in a string (canonicalStringInto). */
function writeCanonicalCodePoint(out: ByteSink, cp: u32): void {
  if (cp >= 0x20 && cp != 0x22 && cp != 0x5C) {
    out.writeCodePoint(cp);
    return;
  }
  out.writeByte(BACKSLASH);
  const letter = <u32>load<u8>(ESCAPE_LETTERS + <usize>cp);
  if (letter != 0) {
    out.writeByte(letter);
    return;
  }
  out.writeByte(0x75); // u
  out.writeByte(0x30);
  out.writeByte(0x30);
  out.writeByte(<u32>HEX_DIGITS.charCodeAt(<i32>(cp >> 4)));
  out.writeByte(<u32>HEX_DIGITS.charCodeAt(<i32>(cp & 15)));
}

/** A string the reader read, kept to be made current again (JsonReader.keepString, useString). */
@final
export class StringSpan {
  start: usize = 0;
  end: usize = 0;
  escaped: bool = false;
  canonical: bool = true;

  /** No string: an empty span. */
  clear(): void {
    this.start = 0;
    this.end = 0;
    this.escaped = false;
    this.canonical = true;
  }
}

@final
export class JsonReader {
  pos: usize = 0;
  end: usize = 0;
  failed: bool = false;
  /** The last string read: content span (quotes excluded) and whether it holds escapes. */
  strStart: usize = 0;
  strEnd: usize = 0;
  strEscaped: bool = false;
  /**
   * Whether the span is already in canonical spelling (canonicalStringInto):
   * none of its escapes is a \u escape or \/.
   */
  strCanonical: bool = true;
  private stack: StaticArray<u8> = new StaticArray<u8>(MAX_DEPTH);
  // The long strings scanned since reset, in input order: where each ends,
  // whether it holds escapes and whether it is canonically spelled. A caller that walks the same values again (the
  // prompt extractor validates the whole body first, then reads the prompt's
  // values) gets those from here instead of scanning the text a second time.
  private memoStart: StaticArray<usize> = new StaticArray<usize>(MEMO_SLOTS);
  /** Where the string's closing quote is. */
  private memoEnd: StaticArray<usize> = new StaticArray<usize>(MEMO_SLOTS);
  private memoEscaped: StaticArray<bool> = new StaticArray<bool>(MEMO_SLOTS);
  private memoCanonical: StaticArray<bool> = new StaticArray<bool>(MEMO_SLOTS);
  private memoCount: i32 = 0;
  private memoCursor: i32 = 0;

  /** Starts reading [ptr, ptr+len), which the reader never modifies. */
  reset(ptr: usize, len: usize): void {
    this.pos = ptr;
    this.end = ptr + len;
    this.failed = false;
    this.strStart = 0;
    this.strEnd = 0;
    this.strEscaped = false;
    this.strCanonical = true;
    this.memoCount = 0;
    this.memoCursor = 0;
  }

  /** Whether the string starting at p was scanned before (then its span is set and the reader is past it). */
  private recall(p: usize): bool {
    let k = this.memoCursor;
    // Walks go forward; a caller that rewinds to an earlier value starts the search over.
    if (k > 0 && unchecked(this.memoStart[k - 1]) >= p) k = 0;
    while (k < this.memoCount && unchecked(this.memoStart[k]) < p) k++;
    this.memoCursor = k;
    if (k == this.memoCount || unchecked(this.memoStart[k]) != p) return false;
    this.strStart = p;
    this.strEnd = unchecked(this.memoEnd[k]);
    this.strEscaped = unchecked(this.memoEscaped[k]);
    this.strCanonical = unchecked(this.memoCanonical[k]);
    this.pos = this.strEnd + 1;
    return true;
  }

  /** Whether a string starting at p would be remembered if scanned now: there is a slot, and it is the furthest yet. */
  private mayRemember(p: usize): bool {
    const n = this.memoCount;
    return n < MEMO_SLOTS && (n == 0 || unchecked(this.memoStart[n - 1]) < p);
  }

  /** Remembers a long string just scanned, if it is the furthest one yet. */
  private remember(start: usize, end: usize, escaped: bool, canonical: bool): void {
    if (end - start < MEMO_MIN_BYTES || !this.mayRemember(start)) return;
    const n = this.memoCount;
    unchecked(this.memoStart[n] = start);
    unchecked(this.memoEnd[n] = end);
    unchecked(this.memoEscaped[n] = escaped);
    unchecked(this.memoCanonical[n] = canonical);
    this.memoCount = n + 1;
  }

  fail(): bool {
    this.failed = true;
    this.pos = this.end;
    return false;
  }

  /** Skips whitespace; returns the next byte without consuming it, or 0 at the end. */
  peek(): u32 {
    let p = this.pos;
    const end = this.end;
    while (p < end) {
      const c = <u32>load<u8>(p);
      if (c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09) break;
      p++;
    }
    this.pos = p;
    return p < end ? <u32>load<u8>(p) : 0;
  }

  peekKind(): i32 {
    const c = this.peek();
    if (c == 0x7B) return JsonKind.Object;
    if (c == 0x5B) return JsonKind.Array;
    if (c == QUOTE) return JsonKind.String;
    if (c == 0x2D || c - 0x30 < 10) return JsonKind.Number;
    if (c == 0x74 || c == 0x66 || c == 0x6E) return JsonKind.Literal;
    return JsonKind.None;
  }

  private consume(c: u32): bool {
    if (this.failed || this.peek() != c) return this.fail();
    this.pos++;
    return true;
  }

  beginObject(): bool { return this.consume(0x7B); }
  beginArray(): bool { return this.consume(0x5B); }

  /**
   * Inside an object or array: true if another member/element follows (the comma
   * is consumed), false at the closing bracket (consumed) or on error. Pass
   * first=true on the first call after begin*.
   */
  more(close: u32, first: bool): bool {
    if (this.failed) return false;
    const c = this.peek();
    if (c == close) {
      this.pos++;
      return false;
    }
    if (first) return true;
    if (c != 0x2C) return this.fail();
    this.pos++;
    // A closing bracket right after a comma is a trailing comma: the next
    // readKey/readValue call fails on it.
    return true;
  }

  /** Copies the current string span into `span`. */
  keepString(span: StringSpan): void {
    span.start = this.strStart;
    span.end = this.strEnd;
    span.escaped = this.strEscaped;
    span.canonical = this.strCanonical;
  }

  /** Makes a kept span the current string again (for stringEquals and the copies). */
  useString(span: StringSpan): void {
    this.strStart = span.start;
    this.strEnd = span.end;
    this.strEscaped = span.escaped;
    this.strCanonical = span.canonical;
  }

  /** Reads an object key and the colon after it; the key is the current string span. */
  readKey(): bool {
    return this.readString() && this.consume(0x3A);
  }

  /** Reads a string value; sets strStart/strEnd/strEscaped. */
  readString(): bool {
    if (this.failed || this.peek() != QUOTE) return this.fail();
    this.pos++;
    return this.scanStringBody();
  }

  /** True if the current string span equals the ASCII literal `lit` (escapes decoded). */
  stringEquals(lit: string): bool {
    const n = <usize>lit.length;
    if (!this.strEscaped) {
      if (this.strEnd - this.strStart != n) return false;
      for (let i: usize = 0; i < n; i++) {
        if (<u32>load<u8>(this.strStart + i) != <u32>lit.charCodeAt(<i32>i)) return false;
      }
      return true;
    }
    // Rare: an escaped key such as "mod\u0065l". Decode byte by byte and compare.
    let i: usize = 0;
    let p = this.strStart;
    while (p < this.strEnd) {
      let cp: u32 = <u32>load<u8>(p);
      if (cp == BACKSLASH) {
        const r = this.decodeEscape(p, this.strEnd);
        cp = <u32>(r >> 32);
        p = <usize>(r & 0xFFFFFFFF);
      } else {
        p++;
      }
      if (i >= n || cp != <u32>lit.charCodeAt(<i32>i)) return false;
      i++;
    }
    return i == n;
  }

  /**
   * Appends the current string span to `out`, escapes resolved to UTF-8. A lone
   * UTF-16 surrogate escape becomes U+FFFD, as JavaScript's TextEncoder writes it,
   * so that bodies equal as JSON values decode to the same bytes.
   */
  decodeStringInto(out: ByteSink): void {
    this.copyStringInto(out, false);
  }

  /**
   * Appends the current string span to `out` in its canonical spelling: as
   * JavaScript's JSON.stringify writes the string's value, without the quotes.
   * An escape JSON requires stays one (\" \\, and a control character as \b
   * \f \n \r \t or \u00xx); every other character is itself, in UTF-8 (\u00e9
   * and \/ become é and /; a lone surrogate U+FFFD). Strings equal as JSON
   * values get the same bytes, and most strings are sent so spelled already
   * (strCanonical), so they are copied as they are, with no pass to decode them.
   */
  canonicalStringInto(out: ByteSink): void {
    this.copyStringInto(out, true);
  }

  private copyStringInto(out: ByteSink, canonical: bool): void {
    let p = this.strStart;
    const end = this.strEnd;
    if (end <= p) return; // empty, or no string was read (never copy a stale span)
    if (!this.strEscaped || (canonical && this.strCanonical)) {
      out.writeBytes(p, end - p);
      return;
    }
    while (p < end) {
      if (out.full()) {
        // Stop, but count what is left as dropped (raw bytes, an upper bound):
        // callers tell a string that did not fit by `dropped` > 0.
        out.dropped += end - p;
        break;
      }
      // The run up to the next backslash, then the escape: prompts hold one
      // every line or so ("\n"), so both are on the hot path. Text sent as
      // \u escapes is escape after escape, with no run between.
      const q = <u32>load<u8>(p) == BACKSLASH ? p : out.writeUntil(p, end, <u8>BACKSLASH);
      if (q >= end) break;
      const letter = <u32>load<u8>(q + 1);
      if (letter == 0x75) {
        // \uXXXX of a character from U+0080 on, not a surrogate: itself in
        // UTF-8 in either spelling, straight into the sink while it has room.
        const cp = hex4At(q + 2);
        if (cp >= 0x80 && cp - 0xD800 >= 0x800 && out.cap - out.len >= 4) {
          out.len = storeUtf8(out.ptr + out.len, cp) - out.ptr;
          p = q + 6;
          continue;
        }
      }
      const short = <u32>load<u8>(SHORT_ESCAPES + <usize>letter);
      if (short != 0) {
        if (canonical && letter != 0x2F) {
          out.writeByte(BACKSLASH);
          out.writeByte(letter);
        } else {
          out.writeByte(short);
        }
        p = q + 2;
        continue;
      }
      const r = this.decodeEscape(q, end);
      const cp = <u32>(r >> 32);
      if (canonical) writeCanonicalCodePoint(out, cp);
      else out.writeCodePoint(cp);
      p = <usize>(r & 0xFFFFFFFF);
    }
  }

  /**
   * Decodes the escape at `p` (which holds a backslash and is valid), a
   * surrogate pair reaching no further than `bound`. Returns
   * (codePoint << 32) | positionAfter. A \u escape of a lone surrogate, or a
   * high one not followed at once by a valid low one, is U+FFFD; the escape
   * after it is left to the caller, which rejects it if it is malformed.
   */
  private decodeEscape(p: usize, bound: usize): u64 {
    const short = <u32>load<u8>(SHORT_ESCAPES + <usize>load<u8>(p + 1));
    if (short != 0) return (<u64>short << 32) | <u64>(p + 2);
    let cp = hex4At(p + 2);
    let next = p + 6;
    if (cp - 0xD800 < 0x400) {
      // High surrogate: it makes a pair only with an immediately following \uDC00-\uDFFF.
      // hex4At of a malformed escape is 0xFFFFFFFF, so it is never taken for one.
      const pair = next + 6 <= bound && <u32>load<u8>(next) == BACKSLASH && <u32>load<u8>(next + 1) == 0x75;
      const low = pair ? hex4At(next + 2) : 0;
      if (low - 0xDC00 < 0x400) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        next += 6;
      } else {
        cp = 0xFFFD;
      }
    } else if (cp - 0xDC00 < 0x400) {
      cp = 0xFFFD;
    }
    return (<u64>cp << 32) | <u64>next;
  }

  /**
   * Scans from just after an opening quote to just after the closing one,
   * validating escapes and rejecting raw control characters, and noting
   * whether the string is in canonical spelling (strCanonical). Sixteen bytes
   * at a time with SIMD, in two loops: plain text in the tightest one; text
   * with the escapes prompts are full of (a line break every line, quotes,
   * backslashes in code) in one that checks a lane's every escape at once from
   * its bit masks, so that it has no branch per escape: at an escape every few
   * lanes, a branch there is one no predictor learns (README "Decision speed
   * and memory"). A lane neither loop takes (the string's end, \u, \/, \b,
   * \f, a run of backslashes split across lanes) is checked escape by escape.
   */
  private scanStringBody(): bool {
    let p = this.pos;
    if (this.memoCount > 0 && this.recall(p)) return true;
    const end = this.end;
    this.strStart = p;
    let escaped = false;
    let canonical = true;
    /** The backslashes the escape loop took, or-ed: each escapes one of " \\ n r t, or is escaped. */
    let common: u64 = 0;
    const quotes = i8x16.splat(<i8>QUOTE);
    const slashes = i8x16.splat(<i8>BACKSLASH);
    while (true) {
      // Plain text, the bulk of any prompt.
      while (p + 16 <= end) {
        if (specialBytes(v128.load(p)) != 0) break;
        p += 16;
      }
      // Text whose escapes are of " \\ n r t (carry: the last lane ended with
      // a backslash that covers this lane's first byte). Four lanes a turn:
      // one branch, one run computation and the loop's own upkeep per 64
      // bytes, and a run of backslashes across the four needs no carry.
      let carry: u32 = 0;
      while (p + 64 <= end) {
        const l0 = v128.load(p);
        const l1 = v128.load(p, 16);
        const l2 = v128.load(p, 32);
        const l3 = v128.load(p, 48);
        const backslashes = mask64(i8x16.eq(l0, slashes), i8x16.eq(l1, slashes), i8x16.eq(l2, slashes), i8x16.eq(l3, slashes));
        const stops = mask64(quotesOrControls(l0), quotesOrControls(l1), quotesOrControls(l2), quotesOrControls(l3));
        const escapable = mask64(escapableBytes(l0, i8x16.eq(l0, quotes)), escapableBytes(l1, i8x16.eq(l1, quotes)),
          escapableBytes(l2, i8x16.eq(l2, quotes)), escapableBytes(l3, i8x16.eq(l3, quotes))) | backslashes;
        // coveredBytes over 64 bits: the add's carry out of the top bit is the byte after them.
        const follows = backslashes << 1;
        const sum = (backslashes & 0xAAAAAAAAAAAAAAAA & ~follows) + backslashes;
        const covered = ((0x5555555555555555 ^ (sum << 1)) & follows) | <u64>carry;
        const stray = (covered & ~escapable) | (stops & ~covered) | (<u64>carry & backslashes);
        if (stray != 0) {
          // The lanes before the first with a stray byte are clean: the one-lane loop starts there.
          const clean = (ctz<u64>(stray) >> 4) << 4;
          if (clean != 0) {
            common |= backslashes & ((<u64>1 << clean) - 1);
            carry = <u32>(covered >> clean) & 1;
            p += <usize>clean;
          }
          break;
        }
        common |= backslashes;
        carry = <u32>(sum < backslashes);
        p += 64;
      }
      while (p + 16 <= end) {
        const lane = v128.load(p);
        const isQuote = i8x16.eq(lane, quotes);
        const backslashes = <u32>i8x16.bitmask(i8x16.eq(lane, slashes));
        const stops = <u32>i8x16.bitmask(quotesOrControls(lane));
        const escapable = <u32>i8x16.bitmask(escapableBytes(lane, isQuote)) | backslashes;
        const inLane = coveredBytes(backslashes);
        const covered = (inLane & 0xFFFF) | carry;
        // Out of this loop: an escape of any other byte, a quote or control
        // byte no escape covers, and a backslash the lane before covers (the
        // runs would shift by one; rare, and checked escape by escape).
        if (((covered & ~escapable) | (stops & ~covered) | (carry & backslashes)) != 0) break;
        common |= <u64>backslashes;
        carry = inLane >> 16;
        p += 16;
      }
      // A lane the loop did not take starts at the backslash covering its first byte.
      if (carry != 0) p--;
      if (p + 16 > end) break;
      const lane = v128.load(p);
      let stops = <u32>i8x16.bitmask(quotesOrControls(lane));
      let escapes = <u32>i8x16.bitmask(i8x16.eq(lane, slashes));
      let next = p; // past the last escape checked
      while (escapes != 0) {
        const at = p + <usize>ctz<u32>(escapes);
        escapes &= escapes - 1;
        if (at < next) continue; // the escaped byte of "\\"
        if (stops != 0 && p + <usize>ctz<u32>(stops) < at) break; // a stop comes first
        const after = escapeEnd(at, end);
        if (after == 0) return this.fail();
        escaped = true;
        if (after - at == 6 || load<u8>(at + 1) == 0x2F) canonical = false; // \u, \/
        next = after;
        stops = after - p >= 16 ? 0 : stops & ~((<u32>1 << <u32>(after - p)) - 1);
      }
      if (stops != 0) {
        p += <usize>ctz<u32>(stops);
        break;
      }
      p = max(next, p + 16);
    }
    // At a stop found above, or in the last few bytes: byte by byte.
    while (p < end) {
      const c = <u32>load<u8>(p);
      if (c == QUOTE) {
        escaped = escaped || common != 0;
        this.strEnd = p;
        this.strEscaped = escaped;
        this.strCanonical = canonical;
        this.pos = p + 1;
        this.remember(this.strStart, p, escaped, canonical);
        return true;
      }
      if (c < 0x20) return this.fail();
      if (c != BACKSLASH) {
        p++;
        continue;
      }
      const after = escapeEnd(p, end);
      if (after == 0) return this.fail();
      escaped = true;
      if (after - p == 6 || load<u8>(p + 1) == 0x2F) canonical = false;
      p = after;
    }
    return this.fail();
  }

  /** Reads a number per the JSON grammar; its text is [strStart, strEnd). */
  readNumber(): bool {
    if (this.failed) return false;
    this.peek();
    let p = this.pos;
    const end = this.end;
    this.strStart = p;
    if (p < end && load<u8>(p) == 0x2D) p++;
    if (p >= end) return this.fail();
    let c = <u32>load<u8>(p);
    if (c == 0x30) {
      p++;
    } else if (c - 0x31 < 9) {
      while (p < end && <u32>load<u8>(p) - 0x30 < 10) p++;
    } else {
      return this.fail();
    }
    if (p < end && load<u8>(p) == 0x2E) {
      p++;
      const digits = p;
      while (p < end && <u32>load<u8>(p) - 0x30 < 10) p++;
      if (p == digits) return this.fail();
    }
    if (p < end && (load<u8>(p) | 0x20) == 0x65) {
      p++;
      if (p < end && (load<u8>(p) == 0x2B || load<u8>(p) == 0x2D)) p++;
      const digits = p;
      while (p < end && <u32>load<u8>(p) - 0x30 < 10) p++;
      if (p == digits) return this.fail();
    }
    this.strEnd = p;
    this.pos = p;
    return true;
  }

  /** Reads true/false/null; returns which via the first byte in strStart. */
  readLiteral(): bool {
    if (this.failed) return false;
    const c = this.peek();
    const p = this.pos;
    this.strStart = p;
    if (c == 0x74 && this.matchAt(p, 0x65757274, 4)) { this.pos = p + 4; return true; }      // "true"
    if (c == 0x6E && this.matchAt(p, 0x6C6C756E, 4)) { this.pos = p + 4; return true; }      // "null"
    if (c == 0x66 && p + 5 <= this.end && this.matchAt(p, 0x736C6166, 4) && load<u8>(p + 4) == 0x65) {
      this.pos = p + 5;                                                                      // "false"
      return true;
    }
    return this.fail();
  }

  private matchAt(p: usize, word: u32, n: usize): bool {
    return p + n <= this.end && load<u32>(p) == word;
  }

  /** Skips one complete value of any kind, validating it, without recursion. */
  skipValue(): bool {
    const stack = this.stack;
    let depth = 0;
    while (!this.failed) {
      // Expect a value.
      const kind = this.peekKind();
      if (kind == JsonKind.Object || kind == JsonKind.Array) {
        if (depth >= MAX_DEPTH) return this.fail();
        const close: u32 = kind == JsonKind.Object ? 0x7D : 0x5D;
        this.pos++;
        if (this.peek() == close) {
          this.pos++;
        } else {
          unchecked(stack[depth++] = kind == JsonKind.Object ? IN_OBJECT : IN_ARRAY);
          if (kind == JsonKind.Object && !this.readKey()) return false;
          continue;
        }
      } else if (kind == JsonKind.String) {
        if (!this.readString()) return false;
      } else if (kind == JsonKind.Number) {
        if (!this.readNumber()) return false;
      } else if (kind == JsonKind.Literal) {
        if (!this.readLiteral()) return false;
      } else {
        return this.fail();
      }
      // After a value: close containers or move to the next member/element.
      while (true) {
        if (depth == 0) return true;
        const top = unchecked(stack[depth - 1]);
        const c = this.peek();
        if (c == 0x2C) {
          this.pos++;
          if (top == IN_OBJECT && !this.readKey()) return false;
          break;
        }
        if ((c == 0x7D && top == IN_OBJECT) || (c == 0x5D && top == IN_ARRAY)) {
          this.pos++;
          depth--;
          continue;
        }
        return this.fail();
      }
    }
    return false;
  }

  /** True when only whitespace remains. */
  atEnd(): bool {
    return !this.failed && this.peek() == 0 && this.pos == this.end;
  }
}
