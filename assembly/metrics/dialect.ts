// Model-server dialects: which Prometheus series carry the load signals the
// router needs, and the matcher that folds one scraped page into a ServerLoad
// snapshot. It owns the metric-name tables for vLLM (the default, including
// the older gpu_ names), SGLang, TensorRT-LLM's trtllm-serve and explicitly
// configured names, and the rules for combining several series of one
// family (one per vLLM `engine`, one per SGLang `dp_rank`).
//
// It must not: import assembly/abi/ (it runs under as-pect without a host);
// allocate while parsing a page (a Dialect is built once at configure time,
// a ServerLoad once per endpoint, and both are reused for every scrape); let
// a value read from a partial line reach a ServerLoad.
//
// Every built-in name is checked against its project's source; the files are
// cited next to each table below and in assembly/metrics/README.md.
//
// A Dialect is a SampleSink with per-rule accumulators, so it parses one page
// at a time (Wasm VMs are single-threaded; do not re-enter it from onSample).

import { LabelView, ParseOutcome, PrometheusTextParser, SampleSink, bytesEqual } from "./prometheus";

/** The load signals the router reads. Each is a bit in ServerLoad.present. */
export enum Signal {
  /** Requests waiting in the server's queue(s). */
  Queue = 0,
  /** Requests being executed. */
  Running = 1,
  /** Fraction of the KV cache in use, 0..1. */
  KvUtilization = 2,
  /** Tokens per KV-cache block (page). */
  BlockSize = 3,
  /** KV-cache blocks on the accelerators, summed over engines. */
  NumBlocks = 4,
  /** Prefix-cache lookups, a monotonic counter (tokens for vLLM/SGLang, blocks for trtllm-serve). */
  PrefixQueries = 5,
  /** Prefix-cache hits, in the same unit as PrefixQueries. */
  PrefixHits = 6,
  /** LoRA state: running and waiting adapters, max_lora. */
  Lora = 7,
  /**
   * When the server process started, in seconds since the epoch
   * (prometheus_client's process collector: process_start_time_seconds).
   * Read to tell a restart, which empties the prefix cache (router.ts).
   */
  StartTime = 8,
}

export const SIGNAL_COUNT: i32 = 9;
/** Signals that say something about load: a page with none of them is not the dialect's page. */
export const LOAD_SIGNALS: u32 = (1 << 8) - 1;

/** How a rule folds the series it matches into one number. */
export enum Fold {
  /** Add the series: request counts and counters, one series per engine or DP rank. */
  Sum = 0,
  /** Average the series: utilization fractions (see the KV note at vllmDialect). */
  Mean = 1,
  /** The largest value: a setting that every series repeats (block size). */
  Max = 2,
  /** Keep the labels of the series with the largest value: vLLM's LoRA info gauge (see vllmDialect). */
  Newest = 3,
}

// ---------------------------------------------------------------------------
// LoRA adapter lists

/** At most this many adapter names are kept per list; more set `overflowed`. */
export const MAX_LORA_ADAPTERS: i32 = 32;
/** A longer name is left out (never cut: a cut name could match another adapter) and sets `overflowed`. */
export const MAX_LORA_NAME_BYTES: i32 = 128;
/** Bytes for all names of one list; reaching it sets `overflowed`. */
export const LORA_LIST_BYTES: i32 = 2048;

/**
 * A bounded list of adapter names, filled from a comma-separated label value
 * (vLLM's running_lora_adapters / waiting_lora_adapters) without allocating:
 * the names are packed into a fixed pool reserved when the list is built.
 *
 *   bytes:   a d a p t e r - a f i n a n c e …            (LORA_LIST_BYTES)
 *            ^0            ^9             ^16
 *   offsets: [0, 9, 16]  → name i is bytes[offsets[i] .. offsets[i+1])
 */
@final
export class AdapterList {
  private readonly bytes: StaticArray<u8> = new StaticArray<u8>(LORA_LIST_BYTES);
  private readonly offsets: StaticArray<i32> = new StaticArray<i32>(MAX_LORA_ADAPTERS + 1);
  count: i32 = 0;
  /** Some names were left out: too many, one too long, or the pool is full. */
  overflowed: bool = false;

  clear(): void {
    this.count = 0;
    this.overflowed = false;
    unchecked(this.offsets[0] = 0);
  }

  /** Address of name i (0 <= i < count). */
  namePtr(i: i32): usize {
    if (<u32>i >= <u32>this.count) return changetype<usize>(this.bytes);
    return changetype<usize>(this.bytes) + <usize>unchecked(this.offsets[i]);
  }

  /** Length in bytes of name i, or 0 when i is out of range. */
  nameLength(i: i32): i32 {
    if (<u32>i >= <u32>this.count) return 0;
    return unchecked(this.offsets[i + 1]) - unchecked(this.offsets[i]);
  }

