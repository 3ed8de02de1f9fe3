// Workloads: deterministic by seed, and the hashes the replay feeds the
// simulated servers are exactly what a server computes from the body.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { FIXED_TOKENIZER, tokenizer, VARYING_TOKENIZER, type Tokenizer } from "../../scripts/sim/hash.ts";
import { parseRequest } from "../../scripts/sim/openai.ts";
import { DEFAULT_SIM_PARAMS, simParams } from "../../scripts/sim/params.ts";
import { agent, bursts, loraMix, multiTurn, sharedPrefix } from "../../scripts/eval/generators.ts";
import { DEFAULT_TRACE } from "../../scripts/eval/run.ts";
import { loadTrace, spreadArrivals, traceWorkload, type TraceRecord } from "../../scripts/eval/trace.ts";
import { retokenize, type Workload } from "../../scripts/eval/workload.ts";

const model = DEFAULT_SIM_PARAMS.model;

function fingerprint(w: Workload): string {
  return w.requests.map((r) => `${r.arrivalMs.toFixed(3)}|${r.model}|${r.maxTokens}|${r.source.body().length}|${r.hashes.join(",")}`).join("\n");
}

/** The server's view of a spec's body (as server.ts tokenizes it) must equal what the replay uses. */
function assertServerAgrees(w: Workload, n: number, tok: Tokenizer = tokenizer()): void {
  const p = simParams();
  for (const r of w.requests.slice(0, n)) {
    const parsed = parseRequest(r.path, r.source.body(), p);
    assert.equal(parsed.promptText, r.source.promptText());
    assert.equal(tok.count(parsed.promptText), r.promptTokens);
    assert.equal(parsed.maxTokens, r.maxTokens);
    assert.equal(parsed.adapter, r.adapter);
    assert.deepEqual(r.hashes, tok.blockHashes(parsed.promptText, parsed.adapter));
  }
}

const records: TraceRecord[] = [
  { timestamp: 0, input_length: 1200, output_length: 5, hash_ids: [1, 2, 3] },
  { timestamp: 10, input_length: 700, output_length: 2, hash_ids: [1, 2] },
  { timestamp: 20, input_length: 1300, output_length: 9, hash_ids: [1, 4, 5] },
  { timestamp: 30, input_length: 13, output_length: 1, hash_ids: [9] },
];

