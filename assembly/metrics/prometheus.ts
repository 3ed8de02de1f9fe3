// Prometheus text exposition format (version 0.0.4): a streaming tokenizer
// over raw bytes in linear memory, e.g. the body of an HTTP callout response
// the host copied in. It owns line splitting, comment/HELP/TYPE handling,
// metric-family tracking, label-block validation, lazy label lookup and
// number parsing; it hands every sample to a SampleSink and knows nothing of
// model servers (assembly/metrics/dialect.ts maps samples to load signals).
//
// It must not: import assembly/abi/ (it runs under as-pect without a host);
// allocate per line or per sample (one parser is built at configure time and
// reused for every scrape); read outside [ptr, ptr + len); trap on any input.
// The format rules it follows, and where it is deliberately lenient or strict,
// are listed in assembly/metrics/README.md.
//
// One complete sample line and the spans the parser keeps (nothing is copied):
//
//   vllm:num_requests_waiting{engine="0",model_name="m"} 3.0 1712345678000\r\n
//   └──────── name ─────────┘ └─────── labels ────────┘  └─┘ └─timestamp─┘
//                             ^start                   ^end (the '}')
//                                                                         ^ a trailing CR is stripped
//
//   name        [a-zA-Z_:][a-zA-Z0-9_:]*        handed to the sink as (ptr, len)
//   labels      LabelView{start, end}            validated once; looked up lazily
//   value       f64 (NaN, ±Inf, exponents)       decoded only for selected lines
//   timestamp   optional, checked, ignored
//
// A line is only ever parsed once the '\n' that ends it has been found inside
// the body, so a body cut in the middle of a line never yields a value from
// the partial line: that tail is dropped and the outcome says `truncated`.

// @ts-ignore: decorator
@inline const LF: u32 = 0x0A;
// @ts-ignore: decorator
@inline const CR: u32 = 0x0D;
// @ts-ignore: decorator
@inline const SPACE: u32 = 0x20;
// @ts-ignore: decorator
@inline const TAB: u32 = 0x09;
// @ts-ignore: decorator
@inline const HASH: u32 = 0x23;
// @ts-ignore: decorator
@inline const LEFT_BRACE: u32 = 0x7B;
// @ts-ignore: decorator
@inline const RIGHT_BRACE: u32 = 0x7D;
// @ts-ignore: decorator
@inline const QUOTE: u32 = 0x22;
// @ts-ignore: decorator
@inline const BACKSLASH: u32 = 0x5C;
// @ts-ignore: decorator
@inline const EQUALS: u32 = 0x3D;
// @ts-ignore: decorator
@inline const COMMA: u32 = 0x2C;

/** "HELP" and "TYPE" read as one little-endian u32, so a keyword test is one load. */
// @ts-ignore: decorator
@inline const WORD_HELP: u32 = 0x504C4548;
// @ts-ignore: decorator
@inline const WORD_TYPE: u32 = 0x45505954;

/** Returned by the label scanner for a malformed block; never a real position. */
// @ts-ignore: decorator
@inline const MALFORMED: usize = usize.MAX_VALUE;

// ---------------------------------------------------------------------------
// Byte classes and scanning helpers

// @ts-ignore: decorator
@inline function isBlank(c: u32): bool {
  return c == SPACE || c == TAB;
}

// @ts-ignore: decorator
@inline function isDigit(c: u32): bool {
  return c - 0x30 < 10;
}

// @ts-ignore: decorator
@inline function isLetterOrUnderscore(c: u32): bool {
  return (c | 0x20) - 0x61 < 26 || c == 0x5F;
}

/** First byte of a metric name: [a-zA-Z_:]. */
// @ts-ignore: decorator
@inline function isMetricNameStart(c: u32): bool {
  return isLetterOrUnderscore(c) || c == 0x3A;
}