  /** Whether the list holds the name (ptr, len), compared byte for byte. */
  contains(ptr: usize, len: i32): bool {
    const base = changetype<usize>(this.bytes);
    for (let i = 0; i < this.count; i++) {
      const start = unchecked(this.offsets[i]);
      if (unchecked(this.offsets[i + 1]) - start == len && bytesEqual(base + <usize>start, ptr, <usize>len)) {
        return true;
      }
    }
    return false;
  }

  /** Name i as a String. Allocates: for configuration, logs and tests, not the scrape path. */
  nameAt(i: i32): string {
    return String.UTF8.decodeUnsafe(this.namePtr(i), <usize>this.nameLength(i));
  }

  /**
   * Replaces the list with the names in the value `labels` last found,
   * decoding \\ \" \n, splitting on ',' and trimming spaces around names
   * (vLLM joins with "," alone; other writers add a space).
   */
  fillFromLabelValue(labels: LabelView): void {
    this.clear();
    const pool = changetype<usize>(this.bytes);
    let used: i32 = 0;
    let nameStart: i32 = 0;
    let nameTooLong = false;
    let p = labels.valueStart;
    const end = labels.valueEnd;
    while (true) {
      const atEnd = p >= end;
      let c: u32 = 0;
      if (!atEnd) {
        c = <u32>load<u8>(p);
        if (c == 0x5C && end - p >= 2) { // '\\' escape
          c = <u32>load<u8>(p + 1);
          if (c == 0x6E) c = 0x0A;
          p += 2;
        } else {
          p++;
        }
      }
      if (atEnd || c == 0x2C) { // ',' or end: close the current name
        while (used > nameStart && load<u8>(pool + <usize>(used - 1)) == 0x20) used--;
        if (nameTooLong) {
          this.overflowed = true;
          used = nameStart;
        } else if (used > nameStart) {
          if (this.count >= MAX_LORA_ADAPTERS) {
            this.overflowed = true;
            used = nameStart;
            break;
          }
          this.count++;
          unchecked(this.offsets[this.count] = used);
        }
        if (atEnd) break;
        nameStart = used;
        nameTooLong = false;
        continue;
      }
      if (nameTooLong) continue;
      if (c == 0x20 && used == nameStart) continue; // leading space
      if (used - nameStart >= MAX_LORA_NAME_BYTES) {
        nameTooLong = true;
        continue;
      }
      if (used >= LORA_LIST_BYTES) {
        // The pool is full: keep the names that are complete, drop the rest.
        this.overflowed = true;
        break;
      }
      store<u8>(pool + <usize>used, <u8>c);
      used++;
    }
  }
}

// ---------------------------------------------------------------------------
// The snapshot

/**
 * One server's load as read from one scrape. Build one per endpoint and pass
 * it to every parseLoad; it is reset at the start of each. A signal is valid
 * only when has(signal) is true. To keep the previous snapshot when a scrape
 * fails or comes back truncated, parse into a second ServerLoad and swap.
 */
@final
export class ServerLoad {
  /** Bit (1 << Signal) per signal found in the page. */
  present: u32 = 0;
  /** Bit per signal that was in the page but dropped because the body was cut inside its family. */
  cutOff: u32 = 0;
  waiting: f64 = 0;
  running: f64 = 0;
  kvUtilization: f64 = 0;
  blockSizeTokens: i64 = 0;
  numGpuBlocks: i64 = 0;
  prefixQueries: f64 = 0;
  prefixHits: f64 = 0;
  startTimeSeconds: f64 = 0;
  /** vLLM's max_lora label, or -1. */
  maxLora: i32 = -1;
  readonly runningAdapters: AdapterList = new AdapterList();
  readonly waitingAdapters: AdapterList = new AdapterList();
  /** Matched series whose number could not be used (NaN/±Inf value, a geometry label that is not an integer). */
  ignoredSamples: i32 = 0;

  // @ts-ignore: decorator
  @inline has(signal: Signal): bool {
    return (this.present & (<u32>1 << <u32>signal)) != 0;
  }

  reset(): void {
    this.present = 0;
    this.cutOff = 0;
    this.waiting = 0;
    this.running = 0;
    this.kvUtilization = 0;
    this.blockSizeTokens = 0;
    this.numGpuBlocks = 0;
    this.prefixQueries = 0;
    this.prefixHits = 0;
    this.startTimeSeconds = 0;
    this.maxLora = -1;
    this.runningAdapters.clear();
    this.waitingAdapters.clear();
    this.ignoredSamples = 0;
  }
}

// ---------------------------------------------------------------------------
// Rules

/** A required label value on the series a rule reads: `name{label="value"}`. */
@final
class LabelMatcher {
  constructor(readonly label: ArrayBuffer, readonly value: ArrayBuffer) {}
}

