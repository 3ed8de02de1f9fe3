// Fuzzing of the four parsers that read outside input (request bodies, the
// plugin configuration, Prometheus pages, Envoy's admin /clusters text) in
// build/fuzz.wasm: seeded campaigns
// of generated, mutated and truncated inputs plus hand-picked extremes, each
// input placed so that a read past its end traps (fuzz-module.ts). Every input
// is checked for traps and for the parser's invariants; request bodies are
// also compared with a JavaScript reference (body-oracle.ts), admin answers
// with admin-pages.ts's reading of them, cut Prometheus
// pages with their uncut parse, and a sample of inputs is run twice with
// different bytes just before the input to catch reads before it. The heap in
// use is measured after a warm-up and at the end: it must come back.
//
// A trapping or invariant-breaking input is written to
// tests/fuzz/regressions/<parser>/<hash>.bin, which tests/fuzz replays forever.
// Emulator-level fuzzing through the real filter is fuzz-router.ts.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { FuzzModule, Trap, GUARD_BYTES, type HeapFigures } from "./fuzz-module.ts";
import { Rng } from "./rng.ts";
import { mutate, noise, concat } from "./mutate.ts";
import { generateBody, BODY_TOKENS } from "./bodies.ts";
import { expectedBody, OUTCOME_NAMES, Extract } from "./body-oracle.ts";
import { generateConfig, CONFIG_TOKENS, strictAddress, strictHeaderName, strictPath } from "./configs.ts";
import { generatePage, PAGE_TOKENS, DIALECTS } from "./pages.ts";
import { generateAdminText, expectedHosts, decodeRecord, ADMIN_TOKENS, ADMIN_MAX_HOSTS } from "./admin-pages.ts";

export type ParserName = "body" | "config" | "metrics" | "admin";
export const PARSERS: readonly ParserName[] = ["body", "config", "metrics", "admin"];
export const REGRESSIONS_DIR = new URL("../../tests/fuzz/regressions/", import.meta.url).pathname;

type Origin = "generated" | "mutated" | "truncated" | "special";

const encoder = new TextEncoder();
const DEFAULT_PROMPT_CAP = 256 * 64;
/** Prompt caps the body campaign cycles through, so that stopping at the cap is exercised too. */
const PROMPT_CAPS = [DEFAULT_PROMPT_CAP, 8, 64, 1000, 4096 * 64];

interface Case {
  bytes: Uint8Array;
  /** body: 1 chat, 0 completions; metrics: dialect index; config: 0. */
  mode: number;
  /** A clean Prometheus page (see pages.ts) or a valid body/config: a sweep seed. */
  clean?: boolean;
}

/** What one parse returned, read out of the module right after the call. */
interface Result {
  /** Outcome bucket for the report. */
  bucket: string;
  /** Everything observable, for comparing two runs of one input. */
  signature: string;
  /** An invariant or oracle violation, or null. */
  violation: string | null;
  /** A reference was compared: the JavaScript oracle (bodies) or the uncut page (metrics sweeps). */
  compared?: boolean;
}

interface Harness {
  name: ParserName;
  /** Modes to replay a regression input under. */
  modes: readonly number[];
  tokens: readonly string[];
  maxBytes: number;
  generate(rng: Rng): Case;
  /** A valid input to cut at every position (default: generate). */
  sweepSeed?(rng: Rng): Case;
  special(rng: Rng): Case;
  run(m: FuzzModule, ptr: number, c: Case, sweep: SweepState | null): Result;
  /** Called when the campaign switches prompt caps or similar per-phase settings. */
  phase?(m: FuzzModule, index: number): void;
  /** Restores the settings the heap baseline was taken with. */
  restore?(m: FuzzModule): void;
}

/** A truncation sweep: a valid input cut at every position, with its uncut result. */
interface SweepState {
  source: Case;
  next: number;
  full: MetricsView | null;
}

// ---------------------------------------------------------------------------
// Request bodies

