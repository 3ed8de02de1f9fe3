// The Prometheus text tokenizer (assembly/metrics/prometheus.ts) on its own:
// line splitting, comments, labels and escapes, numbers, timestamps, CRLF,
// long lines, truncation, garbage. The dialect tests cover the realistic pages.
import {
  LabelView,
  NumberReader,
  ParseOutcome,
  PrometheusTextParser,
  SampleSink,
  bytesEqualAscii,
  findByte,
} from "../../assembly/metrics/prometheus";

const SCRATCH_BYTES = 1 << 21;
const scratch = heap.alloc(SCRATCH_BYTES);

/** Records every delivered sample; optionally looks one label up in each. */
class Recorder extends SampleSink {
  /** Select only samples with this name ("" = all). */
  only: string = "";
  /** Label to look up in every delivered sample ("" = none). */
  label: string = "";
  names: string[] = [];
  values: f64[] = [];
  runs: i32[] = [];
  /** Decoded value of `label` per sample, or "<absent>". */
  labelValues: string[] = [];
  selected: i32 = 0;

  selectSample(namePtr: usize, nameLen: i32): bool {
    this.selected++;
    return this.only.length == 0 || bytesEqualAscii(namePtr, nameLen, this.only);
  }

  onSample(namePtr: usize, nameLen: i32, labels: LabelView, value: f64, familyRun: i32): void {
    this.names.push(String.UTF8.decodeUnsafe(namePtr, <usize>nameLen));
    this.values.push(value);
    this.runs.push(familyRun);
    if (this.label.length > 0) {
      const wanted = String.UTF8.encode(this.label);
      if (labels.find(changetype<usize>(wanted), wanted.byteLength)) {
        const n = labels.decodeValueInto(scratch, SCRATCH_BYTES);
        this.labelValues.push(n < 0 ? "<too long>" : String.UTF8.decodeUnsafe(scratch, <usize>n));
      } else {
        this.labelValues.push("<absent>");
      }
    }
  }
}

/** Looks up label v and compares it with a fixed string. */
class Check extends SampleSink {
  equal: bool = false;
  unequal: bool = true;
  decodedLength: i32 = -1;
  rawLength: i32 = -1;
  selectSample(namePtr: usize, nameLen: i32): bool { return true; }
  onSample(namePtr: usize, nameLen: i32, labels: LabelView, value: f64, familyRun: i32): void {
    const name = String.UTF8.encode("v");
    labels.find(changetype<usize>(name), name.byteLength);
    const want = String.UTF8.encode("a\"b\\c\nd");
    this.equal = labels.valueEquals(changetype<usize>(want), want.byteLength);
    const other = String.UTF8.encode("a\"b\\c\ne");
    this.unequal = labels.valueEquals(changetype<usize>(other), other.byteLength);
    this.decodedLength = labels.decodedValueLength();
    this.rawLength = labels.rawValueLength;
  }
}

/** Decodes label v into a 4-byte scratch window. */
class Small extends SampleSink {
  result: i32 = 0;
  selectSample(namePtr: usize, nameLen: i32): bool { return true; }
  onSample(namePtr: usize, nameLen: i32, labels: LabelView, value: f64, familyRun: i32): void {
    const name = String.UTF8.encode("v");
    labels.find(changetype<usize>(name), name.byteLength);
    store<u8>(scratch + 4, 0xEE);
    this.result = labels.decodeValueInto(scratch, 4);
  }
}

const parser = new PrometheusTextParser();

function parseText(text: string, recorder: Recorder): ParseOutcome {
  const body = String.UTF8.encode(text);
  return parser.parse(changetype<usize>(body), body.byteLength, recorder);
}

function parseBytes(body: ArrayBuffer, recorder: Recorder): ParseOutcome {
  return parser.parse(changetype<usize>(body), body.byteLength, recorder);
}

function bytesOf(values: u8[]): ArrayBuffer {
  const buffer = new ArrayBuffer(values.length);
  for (let i = 0; i < values.length; i++) store<u8>(changetype<usize>(buffer) + <usize>i, values[i]);
  return buffer;
}

/** Parses one sample line and returns its value, or -12345 when it is not delivered. */
function valueOf(line: string): f64 {
  const recorder = new Recorder();
  parseText(line + "\n", recorder);
  return recorder.values.length == 1 ? recorder.values[0] : -12345;
}