/**
 * One source for one signal: an exact sample name, optional label filters,
 * where the number comes from, and how series fold. Rules of one signal are
 * tried by priority (lower first); the first priority with data wins and all
 * its rules are combined, so an older metric name is a fallback at a higher
 * priority and two counters that add up are two rules at the same priority.
 */
@final
export class MetricRule {
  /** Read the number from this label (a decimal integer) instead of the sample value: info-style metrics. */
  valueLabel: ArrayBuffer | null = null;
  /** Series must carry these label values. */
  readonly matchers: Array<LabelMatcher> = new Array<LabelMatcher>();
  /** Series where this label is present and non-empty are skipped (SGLang's per-priority breakdown). */
  excludeNonEmptyLabel: ArrayBuffer | null = null;

  // Per-parse accumulator.
  sum: f64 = 0;
  count: i32 = 0;
  best: f64 = -Infinity;
  /** ParseOutcome.familyRun of the last series this rule took. */
  lastRun: i32 = 0;

  constructor(
    readonly signal: Signal,
    readonly name: ArrayBuffer,
    readonly fold: Fold,
    readonly priority: i32,
  ) {}

  // @ts-ignore: decorator
  @inline resetAccumulator(): void {
    this.sum = 0;
    this.count = 0;
    this.best = -Infinity;
    this.lastRun = 0;
  }
}

/**
 * A cheap fingerprint of a sample name: its length with its first and last
 * eight bytes (or all of it when shorter). Most names on a page share a
 * "vllm:" prefix and many share a length, so the key rejects nearly every
 * unwanted line with one integer compare per rule name.
 */
// @ts-ignore: decorator
@inline function nameKey(ptr: usize, len: i32): u64 {
  let key: u64 = <u64>len * 0x9E3779B97F4A7C15;
  if (len >= 8) {
    key ^= load<u64>(ptr) ^ rotl<u64>(load<u64>(ptr + <usize>(len - 8)), 29);
  } else {
    for (let i = 0; i < len; i++) key = (key ^ <u64>load<u8>(ptr + <usize>i)) * 0x100000001B3;
  }
  return key;
}

/** The rules that read one sample name; the hot path compares names once per line. */
@final
class NameGroup {
  readonly rules: Array<MetricRule> = new Array<MetricRule>();
  readonly ptr: usize;
  readonly len: i32;
  readonly key: u64;
  constructor(readonly bytes: ArrayBuffer) {
    this.ptr = changetype<usize>(bytes);
    this.len = bytes.byteLength;
    this.key = nameKey(this.ptr, this.len);
  }
}

function utf8(text: string): ArrayBuffer {
  return String.UTF8.encode(text);
}

// vLLM's LoRA label names (vllm/v1/metrics/loggers.py, PrometheusStatLogger).
const LABEL_RUNNING_LORA_ADAPTERS = "running_lora_adapters";
const LABEL_WAITING_LORA_ADAPTERS = "waiting_lora_adapters";
const LABEL_MAX_LORA = "max_lora";

// ---------------------------------------------------------------------------
// The dialect (rule table + matcher)

/**
 * A configured set of rules and the matcher that applies them. Build it at
 * configure time (dialectNamed / explicitDialect / DialectBuilder), then call
 * parseLoad for every scrape.
 */
export class Dialect extends SampleSink {
  private readonly parser: PrometheusTextParser = new PrometheusTextParser();
  private readonly groups: Array<NameGroup> = new Array<NameGroup>();
  /**
   * groups[i].key, as plain numbers: the per-line scan touches no managed
   * object (loading them made the compiler spill references to the shadow
   * stack on every iteration, which cost more than the rest of the line).
   */
  private groupKeys: StaticArray<u64> = new StaticArray<u64>(0);
  /** Sorted by (signal, priority). */
  private readonly rules: Array<MetricRule>;
  private selected: NameGroup | null = null;
  private load: ServerLoad | null = null;
  private readonly runningLabel: ArrayBuffer = utf8(LABEL_RUNNING_LORA_ADAPTERS);
  private readonly waitingLabel: ArrayBuffer = utf8(LABEL_WAITING_LORA_ADAPTERS);
  private readonly maxLoraLabel: ArrayBuffer = utf8(LABEL_MAX_LORA);

  constructor(readonly kind: string, rules: Array<MetricRule>) {
    super();
    this.rules = sortedBySignalAndPriority(rules);
    for (let i = 0; i < this.rules.length; i++) {
      const rule = unchecked(this.rules[i]);
      this.groupFor(rule.name).rules.push(rule);
    }
    const keys = new StaticArray<u64>(this.groups.length);
    for (let i = 0; i < this.groups.length; i++) keys[i] = this.groups[i].key;
    this.groupKeys = keys;
  }

