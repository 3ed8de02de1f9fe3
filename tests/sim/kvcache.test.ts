// The simulated KV block pool against vLLM's prefix-caching rules: reuse,
// chained matching, LRU eviction order, held blocks never evicted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BLOCK_CHARS, blockHashes } from "../../scripts/sim/hash.ts";
import { KvCache } from "../../scripts/sim/kvcache.ts";

function text(seed: string, blocks: number): string {
  let s = "";
  for (let i = 0; s.length < blocks * BLOCK_CHARS; i++) s += `${seed}-${i} `;
  return s.slice(0, blocks * BLOCK_CHARS);
}

/** Admit a prompt as the engine would: touch the hit, allocate the rest, cache full blocks. Returns [hitBlocks, blocks]. */
function admit(c: KvCache, hashes: Float64Array): [number, number[]] {
  const hit = c.longestHit(hashes, hashes.length);
  const blocks: number[] = [];
  c.touch(hashes, hit, blocks);
  c.allocate(hashes.length - hit, blocks);
  for (let i = hit; i < hashes.length; i++) c.cache(blocks[i], hashes[i]);
  return [hit, blocks];
}

test("a released prompt is reused block for block", () => {
  const c = new KvCache(64);
  const h = blockHashes(text("a", 10), null);
  const [hit0, b0] = admit(c, h);
  assert.equal(hit0, 0);
  c.release(b0);
  assert.equal(c.longestHit(h, h.length), 10);
  const [hit1, b1] = admit(c, h);
  assert.equal(hit1, 10);
  assert.deepEqual(b1, b0, "the very same blocks are reused");
});

test("matching is chained: a shared prefix hits, a change invalidates every later block", () => {
  const c = new KvCache(64);
  const base = text("base", 8);
  const [, b] = admit(c, blockHashes(base, null));
  c.release(b);
  // Same first 5 blocks, different after.
  const fork = base.slice(0, 5 * BLOCK_CHARS) + text("other", 3);
  assert.equal(c.longestHit(blockHashes(fork, null), 8), 5);
  // Block 0 differs, blocks 1..7 identical text: nothing hits, because hashes chain.
  const head = text("zz", 1) + base.slice(BLOCK_CHARS);
  assert.equal(c.longestHit(blockHashes(head, null), 8), 0);
  // The same text under a LoRA adapter shares nothing with the base model.
  assert.equal(c.longestHit(blockHashes(base, "lora-a"), 8), 0);
  // The cap (prompt length − 1 token) is honoured.
  assert.equal(c.longestHit(blockHashes(base, null), 3), 3);
});

test("eviction is LRU over free blocks, tail blocks before prefix blocks", () => {
  const c = new KvCache(1 + 8); // null block + 8
  const a = blockHashes(text("a", 4), null);
  const b = blockHashes(text("b", 4), null);
  const [, ba] = admit(c, a);
  const [, bb] = admit(c, b);
  c.release(ba); // A freed first: A is least recently used
  c.release(bb);
  assert.equal(c.numFree, 8);
  // Two new blocks evict A's last two blocks (tail first), leaving A's prefix.
  const fresh: number[] = [];
  c.allocate(2, fresh);
  assert.equal(c.longestHit(a, 4), 2, "A keeps its first two blocks");
  assert.ok(!c.isCached(a[3]) && !c.isCached(a[2]));
  assert.equal(c.longestHit(b, 4), 4, "B, used more recently, is intact");
  // Two more finish A off, still before touching B.
  c.allocate(2, fresh);
  assert.equal(c.longestHit(a, 4), 0);
  assert.equal(c.longestHit(b, 4), 4);
});

test("a hit refreshes recency: the touched prompt outlives an untouched one", () => {
  const c = new KvCache(1 + 8);
  const a = blockHashes(text("a", 4), null);
  const b = blockHashes(text("b", 4), null);
  const [, ba] = admit(c, a);
  const [, bb] = admit(c, b);
  c.release(ba);
  c.release(bb);
  const [hit, ba2] = admit(c, a); // A used again
  assert.equal(hit, 4);
  c.release(ba2);
  const fresh: number[] = [];
  c.allocate(4, fresh);
  assert.equal(c.longestHit(b, 4), 0, "B is now the least recently used");
  assert.equal(c.longestHit(a, 4), 4);
});

test("blocks held by running requests are never evicted; allocation beyond the free pool fails", () => {
  const c = new KvCache(1 + 6);
  const a = blockHashes(text("a", 4), null);
  const [, held] = admit(c, a);
  assert.equal(c.numFree, 2);
  assert.ok((c.usage() - 4 / 6) < 1e-12 && c.usage() > 0.66);
  const fresh: number[] = [];
  c.allocate(2, fresh);
  assert.throws(() => c.allocate(1, fresh), /allocating 1 blocks with 0 free/);
  for (const h of a) assert.ok(c.isHeld(h), "held blocks keep their hashes");
  c.release(fresh);
  c.release(held);
  assert.equal(c.numFree, 6);
  assert.equal(c.usage(), 0);
});

test("hashless blocks are reused before cached ones", () => {
  const c = new KvCache(1 + 4);
  const a = blockHashes(text("a", 2), null);
  const [, ba] = admit(c, a);
  const scratch: number[] = [];
  c.allocate(2, scratch); // e.g. decode blocks: never hashed
  c.release(ba);
  c.release(scratch);
  const fresh: number[] = [];
  c.allocate(2, fresh);
  assert.deepEqual([...fresh].sort(), [...scratch].sort(), "the unhashed blocks come back first");
  assert.equal(c.longestHit(a, 2), 2);
});