/** Later bytes of a metric name: [a-zA-Z0-9_:]. */
// @ts-ignore: decorator
@inline function isMetricNameByte(c: u32): bool {
  return isLetterOrUnderscore(c) || isDigit(c) || c == 0x3A;
}

/** Later bytes of a label name: [a-zA-Z0-9_]. The first must be a letter or '_'. */
// @ts-ignore: decorator
@inline function isLabelNameByte(c: u32): bool {
  return isLetterOrUnderscore(c) || isDigit(c);
}

// @ts-ignore: decorator
@inline function skipBlanks(p: usize, end: usize): usize {
  while (p < end && isBlank(load<u8>(p))) p++;
  return p;
}

/**
 * Position of the first `byte` in [p, end), or `end`. Sixteen bytes at a time
 * while a whole vector fits inside the range (never a load past `end`), then
 * byte by byte: this is what keeps a 1 MB line or a 60 KB page of histogram
 * buckets cheap, since most lines are skipped by looking for '\n' alone.
 */
export function findByte(p: usize, end: usize, byte: u32): usize {
  const needle = i8x16.splat(<i8>byte);
  while (end - p >= 16) {
    const hits = i8x16.bitmask(i8x16.eq(v128.load(p), needle));
    if (hits != 0) return p + <usize>ctz(hits);
    p += 16;
  }
  while (p < end) {
    if (<u32>load<u8>(p) == byte) return p;
    p++;
  }
  return end;
}

/** Position of the first '"' or '\\' in [p, end), or `end`; same vector scheme as findByte. */
function findQuoteOrBackslash(p: usize, end: usize): usize {
  const quote = i8x16.splat(<i8>QUOTE);
  const backslash = i8x16.splat(<i8>BACKSLASH);
  while (end - p >= 16) {
    const chunk = v128.load(p);
    const hits = i8x16.bitmask(v128.or(i8x16.eq(chunk, quote), i8x16.eq(chunk, backslash)));
    if (hits != 0) return p + <usize>ctz(hits);
    p += 16;
  }
  while (p < end) {
    const c = <u32>load<u8>(p);
    if (c == QUOTE || c == BACKSLASH) return p;
    p++;
  }
  return end;
}

/**
 * End of a quoted label value whose first byte is at `p`: the position of the
 * closing '"', or `end` when the quote is not closed inside the range. Escapes
 * are stepped over; which escapes are legal is checked elsewhere.
 */
function findClosingQuote(p: usize, end: usize): usize {
  while (true) {
    const q = findQuoteOrBackslash(p, end);
    if (q >= end) return end;
    if (<u32>load<u8>(q) == QUOTE) return q;
    if (end - q < 2) return end;
    p = q + 2;
  }
  return end; // unreachable; keeps the compiler's flow analysis happy
}

/**
 * Bytes [a, a+n) equal bytes [b, b+n). Eight bytes per step with unaligned
 * loads (legal and cheap in Wasm), where memory.compare falls back to a byte
 * loop whenever either side is unaligned, which metric names always are.
 */