  /**
   * Parses the page at [ptr, ptr + len) into `out` (reset first). Returns the
   * parser's outcome, owned by this dialect and overwritten by the next call.
   */
  parseLoad(ptr: usize, len: usize, out: ServerLoad): ParseOutcome {
    out.reset();
    for (let i = 0; i < this.rules.length; i++) unchecked(this.rules[i]).resetAccumulator();
    this.load = out;
    this.selected = null;
    const outcome = this.parser.parse(ptr, len, this);
    this.resolve(outcome, out);
    this.load = null;
    this.selected = null;
    return outcome;
  }

  selectSample(namePtr: usize, nameLen: i32): bool {
    const key = nameKey(namePtr, nameLen);
    const keys = changetype<usize>(this.groupKeys);
    const count = <usize>this.groupKeys.length;
    for (let i: usize = 0; i < count; i++) {
      if (load<u64>(keys + (i << 3)) != key) continue;
      const group = unchecked(this.groups[<i32>i]);
      if (group.len == nameLen && bytesEqual(group.ptr, namePtr, <usize>nameLen)) {
        this.selected = group;
        return true;
      }
    }
    return false;
  }

  onSample(namePtr: usize, nameLen: i32, labels: LabelView, value: f64, familyRun: i32): void {
    const group = this.selected;
    const load = this.load;
    if (group === null || load === null) return;
    const rules = group.rules;
    for (let i = 0, n = rules.length; i < n; i++) {
      const rule = unchecked(rules[i]);
      if (!seriesMatches(rule, labels)) continue;
      let number = value;
      const valueLabel = rule.valueLabel;
      if (valueLabel !== null) {
        if (!labels.find(changetype<usize>(valueLabel), valueLabel.byteLength)) {
          load.ignoredSamples++;
          continue;
        }
        const count = labels.valueAsCount();
        if (count < 0) {
          load.ignoredSamples++;
          continue;
        }
        number = <f64>count;
      }
      if (!isFinite(number)) {
        load.ignoredSamples++;
        continue;
      }
      rule.count++;
      rule.lastRun = familyRun;
      switch (rule.fold) {
        case Fold.Sum:
        case Fold.Mean: {
          rule.sum += number;
          break;
        }
        case Fold.Max: {
          if (number > rule.best) rule.best = number;
          break;
        }
        case Fold.Newest: {
          if (number > rule.best) {
            rule.best = number;
            this.takeLoraSeries(labels, load);
          }
          break;
        }
        default: break;
      }
    }
  }

  /** Copies the LoRA labels of the newest series seen so far. */
  private takeLoraSeries(labels: LabelView, load: ServerLoad): void {
    if (labels.find(changetype<usize>(this.runningLabel), this.runningLabel.byteLength)) {
      load.runningAdapters.fillFromLabelValue(labels);
    } else {
      load.runningAdapters.clear();
    }
    if (labels.find(changetype<usize>(this.waitingLabel), this.waitingLabel.byteLength)) {
      load.waitingAdapters.fillFromLabelValue(labels);
    } else {
      load.waitingAdapters.clear();
    }
    load.maxLora = -1;
    if (labels.find(changetype<usize>(this.maxLoraLabel), this.maxLoraLabel.byteLength)) {
      const maxLora = labels.valueAsCount();
      if (maxLora >= 0 && maxLora <= i32.MAX_VALUE) load.maxLora = <i32>maxLora;
    }
  }

  /**
   * Turns the accumulators into signals. For each signal, the first priority
   * with data wins. When the body was cut inside a line, a family whose group
   * of lines was still open at the cut may be missing series, so a signal
   * built from it is dropped (bit in `cutOff`) rather than reported short.
   */
  private resolve(outcome: ParseOutcome, out: ServerLoad): void {
    const rules = this.rules;
    const openRun = outcome.truncated ? outcome.familyRun : -1;
    let i = 0;
    const n = rules.length;
    while (i < n) {
      const signal = unchecked(rules[i]).signal;
      let decided = false;
      while (i < n && unchecked(rules[i]).signal == signal) {
        const priority = unchecked(rules[i]).priority;
        let levelEnd = i;
        while (levelEnd < n && unchecked(rules[levelEnd]).signal == signal && unchecked(rules[levelEnd]).priority == priority) levelEnd++;
        if (!decided) {
          let anyData = false;
          let allData = true;
          let cut = false;
          for (let k = i; k < levelEnd; k++) {
            const rule = unchecked(rules[k]);
            if (rule.count > 0) {
              anyData = true;
              if (rule.lastRun == openRun) cut = true;
            } else {
              allData = false;
            }
          }
          if (anyData) {
            decided = true;
            // A truncated page may also have lost a whole family after the cut.
            if (cut || (outcome.truncated && !allData)) {
              out.cutOff |= <u32>1 << <u32>signal;
            } else {
              this.store(signal, i, levelEnd, out);
            }
          }
        }
        i = levelEnd;
      }
    }
    if (!out.has(Signal.Lora)) {
      out.runningAdapters.clear();
      out.waitingAdapters.clear();
      out.maxLora = -1;
    }
  }