function bodyHarness(): Harness {
  let promptCap = DEFAULT_PROMPT_CAP;
  return {
    name: "body",
    modes: [0, 1, 2, 3],
    tokens: BODY_TOKENS,
    maxBytes: 4 << 20,
    generate(rng) {
      const g = generateBody(rng);
      // Chat bodies are also read as Responses and Anthropic Messages bodies now and then.
      return { bytes: encoder.encode(g.text), mode: g.chat ? (rng.chance(0.8) ? 1 : rng.range(2, 3)) : 0, clean: true };
    },
    special(rng) {
      const chat = rng.int(4);
      const pick = rng.int(14);
      const s = (t: string) => ({ bytes: encoder.encode(t), mode: chat });
      switch (pick) {
        case 0: return s("[".repeat(rng.range(1, 200000)));
        case 1: return s(`{"model":"m","messages":${"[".repeat(rng.range(500, 600))}${"]".repeat(rng.range(0, 600))}}`);
        case 2: return s(`{"model":"m","prompt":"${"a".repeat(rng.range(1 << 20, 4 << 20))}"}`);
        case 3: return s(`{"model":"m","prompt":${"9".repeat(rng.range(1000, 1 << 20))}}`);
        case 4: return { bytes: new Uint8Array(rng.range(0, 4096)), mode: chat };
        case 5: return s(`{"model":"m","prompt":"${"\\ud800".repeat(rng.range(1, 5000))}"}`);
        case 6: return s(`{"model":"m","messages":[{"role":"user","content":"${"\\u0000".repeat(rng.range(1, 5000))}"}]}`);
        case 7: return s(`\ufeff{"model":"m","prompt":"x"}`);
        case 8: return s(" \t\r\n".repeat(rng.range(0, 1000)));
        case 9: return { bytes: concat(encoder.encode('{"model":"m","prompt":"'), Uint8Array.from({ length: rng.range(1, 4096) }, () => 0x80 + rng.int(128)), encoder.encode('"}')), mode: chat };
        case 10: return s(`{"model":"m","messages":[${'{"role":"user","content":"x"},'.repeat(rng.range(1000, 30000))}{}]}`);
        case 11: return s(`{${'"model":"m",'.repeat(rng.range(1000, 50000))}"prompt":"p"}`);
        case 12: return s(`{"model":"${"\\\\".repeat(rng.range(200, 600))}","prompt":"p"}`);
        default: return { bytes: noise(rng, BODY_TOKENS, 1 << 16), mode: chat };
      }
    },
    phase(m, index) {
      promptCap = PROMPT_CAPS[index % PROMPT_CAPS.length];
      m.exports.fuzz_body_setup(promptCap);
    },
    restore(m) {
      promptCap = DEFAULT_PROMPT_CAP;
      m.exports.fuzz_body_setup(promptCap);
    },
    run(m, ptr, c) {
      const e = m.exports;
      const outcome = e.fuzz_body(ptr, c.bytes.length, c.mode);
      const modelLen = e.fuzz_body_model_len();
      const promptLen = e.fuzz_body_prompt_len();
      const modelPtr = e.fuzz_body_model_ptr();
      const promptPtr = e.fuzz_body_prompt_ptr();
      let violation: string | null = null;
      if (!(outcome >= 0 && outcome <= 4)) violation = `outcome ${outcome} out of range`;
      else if (promptLen > promptCap) violation = `prompt ${promptLen} bytes over the cap ${promptCap}`;
      else if (modelLen > 512) violation = `model ${modelLen} bytes over 512`;
      else if (outcome === Extract.Ok && modelLen === 0) violation = "routable without a model";
      const signature = outcome === Extract.Ok
        ? `${outcome}/${modelLen}/${promptLen}/${e.fuzz_xxh64(modelPtr, modelLen, 0n)}/${e.fuzz_xxh64(promptPtr, promptLen, 0n)}`
        : `${outcome}`;
      let compared = false;
      if (violation === null) {
        const expected = c.mode <= 1 ? expectedBody(c.bytes, c.mode === 1, promptCap) : null;
        compared = expected !== null;
        if (expected !== null) {
          if (expected.outcome !== outcome) {
            violation = `oracle: outcome ${OUTCOME_NAMES[outcome]}, expected ${OUTCOME_NAMES[expected.outcome]}`;
          } else if (outcome === Extract.Ok && !(m.equals(modelPtr, modelLen, expected.model!) && m.equals(promptPtr, promptLen, expected.prompt!))) {
            violation = `oracle: canonical bytes differ (model ${modelLen}/${expected.model!.length}, prompt ${promptLen}/${expected.prompt!.length})`;
          }
        }
      }
      return { bucket: OUTCOME_NAMES[outcome] ?? String(outcome), signature, violation, compared };
    },
  };
}