const reader = new NumberReader();
function number(text: string): f64 {
  const b = String.UTF8.encode(text);
  return reader.read(changetype<usize>(b), changetype<usize>(b) + <usize>b.byteLength);
}

describe("lines, comments, HELP and TYPE", () => {
  it("delivers samples and ignores comments, HELP, TYPE and blank lines", () => {
    const recorder = new Recorder();
    const outcome = parseText(
      "# HELP http_requests_total The total number of HTTP requests.\n" +
      "# TYPE http_requests_total counter\n" +
      "# a plain comment with \"quotes\" and {braces}\n" +
      "\n" +
      "   \n" +
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n" +
      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n" +
      "  #indented comment\n" +
      "metric_without_timestamp_and_labels 12.47\n",
      recorder,
    );
    expect<i32>(outcome.lines).toBe(9);
    expect<i32>(outcome.samples).toBe(3);
    expect<i32>(outcome.sampleLines).toBe(3);
    expect<i32>(outcome.malformed).toBe(0);
    expect<bool>(outcome.truncated).toBe(false);
    expect<string>(recorder.names[0]).toBe("http_requests_total");
    expect<f64>(recorder.values[0]).toBe(1027);
    expect<f64>(recorder.values[1]).toBe(3);
    expect<string>(recorder.names[2]).toBe("metric_without_timestamp_and_labels");
    expect<f64>(recorder.values[2]).toBe(12.47);
  });

  it("counts a HELP or TYPE line without a valid name as malformed and goes on", () => {
    const recorder = new Recorder();
    const outcome = parseText("# HELP\n# TYPE 9bad counter\n# HELP ok_name docs\nok_name 1\n", recorder);
    expect<i32>(outcome.malformed).toBe(2);
    expect<i32>(outcome.samples).toBe(1);
  });

  it("stops at an OpenMetrics # EOF line", () => {
    const recorder = new Recorder();
    const outcome = parseText("a 1\n# EOF\nb 2\n", recorder);
    expect<bool>(outcome.sawEof).toBe(true);
    expect<i32>(recorder.values.length).toBe(1);
  });

  it("does not treat HELPING or # EOFX as keywords", () => {
    const recorder = new Recorder();
    const outcome = parseText("# HELPING x\n# EOFX\n# EOF trailing\na 1\n", recorder);
    expect<bool>(outcome.sawEof).toBe(false);
    expect<i32>(recorder.values.length).toBe(1);
  });
});

