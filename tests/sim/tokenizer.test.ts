// The simulated tokenizers: VARYING is a pure function of the text whose
// characters per token differ from text to text (so 16-token blocks are not
// 64 characters), FIXED is the old 4-characters-per-token geometry.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BLOCK_TOKENS, blockHashes, FIXED_TOKENIZER, tokenizer, VARYING_TOKENIZER } from "../../scripts/sim/hash.ts";
import { Rng } from "../../scripts/sim/random.ts";
import { fillerText } from "../../scripts/eval/workload.ts";

const texts = (skew: number): string[] => Array.from({ length: 40 }, (_, i) => fillerText(new Rng(100 + i), 4096, skew));

test("VARYING is deterministic: same text, same tokens and hashes", () => {
  const t = fillerText(new Rng(1), 5000);
  assert.deepEqual(VARYING_TOKENIZER.tokenEnds(t), VARYING_TOKENIZER.tokenEnds(t.slice()));
  assert.deepEqual(VARYING_TOKENIZER.blockHashes(t, null), VARYING_TOKENIZER.blockHashes(String(t), null));
  assert.equal(VARYING_TOKENIZER.count(t), VARYING_TOKENIZER.tokenEnds(t).length);
  assert.equal(tokenizer(), VARYING_TOKENIZER, "the default is the varying one");
});

test("VARYING: about 4 characters per token on average, varying per text", () => {
  const ratios = [...texts(-0.8), ...texts(0), ...texts(0.8)].map((t) => t.length / VARYING_TOKENIZER.count(t));
  const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
  assert.ok(mean > 3.6 && mean < 4.6, `mean ${mean}`);
  const lo = Math.min(...ratios);
  const hi = Math.max(...ratios);
  // Short-word and long-word texts differ by well over sampling noise.
  assert.ok(hi - lo > 0.4, `spread ${lo}..${hi}`);
  // And within one kind of text, two texts rarely tokenize to the same ratio.
  assert.ok(new Set(texts(0).map((t) => VARYING_TOKENIZER.count(t))).size > 20);
});

test("VARYING: block boundaries fall at varying character offsets, so blocks are not 64 characters", () => {
  const t = fillerText(new Rng(7), 8000);
  const ends = VARYING_TOKENIZER.tokenEnds(t);
  const blockChars = new Set<number>();
  for (let b = 1; b * BLOCK_TOKENS <= ends.length; b++) blockChars.add(ends[b * BLOCK_TOKENS - 1] - (b > 1 ? ends[(b - 1) * BLOCK_TOKENS - 1] : 0));
  assert.ok(blockChars.size > 5, `block lengths ${[...blockChars]}`);
  assert.notDeepEqual(VARYING_TOKENIZER.blockHashes(t, null).slice(0, 4), blockHashes(t, null).slice(0, 4));
  for (let i = 1; i < ends.length; i++) assert.ok(ends[i] > ends[i - 1]);
  assert.equal(ends[ends.length - 1], t.length);
});

test("VARYING: a shared prefix of whole words shares its block hashes; the adapter separates chains", () => {
  const base = fillerText(new Rng(3), 3000);
  const cut = base.lastIndexOf(" ", 2000) + 1;
  const a = base.slice(0, cut) + fillerText(new Rng(4), 1000);
  const hb = VARYING_TOKENIZER.blockHashes(base, null);
  const ha = VARYING_TOKENIZER.blockHashes(a, null);
  const shared = Math.floor(VARYING_TOKENIZER.count(base.slice(0, cut)) / BLOCK_TOKENS);
  assert.ok(shared > 20);
  assert.deepEqual(ha.slice(0, shared), hb.slice(0, shared));
  assert.notEqual(ha[shared + 1], hb[shared + 1]);
  assert.notEqual(VARYING_TOKENIZER.blockHashes(base, "lora")[0], hb[0]);
});

test("FIXED keeps the 64-character geometry of blockHashes", () => {
  const t = fillerText(new Rng(5), 1000);
  assert.equal(FIXED_TOKENIZER.count(t), 250);
  assert.deepEqual(FIXED_TOKENIZER.blockHashes(t, null), blockHashes(t, null));
  assert.equal(FIXED_TOKENIZER.tokenEnds(t)[15], 64);
});