// ---------------------------------------------------------------------------
// Plugin configuration

function configHarness(): Harness {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return {
    name: "config",
    modes: [0],
    tokens: CONFIG_TOKENS,
    maxBytes: 4 << 20,
    generate(rng) {
      return { bytes: encoder.encode(generateConfig(rng).text), mode: 0, clean: true };
    },
    special(rng) {
      const endpoints = (n: number) => Array.from({ length: n }, (_, i) => `{"address":"10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:80"}`).join(",");
      const s = (t: string) => ({ bytes: encoder.encode(t), mode: 0 });
      // The endpoint limit costs ~0.2 s a parse: rarely.
      switch (rng.chance(0.01) ? 0 : rng.range(1, 8)) {
        case 0: return s(`{"endpoints":[${endpoints(rng.pick([65534, 65535]))}]}`);
        case 1: return s(`{"endpoints":[{"address":"${"1".repeat(rng.range(60000, 70000))}"}]}`);
        case 2: return s(`{"endpoints":[{"address":"10.0.0.1:80"}],"destinationHeader":"${"x".repeat(rng.range(65530, 65540))}"}`);
        case 3: return s(`{"endpoints":[{"address":"10.0.0.1:80"}],"x":${"[".repeat(rng.range(500, 20000))}`);
        case 4: return s(`{"endpoints":[{"address":"10.0.0.1:80"}],"tickMs":${"9".repeat(rng.range(300, 100000))}}`);
        case 5: return s(`{"endpoints":[{"address":"10.0.0.1:80"}],"maxPrefixBlocks":4096,"hashBlockSize":4096}`);
        case 6: return s(`{"${"\\u0065".repeat(rng.range(1, 20000))}":1}`);
        case 7: return { bytes: new Uint8Array(rng.range(0, 100)), mode: 0 };
        default: return { bytes: noise(rng, CONFIG_TOKENS, 1 << 16), mode: 0 };
      }
    },
    run(m, ptr, c) {
      const e = m.exports;
      const accepted = e.fuzz_config(ptr, c.bytes.length);
      let violation: string | null = null;
      let signature: string;
      if (accepted === 1) {
        const n = e.fuzz_config_endpoints();
        const parts: string[] = [];
        if (n < 1 && e.fuzz_config_discovery() !== 1) violation = "accepted without endpoints or discovery";
        for (let i = 0; i < n && violation === null; i++) {
          const address = m.handedOut(e.fuzz_config_address(i));
          const metrics = m.handedOut(e.fuzz_config_metrics_address(i));
          if (!strictAddress(address)) violation = `accepted endpoint address ${JSON.stringify(address)}`;
          else if (!strictAddress(metrics)) violation = `accepted metrics address ${JSON.stringify(metrics)}`;
          if (i < 4) parts.push(address);
        }
        const header = m.handedOut(e.fuzz_config_header());
        const metricsPath = m.handedOut(e.fuzz_config_metrics_path());
        if (violation === null && !strictHeaderName(header)) violation = `accepted destination header ${JSON.stringify(header)}`;
        if (violation === null && metricsPath !== "" && !strictPath(metricsPath)) violation = `accepted metrics path ${JSON.stringify(metricsPath)}`;
        const cap = e.fuzz_config_prompt_cap() >>> 0;
        const maxBody = e.fuzz_config_max_body();
        if (violation === null && (cap > 4096 * 4096 || maxBody < 1024 || maxBody > 64 << 20)) violation = `bounds: prompt cap ${cap}, maxBodyBytes ${maxBody}`;
        if (violation === null) {
          // Accepted text must be JSON with an object at the top.
          let text: string | null = null;
          try {
            text = decoder.decode(c.bytes);
          } catch {
            text = null;
          }
          if (text !== null) {
            try {
              const v = JSON.parse(text);
              if (typeof v !== "object" || v === null || Array.isArray(v)) violation = "accepted a non-object";
            } catch (err) {
              if (!(err instanceof RangeError)) violation = "accepted text JSON.parse rejects";
            }
          }
        }
        signature = `ok/${n}/${header}/${parts.join(",")}`;
      } else {
        const error = m.handedOut(e.fuzz_config_error());
        if (error.length === 0) violation = "rejected without a reason";
        signature = `error/${error}`;
      }
      // An accepted configuration was checked against the strict rules above: that is its reference.
      return { bucket: accepted === 1 ? "accepted" : "rejected", signature, violation, compared: accepted === 1 && violation === null };
    },
  };
}