test("trace replay: hash ids become text whose block hashes match the server's, prefixes shared by id", () => {
  const w = traceWorkload(records, { model, seed: 7, tokenizer: "fixed" });
  assertServerAgrees(w, records.length, FIXED_TOKENIZER);
  const [a, b, c] = w.requests;
  assert.equal(a.source.promptText().length, 1200 * 4);
  assert.equal(a.promptTokens, 1200);
  assert.equal(a.maxTokens, 5);
  // Equal ids → equal text: b is a prefix of a (ids 1,2), c shares only id 1.
  assert.ok(a.source.promptText().startsWith(b.source.promptText()));
  assert.deepEqual(a.hashes.slice(0, b.hashes.length), b.hashes);
  assert.deepEqual(a.hashes.slice(0, 32), c.hashes.slice(0, 32));
  assert.notEqual(a.hashes[32], c.hashes[32]);
  assert.equal(a.source.promptPrefix(100), a.source.promptText().slice(0, 100));
  assert.match(a.source.body(), /^\{"model":"[^"]+","prompt":"[a-z ]+","max_tokens":5,"ignore_eos":true\}$/);
});

test("trace replay, varying tokenizer: each id is 512 tokens of its own length, prompts at most a word short", () => {
  const w = traceWorkload(records, { model, seed: 7, tokenizer: "varying" });
  assertServerAgrees(w, records.length, VARYING_TOKENIZER);
  const [a, b, c, d] = w.requests;
  assert.ok(a.promptTokens <= 1200 && a.promptTokens >= 1190, `${a.promptTokens}`);
  assert.equal(b.promptTokens, 700 - (700 - b.promptTokens));
  assert.ok(b.promptTokens <= 700 && b.promptTokens >= 690);
  assert.ok(d.promptTokens >= 1, "a tiny request keeps a word");
  assert.ok(a.source.promptText().startsWith(b.source.promptText().slice(0, 2000)));
  assert.deepEqual(a.hashes.slice(0, 32), c.hashes.slice(0, 32));
  assert.notEqual(a.hashes[32], c.hashes[32]);
  // Characters per token differ between requests (and from 4).
  const ratios = w.requests.slice(0, 3).map((r) => r.source.promptText().length / r.promptTokens);
  assert.ok(new Set(ratios.map((x) => x.toFixed(3))).size === 3, `${ratios}`);
  assert.ok(ratios.every((x) => Math.abs(x - 4) > 1e-3));
});

test("spreading keeps each arrival within its slot and leaves lone timestamps alone", () => {
  const ts = [0, 0, 0, 0, 3000, 3000, 3000, 3007, 6000, 6000, 6000];
  const s = spreadArrivals(ts, 5);
  // The last slot is as long as the median slot (2,993 ms: gaps 3000, 7, 2993).
  const slotEnd = [3000, 3000, 3000, 3000, 3007, 3007, 3007, 6000, 8993, 8993, 8993];
  for (let i = 0; i < ts.length; i++) assert.ok(s[i] >= ts[i] && s[i] < slotEnd[i], `request ${i}: ${s[i]} not in [${ts[i]}, ${slotEnd[i]})`);
  assert.equal(s[7], 3007, "a request alone at its timestamp keeps it");
  assert.ok(new Set(s.slice(0, 4)).size === 4, "a burst is spread");
  assert.deepEqual(spreadArrivals(ts, 5), s, "seeded");
  assert.notDeepEqual(spreadArrivals(ts, 6), s);
  // The workload's arrivals: sorted, and the recorded order preserved across slots.
  const recs: TraceRecord[] = ts.map((t, i) => ({ timestamp: t, input_length: 20 + i, output_length: 1, hash_ids: [i] }));
  const w = traceWorkload(recs, { model, seed: 5, arrivals: "spread" });
  for (let i = 1; i < w.requests.length; i++) assert.ok(w.requests[i].arrivalMs >= w.requests[i - 1].arrivalMs);
  const recorded = traceWorkload(recs, { model, seed: 5, arrivals: "recorded" });
  assert.deepEqual(recorded.requests.map((r) => r.arrivalMs), ts);
});

test("retokenize gives what the other tokenizer computes", () => {
  const w = sharedPrefix({ seed: 3, model, requests: 10 });
  assertServerAgrees(w, 10, VARYING_TOKENIZER);
  assertServerAgrees(retokenize(w, FIXED_TOKENIZER), 10, FIXED_TOKENIZER);
});

test("trace replay is deterministic by seed", () => {
  assert.equal(fingerprint(traceWorkload(records, { model, seed: 7 })), fingerprint(traceWorkload(records, { model, seed: 7 })));
  assert.notEqual(fingerprint(traceWorkload(records, { model, seed: 7 })), fingerprint(traceWorkload(records, { model, seed: 8 })));
});

test("the shared trace loads and its first requests agree with the server", { skip: !existsSync(DEFAULT_TRACE) && "shared trace not found" }, () => {
  const recs = loadTrace(DEFAULT_TRACE);
  assert.equal(recs.length, 3993);
  const w = traceWorkload(recs, { model, seed: 1, limit: 12 });
  assertServerAgrees(w, 12);
});

test("generated workloads are deterministic by seed and agree with the server", () => {
  for (const gen of [sharedPrefix, multiTurn, loraMix, bursts, agent]) {
    const a = gen({ seed: 3, model, requests: 80 });
    const b = gen({ seed: 3, model, requests: 80 });
    const c = gen({ seed: 4, model, requests: 80 });
    assert.equal(a.requests.length, 80, a.name);
    assert.equal(fingerprint(a), fingerprint(b), `${a.name} repeats`);
    assert.notEqual(fingerprint(a), fingerprint(c), `${a.name} depends on the seed`);
    assertServerAgrees(a, 20);
    for (let i = 1; i < a.requests.length; i++) assert.ok(a.requests[i].arrivalMs >= a.requests[i - 1].arrivalMs);
  }
});

test("multi-turn prompts grow: each turn's prompt extends the previous turn's", () => {
  const w = multiTurn({ seed: 1, model, conversations: 3, turns: 4 });
  const bySystem = new Map<string, string[]>();
  for (const r of w.requests) {
    const msgs = JSON.parse(r.source.body()).messages as { role: string; content: string }[];
    const key = msgs[1].content; // the first user message identifies the conversation
    (bySystem.get(key) ?? bySystem.set(key, []).get(key)!).push(r.source.promptText());
  }
  assert.equal(bySystem.size, 3);
  for (const turns of bySystem.values()) {
    assert.equal(turns.length, 4);
    for (let k = 1; k < turns.length; k++) {
      // The template closes the last turn with an open assistant header; the next turn resends it closed.
      const prev = turns[k - 1].slice(0, turns[k - 1].lastIndexOf("<|start_header_id|>assistant"));
      assert.ok(turns[k].startsWith(prev) && turns[k].length > turns[k - 1].length);
    }
  }
});

test("agent sessions: each step resends the session with a tool call and a longer tool result appended", () => {
  const w = agent({ seed: 1, model, sessions: 4, steps: [3, 5] });
  const bySession = new Map<string, { at: number; prompt: string; last: { role: string; content: string } }[]>();
  for (const r of w.requests) {
    const msgs = JSON.parse(r.source.body()).messages as { role: string; content: string }[];
    const key = msgs[1].content; // the task identifies the session
    (bySession.get(key) ?? bySession.set(key, []).get(key)!).push({ at: r.arrivalMs, prompt: r.source.promptText(), last: msgs[msgs.length - 1] });
  }
  assert.equal(bySession.size, 4);
  for (const steps of bySession.values()) {
    assert.ok(steps.length >= 3 && steps.length <= 5, `${steps.length} steps`);
    for (let k = 1; k < steps.length; k++) {
      const prev = steps[k - 1].prompt.slice(0, steps[k - 1].prompt.lastIndexOf("<|start_header_id|>assistant"));
      assert.ok(steps[k].prompt.startsWith(prev), "a step extends the one before");
      assert.equal(steps[k].last.role, "tool");
      assert.ok(steps[k].last.content.length >= 300 * 4 - 8, "tool results are long");
      assert.ok(steps[k].at > steps[k - 1].at);
    }
  }
});

test("lora-mix names adapters in `model`; bursts crowd arrivals into bursts", () => {
  const l = loraMix({ seed: 1, model, requests: 300 });
  const adapters = new Set(l.requests.map((r) => r.adapter));
  assert.ok(adapters.size > 3 && !adapters.has(null));
  const b = bursts({ seed: 1, model, requests: 400, periodMs: 10000, burstMs: 1000 });
  const inBurst = b.requests.filter((r) => r.arrivalMs % 10000 < 1000).length;
  assert.ok(inBurst > 0.7 * b.requests.length, `${inBurst} of ${b.requests.length} in the 10% of time that is burst`);
});