  /** Folds rules [from, to) (one signal, one priority, one fold) into `out`. */
  private store(signal: Signal, from: i32, to: i32, out: ServerLoad): void {
    const rules = this.rules;
    const fold = unchecked(rules[from]).fold;
    let sum: f64 = 0;
    let count: i32 = 0;
    let best: f64 = -Infinity;
    for (let k = from; k < to; k++) {
      const rule = unchecked(rules[k]);
      sum += rule.sum;
      count += rule.count;
      if (rule.best > best) best = rule.best;
    }
    let value: f64 = 0;
    if (fold == Fold.Sum) value = sum;
    else if (fold == Fold.Mean) value = count > 0 ? sum / <f64>count : 0;
    else value = best;
    switch (signal) {
      case Signal.Queue: out.waiting = value; break;
      case Signal.Running: out.running = value; break;
      case Signal.KvUtilization: {
        // Defined as a fraction; a page that says otherwise must not push the score out of range.
        out.kvUtilization = value < 0 ? 0 : value > 1 ? 1 : value;
        break;
      }
      case Signal.BlockSize: {
        if (!(value >= 1 && value <= <f64>i32.MAX_VALUE)) return;
        out.blockSizeTokens = <i64>value;
        break;
      }
      case Signal.NumBlocks: {
        if (!(value >= 1 && value <= 9.0e15)) return;
        out.numGpuBlocks = <i64>value;
        break;
      }
      case Signal.PrefixQueries: out.prefixQueries = value; break;
      case Signal.PrefixHits: out.prefixHits = value; break;
      case Signal.Lora: break; // the lists were filled while parsing
      case Signal.StartTime: {
        if (!(value > 0)) return;
        out.startTimeSeconds = value;
        break;
      }
      default: return;
    }
    out.present |= <u32>1 << <u32>signal;
  }

  private groupFor(name: ArrayBuffer): NameGroup {
    const groups = this.groups;
    const len = name.byteLength;
    for (let i = 0; i < groups.length; i++) {
      const group = unchecked(groups[i]);
      if (group.len == len && bytesEqual(group.ptr, changetype<usize>(name), <usize>len)) return group;
    }
    const group = new NameGroup(name);
    groups.push(group);
    return group;
  }
}

function seriesMatches(rule: MetricRule, labels: LabelView): bool {
  const matchers = rule.matchers;
  for (let i = 0, n = matchers.length; i < n; i++) {
    const matcher = unchecked(matchers[i]);
    if (!labels.find(changetype<usize>(matcher.label), matcher.label.byteLength)) return false;
    if (!labels.valueEquals(changetype<usize>(matcher.value), matcher.value.byteLength)) return false;
  }
  const excluded = rule.excludeNonEmptyLabel;
  if (excluded !== null && labels.find(changetype<usize>(excluded), excluded.byteLength) && labels.rawValueLength > 0) {
    return false;
  }
  return true;
}

function sortedBySignalAndPriority(rules: Array<MetricRule>): Array<MetricRule> {
  const sorted = rules.slice(0);
  // Insertion sort: a dozen rules, configure time, and stable (ties keep table order).
  for (let i = 1; i < sorted.length; i++) {
    const rule = sorted[i];
    let j = i - 1;
    while (j >= 0 && (sorted[j].signal > rule.signal || (sorted[j].signal == rule.signal && sorted[j].priority > rule.priority))) {
      sorted[j + 1] = sorted[j];
      j--;
    }
    sorted[j + 1] = rule;
  }
  return sorted;
}

/** The hot-path entry point: parse one scraped page with `dialect` into `out`. */
export function parseLoad(ptr: usize, len: usize, dialect: Dialect, out: ServerLoad): ParseOutcome {
  return dialect.parseLoad(ptr, len, out);
}

// ---------------------------------------------------------------------------
// Building dialects (configure time: allocation is fine here)

/**
 * Collects rules from metric specs. A spec is a sample name, optionally with
 * required label values: `vllm:num_requests_waiting` or
 * `nv_trt_llm_request_metrics{request_type="waiting"}` (quotes optional).
 */
export class DialectBuilder {
  readonly rules: Array<MetricRule> = new Array<MetricRule>();
  /** The first error, or "" when every spec parsed. */
  error: string = "";

  /** Adds a rule; returns null (and sets `error`) when the spec does not parse. */
  add(signal: Signal, spec: string, fold: Fold, priority: i32 = 0): MetricRule | null {
    const parsed = parseMetricSpec(spec, signal, fold, priority);
    if (parsed === null) {
      if (this.error.length == 0) this.error = "metric spec '" + spec + "' is not name or name{label=value,...}";
      return null;
    }
    const rule = changetype<MetricRule>(parsed);
    // Two rules at one priority must fold alike, or combining them means nothing.
    for (let i = 0; i < this.rules.length; i++) {
      const other = this.rules[i];
      if (other.signal == signal && other.priority == priority && other.fold != fold) {
        if (this.error.length == 0) this.error = "rules for one signal at one priority must fold the same way";
        return null;
      }
    }
    this.rules.push(rule);
    return rule;
  }