// ---------------------------------------------------------------------------
// Prometheus pages

interface MetricsView {
  present: number;
  truncated: boolean;
  values: number[];
  adapters: number;
}

function readMetrics(m: FuzzModule, present: number): MetricsView {
  const e = m.exports;
  const values: number[] = [];
  for (let s = 0; s < 7; s++) values.push((present >>> s) & 1 ? e.fuzz_metrics_value(s) : NaN);
  return { present, truncated: e.fuzz_metrics_truncated() === 1, values, adapters: e.fuzz_metrics_adapters(0) };
}

function metricsHarness(): Harness {
  return {
    name: "metrics",
    modes: [0, 1, 2, 3],
    tokens: PAGE_TOKENS,
    maxBytes: 8 << 20,
    generate(rng) {
      const clean = rng.chance(0.3);
      const page = generatePage(rng, rng.int(DIALECTS.length), clean);
      return { bytes: encoder.encode(page.text), mode: page.dialect, clean };
    },
    sweepSeed(rng) {
      // Clean pages only, so every cut can be compared with the uncut parse.
      const page = generatePage(rng, rng.int(DIALECTS.length), true);
      return { bytes: encoder.encode(page.text), mode: page.dialect, clean: true };
    },
    special(rng) {
      const mode = rng.int(DIALECTS.length);
      const s = (t: string) => ({ bytes: encoder.encode(t), mode });
      switch (rng.int(9)) {
        case 0: return s(`vllm:num_requests_waiting{a="${"x".repeat(rng.range(1 << 20, 8 << 20))}"} 1\n`);
        case 1: return s('vllm:num_requests_waiting{engine="0"} 1\n'.repeat(rng.range(10000, 100000)));
        case 2: return s("\n".repeat(rng.range(0, 1 << 20)));
        case 3: return s("x".repeat(rng.range(1, 2 << 20)));
        case 4: return s(`vllm:lora_requests_info{running_lora_adapters="${"\\\\".repeat(rng.range(1, 100000))}",max_lora="1"} 1\n`);
        case 5: return s(`vllm:num_requests_waiting ${"9".repeat(rng.range(300, 100000))}\n`);
        case 6: return s(`vllm:lora_requests_info{running_lora_adapters="${Array.from({ length: 5000 }, (_, i) => `a${i}`).join(",")}",max_lora="1"} 1\n`);
        case 7: return s(`# TYPE ${"a".repeat(rng.range(1, 100000))} gauge\n`);
        default: return { bytes: noise(rng, PAGE_TOKENS, 1 << 16), mode };
      }
    },
    run(m, ptr, c, sweep) {
      const e = m.exports;
      const present = e.fuzz_metrics(ptr, c.bytes.length, c.mode) >>> 0;
      const view = readMetrics(m, present);
      const lines = e.fuzz_metrics_lines(), sampleLines = e.fuzz_metrics_sample_lines(), samples = e.fuzz_metrics_samples();
      let violation: string | null = null;
      if ((present & ~0x1ff) !== 0) violation = `present bits ${present.toString(2)}`;
      else if (!(samples <= sampleLines && sampleLines <= lines)) violation = `counts: ${samples} samples, ${sampleLines} sample lines, ${lines} lines`;
      for (let s = 0; s < 7 && violation === null; s++) {
        if (!((present >>> s) & 1)) continue;
        const v = view.values[s];
        if (!Number.isFinite(v)) violation = `signal ${s} not finite: ${v}`;
        else if (s === 2 && (v < 0 || v > 1)) violation = `KV utilization ${v} outside [0,1]`;
        else if (s === 3 && !(v >= 1 && v <= 2 ** 31 - 1)) violation = `block size ${v}`;
        else if (s === 4 && !(v >= 1 && v <= 9e15)) violation = `GPU blocks ${v}`;
      }
      for (let list = 0; list < 2 && violation === null; list++) {
        const n = e.fuzz_metrics_adapters(list);
        if (n < 0 || n > 32) violation = `${n} adapters`;
        for (let i = 0; i < n && violation === null; i++) {
          const len = e.fuzz_metrics_adapter_len(list, i);
          if (len < 1 || len > 128) violation = `adapter name of ${len} bytes`;
        }
      }
      if (violation === null && view.truncated) {
        const last = c.bytes.lastIndexOf(0x0a);
        const tail = c.bytes.subarray(last + 1);
        if (tail.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) violation = "truncated without a partial line";
      }
      // Only a cut inside a line is known to be a cut: one at a line boundary is
      // a complete shorter page, where a sum over two families may lack one.
      const compared = violation === null && !!sweep?.full && view.truncated;
      if (compared) {
        const full = sweep!.full!;
        if ((present & ~full.present) !== 0) violation = `cut page has signals ${present} the full page (${full.present}) lacks`;
        for (let s = 0; s < 7 && violation === null; s++) {
          if ((present >>> s) & 1 && view.values[s] !== full.values[s]) violation = `cut page: signal ${s} = ${view.values[s]}, full page ${full.values[s]}`;
        }
      }
      const bucket = view.truncated ? "truncated" : present === 0 ? "no signal" : `${popcount(present)} signals`;
      return { bucket, signature: `${present}/${view.values.join(",")}/${lines}/${samples}/${view.adapters}/${e.fuzz_metrics_malformed()}`, violation, compared };
    },
  };
}