describe("labels", () => {
  it("decodes escaped backslashes, quotes and newlines only when asked", () => {
    const recorder = new Recorder();
    recorder.label = "error";
    const outcome = parseText(
      "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n",
      recorder,
    );
    expect<i32>(outcome.samples).toBe(1);
    expect<f64>(recorder.values[0]).toBe(1.458255915e9);
    expect<string>(recorder.labelValues[0]).toBe("Cannot find file:\n\"FILE.TXT\"");

    const paths = new Recorder();
    paths.label = "path";
    parseText("m{path=\"C:\\\\DIR\\\\FILE.TXT\"} 1\n", paths);
    expect<string>(paths.labelValues[0]).toBe("C:\\DIR\\FILE.TXT");
  });

  it("compares and measures escaped values without decoding them", () => {
    const check = new Check();
    const body = String.UTF8.encode("m{w=\"x\",v=\"a\\\"b\\\\c\\nd\"} 1\n");
    parser.parse(changetype<usize>(body), body.byteLength, check);
    expect<bool>(check.equal).toBe(true);
    expect<bool>(check.unequal).toBe(false);
    expect<i32>(check.decodedLength).toBe(7);
    expect<i32>(check.rawLength).toBe(10);
  });

  it("reports a value too long for the scratch buffer instead of overrunning it", () => {
    const small = new Small();
    const body = String.UTF8.encode("m{v=\"abcdefgh\"} 1\n");
    parser.parse(changetype<usize>(body), body.byteLength, small);
    expect<i32>(small.result).toBe(-1);
    expect<u8>(load<u8>(scratch + 4)).toBe(0xEE);
  });

  it("accepts empty blocks, trailing commas and blanks between tokens", () => {
    const recorder = new Recorder();
    recorder.label = "b";
    const outcome = parseText(
      "m{} 1\n" +
      "m{a=\"1\",} 2\n" +
      "m { a = \"1\" , b = \"two\" , } 3\n" +
      "m{a=\"\",b=\"\"} 4\n" +
      "m\t{b=\"x\"}\t5\n" +
      "m{b=\"y\"}6\n",
      recorder,
    );
    expect<i32>(outcome.malformed).toBe(0);
    expect<i32>(outcome.samples).toBe(6);
    expect<string>(recorder.labelValues[0]).toBe("<absent>");
    expect<string>(recorder.labelValues[2]).toBe("two");
    expect<string>(recorder.labelValues[3]).toBe("");
    expect<string>(recorder.labelValues[4]).toBe("x");
    expect<f64>(recorder.values[5]).toBe(6);
  });

  it("rejects broken label blocks as malformed lines and keeps going", () => {
    const recorder = new Recorder();
    const outcome = parseText(
      "m{a=\"1\" 1\n" +          // no closing brace
      "m{a=\"1} 1\n" +           // unterminated value
      "m{a=1} 1\n" +             // unquoted value
      "m{=\"1\"} 1\n" +          // no label name
      "m{1a=\"1\"} 1\n" +        // name starts with a digit
      "m{a:b=\"1\"} 1\n" +       // ':' is not allowed in label names
      "m{a=\"1\",,b=\"2\"} 1\n" + // empty element
      "m{,} 1\n" +
      "m{a=\"\\t\"} 1\n" +       // unknown escape
      "m{a=\"x\\\"} 1\n" +       // escaped closing quote, so unterminated
      "m{a=\"1\"b=\"2\"} 1\n" +  // missing comma
      "ok 7\n",
      recorder,
    );
    expect<i32>(outcome.malformed).toBe(11);
    expect<i32>(outcome.samples).toBe(1);
    expect<f64>(recorder.values[0]).toBe(7);
  });
});

describe("numbers", () => {
  it("parses integers, decimals, exponents and signs", () => {
    expect<f64>(number("0")).toBe(0);
    expect<f64>(number("42")).toBe(42);
    expect<f64>(number("-7")).toBe(-7);
    expect<f64>(number("+5")).toBe(5);
    expect<f64>(number("3.0")).toBe(3);
    expect<f64>(number("0.4213")).toBe(0.4213);
    expect<f64>(number(".5")).toBe(0.5);
    expect<f64>(number("5.")).toBe(5);
    expect<f64>(number("1e3")).toBe(1000);
    expect<f64>(number("1.5E-3")).toBe(0.0015);
    expect<f64>(number("2.5e+2")).toBe(250);
    expect<f64>(number("1.843712e+06")).toBe(1843712);
    // prometheus_client writes exponents from 10 up with three digits.
    expect<f64>(number("1.2309874688e+010")).toBe(12309874688);
    expect<f64>(number("1.7392180628660214e+09")).toBe(1739218062.8660214);
    expect<f64>(number("3.2e-05")).toBe(3.2e-5);
    expect<f64>(number("0.000000000000000000000000001")).toBe(1e-27);
    expect<f64>(number("123456789012345678901234567890")).toBeCloseTo(1.2345678901234568e29);
    expect<f64>(number("1e308")).toBe(1e308);
    expect<f64>(number("1e400")).toBe(Infinity);
    expect<f64>(number("-1e400")).toBe(-Infinity);
    expect<f64>(number("1e-400")).toBe(0);
    expect<f64>(number("1e99999999999")).toBe(Infinity);
    expect<bool>(reader.ok).toBe(true);
    expect<f64>(1 / number("-0.0")).toBe(-Infinity);
  });

  it("parses NaN and infinities in the spellings Go accepts", () => {
    expect<bool>(isNaN(number("NaN"))).toBe(true);
    expect<bool>(isNaN(number("nan"))).toBe(true);
    expect<bool>(isNaN(number("Nan"))).toBe(true);
    expect<f64>(number("+Inf")).toBe(Infinity);
    expect<f64>(number("-Inf")).toBe(-Infinity);
    expect<f64>(number("Inf")).toBe(Infinity);
    expect<f64>(number("inf")).toBe(Infinity);
    expect<f64>(number("-Infinity")).toBe(-Infinity);
    expect<bool>(reader.ok).toBe(true);
  });

  it("rejects garbage", () => {
    const bad = ["", "+", "-", ".", "e5", "1e", "1e+", "--1", "+-1", "1.2.3", "+NaN", "-nan", "NaNa", "infinit",
      "Infx", "0x10", "1_000", "12a", "abc", "1,5", " 1"];
    for (let i = 0; i < bad.length; i++) {
      number(bad[i]);
      expect<bool>(reader.ok).toBe(false, bad[i]);
    }
  });

  it("delivers NaN and infinities as values and skips garbage values", () => {
    expect<bool>(isNaN(valueOf("m NaN"))).toBe(true);
    expect<f64>(valueOf("m{le=\"+Inf\"} +Inf")).toBe(Infinity);
    expect<f64>(valueOf("m -Inf")).toBe(-Infinity);
    expect<f64>(valueOf("m 1.5e3")).toBe(1500);
    expect<f64>(valueOf("m abc")).toBe(-12345);
    expect<f64>(valueOf("m")).toBe(-12345);
    expect<f64>(valueOf("m{a=\"b\"}")).toBe(-12345);
    expect<f64>(valueOf("m1 2")).toBe(2); // "m1" is the name
    expect<f64>(valueOf("m-1 2")).toBe(-12345);
  });
});

