// Workloads: deterministic by seed, and the hashes the replay feeds the
// simulated servers are exactly what a server computes from the body.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { blockHashes } from "../../scripts/sim/hash.ts";
import { parseRequest } from "../../scripts/sim/openai.ts";
import { DEFAULT_SIM_PARAMS, simParams } from "../../scripts/sim/params.ts";
import { bursts, loraMix, multiTurn, sharedPrefix } from "../../scripts/eval/generators.ts";
import { DEFAULT_TRACE } from "../../scripts/eval/run.ts";
import { loadTrace, traceWorkload, type TraceRecord } from "../../scripts/eval/trace.ts";
import type { Workload } from "../../scripts/eval/workload.ts";

const model = DEFAULT_SIM_PARAMS.model;

function fingerprint(w: Workload): string {
  return w.requests.map((r) => `${r.arrivalMs.toFixed(3)}|${r.model}|${r.maxTokens}|${r.source.body().length}|${r.hashes.join(",")}`).join("\n");
}

/** The server's view of a spec's body must equal what the replay uses. */
function assertServerAgrees(w: Workload, n: number): void {
  const p = simParams();
  for (const r of w.requests.slice(0, n)) {
    const parsed = parseRequest(r.path, r.source.body(), p);
    assert.equal(parsed.promptText, r.source.promptText());
    assert.equal(parsed.promptTokens, r.promptTokens);
    assert.equal(parsed.maxTokens, r.maxTokens);
    assert.equal(parsed.adapter, r.adapter);
    assert.deepEqual(r.hashes, blockHashes(parsed.promptText, parsed.adapter));
  }
}

const records: TraceRecord[] = [
  { timestamp: 0, input_length: 1200, output_length: 5, hash_ids: [1, 2, 3] },
  { timestamp: 10, input_length: 700, output_length: 2, hash_ids: [1, 2] },
  { timestamp: 20, input_length: 1300, output_length: 9, hash_ids: [1, 4, 5] },
  { timestamp: 30, input_length: 13, output_length: 1, hash_ids: [9] },
];

test("trace replay: hash ids become text whose block hashes match the server's, prefixes shared by id", () => {
  const w = traceWorkload(records, { model, seed: 7 });
  assertServerAgrees(w, records.length);
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
  for (const gen of [sharedPrefix, multiTurn, loraMix, bursts]) {
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

test("lora-mix names adapters in `model`; bursts crowd arrivals into bursts", () => {
  const l = loraMix({ seed: 1, model, requests: 300 });
  const adapters = new Set(l.requests.map((r) => r.adapter));
  assert.ok(adapters.size > 3 && !adapters.has(null));
  const b = bursts({ seed: 1, model, requests: 400, periodMs: 10000, burstMs: 1000 });
  const inBurst = b.requests.filter((r) => r.arrivalMs % 10000 < 1000).length;
  assert.ok(inBurst > 0.7 * b.requests.length, `${inBurst} of ${b.requests.length} in the 10% of time that is burst`);
});