// ---------------------------------------------------------------------------
// Envoy's admin /clusters text

function adminHarness(): Harness {
  return {
    name: "admin",
    modes: [0],
    tokens: ADMIN_TOKENS,
    maxBytes: 8 << 20,
    generate(rng) {
      return { bytes: encoder.encode(generateAdminText(rng)), mode: 0, clean: true };
    },
    special(rng) {
      const s = (t: string) => ({ bytes: encoder.encode(t), mode: 0 });
      const host = (i: number) => `outbound|8000||vllm.models.svc.cluster.local::10.0.${(i >> 8) & 255}.${i & 255}:8000::health_flags::healthy\n`;
      switch (rng.int(7)) {
        case 0: return s(Array.from({ length: rng.range(100, 5000) }, (_, i) => host(i)).join(""));
        case 1: return s(`outbound|8000||vllm.models.svc.cluster.local::${"a".repeat(rng.range(250, 70000))}::health_flags::healthy\n`);
        case 2: return s(`outbound|8000||vllm.models.svc.cluster.local::${"::".repeat(rng.range(1, 50000))}health_flags::healthy`);
        case 3: return s(`outbound|8000||vllm.models.svc.cluster.local::1.2.3.4:5::health_flags::${"/degraded".repeat(rng.range(1, 100000))}`);
        case 4: return s("\n".repeat(rng.range(0, 1 << 20)));
        case 5: return s("outbound|8000||vllm.models.svc.cluster.local::");
        default: return { bytes: noise(rng, ADMIN_TOKENS, 1 << 16), mode: 0 };
      }
    },
    run(m, ptr, c) {
      const e = m.exports;
      const answer = e.fuzz_admin(ptr, c.bytes.length);
      const record = decodeRecord(m.read(e.fuzz_admin_record_ptr(), e.fuzz_admin_record_len()));
      const expected = expectedHosts(c.bytes);
      let violation: string | null = null;
      if (typeof record === "string") violation = `malformed record: ${record}`;
      else if (answer !== (expected.known ? 0 : 1)) violation = `answer ${answer}, expected ${expected.known ? "Ok" : "UnknownCluster"}`;
      else if (record.length > ADMIN_MAX_HOSTS) violation = `${record.length} hosts over the limit`;
      else if (e.fuzz_admin_overflow() !== expected.overflow) violation = `overflow ${e.fuzz_admin_overflow()}, expected ${expected.overflow}`;
      else if (JSON.stringify(record) !== JSON.stringify(expected.hosts)) {
        violation = `hosts differ from the reference: ${JSON.stringify(record).slice(0, 200)} / ${JSON.stringify(expected.hosts).slice(0, 200)}`;
      }
      const hosts = typeof record === "string" ? -1 : record.length;
      return { bucket: answer !== 0 ? "unknown cluster" : hosts === 0 ? "no hosts" : "hosts", signature: `${answer}/${JSON.stringify(record)}`, violation, compared: true };
    },
  };
}

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