describe("timestamps and trailing tokens", () => {
  it("accepts and ignores a timestamp, negative or OpenMetrics-style", () => {
    expect<f64>(valueOf("something_weird{problem=\"division by zero\"} +Inf -3982045")).toBe(Infinity);
    expect<f64>(valueOf("m 3 1395066363000")).toBe(3);
    expect<f64>(valueOf("m 3 1395066363.5")).toBe(3);
    expect<f64>(valueOf("m 3   1395066363000   ")).toBe(3);
  });

  it("ignores an OpenMetrics exemplar after the value or timestamp", () => {
    expect<f64>(valueOf("m_bucket{le=\"1\"} 4 # {trace_id=\"abc\"} 0.5 123")).toBe(4);
    expect<f64>(valueOf("m_bucket{le=\"1\"} 4 123 # {trace_id=\"abc\"} 0.5")).toBe(4);
  });

  it("rejects garbage after the value", () => {
    expect<f64>(valueOf("m 3 abc")).toBe(-12345);
    expect<f64>(valueOf("m 3 NaN")).toBe(-12345);
    expect<f64>(valueOf("m 3 123 456")).toBe(-12345);
  });
});

describe("line endings", () => {
  it("parses CRLF pages like LF pages", () => {
    const recorder = new Recorder();
    recorder.label = "a";
    const outcome = parseText("# HELP m docs\r\n# TYPE m gauge\r\nm{a=\"x\"} 1.5\r\n\r\nm{a=\"y\"} 2 123\r\n", recorder);
    expect<i32>(outcome.malformed).toBe(0);
    expect<bool>(outcome.truncated).toBe(false);
    expect<i32>(recorder.values.length).toBe(2);
    expect<f64>(recorder.values[0]).toBe(1.5);
    expect<f64>(recorder.values[1]).toBe(2);
    expect<string>(recorder.labelValues[1]).toBe("y");
    expect<i32>(recorder.runs[0]).toBe(recorder.runs[1]);
  });

  it("treats a page with bare CR line endings as one unterminated line", () => {
    const recorder = new Recorder();
    const outcome = parseText("a 1\rb 2\r", recorder);
    expect<i32>(recorder.values.length).toBe(0);
    expect<bool>(outcome.truncated).toBe(true);
  });
});

