// Generated workloads: the traffic shapes where routing for the prefix cache
// matters, each a pure function of its options and seed. Owns: shared system
// prompts, multi-turn chats, a LoRA adapter mix and bursts. Must not: read
// files, the clock or Math.random.
//
// - shared-prefix: many users, each request a chat with one of a few long
//   system prompts plus a short question of its own.
// - multi-turn: conversations whose prompt grows every turn (the previous
//   turns, including the assistant's reply exactly as the simulated server
//   generated it, are resent), turns separated by think time.
// - lora-mix: like shared-prefix but spread over LoRA adapters with Zipf
//   popularity; adapters never share KV blocks and compete for max_loras slots.
// - bursts: shared-prefix traffic arriving in on/off bursts, the case where
//   metrics scraped every few hundred ms are most out of date.
// - agent: tool-calling sessions: a long system prompt of tool definitions, a
//   task, then steps a second or two apart, each resending the session with
//   the model's short tool call and a long tool result appended. Prompts grow
//   fast and most of each is cached where the session's last step ran.

import { CHARS_PER_TOKEN } from "../sim/hash.ts";
import { syntheticText, type ChatMessage } from "../sim/openai.ts";
import { labelSeed, Rng } from "../sim/random.ts";
import { fillerText, literalSpecs, type LiteralRequest, type Workload } from "./workload.ts";

export interface CommonOptions {
  seed: number;
  /** Served base model name. */
  model: string;
  requests?: number;
}

function text(rng: Rng, tokens: number): string {
  return fillerText(rng, tokens * CHARS_PER_TOKEN);
}

function systemPrompts(rng: Rng, n: number, tokens: number): string[] {
  return Array.from({ length: n }, (_, i) => text(rng.fork(`sys${i}`), tokens));
}

/** Single-turn chats: a system prompt (and model) picked per request, plus a question of its own. */
interface ChatMix {
  n: number;
  /** The next arrival time after t. */
  next(t: number): number;
  pick(): { model: string; system: string };
  questionTokens: [number, number];
  outputTokens: [number, number];
}

function questionChats(rng: Rng, baseModel: string, mix: ChatMix): LiteralRequest[] {
  const reqs: LiteralRequest[] = [];
  let t = 0;
  for (let i = 0; i < mix.n; i++) {
    t = mix.next(t);
    const { model, system } = mix.pick();
    const messages: ChatMessage[] = [
      { role: "system", content: system },
      { role: "user", content: text(rng, rng.range(mix.questionTokens[0], mix.questionTokens[1])) },
    ];
    reqs.push({ arrivalMs: t, model, baseModel, maxTokens: rng.range(mix.outputTokens[0], mix.outputTokens[1]), messages });
  }
  return reqs;
}

export interface SharedPrefixOptions extends CommonOptions {
  systemPrompts?: number;
  systemTokens?: number;
  /** Mean arrival rate, requests per second (Poisson). */
  ratePerS?: number;
  questionTokens?: [number, number];
  outputTokens?: [number, number];
}

export function sharedPrefix(o: SharedPrefixOptions): Workload {
  const rng = new Rng(o.seed ^ labelSeed("shared-prefix"));
  const n = o.requests ?? 2000;
  const nSys = o.systemPrompts ?? 100;
  const sysTokens = o.systemTokens ?? 6000;
  const rate = o.ratePerS ?? 40;
  const systems = systemPrompts(rng, nSys, sysTokens);
  const reqs = questionChats(rng, o.model, {
    n,
    next: (t) => t + rng.exp(1000 / rate),
    pick: () => ({ model: o.model, system: systems[rng.zipf(nSys, 0.8)] }),
    questionTokens: o.questionTokens ?? [40, 400],
    outputTokens: o.outputTokens ?? [16, 200],
  });
  return {
    name: "shared-prefix",
    description: `${n} chats over ${nSys} system prompts of ${sysTokens} tokens, Poisson ${rate}/s`,
    requests: literalSpecs(reqs),
  };
}

export interface MultiTurnOptions extends CommonOptions {
  conversations?: number;
  systemPrompts?: number;
  turns?: number;
  systemTokens?: number;
  /** New conversations per second. */
  startRatePerS?: number;
  /** Mean think time between a turn and the next, ms. */
  thinkMs?: number;
  userTokens?: [number, number];
  outputTokens?: [number, number];
}

export function multiTurn(o: MultiTurnOptions): Workload {
  const rng = new Rng(o.seed ^ labelSeed("multi-turn"));
  const nConv = o.conversations ?? 250;
  const turns = o.turns ?? 8;
  const sysTokens = o.systemTokens ?? 1500;
  const [uLo, uHi] = o.userTokens ?? [100, 600];
  const [oLo, oHi] = o.outputTokens ?? [50, 400];
  const nSys = o.systemPrompts ?? 4;
  const systems = Array.from({ length: nSys }, (_, i) => text(rng.fork(`sys${i}`), sysTokens));
  const reqs: LiteralRequest[] = [];
  let start = 0;
  for (let c = 0; c < nConv; c++) {
    start += rng.exp(1000 / (o.startRatePerS ?? 4));
    const messages: ChatMessage[] = [{ role: "system", content: systems[rng.int(nSys)] }];
    let t = start;
    for (let k = 0; k < turns; k++) {
      messages.push({ role: "user", content: text(rng, rng.range(uLo, uHi)) });
      const out = rng.range(oLo, oHi);
      reqs.push({ arrivalMs: t, model: o.model, baseModel: o.model, maxTokens: out, messages: messages.slice() });
      messages.push({ role: "assistant", content: syntheticText(out) });
      t += rng.exp(o.thinkMs ?? 10000);
    }
  }
  return {
    name: "multi-turn",
    description: `${nConv} conversations of ${turns} turns over ${nSys} system prompts, each turn resending the whole conversation`,
    requests: literalSpecs(reqs.slice(0, o.requests ?? reqs.length)),
  };
}

