// A strict, allocation-free JSON reader over raw bytes [ptr, ptr+len).
//
// The caller drives the grammar (beginObject / more / readKey / readString /
// skipValue) and the reader validates as it goes, so one pass both checks the
// request body is JSON and finds the fields the router needs. Nothing is
// allocated per call: strings are reported as spans into the input and decoded
// (escapes resolved) only when a caller asks, into a ByteSink. Every read is
// bounds-checked against `end`; malformed input sets `failed` and every later
// call returns false, so callers check once at the end. Nesting is tracked in
// a fixed stack (MAX_DEPTH) instead of recursion, so deep input cannot exhaust
// the Wasm stack.
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
/** Strings a reader remembers per input (scanStringBody): the long ones, and the ones it decoded in place. */
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

function hexValue(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  const lower = c | 0x20;
  if (lower - 0x61 < 6) return <i32>(lower - 0x61 + 10);
  return -1;
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

/** The bytes of `lane` that may follow a backslash as a two-character escape, except the backslash itself. */
// @ts-ignore: decorator
@inline function shortEscapeBytes(lane: v128): u32 {
  const quoteOrSlash = v128.or(i8x16.eq(lane, i8x16.splat(0x22)), i8x16.eq(lane, i8x16.splat(0x2F)));
  const bf = v128.or(i8x16.eq(lane, i8x16.splat(0x62)), i8x16.eq(lane, i8x16.splat(0x66)));
  const nrt = v128.or(v128.or(i8x16.eq(lane, i8x16.splat(0x6E)), i8x16.eq(lane, i8x16.splat(0x72))), i8x16.eq(lane, i8x16.splat(0x74)));
  return <u32>i8x16.bitmask(v128.or(v128.or(quoteOrSlash, bf), nrt));
}

/** Where the escape whose backslash is at `at` ends, or 0 if it is malformed or runs past `end`. */
// @ts-ignore: decorator
@inline function escapeEnd(at: usize, end: usize): usize {
  if (at + 1 >= end) return 0;
  const e = <u32>load<u8>(at + 1);
  if (load<u8>(SHORT_ESCAPES + e) != 0) return at + 2;
  if (e != 0x75 || at + 6 > end) return 0;
  for (let i: usize = 2; i < 6; i++) {
    if (hexValue(load<u8>(at + i)) < 0) return 0;
  }
  return at + 6;
}

/** The bytes of `lane` that end a plain run in a string: quotes, backslashes and control bytes. */
// @ts-ignore: decorator
@inline function specialBytes(lane: v128): u32 {
  return <u32>i8x16.bitmask(v128.or(v128.or(i8x16.eq(lane, i8x16.splat(<i8>QUOTE)), i8x16.eq(lane, i8x16.splat(<i8>BACKSLASH))),
    i8x16.lt_u(lane, i8x16.splat(0x20))));
}

/** Byte i of a lane holds i: with lt_u, a mask of a lane's first k bytes. */
const LANE_INDEX = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

@final
export class JsonReader {
  pos: usize = 0;
  end: usize = 0;
  failed: bool = false;
  /** The last string read: content span (quotes excluded) and whether it holds escapes. */
  strStart: usize = 0;
  strEnd: usize = 0;
  strEscaped: bool = false;
  private stack: StaticArray<u8> = new StaticArray<u8>(MAX_DEPTH);
  // The long strings scanned since reset, in input order: where each ends and
  // whether it holds escapes. A caller that walks the same values again (the
  // prompt extractor validates the whole body first, then reads the prompt's
  // values) gets those from here instead of scanning the text a second time.
  private memoStart: StaticArray<usize> = new StaticArray<usize>(MEMO_SLOTS);
  /** Where the string's closing quote is. */
  private memoEnd: StaticArray<usize> = new StaticArray<usize>(MEMO_SLOTS);
  /** Where its text ends: before the quote, unless it was decoded in place. */
  private memoTextEnd: StaticArray<usize> = new StaticArray<usize>(MEMO_SLOTS);
  private memoEscaped: StaticArray<bool> = new StaticArray<bool>(MEMO_SLOTS);
  private memoCount: i32 = 0;
  private memoCursor: i32 = 0;
  private decodesInPlace: bool = false;

  /**
   * Starts reading [ptr, ptr+len). With `decodeInPlace`, a string with escapes
   * is decoded where it stands as it is first scanned: its text moves to the
   * front of its span, and the reader remembers it (a later walk gets the
   * decoded text and skips to the closing quote), so the prompt's escapes are
   * handled in one pass instead of two (one to validate, one to decode).
   * The input is changed, then: only for a caller that owns its copy and
   * reads it with this reader alone, until the next reset.
   */
  reset(ptr: usize, len: usize, decodeInPlace: bool = false): void {
    this.decodesInPlace = decodeInPlace;
    this.pos = ptr;
    this.end = ptr + len;
    this.failed = false;
    this.strStart = 0;
    this.strEnd = 0;
    this.strEscaped = false;
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
    this.strEnd = unchecked(this.memoTextEnd[k]);
    this.strEscaped = unchecked(this.memoEscaped[k]);
    this.pos = unchecked(this.memoEnd[k]) + 1;
    return true;
  }

  /** Whether a string starting at p would be remembered if scanned now: there is a slot, and it is the furthest yet. */
  private mayRemember(p: usize): bool {
    const n = this.memoCount;
    return n < MEMO_SLOTS && (n == 0 || unchecked(this.memoStart[n - 1]) < p);
  }

  /** Remembers a long string just scanned, if it is the furthest one yet. */
  private remember(start: usize, end: usize, escaped: bool): void {
    if (end - start >= MEMO_MIN_BYTES && this.mayRemember(start)) this.memorize(start, end, end, escaped);
  }

  private memorize(start: usize, end: usize, textEnd: usize, escaped: bool): void {
    const n = this.memoCount;
    unchecked(this.memoStart[n] = start);
    unchecked(this.memoEnd[n] = end);
    unchecked(this.memoTextEnd[n] = textEnd);
    unchecked(this.memoEscaped[n] = escaped);
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
   * so that bodies equal as JSON values canonicalize to the same bytes.
   */
  decodeStringInto(out: ByteSink): void {
    let p = this.strStart;
    const end = this.strEnd;
    if (end <= p) return; // empty, or no string was read (never decode a stale span)
    if (!this.strEscaped) {
      out.writeBytes(p, end - p);
      return;
    }
    while (p < end) {
      if (out.full()) {
        // Stop decoding, but count what is left as dropped (raw bytes, an upper
        // bound): callers tell a string that did not fit by `dropped` > 0.
        out.dropped += end - p;
        break;
      }
      // The run up to the next backslash, then the escape: prompts hold one
      // every line or so ("\n"), so both are on the hot path.
      const q = out.writeUntil(p, end, <u8>BACKSLASH);
      if (q >= end) break;
      const short = <u32>load<u8>(SHORT_ESCAPES + <usize>load<u8>(q + 1));
      if (short != 0) {
        out.writeByte(short);
        p = q + 2;
        continue;
      }
      const r = this.decodeEscape(q, end);
      out.writeCodePoint(<u32>(r >> 32));
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
    let cp = this.hex4(p + 2);
    let next = p + 6;
    if (cp - 0xD800 < 0x400) {
      // High surrogate: it makes a pair only with an immediately following \uDC00-\uDFFF.
      // hex4 of a malformed escape has its high bits set, so it is never taken for one.
      const pair = next + 6 <= bound && <u32>load<u8>(next) == BACKSLASH && <u32>load<u8>(next + 1) == 0x75;
      const low = pair ? this.hex4(next + 2) : 0;
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

  private hex4(p: usize): u32 {
    return (<u32>hexValue(load<u8>(p)) << 12) | (<u32>hexValue(load<u8>(p + 1)) << 8) |
      (<u32>hexValue(load<u8>(p + 2)) << 4) | <u32>hexValue(load<u8>(p + 3));
  }

  /**
   * Scans from just after an opening quote to just after the closing one,
   * validating escapes and rejecting raw control characters. Sixteen bytes at a
   * time with SIMD; the escapes in a lane are checked where they stand, in
   * order, without leaving the loop (prompts hold one every line or so: "\n"),
   * and a quote an escape covers ("\"") does not end the string. An escape
   * that runs into the next lane moves the scan past it.
   */
  private scanStringBody(): bool {
    let p = this.pos;
    if (this.memoCount > 0 && this.recall(p)) return true;
    const end = this.end;
    const start = p;
    this.strStart = p;
    let escaped = false;
    // Only a string the reader will remember may be decoded where it stands:
    // read again from its start, its decoded text would not parse.
    const inPlace = this.decodesInPlace && this.mayRemember(p);
    const quotes = i8x16.splat(<i8>QUOTE);
    const slashes = i8x16.splat(<i8>BACKSLASH);
    const space = i8x16.splat(0x20);
    while (true) {
      // Plain text, the bulk of any prompt: a tight loop of its own.
      while (p + 16 <= end) {
        if (specialBytes(v128.load(p)) != 0) break;
        p += 16;
      }
      if (p + 16 > end) break;
      const lane = v128.load(p);
      // Quotes and control bytes: the string's end, or malformed.
      let stops = <u32>i8x16.bitmask(v128.or(i8x16.eq(lane, quotes), i8x16.lt_u(lane, space)));
      let escapes = <u32>i8x16.bitmask(i8x16.eq(lane, slashes));
      if (inPlace && escapes != 0 && (stops == 0 || ctz<u32>(stops) > ctz<u32>(escapes))) {
        return this.decodeRestInPlace(start, p + <usize>ctz<u32>(escapes));
      }
      // The usual lane: lone backslashes, each before one of " / b f n r t,
      // all checked at once. A backslash in the lane's last byte is left to
      // the next lane, which then starts at it. Anything else ("\\", "\u",
      // a bad escape) goes escape by escape below.
      if ((escapes & (escapes << 1)) == 0) {
        const escapedBytes = (escapes << 1) & 0xFFFF;
        const realStops = stops & ~escapedBytes;
        const inString: u32 = realStops != 0 ? (<u32>1 << ctz<u32>(realStops)) - 1 : 0xFFFF;
        if ((escapedBytes & ~shortEscapeBytes(lane) & inString) == 0) {
          if ((escapes & inString) != 0) escaped = true;
          if (realStops != 0) {
            p += <usize>ctz<u32>(realStops);
            break;
          }
          p += (escapes & 0x8000) != 0 ? 15 : 16;
          continue;
        }
      }
      let next = p; // past the last escape checked
      while (escapes != 0) {
        const at = p + <usize>ctz<u32>(escapes);
        escapes &= escapes - 1;
        if (at < next) continue; // the escaped byte of "\\"
        if (stops != 0 && p + <usize>ctz<u32>(stops) < at) break; // a stop comes first
        const after = escapeEnd(at, end);
        if (after == 0) return this.fail();
        escaped = true;
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
        this.strEnd = p;
        this.strEscaped = escaped;
        this.pos = p + 1;
        this.remember(this.strStart, p, escaped);
        return true;
      }
      if (c < 0x20) return this.fail();
      if (c != BACKSLASH) {
        p++;
        continue;
      }
      if (inPlace) return this.decodeRestInPlace(start, p);
      const after = escapeEnd(p, end);
      if (after == 0) return this.fail();
      escaped = true;
      p = after;
    }
    return this.fail();
  }

  /**
   * scanStringBody's other half, for a string that may be decoded where it
   * stands (reset's `decodeInPlace`): from its first backslash at `p`, checks
   * and decodes the rest of the string starting at `start`, moving the text
   * back over the escapes (decoded text is never longer than its JSON, so the
   * writes stay behind the reads), and remembers it. The plain runs between
   * escapes go 16 bytes at a time.
   */
  private decodeRestInPlace(start: usize, p: usize): bool {
    const end = this.end;
    let to = p;
    while (true) {
      // At a backslash: one escape.
      if (p + 1 >= end) return this.fail();
      const e = <u32>load<u8>(p + 1);
      const short = <u32>load<u8>(SHORT_ESCAPES + e);
      if (short != 0) {
        store<u8>(to, <u8>short);
        to++;
        p += 2;
      } else {
        if (escapeEnd(p, end) == 0) return this.fail();
        // Read before the write: the decoded bytes never reach past p.
        const r = this.decodeEscape(p, end);
        to = storeUtf8(to, <u32>(r >> 32));
        p = <usize>(r & 0xFFFFFFFF);
      }
      // The plain run up to the next quote, backslash or control byte.
      while (p + 16 <= end) {
        const lane = v128.load(p);
        const bits = specialBytes(lane);
        if (bits != 0) {
          // Only the k plain bytes: the rest of the lane's new place may
          // overlap text not read yet (the byte that stopped us, say), which
          // keeps its bytes.
          const k = ctz<u32>(bits);
          v128.store(to, v128.bitselect(lane, v128.load(to), i8x16.lt_u(LANE_INDEX, i8x16.splat(<i8>k))));
          p += <usize>k;
          to += <usize>k;
          break;
        }
        v128.store(to, lane);
        p += 16;
        to += 16;
      }
      while (p < end) {
        const c = <u32>load<u8>(p);
        if (c == QUOTE || c == BACKSLASH || c < 0x20) break;
        store<u8>(to, <u8>c);
        p++;
        to++;
      }
      if (p >= end) return this.fail();
      const c = <u32>load<u8>(p);
      if (c == QUOTE) {
        this.strStart = start;
        this.strEnd = to;
        this.strEscaped = false;
        this.pos = p + 1;
        this.memorize(start, p, to, false);
        return true;
      }
      if (c < 0x20) return this.fail();
    }
    return false; // unreachable: the loop only exits by return
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