describe("very long lines", () => {
  it("handles a 1 MB label value and a 1 MB comment in linear time", () => {
    const size = 1 << 20;
    const prefix = String.UTF8.encode("big{pad=\"");
    const middle = String.UTF8.encode("\",wanted=\"yes\"} 42\n# ");
    const tail = String.UTF8.encode("\nafter 7\n");
    const total = prefix.byteLength + size + middle.byteLength + size + tail.byteLength;
    const body = new ArrayBuffer(total);
    let at = changetype<usize>(body);
    memory.copy(at, changetype<usize>(prefix), prefix.byteLength); at += prefix.byteLength;
    // Escapes in the value make the lookups walk it escape by escape.
    for (let i = 0; i < size; i += 2) {
      store<u8>(at + <usize>i, 0x5C);
      store<u8>(at + <usize>i + 1, (i & 2) == 0 ? 0x6E : 0x22);
    }
    at += size;
    memory.copy(at, changetype<usize>(middle), middle.byteLength); at += middle.byteLength;
    memory.fill(at, 0x78, size); at += size;
    memory.copy(at, changetype<usize>(tail), tail.byteLength);

    const recorder = new Recorder();
    recorder.label = "wanted";
    const outcome = parseBytes(body, recorder);
    expect<i32>(outcome.malformed).toBe(0);
    expect<i32>(recorder.values.length).toBe(2);
    expect<f64>(recorder.values[0]).toBe(42);
    expect<string>(recorder.labelValues[0]).toBe("yes");
    expect<f64>(recorder.values[1]).toBe(7);

    const pads = new Recorder();
    pads.label = "pad";
    pads.only = "big";
    parseBytes(body, pads);
    expect<i32>(pads.labelValues[0].length).toBe(size / 2);
  });
});

describe("truncated and empty bodies", () => {
  it("never parses the unterminated last line", () => {
    const recorder = new Recorder();
    const outcome = parseText("a 1\nb 17", recorder);
    expect<bool>(outcome.truncated).toBe(true);
    expect<i32>(recorder.values.length).toBe(1);
    expect<f64>(recorder.values[0]).toBe(1);
  });

  it("reads nothing past len even when the rest of the line is in memory", () => {
    const body = String.UTF8.encode("a 1\nb 17\n");
    const recorder = new Recorder();
    const outcome = parser.parse(changetype<usize>(body), 7, recorder); // "a 1\nb 1"
    expect<bool>(outcome.truncated).toBe(true);
    expect<i32>(recorder.values.length).toBe(1);
    const whole = parser.parse(changetype<usize>(body), 9, recorder);
    expect<bool>(whole.truncated).toBe(false);
    expect<f64>(recorder.values[2]).toBe(17);
  });

  it("does not call trailing blanks or a final CR a truncation", () => {
    expect<bool>(parseText("a 1\n  \t", new Recorder()).truncated).toBe(false);
    expect<bool>(parseText("a 1\n\r", new Recorder()).truncated).toBe(false);
    expect<bool>(parseText("a 1\n#", new Recorder()).truncated).toBe(true);
  });

  it("parses an empty body, and a zero-length range at address 0", () => {
    const recorder = new Recorder();
    let outcome = parseText("", recorder);
    expect<i32>(outcome.lines).toBe(0);
    expect<bool>(outcome.truncated).toBe(false);
    outcome = parser.parse(0, 0, recorder);
    expect<i32>(outcome.lines).toBe(0);
    expect<i32>(recorder.values.length).toBe(0);
  });

  it("treats a range that wraps around the address space as empty", () => {
    const outcome = parser.parse(usize.MAX_VALUE - 3, 16, new Recorder());
    expect<i32>(outcome.lines).toBe(0);
  });
});