  /** Like add, reading the number from an integer label of an info-style metric. */
  addLabel(signal: Signal, spec: string, label: string, fold: Fold, priority: i32 = 0): MetricRule | null {
    const rule = this.add(signal, spec, fold, priority);
    if (rule !== null) rule.valueLabel = utf8(label);
    return rule;
  }

  /** Like add, skipping series where `label` is present and non-empty. */
  addExcluding(signal: Signal, spec: string, label: string, fold: Fold, priority: i32 = 0): MetricRule | null {
    const rule = this.add(signal, spec, fold, priority);
    if (rule !== null) rule.excludeNonEmptyLabel = utf8(label);
    return rule;
  }

  build(kind: string): Dialect | null {
    if (this.error.length != 0) return null;
    return new Dialect(kind, this.rules);
  }
}

function isMetricNameChar(c: i32, first: bool): bool {
  const letter = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x5F || c == 0x3A;
  return first ? letter : letter || (c >= 0x30 && c <= 0x39);
}

function isLabelNameChar(c: i32, first: bool): bool {
  const letter = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x5F;
  return first ? letter : letter || (c >= 0x30 && c <= 0x39);
}

/** Parses `name` or `name{label=value,label="value"}` into a rule, or null. */
function parseMetricSpec(spec: string, signal: Signal, fold: Fold, priority: i32): MetricRule | null {
  const n = spec.length;
  let i = 0;
  while (i < n && isMetricNameChar(spec.charCodeAt(i), i == 0)) i++;
  if (i == 0) return null;
  const rule = new MetricRule(signal, utf8(spec.substring(0, i)), fold, priority);
  if (i == n) return rule;
  if (spec.charCodeAt(i) != 0x7B) return null; // '{'
  i++;
  while (true) {
    while (i < n && spec.charCodeAt(i) == 0x20) i++;
    if (i >= n) return null;
    if (spec.charCodeAt(i) == 0x7D) { i++; break; } // '}'
    const labelStart = i;
    while (i < n && isLabelNameChar(spec.charCodeAt(i), i == labelStart)) i++;
    if (i == labelStart) return null;
    const label = spec.substring(labelStart, i);
    while (i < n && spec.charCodeAt(i) == 0x20) i++;
    if (i >= n || spec.charCodeAt(i) != 0x3D) return null; // '='
    i++;
    while (i < n && spec.charCodeAt(i) == 0x20) i++;
    let value = "";
    if (i < n && spec.charCodeAt(i) == 0x22) { // quoted, with \\ \" \n
      i++;
      let closed = false;
      while (i < n) {
        let c = spec.charCodeAt(i);
        if (c == 0x22) { closed = true; i++; break; }
        if (c == 0x5C && i + 1 < n) {
          i++;
          c = spec.charCodeAt(i);
          if (c == 0x6E) c = 0x0A;
        }
        value += String.fromCharCode(c);
        i++;
      }
      if (!closed) return null;
    } else {
      const valueStart = i;
      while (i < n && spec.charCodeAt(i) != 0x2C && spec.charCodeAt(i) != 0x7D) i++;
      value = spec.substring(valueStart, i).trim();
    }
    rule.matchers.push(new LabelMatcher(utf8(label), utf8(value)));
    while (i < n && spec.charCodeAt(i) == 0x20) i++;
    if (i < n && spec.charCodeAt(i) == 0x2C) { i++; continue; }
    if (i < n && spec.charCodeAt(i) == 0x7D) { i++; break; }
    return null;
  }
  return i == n ? rule : null;
}

/**
 * prometheus_client's process collector, on the default registry of a
 * single-process server (vLLM and trtllm-serve pages carry it; SGLang's
 * multiprocess registry does not, and there a restart shows as its counters
 * going back).
 */
const PROCESS_START_TIME = "process_start_time_seconds";