export interface LoraMixOptions extends SharedPrefixOptions {
  adapters?: number;
  zipfS?: number;
}

export function loraMix(o: LoraMixOptions): Workload {
  const rng = new Rng(o.seed ^ labelSeed("lora-mix"));
  const n = o.requests ?? 2000;
  const nAdapters = o.adapters ?? 12;
  const perAdapter = o.systemPrompts ?? 8;
  const sysTokens = o.systemTokens ?? 4000;
  const rate = o.ratePerS ?? 40;
  const systems = systemPrompts(rng, nAdapters * perAdapter, sysTokens);
  const reqs = questionChats(rng, o.model, {
    n,
    next: (t) => t + rng.exp(1000 / rate),
    pick: () => {
      const a = rng.zipf(nAdapters, o.zipfS ?? 1);
      return { model: `lora-${a}`, system: systems[a * perAdapter + rng.int(perAdapter)] };
    },
    questionTokens: o.questionTokens ?? [40, 400],
    outputTokens: o.outputTokens ?? [16, 200],
  });
  return {
    name: "lora-mix",
    description: `${n} chats over ${nAdapters} LoRA adapters (Zipf), ${perAdapter} system prompts each`,
    requests: literalSpecs(reqs),
  };
}

export interface BurstOptions extends SharedPrefixOptions {
  periodMs?: number;
  burstMs?: number;
  /** Rate inside a burst and between bursts, requests per second. */
  burstRatePerS?: number;
  baseRatePerS?: number;
}

export function bursts(o: BurstOptions): Workload {
  const rng = new Rng(o.seed ^ labelSeed("bursts"));
  const n = o.requests ?? 2000;
  const nSys = o.systemPrompts ?? 100;
  const sysTokens = o.systemTokens ?? 4000;
  const period = o.periodMs ?? 10000;
  const burst = o.burstMs ?? 1000;
  const hi = o.burstRatePerS ?? 300;
  const lo = o.baseRatePerS ?? 10;
  const systems = systemPrompts(rng, nSys, sysTokens);
  // Piecewise-constant rate: draw at the current phase's rate; if the draw
  // crosses the phase's end, restart from there (exponential gaps are memoryless).
  const next = (from: number): number => {
    let t = from;
    for (;;) {
      const inBurst = t % period < burst;
      const phaseEnd = Math.floor(t / period) * period + (inBurst ? burst : period);
      const candidate = t + rng.exp(1000 / (inBurst ? hi : lo));
      if (candidate < phaseEnd) return candidate;
      t = phaseEnd;
    }
  };
  const reqs = questionChats(rng, o.model, {
    n,
    next,
    pick: () => ({ model: o.model, system: systems[rng.zipf(nSys, 0.8)] }),
    questionTokens: o.questionTokens ?? [40, 400],
    outputTokens: o.outputTokens ?? [16, 200],
  });
  return {
    name: "bursts",
    description: `${n} shared-prefix chats in bursts of ${burst} ms at ${hi}/s every ${period} ms, ${lo}/s between`,
    requests: literalSpecs(reqs),
  };
}

export interface AgentOptions extends CommonOptions {
  sessions?: number;
  /** Distinct tool sets (system prompts). */
  systemPrompts?: number;
  systemTokens?: number;
  /** Steps per session, inclusive range. */
  steps?: [number, number];
  /** New sessions per second. */
  startRatePerS?: number;
  /** Mean time between a step and the next (the model's reply plus the tool's latency), ms. */
  stepGapMs?: number;
  taskTokens?: [number, number];
  toolCallTokens?: [number, number];
  toolResultTokens?: [number, number];
}

export function agent(o: AgentOptions): Workload {
  const rng = new Rng(o.seed ^ labelSeed("agent"));
  const nSessions = o.sessions ?? 150;
  const nSys = o.systemPrompts ?? 3;
  const systems = systemPrompts(rng, nSys, o.systemTokens ?? 4000);
  const [sLo, sHi] = o.steps ?? [4, 12];
  const range = (r: [number, number] | undefined, d: [number, number]) => rng.range((r ?? d)[0], (r ?? d)[1]);
  const reqs: LiteralRequest[] = [];
  let start = 0;
  for (let k = 0; k < nSessions; k++) {
    start += rng.exp(1000 / (o.startRatePerS ?? 1.5));
    const messages: ChatMessage[] = [
      { role: "system", content: systems[rng.int(nSys)] },
      { role: "user", content: text(rng, range(o.taskTokens, [200, 800])) },
    ];
    let t = start;
    const steps = rng.range(sLo, sHi);
    for (let i = 0; i < steps; i++) {
      const out = range(o.toolCallTokens, [20, 120]);
      reqs.push({ arrivalMs: t, model: o.model, baseModel: o.model, maxTokens: out, messages: messages.slice() });
      messages.push({ role: "assistant", content: syntheticText(out) });
      messages.push({ role: "tool", content: text(rng, range(o.toolResultTokens, [300, 3000])) });
      t += rng.exp(o.stepGapMs ?? 1500);
    }
  }
  return {
    name: "agent",
    description: `${nSessions} tool-calling sessions of ${sLo}–${sHi} steps over ${nSys} tool sets, each step resending the session with a tool call and its result`,
    requests: literalSpecs(reqs.slice(0, o.requests ?? reqs.length)),
  };
}

export const GENERATED = {
  "shared-prefix": sharedPrefix,
  "multi-turn": multiTurn,
  "lora-mix": loraMix,
  bursts,
  agent,
} as const;

export type GeneratedName = keyof typeof GENERATED;
