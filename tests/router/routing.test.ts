// The router's decisions, driven through the host emulator with the real .wasm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gateway, send, chatBody, text, addresses, stat, header, DEST } from "./harness.ts";
import { DEFAULT_INDEX_STRIDE, wholeEntryBlocks } from "../e2e/scenarios.ts";

const SYSTEM = text(1, 2000); // a long shared system prompt: 31 full 64-byte blocks

test("the same prompt goes to the same endpoint", async () => {
  const gw = await gateway({ endpoints: 4 });
  const body = chatBody([["system", SYSTEM], ["user", "What is the capital of France?"]]);
  const first = send(gw, body, { complete: true }).destination;
  assert.ok(first && addresses(4).includes(first), `routed to a configured endpoint, got ${first}`);
  for (let i = 0; i < 10; i++) assert.equal(send(gw, body, { complete: true }).destination, first);
  assert.equal(stat(gw, "prefix_router.routed"), 11);
});

test("a shared system prompt with distinct questions sticks to one endpoint", async () => {
  const gw = await gateway({ endpoints: 4 });
  // Longer than SYSTEM, so that the shared part spans several index entries.
  const system = text(1, 4200);
  const seen = new Set<string | undefined>();
  for (let i = 0; i < 40; i++) {
    seen.add(send(gw, chatBody([["system", system], ["user", `question number ${i}: ${text(100 + i, 80)}`]]), { complete: true }).destination);
  }
  assert.equal(seen.size, 1, `one endpoint for the shared prefix, got ${[...seen].join(", ")}`);
  // The system message ("system" 0x1F, 4,200 characters, 0x1E) fills 65 full
  // 64-character blocks = 4 whole index entries of 16 blocks (indexStride), 64
  // blocks, matched by every request after the first.
  const entries = wholeEntryBlocks(7 + system.length + 1) / DEFAULT_INDEX_STRIDE;
  assert.equal(entries, 4);
  assert.ok(stat(gw, "prefix_router.prefix_blocks_matched") >= 39 * entries * DEFAULT_INDEX_STRIDE);
});