/**
 * vLLM (the default). Names from vllm/v1/metrics/loggers.py,
 * PrometheusStatLogger. Every per-engine family is labelled
 * {model_name, engine} (make_per_engine), one series per data-parallel
 * engine, so series are summed; prometheus_client exposes a Counter named
 * "vllm:prefix_cache_queries" as vllm:prefix_cache_queries_total plus a
 * vllm:prefix_cache_queries_created timestamp, which must not be read.
 *
 * KV utilization is averaged over engines, not summed (a sum of fractions is
 * not a fraction) nor maxed: the engines of one server have identical cache
 * geometry (log_metrics_info emits one cache_config for every engine), so the
 * mean equals the capacity-weighted utilization of the whole server, and it
 * is what vLLM's own AggregatedLoggingStatLogger reports for several engines
 * (kv_cache_usage summed then divided by the engine count). vLLM balances
 * requests across its engines itself, so the server-wide fraction is the one
 * that predicts the next request's fate.
 *
 * LoRA: vllm:lora_requests_info is a Gauge labelled {max_lora,
 * waiting_lora_adapters, running_lora_adapters} and set with
 * set_to_current_time() on every record() (the adapter lists are
 * ",".join(...keys())). Each new combination of adapters is a new series
 * and old ones are never removed, so the page carries every state seen, each
 * valued with the time it was last current: the series with the largest
 * value is the current state.
 *
 * Older names: vllm:gpu_cache_usage_perc, vllm:gpu_prefix_cache_queries and
 * vllm:gpu_prefix_cache_hits (V1 up to 0.9, deprecated then removed), read
 * only when the current name is absent.
 */
export function vllmDialect(): Dialect {
  const b = new DialectBuilder();
  b.add(Signal.Queue, "vllm:num_requests_waiting", Fold.Sum);
  b.add(Signal.Running, "vllm:num_requests_running", Fold.Sum);
  b.add(Signal.KvUtilization, "vllm:kv_cache_usage_perc", Fold.Mean, 0);
  b.add(Signal.KvUtilization, "vllm:gpu_cache_usage_perc", Fold.Mean, 1);
  // Info-style gauge set to 1, geometry in labels (log_metrics_info; the
  // labels are CacheConfig.metrics_info() from vllm/config/cache.py). One
  // series per engine; each engine owns num_gpu_blocks blocks.
  b.addLabel(Signal.BlockSize, "vllm:cache_config_info", "block_size", Fold.Max);
  b.addLabel(Signal.NumBlocks, "vllm:cache_config_info", "num_gpu_blocks", Fold.Sum);
  b.add(Signal.PrefixQueries, "vllm:prefix_cache_queries_total", Fold.Sum, 0);
  b.add(Signal.PrefixQueries, "vllm:gpu_prefix_cache_queries_total", Fold.Sum, 1);
  b.add(Signal.PrefixHits, "vllm:prefix_cache_hits_total", Fold.Sum, 0);
  b.add(Signal.PrefixHits, "vllm:gpu_prefix_cache_hits_total", Fold.Sum, 1);
  b.add(Signal.Lora, "vllm:lora_requests_info", Fold.Newest);
  b.add(Signal.StartTime, PROCESS_START_TIME, Fold.Max);
  return changetype<Dialect>(b.build("vllm"));
}

/**
 * SGLang. Names from python/sglang/srt/observability/metrics_collector.py
 * (earlier python/sglang/srt/metrics/collector.py), SchedulerMetricsCollector
 * and TokenizerMetricsCollector. Scheduler gauges are labelled {model_name,
 * engine_type, tp_rank, pp_rank, moe_ep_rank[, dp_rank][, priority]}: one
 * series per DP rank, summed (token_usage averaged, as for vLLM).
 *
 * With priority scheduling, num_running_reqs and num_queue_reqs carry the
 * total under priority="" and a per-priority breakdown under priority="<n>"
 * (_log_gauge_queue_count); the breakdown is skipped so nothing is counted
 * twice.
 *
 * Cache geometry: current SGLang exports the gauges sglang:page_size and
 * sglang:num_pages (emit_constants); earlier releases carried them as labels
 * of sglang:cache_config_info{page_size, num_pages} (emit_cache_config_info),
 * read as the fallback.
 *
 * Prefix cache: SGLang has no lookup counter like vLLM's. We use prompt
 * tokens (sglang:prompt_tokens_total) as queries and cached prompt tokens
 * (sglang:cached_tokens_total, summed over cache_source: device, host,
 * storage) as hits; both count finished requests, in tokens.
 */
export function sglangDialect(): Dialect {
  const b = new DialectBuilder();
  b.addExcluding(Signal.Queue, "sglang:num_queue_reqs", "priority", Fold.Sum);
  b.addExcluding(Signal.Running, "sglang:num_running_reqs", "priority", Fold.Sum);
  b.add(Signal.KvUtilization, "sglang:token_usage", Fold.Mean);
  b.add(Signal.BlockSize, "sglang:page_size", Fold.Max, 0);
  b.addLabel(Signal.BlockSize, "sglang:cache_config_info", "page_size", Fold.Max, 1);
  b.add(Signal.NumBlocks, "sglang:num_pages", Fold.Sum, 0);
  b.addLabel(Signal.NumBlocks, "sglang:cache_config_info", "num_pages", Fold.Sum, 1);
  b.add(Signal.PrefixQueries, "sglang:prompt_tokens_total", Fold.Sum);
  b.add(Signal.PrefixHits, "sglang:cached_tokens_total", Fold.Sum);
  b.add(Signal.StartTime, PROCESS_START_TIME, Fold.Max);
  return changetype<Dialect>(b.build("sglang"));
}