export function harness(name: ParserName): Harness {
  return name === "body" ? bodyHarness() : name === "config" ? configHarness() : name === "metrics" ? metricsHarness() : adminHarness();
}

// ---------------------------------------------------------------------------
// The campaign

export interface FuzzOptions {
  count: number;
  seed: number;
  /** Where trapping inputs go (null: nowhere). */
  regressionsDir?: string | null;
  /** Every how many inputs one is run twice with different bytes before it. */
  underreadEvery?: number;
  progress?: (line: string) => void;
}

export interface Finding {
  kind: "trap" | "violation";
  message: string;
  file: string | null;
  bytes: number;
}

export interface ParserReport {
  parser: ParserName;
  seed: number;
  inputs: number;
  byOrigin: Record<Origin, number>;
  totalBytes: number;
  largestInput: number;
  outcomes: Record<string, number>;
  oracleCompared: number;
  underreadChecked: number;
  traps: number;
  violations: number;
  findings: Finding[];
  memory: { baseline: HeapFigures; end: HeapFigures; memoryBytesAt: number[]; leakedBytes: number };
  seconds: number;
}

/** Runs one parser's campaign; deterministic for (parser, seed, count). */
export function fuzzParser(name: ParserName, options: FuzzOptions): ParserReport {
  const h = harness(name);
  const m = FuzzModule.load();
  const rng = new Rng(options.seed);
  const genRng = rng.fork();
  const mutRng = rng.fork();
  const pool: Uint8Array[] = [];
  const poolCases: Case[] = [];
  const underreadEvery = options.underreadEvery ?? 16;
  const report: ParserReport = {
    parser: name,
    seed: options.seed,
    inputs: 0,
    byOrigin: { generated: 0, mutated: 0, truncated: 0, special: 0 },
    totalBytes: 0,
    largestInput: 0,
    outcomes: {},
    oracleCompared: 0,
    underreadChecked: 0,
    traps: 0,
    violations: 0,
    findings: [],
    memory: { baseline: m.heap(), end: m.heap(), memoryBytesAt: [], leakedBytes: 0 },
    seconds: 0,
  };
  const started = performance.now();
  const warmup = Math.min(2000, Math.floor(options.count / 10));
  const checkpoint = Math.max(1, Math.floor(options.count / 10));
  const phaseLength = 10_000;
  let sweep: SweepState | null = null;
  let phase = 0;

  const next = (): { c: Case; origin: Origin; from: SweepState | null } => {
    if (sweep !== null) {
      const from: SweepState = sweep;
      const c = { bytes: from.source.bytes.subarray(0, from.next), mode: from.source.mode };
      from.next++;
      if (from.next >= from.source.bytes.length) sweep = null;
      return { c, origin: "truncated", from };
    }
    // Shares: a quarter of all inputs are prefixes of valid ones; of the rest,
    // about half generated, half mutated, and a few extremes.
    if (report.byOrigin.truncated < 0.25 * report.inputs && pool.length > 0) return startSweep();
    const r = rng.float();
    if (r < 0.48 || pool.length === 0) {
      const c = h.generate(genRng);
      pool.length < 256 ? (pool.push(c.bytes), poolCases.push(c)) : ((pool[rng.int(256)] = c.bytes), undefined);
      return { c, origin: "generated", from: null };
    }
    if (r < 0.97) {
      const base = rng.pick(poolCases);
      return { c: { bytes: mutate(mutRng, base.bytes, { tokens: h.tokens, pool, maxBytes: h.maxBytes }), mode: rng.chance(0.9) ? base.mode : rng.int(h.modes.length) }, origin: "mutated", from: null };
    }
    return { c: h.special(genRng), origin: "special", from: null };
  };

  const startSweep = (): { c: Case; origin: Origin; from: SweepState | null } => {
    {
      // A sweep over a small valid input: every prefix of it, one per step.
      const seed = () => (h.sweepSeed ? h.sweepSeed(genRng) : h.generate(genRng));
      let source = seed();
      for (let tries = 0; tries < 16 && (source.bytes.length > 3000 || source.bytes.length === 0); tries++) source = seed();
      if (source.bytes.length > 3000) source = { ...source, bytes: source.bytes.subarray(0, 3000), clean: false };
      sweep = { source, next: 0, full: null };
      if (name === "metrics" && source.clean) {
        const ptr = m.place(source.bytes);
        const full = m.call(() => readMetrics(m, m.exports.fuzz_metrics(ptr, source.bytes.length, source.mode) >>> 0));
        sweep.full = full instanceof Trap ? null : full.truncated ? null : full;
      }
      return next();
    }
  };

  const record = (c: Case, kind: Finding["kind"], message: string) => {
    if (kind === "trap") report.traps++;
    else report.violations++;
    let file: string | null = null;
    if (options.regressionsDir) {
      const dir = join(options.regressionsDir, name);
      mkdirSync(dir, { recursive: true });
      file = join(dir, `${createHash("sha256").update(c.bytes).digest("hex").slice(0, 16)}.bin`);
      writeFileSync(file, c.bytes);
    }
    if (report.findings.length < 50) report.findings.push({ kind, message, file, bytes: c.bytes.length });
  };

  for (let i = 0; i < options.count; i++) {
    if (i === warmup) {
      h.restore?.(m);
      report.memory.baseline = m.heap();
    }
    if (i > warmup && i % phaseLength === 0) h.phase?.(m, ++phase);
    if (i > 0 && i % checkpoint === 0) {
      report.memory.memoryBytesAt.push(m.exports.memory.buffer.byteLength);
      options.progress?.(`${name}: ${i}/${options.count} inputs, ${report.traps} traps, ${report.violations} violations`);
    }
    const { c, origin, from } = next();
    report.inputs++;
    report.byOrigin[origin]++;
    report.totalBytes += c.bytes.length;
    if (c.bytes.length > report.largestInput) report.largestInput = c.bytes.length;
    const ptr = m.place(c.bytes);
    const result = m.call(() => h.run(m, ptr, c, from));
    if (result instanceof Trap) {
      record(c, "trap", result.toString());
      continue;
    }
    report.outcomes[result.bucket] = (report.outcomes[result.bucket] ?? 0) + 1;
    if (result.violation !== null) {
      record(c, "violation", result.violation);
      continue;
    }
    if (result.compared) report.oracleCompared++;
    if (i % underreadEvery === 0) {
      // The same input again with other bytes just before it: any difference is a read before ptr.
      report.underreadChecked++;
      const signatures: string[] = [];
      for (const fill of [0x00, 0x22]) {
        const again = m.place(c.bytes);
        m.fillGuard(again, fill);
        const r = m.call(() => h.run(m, again, c, from));
        signatures.push(r instanceof Trap ? `trap ${r}` : r.signature);
      }
      if (signatures[0] !== signatures[1] || signatures[0] !== result.signature) {
        record(c, "violation", `result depends on the ${GUARD_BYTES} bytes before the input: ${signatures.join(" | ")}`);
      }
    }
  }
  report.memory.memoryBytesAt.push(m.exports.memory.buffer.byteLength);
  h.restore?.(m);
  report.memory.end = m.heap();
  report.memory.leakedBytes = report.memory.end.usedBytes - report.memory.baseline.usedBytes;
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

// ---------------------------------------------------------------------------
// Regressions

export interface ReplayReport {
  parser: ParserName;
  files: number;
  runs: number;
  failures: string[];
}

/** Replays every saved input of a parser under each of its modes (against another build with `wasmPath`). */
export function replayRegressions(name: ParserName, dir = REGRESSIONS_DIR, wasmPath?: string): ReplayReport {
  const h = harness(name);
  const m = wasmPath ? FuzzModule.load(wasmPath) : FuzzModule.load();
  const folder = join(dir, name);
  const files = existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith(".bin")).sort() : [];
  const report: ReplayReport = { parser: name, files: files.length, runs: 0, failures: [] };
  for (const f of files) {
    const bytes = new Uint8Array(readFileSync(join(folder, f)));
    for (const mode of h.modes) {
      const c: Case = { bytes, mode };
      const ptr = m.place(bytes);
      report.runs++;
      const r = m.call(() => h.run(m, ptr, c, null));
      if (r instanceof Trap) report.failures.push(`${f} (mode ${mode}): trap ${r}`);
      else if (r.violation !== null) report.failures.push(`${f} (mode ${mode}): ${r.violation}`);
    }
  }
  return report;
}