test("64 unrelated prompts over 4 endpoints give every endpoint at least 8", async () => {
  const gw = await gateway({ endpoints: 4 });
  const counts = new Map<string, number>();
  for (let i = 0; i < 64; i++) {
    const d = send(gw, chatBody([["user", text(1000 + i, 500)]]), { complete: true }).destination!;
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  assert.equal(counts.size, 4);
  for (const [address, n] of counts) assert.ok(n >= 8, `${address} got ${n}`);
  assert.equal(stat(gw, "prefix_router.rendezvous_placements"), 64);
});

test("weighted score: a hot prefix moves once its endpoint's in-flight load passes the guard", async () => {
  // The guard decides here; under work scoring the estimate moves it first (next test).
  const gw = await gateway({ endpoints: 4, config: { scoring: "weights" } });
  const body = chatBody([["system", SYSTEM], ["user", "same question"]]);
  const open = [];
  const destinations: string[] = [];
  for (let i = 0; i < 30; i++) {
    const sent = send(gw, body); // stays in flight
    open.push(sent.stream);
    destinations.push(sent.destination!);
  }
  const home = destinations[0];
  // Bounded load: home keeps the prefix while in-flight + 1 <= max(1.25·mean, mean + 8).
  assert.ok(destinations.slice(0, 10).every((d) => d === home), destinations.join(" "));
  assert.ok(destinations.some((d) => d !== home), "the hot prefix spilled to another endpoint");
  assert.ok(stat(gw, "prefix_router.guard_diversions") > 0);
  assert.equal(stat(gw, `prefix_router.endpoint.${home}.picks`), destinations.filter((d) => d === home).length);
  // Releasing the streams brings the prefix home again.
  for (const s of open) s.complete();
  gw.clock.advance(200);
  assert.equal(send(gw, body, { complete: true }).destination, home);
});


test("work scoring: a hot prefix stays while its prefill saving outweighs the queue at home, then spreads", async () => {
  const gw = await gateway({ endpoints: 4 });
  const body = chatBody([["system", SYSTEM], ["user", "same question"]]);
  const first = send(gw, body, { complete: true }).destination!;
  // Requests held before their first token are prefill waiting at home: the
  // next ones stay while that wait costs less than their own prefill would
  // elsewhere (plus matchBandMs), and leave once it costs more.
  const destinations: string[] = [];
  const open = [];
  for (let i = 0; i < 40; i++) {
    const sent = send(gw, body);
    open.push(sent.stream);
    destinations.push(sent.destination!);
  }
  assert.equal(destinations[0], first, destinations.join(" "));
  assert.ok(destinations.some((d) => d !== first), `never left home: ${destinations.join(" ")}`);
  for (const s of open) s.complete();
  gw.clock.advance(200);
  assert.equal(send(gw, body, { complete: true }).destination, first, "home again once its queue is gone");
});
test("different models and adapters share nothing", async () => {
  const gw = await gateway({ endpoints: 8 });
  const messages: Array<[string, string]> = [["system", SYSTEM], ["user", "hello"]];
  const base = send(gw, chatBody(messages, "llama-3-8b"), { complete: true }).destination;
  const before = stat(gw, "prefix_router.prefix_blocks_matched");
  for (const model of ["adapter-sql", "adapter-chat", "mistral-7b"]) send(gw, chatBody(messages, model), { complete: true });
  assert.equal(stat(gw, "prefix_router.prefix_blocks_matched"), before, "no blocks matched across models");
  assert.equal(send(gw, chatBody(messages, "llama-3-8b"), { complete: true }).destination, base);
});

test("a prefix routed by one VM is matched on another", async () => {
  const gw = await gateway({ endpoints: 8, vms: 4 });
  const prompts = Array.from({ length: 12 }, (_, i) => text(500 + i, 4200));
  const first = prompts.map((p) => send(gw, chatBody([["user", p]]), { vm: 0, complete: true }).destination);
  const matchedBefore = stat(gw, "prefix_router.prefix_blocks_matched");
  for (let vm = 1; vm < 4; vm++) {
    prompts.forEach((p, i) => assert.equal(send(gw, chatBody([["user", p], ["user", "follow-up"]]), { vm, complete: true }).destination, first[i]));
  }
  // 3 VMs × 12 prompts, each matching its prompt's 65 full blocks ("user" 0x1F and
  // 4,200 characters), indexed as 4 entries of 16 (indexStride): 64 blocks.
  const matchedPerPrompt = wholeEntryBlocks(5 + 4200);
  assert.equal(matchedPerPrompt, 64);
  assert.ok(stat(gw, "prefix_router.prefix_blocks_matched") - matchedBefore >= 3 * 12 * matchedPerPrompt);
});

test("a prefix one VM placed a moment ago is matched on another before any tick", async () => {
  // Other VMs' index entries reach a VM's table on its tick, except those that
  // extend the match of the prompt it is deciding (pending_placements.ts): the
  // clock stands still here, so no tick runs between the two sends.
  const gw = await gateway({ endpoints: 8, vms: 4 });
  for (let i = 0; i < 12; i++) {
    const p = text(700 + i, 1500);
    const first = send(gw, chatBody([["user", p]]), { vm: 0, complete: true }).destination;
    const next = send(gw, chatBody([["user", p], ["user", `follow-up ${i}`]]), { vm: 1 + (i % 3), complete: true }).destination;
    assert.equal(next, first, `prompt ${i}`);
  }
  // Each follow-up's VM wrote VM 0's placement before deciding; the ticks then
  // wrote the rest, so each VM took in every other VM's 24 - its own decisions once.
  const atOnce = stat(gw, "prefix_router.index.placements_written_at_once");
  assert.ok(atOnce >= 12, `${atOnce} written at once`);
  assert.equal(atOnce + stat(gw, "prefix_router.index.placements_written_by_tick"), 4 * 24 - 24);
});

test("a client's destination header is replaced, and removed from any request", async () => {
  const gw = await gateway({ endpoints: 2 });
  const routed = send(gw, chatBody([["user", "hi"]]), { headers: { [DEST]: "169.254.169.254:80" }, complete: true });
  assert.ok(addresses(2).includes(routed.destination!));
  assert.equal(routed.stream.requestHeaders.filter(([k]) => k === DEST).length, 1);
  const other = gw.plugin.newStream();
  other.sendRequestHeaders({ ":method": "GET", ":path": "/v1/models", ":authority": "gw", [DEST]: "10.0.0.1:8000" }, true);
  assert.equal(header(other.requestHeaders, DEST), undefined);
  assert.equal(stat(gw, "prefix_router.passthrough.not_inference"), 1);
});

test("bodies in many chunks route like one chunk", async () => {
  const gw = await gateway({ endpoints: 4 });
  const body = chatBody([["system", SYSTEM], ["user", "chunked"]]);
  const whole = send(gw, body, { complete: true }).destination;
  for (const chunks of [2, 7, 64, body.length]) {
    const sent = send(gw, body, { chunks, complete: true });
    assert.equal(sent.destination, whole, `${chunks} chunks`);
    assert.equal(Buffer.from(sent.stream.upstreamRequest!.body).toString(), body, "body unchanged");
  }
});

test("the destination header lists the pick, then fallbackHosts other endpoints, as override_host reads a list", async () => {
  const gw = await gateway({ endpoints: 4 });
  for (let i = 0; i < 20; i++) {
    const sent = send(gw, chatBody([["user", text(500 + i, 300)]]), { complete: true });
    const raw = header(sent.stream.requestHeaders, DEST)!;
    assert.match(raw, /^[^,\s]+,[^,\s]+,[^,\s]+$/, "three entries, comma-separated, no spaces");
    const list = [sent.destination!, ...sent.fallbacks];
    assert.equal(new Set(list).size, 3, `an endpoint listed twice: ${raw}`);
    for (const d of list) assert.ok(addresses(4).includes(d), `${d} is not configured`);
  }
  // Only the pick counts as sent: the fallbacks are used by Envoy only on a retry.
  assert.equal(stat(gw, "prefix_router.routed"), 20);
  const picks = addresses(4).map((a) => stat(gw, `prefix_router.endpoint.${a}.picks`));
  assert.equal(picks.reduce((x, y) => x + y, 0), 20);
});

test("fallbackHosts 0 sets one address; a list never names more endpoints than there are", async () => {
  const none = await gateway({ endpoints: 4, config: { fallbackHosts: 0 } });
  const sent = send(none, chatBody([["user", "hello"]]), { complete: true });
  assert.equal(header(sent.stream.requestHeaders, DEST), sent.destination);
  assert.deepEqual(sent.fallbacks, []);
  const two = await gateway({ endpoints: 2, config: { fallbackHosts: 3 } });
  const both = send(two, chatBody([["user", "hello"]]), { complete: true });
  assert.deepEqual([both.destination, ...both.fallbacks].sort(), addresses(2));
});

test("a new prefix's first fallback is where it goes once its home is busy", async () => {
  // The list is the scorer's own order. A new prefix is placed by rendezvous
  // weight, and its fallbacks are the next weights; with the home endpoint
  // loaded past the guard (load factor 1, no slack), the same prompt is placed
  // among the others by the same weights: on the first fallback.
  const gw = await gateway({ endpoints: 4, config: { guard: { loadFactor: 1, slack: 0 } } });
  for (let i = 0; i < 8; i++) {
    const body = chatBody([["system", text(900 + i, 400)], ["user", "which one next?"]]);
    const first = send(gw, body, { complete: true });
    const held = send(gw, body);
    assert.equal(held.destination, first.destination, "idle: the prefix stays home");
    const moved = send(gw, body, { complete: true });
    assert.equal(moved.destination, first.fallbacks[0], `prompt ${i}: home busy, the request went elsewhere than its first fallback`);
    held.stream.complete();
  }
});