describe("garbage and invalid UTF-8", () => {
  it("survives random bytes of every length without trapping", () => {
    let state: u32 = 0x9E3779B9;
    const recorder = new Recorder();
    const body = new ArrayBuffer(4096);
    const base = changetype<usize>(body);
    // Bias toward the bytes the grammar cares about so the parser goes deep.
    const alphabet = String.UTF8.encode("ab_:{}=\",\\n \t\r\n#019.eE+-INfa");
    for (let round = 0; round < 300; round++) {
      const len = <i32>(state % 4096);
      for (let i = 0; i < len; i++) {
        state = state * 1664525 + 1013904223;
        const pick = state >>> 24;
        store<u8>(base + <usize>i, pick < 160
          ? load<u8>(changetype<usize>(alphabet) + <usize>(pick % <u32>alphabet.byteLength))
          : <u8>pick);
      }
      const outcome = parser.parse(base, len, recorder);
      expect<bool>(outcome.lines >= 0).toBe(true);
    }
  });

  it("keeps a sample whose label value is invalid UTF-8 and rejects one whose name is", () => {
    const recorder = new Recorder();
    recorder.label = "v";
    // m{v="<FF FE C0 80>"} 1 \n <C3 28> 2 \n # <FF> comment \n ok 3 \n
    const body = bytesOf([
      0x6D, 0x7B, 0x76, 0x3D, 0x22, 0xFF, 0xFE, 0xC0, 0x80, 0x22, 0x7D, 0x20, 0x31, 0x0A,
      0xC3, 0x28, 0x20, 0x32, 0x0A,
      0x23, 0x20, 0xFF, 0x20, 0x63, 0x0A,
      0x6F, 0x6B, 0xE2, 0x82, 0x20, 0x33, 0x0A,
      0x6F, 0x6B, 0x20, 0x34, 0x0A,
    ]);
    const outcome = parseBytes(body, recorder);
    expect<i32>(outcome.samples).toBe(2);
    expect<i32>(outcome.malformed).toBe(2);
    expect<f64>(recorder.values[0]).toBe(1);
    expect<i32>(recorder.labelValues[0].length).toBeGreaterThan(0);
    expect<f64>(recorder.values[1]).toBe(4);
  });

  it("handles NUL bytes and structural characters on their own", () => {
    const recorder = new Recorder();
    const body = bytesOf([0x00, 0x0A, 0x7B, 0x7D, 0x0A, 0x22, 0x0A, 0x3D, 0x0A, 0x7D, 0x0A, 0x5C, 0x0A, 0x6D, 0x20, 0x00, 0x0A]);
    const outcome = parseBytes(body, recorder);
    expect<i32>(outcome.samples).toBe(0);
    expect<i32>(outcome.malformed).toBe(7);
  });
});

describe("selection and families", () => {
  it("does not parse the labels or value of lines the sink does not select", () => {
    const recorder = new Recorder();
    recorder.only = "wanted";
    const outcome = parseText("other{broken 1\nother x\nwanted{a=\"1\"} 2\nwanted{broken 3\n", recorder);
    expect<i32>(recorder.selected).toBe(4);
    expect<i32>(outcome.samples).toBe(1);
    expect<i32>(outcome.malformed).toBe(1); // only the selected broken line is checked
    expect<f64>(recorder.values[0]).toBe(2);
  });

  it("numbers family runs: suffixes stay in the family, another name starts the next run", () => {
    const recorder = new Recorder();
    const outcome = parseText(
      "# HELP c counter docs\n# TYPE c counter\n" +
      "c_total{e=\"0\"} 1\nc_created{e=\"0\"} 1.7e9\nc_total{e=\"1\"} 2\nc_created{e=\"1\"} 1.7e9\n" +
      "# HELP h histogram docs\n# TYPE h histogram\n" +
      "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n" +
      "untyped_one 1\nuntyped_one 2\nuntyped_two 3\n" +
      "c_total{e=\"2\"} 5\n",
      recorder,
    );
    const runs = recorder.runs;
    expect<i32>(runs[0]).toBe(runs[3]);
    expect<i32>(runs[4]).toBe(runs[0] + 1);
    expect<i32>(runs[7]).toBe(runs[4]);
    expect<i32>(runs[8]).toBe(runs[4] + 1);
    expect<i32>(runs[9]).toBe(runs[8]);
    expect<i32>(runs[10]).toBe(runs[8] + 1);
    expect<i32>(runs[11]).toBe(runs[10] + 1); // a family that comes back is a new run
    expect<i32>(outcome.familyRun).toBe(runs[11]);
  });
});

describe("findByte", () => {
  it("finds bytes on both sides of the 16-byte boundary and never past the end", () => {
    const body = new ArrayBuffer(64);
    const base = changetype<usize>(body);
    memory.fill(base, 0x61, 64);
    for (let at = 0; at < 64; at++) {
      store<u8>(base + <usize>at, 0x0A);
      expect<usize>(findByte(base, base + 64, 0x0A) - base).toBe(<usize>at);
      expect<usize>(findByte(base, base + <usize>at, 0x0A) - base).toBe(<usize>at); // not found: end
      store<u8>(base + <usize>at, 0x61);
    }
  });
});