export function bytesEqual(a: usize, b: usize, n: usize): bool {
  while (n >= 8) {
    if (load<u64>(a) != load<u64>(b)) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  while (n > 0) {
    if (load<u8>(a) != load<u8>(b)) return false;
    a++;
    b++;
    n--;
  }
  return true;
}

/**
 * End of the run of metric-name bytes [a-zA-Z0-9_:] that starts at `p`: the
 * first other byte, or `end`. Sixteen bytes per step while a whole vector
 * fits before `end`; a name scanned byte by byte was the parser's largest
 * per-line cost.
 */
function scanMetricNameBytes(p: usize, end: usize): usize {
  const caseBit = i8x16.splat(0x20);
  const lowerA = i8x16.splat(0x61);
  const digit0 = i8x16.splat(0x30);
  const letters = i8x16.splat(26);
  const digits = i8x16.splat(10);
  const underscore = i8x16.splat(0x5F);
  const colon = i8x16.splat(0x3A);
  while (end - p >= 16) {
    const chunk = v128.load(p);
    const letter = i8x16.lt_u(i8x16.sub(v128.or(chunk, caseBit), lowerA), letters);
    const digit = i8x16.lt_u(i8x16.sub(chunk, digit0), digits);
    const punctuation = v128.or(i8x16.eq(chunk, underscore), i8x16.eq(chunk, colon));
    const valid = i8x16.bitmask(v128.or(v128.or(letter, digit), punctuation));
    if (valid != 0xFFFF) return p + <usize>ctz(~valid);
    p += 16;
  }
  while (p < end && isMetricNameByte(load<u8>(p))) p++;
  return p;
}

/** Bytes [p, p+len) equal the ASCII literal `text` (compared case-sensitively). */
export function bytesEqualAscii(p: usize, len: i32, text: string): bool {
  if (len != text.length) return false;
  const chars = changetype<usize>(text);
  for (let i = 0; i < len; i++) {
    if (<u32>load<u8>(p + <usize>i) != <u32>load<u16>(chars + (<usize>i << 1))) return false;
  }
  return true;
}

/** Like bytesEqualAscii, ignoring ASCII case; `text` must be lower case. */
function bytesEqualAsciiNoCase(p: usize, len: i32, text: string): bool {
  if (len != text.length) return false;
  const chars = changetype<usize>(text);
  for (let i = 0; i < len; i++) {
    if ((<u32>load<u8>(p + <usize>i) | 0x20) != <u32>load<u16>(chars + (<usize>i << 1))) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Numbers

/** Exact powers of ten: every one up to 1e22 is representable in an f64. */
const POWERS_OF_TEN: StaticArray<f64> = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

// @ts-ignore: decorator
@inline const MAX_EXACT_MANTISSA: u64 = 1 << 53;

/**
 * mantissa × 10^exponent10. When the mantissa fits in 53 bits and the power is
 * at most 22, both operands are exact and one IEEE multiply or divide gives
 * the correctly rounded result (Clinger's fast path); that covers everything
 * the model servers print. Beyond it Math.pow supplies the power and the
 * result may be off by an ulp or two, which no load signal can notice.
 */
function scaleByPowerOfTen(mantissa: u64, exponent10: i32, negative: bool): f64 {
  let value = <f64>mantissa;
  if (mantissa != 0 && exponent10 != 0) {
    if (mantissa <= MAX_EXACT_MANTISSA && exponent10 >= -22 && exponent10 <= 22) {
      value = exponent10 > 0
        ? value * unchecked(POWERS_OF_TEN[exponent10])
        : value / unchecked(POWERS_OF_TEN[-exponent10]);
    } else if (exponent10 > 0) {
      // The mantissa is at least 1, so past 10^308 the result is infinite.
      value = exponent10 > 308 ? Infinity : value * Math.pow(10, <f64>exponent10);
    } else if (exponent10 >= -308) {
      // Dividing by a (nearly) exact power beats multiplying by an inexact negative one.
      value /= Math.pow(10, <f64>-exponent10);
    } else {
      // Subnormal territory: two steps, since 10^-exponent10 itself would overflow.
      value = exponent10 < -350 ? 0 : value / 1e308 / Math.pow(10, <f64>(-exponent10 - 308));
    }
  }
  return negative ? -value : value;
}

/**
 * Parses a Go ParseFloat-style number occupying exactly [start, end): an
 * optional sign, digits with an optional fraction, an optional exponent, or
 * Inf / Infinity (any case, optional sign) or NaN (any case, no sign). Hex
 * floats and underscores are not accepted. `ok` reports success; the result
 * is 0 on failure.
 */
@final
export class NumberReader {
  ok: bool = false;

  read(start: usize, end: usize): f64 {
    this.ok = false;
    if (start >= end) return 0;
    let p = start;
    let negative = false;
    let c = <u32>load<u8>(p);
    if (c == 0x2B || c == 0x2D) { // '+' '-'
      negative = c == 0x2D;
      p++;
      if (p >= end) return 0;
      c = <u32>load<u8>(p);
    }
    const lower = c | 0x20;
    if (lower == 0x69) { // 'i'
      const rest = <i32>(end - p);
      if (bytesEqualAsciiNoCase(p, rest, "inf") || bytesEqualAsciiNoCase(p, rest, "infinity")) {
        this.ok = true;
        return negative ? -Infinity : Infinity;
      }
      return 0;
    }
    if (lower == 0x6E) { // 'n': Go accepts NaN only without a sign
      if (p == start && bytesEqualAsciiNoCase(p, <i32>(end - p), "nan")) {
        this.ok = true;
        return NaN;
      }
      return 0;
    }

    // Keep at most 19 significant digits (they fit a u64); later integer
    // digits only raise the exponent, later fraction digits are dropped.
    let mantissa: u64 = 0;
    let significant = 0;
    let exponent10 = 0;
    let sawDigit = false;
    while (p < end) {
      c = <u32>load<u8>(p);
      if (!isDigit(c)) break;
      sawDigit = true;
      if (significant < 19) {
        mantissa = mantissa * 10 + <u64>(c - 0x30);
        if (mantissa != 0) significant++;
      } else {
        exponent10++;
      }
      p++;
    }
    if (p < end && <u32>load<u8>(p) == 0x2E) { // '.'
      p++;
      while (p < end) {
        c = <u32>load<u8>(p);
        if (!isDigit(c)) break;
        sawDigit = true;
        if (significant < 19) {
          mantissa = mantissa * 10 + <u64>(c - 0x30);
          if (mantissa != 0) significant++;
          exponent10--;
        }
        p++;
      }
    }
    if (!sawDigit) return 0;
    if (p < end && (<u32>load<u8>(p) | 0x20) == 0x65) { // 'e' / 'E'
      p++;
      let exponentNegative = false;
      if (p < end) {
        c = <u32>load<u8>(p);
        if (c == 0x2B || c == 0x2D) {
          exponentNegative = c == 0x2D;
          p++;
        }
      }
      let exponent = 0;
      let exponentDigits = 0;
      while (p < end) {
        c = <u32>load<u8>(p);
        if (!isDigit(c)) break;
        // Saturate instead of overflowing: 1e999999999 is still just +Inf.
        if (exponent < 100000) exponent = exponent * 10 + <i32>(c - 0x30);
        exponentDigits++;
        p++;
      }
      if (exponentDigits == 0) return 0;
      exponent10 += exponentNegative ? -exponent : exponent;
    }
    if (p != end) return 0;
    this.ok = true;
    return scaleByPowerOfTen(mantissa, exponent10, negative);
  }
}

// ---------------------------------------------------------------------------
// Labels

/**
 * A view of one sample's validated label block. It copies nothing: `find()`
 * walks the block to the wanted label and leaves its raw (still escaped) value
 * as [valueStart, valueEnd); escapes are decoded only when a caller asks
 * (valueEquals, decodeValueInto, valueAsCount). Valid only inside
 * SampleSink.onSample for the sample being delivered.
 *
 *   {engine="0",path="C:\\dir",note="say \"hi\"\n"}
 *    │                                            │
 *    start                                      end (the '}' byte)
 *                   └valueStart  └valueEnd  after find("path"): raw `C:\\dir`
 */
@final
export class LabelView {
  start: usize = 0;
  end: usize = 0;
  /** Some value in the block contains a backslash escape. */
  hasEscapes: bool = false;
  valueStart: usize = 0;
  valueEnd: usize = 0;

  // @ts-ignore: decorator
  @inline clear(): void {
    this.start = 0;
    this.end = 0;
    this.hasEscapes = false;
    this.valueStart = 0;
    this.valueEnd = 0;
  }

  /** Finds the label called (namePtr, nameLen); on success the value span is set. */
  find(namePtr: usize, nameLen: i32): bool {
    let p = this.start;
    const end = this.end;
    while (p < end) {
      p = skipBlanks(p, end);
      const name = p;
      while (p < end && isLabelNameByte(load<u8>(p))) p++;
      const length = <i32>(p - name);
      p = skipBlanks(p, end);
      if (p >= end || <u32>load<u8>(p) != EQUALS) return false;
      p = skipBlanks(p + 1, end);
      if (p >= end || <u32>load<u8>(p) != QUOTE) return false;
      const value = p + 1;
      const close = this.hasEscapes ? findClosingQuote(value, end) : findByte(value, end, QUOTE);
      if (close >= end) return false;
      if (length == nameLen && bytesEqual(name, namePtr, <usize>nameLen)) {
        this.valueStart = value;
        this.valueEnd = close;
        return true;
      }
      p = skipBlanks(close + 1, end);
      if (p < end && <u32>load<u8>(p) == COMMA) p++;
    }
    return false;
  }

  /** Raw length of the found value, escapes included. */
  // @ts-ignore: decorator
  @inline get rawValueLength(): i32 {
    return <i32>(this.valueEnd - this.valueStart);
  }

  /** Length of the found value once \\ \" \n are decoded. */
  decodedValueLength(): i32 {
    if (!this.hasEscapes) return this.rawValueLength;
    let length = 0;
    let p = this.valueStart;
    const end = this.valueEnd;
    while (p < end) {
      p += <u32>load<u8>(p) == BACKSLASH ? 2 : 1;
      length++;
    }
    return length;
  }

  /** The found value, decoded, equals the bytes (ptr, len). No copy, no scratch. */
  valueEquals(ptr: usize, len: i32): bool {
    if (!this.hasEscapes) {
      return this.rawValueLength == len && bytesEqual(this.valueStart, ptr, <usize>len);
    }
    let p = this.valueStart;
    const end = this.valueEnd;
    let i = 0;
    while (p < end) {
      if (i >= len) return false;
      let c = <u32>load<u8>(p);
      if (c == BACKSLASH && end - p >= 2) {
        c = decodeEscape(<u32>load<u8>(p + 1));
        p += 2;
      } else {
        p++;
      }
      if (c != <u32>load<u8>(ptr + <usize>i)) return false;
      i++;
    }
    return i == len;
  }

  /**
   * Decodes the found value into [dst, dst + capacity). Returns the decoded
   * length, or -1 when it does not fit (nothing beyond `capacity` is written).
   * Meant for a reusable scratch buffer owned by the caller.
   */
  decodeValueInto(dst: usize, capacity: i32): i32 {
    let p = this.valueStart;
    const end = this.valueEnd;
    let n = 0;
    while (p < end) {
      if (n >= capacity) return -1;
      let c = <u32>load<u8>(p);
      if (c == BACKSLASH && end - p >= 2) {
        c = decodeEscape(<u32>load<u8>(p + 1));
        p += 2;
      } else {
        p++;
      }
      store<u8>(dst + <usize>n, <u8>c);
      n++;
    }
    return n;
  }

  /**
   * The found value as a non-negative decimal integer ("16", "8192"), or -1
   * when it is anything else ("None", "", "1.5", more than 18 digits).
   * Digits are never escaped, so no decoding is needed.
   */
  valueAsCount(): i64 {
    const length = this.rawValueLength;
    if (length <= 0 || length > 18) return -1;
    let result: i64 = 0;
    for (let p = this.valueStart; p < this.valueEnd; p++) {
      const c = <u32>load<u8>(p);
      if (!isDigit(c)) return -1;
      result = result * 10 + <i64>(c - 0x30);
    }
    return result;
  }
}

/** The byte an escape stands for; only \\ \" \n reach here (validated when scanned). */
// @ts-ignore: decorator
@inline function decodeEscape(c: u32): u32 {
  return c == 0x6E ? LF : c;
}

// ---------------------------------------------------------------------------
// The sink and the outcome

/**
 * Receives samples. AssemblyScript has no closures, so the callback is an
 * object: subclass this. The parser asks `selectSample` first, from the name
 * alone, so that lines nobody wants (most of a page: histogram buckets,
 * process metrics) cost one newline search and a name scan, not a label and
 * number parse.
 */
export abstract class SampleSink {
  /** Return true to have this line's labels and value parsed and delivered. */
  abstract selectSample(namePtr: usize, nameLen: i32): bool;
  /**
   * One well-formed selected sample. `labels` and the name bytes are valid
   * only during the call. `familyRun` numbers the contiguous group of lines
   * (one metric family) the sample belongs to; see ParseOutcome.familyRun.
   */
  abstract onSample(namePtr: usize, nameLen: i32, labels: LabelView, value: f64, familyRun: i32): void;
}

/** What one parse saw. Owned by the parser and overwritten by the next parse. */
@final
export class ParseOutcome {
  /** Complete lines ('\n'-terminated), including comments and blank lines. */
  lines: i32 = 0;
  /** Lines that start with a valid metric name (selected or not). */
  sampleLines: i32 = 0;
  /** Well-formed selected samples delivered to the sink. */
  samples: i32 = 0;
  /**
   * Lines skipped as malformed: any line whose first token is not a metric
   * name or a comment, broken HELP/TYPE lines, and selected sample lines
   * whose labels, value or timestamp do not parse. Unselected lines are not
   * checked past their name (that is what makes them cheap).
   */
  malformed: i32 = 0;
  /** The body ended inside a line: there were non-blank bytes after the last '\n'. They were ignored. */
  truncated: bool = false;
  /** An OpenMetrics "# EOF" line ended the page; anything after it was ignored. */
  sawEof: bool = false;
  /**
   * Number of the metric-family run the last complete line belonged to. A
   * run is a maximal group of consecutive lines of one family: a HELP/TYPE
   * line naming another family, or a sample whose name is not the current
   * family's name plus a standard suffix, starts the next run. The spec
   * requires each family's lines to be one uninterrupted group, so every run
   * before this one is complete even when `truncated`; this run may not be.
   */
  familyRun: i32 = 0;

  reset(): void {
    this.lines = 0;
    this.sampleLines = 0;
    this.samples = 0;
    this.malformed = 0;
    this.truncated = false;
    this.sawEof = false;
    this.familyRun = 0;
  }
}

// ---------------------------------------------------------------------------
// The parser

/**
 * Walks a page line by line and feeds a SampleSink. Build one at configure
 * time and reuse it: `parse` allocates nothing, and its outcome, label view
 * and number reader are fields overwritten by every call.
 */
@final
export class PrometheusTextParser {
  readonly labels: LabelView = new LabelView();
  readonly outcome: ParseOutcome = new ParseOutcome();
  private readonly numbers: NumberReader = new NumberReader();
  /** The current family's name, a span inside the body being parsed (length -1: none yet). */
  private familyPtr: usize = 0;
  private familyLen: i32 = -1;

  parse(ptr: usize, len: usize, sink: SampleSink): ParseOutcome {
    const outcome = this.outcome;
    outcome.reset();
    this.familyPtr = 0;
    this.familyLen = -1;
    const end = ptr + len;
    if (end < ptr) return outcome; // the range wraps around the address space: nothing to read
    let pos = ptr;
    while (pos < end) {
      const newline = findByte(pos, end, LF);
      if (newline >= end) {
        // No '\n' before the end of the body. The spec says the last line
        // must end with one, and "…} 1" cut from "…} 17" looks complete, so
        // the tail is never parsed: it can only be reported.
        if (skipBlanksAndCr(pos, end) < end) outcome.truncated = true;
        break;
      }
      outcome.lines++;
      if (this.parseLine(pos, newline, sink)) break;
      pos = newline + 1;
    }
    return outcome;
  }

  /** One complete line [start, newline). Returns true when parsing must stop ("# EOF"). */
  private parseLine(start: usize, newline: usize, sink: SampleSink): bool {
    // Leading and trailing blanks are ignored by the spec; a trailing '\r'
    // is the rest of a CRLF line ending.
    let end = newline;
    while (end > start) {
      const c = <u32>load<u8>(end - 1);
      if (!isBlank(c) && c != CR) break;
      end--;
    }
    const p = skipBlanks(start, end);
    if (p == end) return false; // empty line
    if (<u32>load<u8>(p) == HASH) return this.parseComment(p + 1, end);
    this.parseSample(p, end, sink);
    return false;
  }

  private parseComment(p: usize, end: usize): bool {
    p = skipBlanks(p, end);
    const word = p;
    while (p < end && !isBlank(load<u8>(p))) p++;
    const wordLength = p - word;
    if (wordLength == 4) {
      const keyword = load<u32>(word);
      if (keyword == WORD_HELP || keyword == WORD_TYPE) {
        p = skipBlanks(p, end);
        const name = p;
        if (p < end && isMetricNameStart(load<u8>(p))) {
          p++;
          while (p < end && isMetricNameByte(load<u8>(p))) p++;
        }
        if (p == name || (p < end && !isBlank(load<u8>(p)))) {
          this.outcome.malformed++;
          return false;
        }
        this.enterFamily(name, <i32>(p - name));
      }
    } else if (wordLength == 3 && p == end && bytesEqualAscii(word, 3, "EOF")) {
      this.outcome.sawEof = true;
      return true;
    }
    // Any other comment is ignored.
    return false;
  }

  private parseSample(start: usize, end: usize, sink: SampleSink): void {
    const outcome = this.outcome;
    if (!isMetricNameStart(load<u8>(start))) {
      outcome.malformed++;
      return;
    }
    let p = scanMetricNameBytes(start + 1, end);
    const nameLength = <i32>(p - start);
    // The name must be followed by a label block or a blank before the value.
    if (p == end || (<u32>load<u8>(p) != LEFT_BRACE && !isBlank(load<u8>(p)))) {
      outcome.malformed++;
      return;
    }
    outcome.sampleLines++;
    if (!this.continuesFamily(start, nameLength)) this.enterFamily(start, nameLength);
    if (!sink.selectSample(start, nameLength)) return;

    const labels = this.labels;
    labels.clear();
    p = skipBlanks(p, end);
    if (p < end && <u32>load<u8>(p) == LEFT_BRACE) {
      p = this.scanLabelBlock(p + 1, end);
      if (p == MALFORMED) {
        outcome.malformed++;
        return;
      }
      p = skipBlanks(p, end);
    }
    const valueStart = p;
    while (p < end && !isBlank(load<u8>(p))) p++;
    const value = this.numbers.read(valueStart, p);
    if (!this.numbers.ok) {
      outcome.malformed++;
      return;
    }
    p = skipBlanks(p, end);
    if (p < end && <u32>load<u8>(p) != HASH) {
      // A timestamp: int64 milliseconds in 0.0.4, float seconds in
      // OpenMetrics. Checked so garbage is rejected, then ignored.
      const timestampStart = p;
      while (p < end && !isBlank(load<u8>(p))) p++;
      const timestamp = this.numbers.read(timestampStart, p);
      if (!this.numbers.ok || !isFinite(timestamp)) {
        outcome.malformed++;
        return;
      }
      p = skipBlanks(p, end);
    }
    // Whatever follows '#' is an OpenMetrics exemplar: ignored.
    if (p < end && <u32>load<u8>(p) != HASH) {
      outcome.malformed++;
      return;
    }
    outcome.samples++;
    sink.onSample(start, nameLength, labels, value, outcome.familyRun);
  }

  /**
   * Validates `name="value", …}` starting just after '{' and fills the label
   * view. Returns the position after '}', or MALFORMED. Only the escapes
   * \\ \" \n are accepted, as in the spec (and Go's expfmt parser).
   */
  private scanLabelBlock(p: usize, end: usize): usize {
    const labels = this.labels;
    labels.start = p;
    while (true) {
      p = skipBlanks(p, end);
      if (p >= end) return MALFORMED;
      let c = <u32>load<u8>(p);
      if (c == RIGHT_BRACE) break;
      if (!isLetterOrUnderscore(c)) return MALFORMED;
      p++;
      while (p < end && isLabelNameByte(load<u8>(p))) p++;
      p = skipBlanks(p, end);
      if (p >= end || <u32>load<u8>(p) != EQUALS) return MALFORMED;
      p = skipBlanks(p + 1, end);
      if (p >= end || <u32>load<u8>(p) != QUOTE) return MALFORMED;
      p++;
      while (true) {
        const q = findQuoteOrBackslash(p, end);
        if (q >= end) return MALFORMED; // unterminated value
        if (<u32>load<u8>(q) == QUOTE) {
          p = q + 1;
          break;
        }
        if (end - q < 2) return MALFORMED;
        const escaped = <u32>load<u8>(q + 1);
        if (escaped != BACKSLASH && escaped != QUOTE && escaped != 0x6E) return MALFORMED;
        labels.hasEscapes = true;
        p = q + 2;
      }
      p = skipBlanks(p, end);
      if (p >= end) return MALFORMED;
      c = <u32>load<u8>(p);
      if (c == COMMA) {
        p++;
        continue; // a trailing comma before '}' is allowed
      }
      if (c != RIGHT_BRACE) return MALFORMED;
      break;
    }
    labels.end = p;
    return p + 1;
  }

  /** A new family (or the same one named again, which changes nothing). */
  private enterFamily(name: usize, length: i32): void {
    if (length == this.familyLen && bytesEqual(name, this.familyPtr, <usize>length)) return;
    this.familyPtr = name;
    this.familyLen = length;
    this.outcome.familyRun++;
  }

  /**
   * The sample name is the current family's name, or that name plus one of
   * the suffixes the client libraries append for counters (_total,
   * _created), histograms and summaries (_bucket, _sum, _count, _created,
   * gauge histograms' _gsum, _gcount) and info metrics (_info).
   */
  private continuesFamily(name: usize, length: i32): bool {
    const familyLength = this.familyLen;
    if (familyLength < 0 || length < familyLength) return false;
    if (!bytesEqual(name, this.familyPtr, <usize>familyLength)) return false;
    const rest = length - familyLength;
    if (rest == 0) return true;
    const suffix = name + <usize>familyLength;
    switch (rest) {
      case 4: return bytesEqualAscii(suffix, rest, "_sum");
      case 5: return bytesEqualAscii(suffix, rest, "_info") || bytesEqualAscii(suffix, rest, "_gsum");
      case 6: return bytesEqualAscii(suffix, rest, "_total") || bytesEqualAscii(suffix, rest, "_count");
      case 7: return bytesEqualAscii(suffix, rest, "_bucket") || bytesEqualAscii(suffix, rest, "_gcount");
      case 8: return bytesEqualAscii(suffix, rest, "_created");
      default: return false;
    }
  }
}

/** Skips blanks and carriage returns; used to tell a cut line from trailing whitespace. */
function skipBlanksAndCr(p: usize, end: usize): usize {
  while (p < end) {
    const c = <u32>load<u8>(p);
    if (!isBlank(c) && c != CR) break;
    p++;
  }
  return p;
}