/**
 * TensorRT-LLM's trtllm-serve. Names from tensorrt_llm/metrics/collector.py
 * (MetricsCollector, metric_prefix "trtllm_"), set by log_iteration_stats,
 * which needs `enable_iter_perf_stats: true` in the LLM args.
 *
 * Prefix cache: iteration stats give cumulative reused and missed KV blocks
 * (Counters trtllm_kv_cache_reused_blocks / _missed_blocks, exposed with
 * _total); lookups are reused + missed, hits are reused, in blocks.
 */
export function trtllmDialect(): Dialect {
  const b = new DialectBuilder();
  b.add(Signal.Queue, "trtllm_num_requests_waiting", Fold.Sum);
  b.add(Signal.Running, "trtllm_num_requests_running", Fold.Sum);
  b.add(Signal.KvUtilization, "trtllm_kv_cache_utilization", Fold.Mean);
  b.add(Signal.BlockSize, "trtllm_kv_cache_tokens_per_block", Fold.Max);
  b.add(Signal.NumBlocks, "trtllm_kv_cache_max_blocks", Fold.Sum);
  b.add(Signal.PrefixQueries, "trtllm_kv_cache_reused_blocks_total", Fold.Sum);
  b.add(Signal.PrefixQueries, "trtllm_kv_cache_missed_blocks_total", Fold.Sum);
  b.add(Signal.PrefixHits, "trtllm_kv_cache_reused_blocks_total", Fold.Sum);
  b.add(Signal.StartTime, PROCESS_START_TIME, Fold.Max);
  return changetype<Dialect>(b.build("trtllm"));
}

/**
 * The built-in dialect for a `metrics.dialect` value: "vllm" (also the
 * default for ""), "sglang", "trtllm" (or "trtllm-serve"); null otherwise.
 */
export function dialectNamed(name: string): Dialect | null {
  if (name.length == 0 || name == "vllm") return vllmDialect();
  if (name == "sglang") return sglangDialect();
  if (name == "trtllm" || name == "trtllm-serve") return trtllmDialect();
  return null;
}

/**
 * Metric names given by configuration, one spec per signal ("" = not read).
 * Specs are `name` or `name{label=value,...}`. Cache geometry comes from
 * gauges (blockSize, numBlocks) or from integer labels of an info-style
 * metric (cacheInfo with the two label names); when both are given the
 * gauges win. A prefix counter named without "_total" also matches the
 * name with "_total" (how prometheus_client exposes Counters). LoRA reads
 * vLLM's label names.
 */
export class MetricNames {
  queue: string = "";
  running: string = "";
  kvUtilization: string = "";
  blockSize: string = "";
  numBlocks: string = "";
  cacheInfo: string = "";
  cacheBlockSizeLabel: string = "block_size";
  cacheNumBlocksLabel: string = "num_gpu_blocks";
  prefixQueries: string = "";
  prefixHits: string = "";
  lora: string = "";
}

/** The result of building a dialect from configuration. */
export class DialectChoice {
  constructor(readonly dialect: Dialect | null, readonly error: string) {}
}

function addCounter(b: DialectBuilder, signal: Signal, spec: string): void {
  b.add(signal, spec, Fold.Sum, 0);
  const brace = spec.indexOf("{");
  const name = brace < 0 ? spec : spec.substring(0, brace);
  if (!name.endsWith("_total")) {
    b.add(signal, name + "_total" + (brace < 0 ? "" : spec.substring(brace)), Fold.Sum, 1);
  }
}

export function explicitDialect(names: MetricNames): DialectChoice {
  const b = new DialectBuilder();
  if (names.queue.length) b.add(Signal.Queue, names.queue, Fold.Sum);
  if (names.running.length) b.add(Signal.Running, names.running, Fold.Sum);
  if (names.kvUtilization.length) b.add(Signal.KvUtilization, names.kvUtilization, Fold.Mean);
  if (names.blockSize.length) b.add(Signal.BlockSize, names.blockSize, Fold.Max, 0);
  if (names.numBlocks.length) b.add(Signal.NumBlocks, names.numBlocks, Fold.Sum, 0);
  if (names.cacheInfo.length) {
    b.addLabel(Signal.BlockSize, names.cacheInfo, names.cacheBlockSizeLabel, Fold.Max, 1);
    b.addLabel(Signal.NumBlocks, names.cacheInfo, names.cacheNumBlocksLabel, Fold.Sum, 1);
  }
  if (names.prefixQueries.length) addCounter(b, Signal.PrefixQueries, names.prefixQueries);
  if (names.prefixHits.length) addCounter(b, Signal.PrefixHits, names.prefixHits);
  if (names.lora.length) b.add(Signal.Lora, names.lora, Fold.Newest);
  const dialect = b.build("explicit");
  return new DialectChoice(dialect, b.error);
}
