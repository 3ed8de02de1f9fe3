// Sticky routes in the host emulator (affinity.ts): a Responses follow-up
// that names its previous response goes where that response came from, read
// from the answer's JSON or from its stream's response.created event; a
// session header keeps a session on one endpoint; both are shared by all VMs
// and yield to the guard. Real Envoy runs the same in tests/e2e/envoy-affinity.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gateway, send, text, type Gateway } from "./harness.ts";

function stat(gw: Gateway, name: string): number {
  gw.clock.advance(100);
  return Number(gw.envoy.stats.get(`wasmcustom.prefix_router.${name}`) ?? 0);
}

function responsesBody(input: string, previous?: string): string {
  return JSON.stringify({ model: "llama", input, ...(previous ? { previous_response_id: previous } : {}) });
}

/** A Responses request answered with `answer` (JSON, or an SSE stream); returns where it went. */
function answered(gw: Gateway, body: string, answer: string, opts: { vm?: number; contentType?: string } = {}): string {
  const sent = send(gw, body, { path: "/v1/responses", vm: opts.vm });
  assert.ok(sent.destination, "the request was not routed");
  sent.stream.sendResponseHeaders({ ":status": "200", "content-type": opts.contentType ?? "application/json" }, false);
  // In two chunks, as a server flushes them.
  sent.stream.sendResponseBody(answer.slice(0, 40), false);
  sent.stream.sendResponseBody(answer.slice(40), true);
  sent.stream.complete();
  return sent.destination;
}

const json = (id: string) => JSON.stringify({ id, object: "response", output: [{ id: "msg_1", type: "message", content: [{ type: "output_text", text: "hi" }] }] });
const sse = (id: string) =>
  `event: response.created\ndata: ${JSON.stringify({ type: "response.created", sequence_number: 0, response: { id, object: "response", status: "in_progress" } })}\n\n` +
  `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"msg_9","delta":"h"}\n\n`;

test("a follow-up naming its previous response goes where that response came from, on any VM", async () => {
  const gw = await gateway({ endpoints: 8, vms: 2 });
  for (const [kind, answer] of [["json", json], ["stream", sse]] as const) {
    for (let i = 0; i < 6; i++) {
      const id = `resp_${kind}_${i}`;
      const home = answered(gw, responsesBody(text(i + (kind === "json" ? 0 : 50), 600)), answer(id), { contentType: kind === "json" ? "application/json" : "text/event-stream" });
      gw.clock.advance(100); // the other VM takes the mapping in on its tick
      // The follow-up shares no text with the first turn: only the id can bring it home.
      const followUp = send(gw, responsesBody(`turn two ${i} ${text(900 + i, 300)}`, id), { path: "/v1/responses", vm: 1, complete: true });
      assert.equal(followUp.destination, home, `${kind} ${i}: the follow-up went elsewhere`);
    }
  }
  assert.equal(stat(gw, "affinity.responses_learned"), 12);
  assert.equal(stat(gw, "affinity.response_hits"), 12);
  // An id nobody answered with: scored as usual, counted.
  send(gw, responsesBody("x", "resp_unknown"), { path: "/v1/responses", complete: true });
  assert.equal(stat(gw, "affinity.response_misses"), 1);
});

test("a session stays on one endpoint across prompts and VMs, and yields to the guard", async () => {
  const gw = await gateway({ endpoints: 6, vms: 2, config: { sessionHeader: "X-Session-Id", guard: { loadFactor: 1.5, slack: 2 } } });
  const homes = new Set<string>();
  for (let s = 0; s < 8; s++) {
    const where = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = send(gw, JSON.stringify({ model: "llama", messages: [{ role: "user", content: text(s * 100 + i, 400) }] }),
        { headers: { "x-session-id": `session-${s}` }, vm: i % 2, complete: true });
      where.add(r.destination!);
      gw.clock.advance(100);
    }
    assert.equal(where.size, 1, `session ${s} went to ${[...where].join(", ")}`);
    homes.add([...where][0]);
  }
  assert.ok(homes.size >= 3, `8 sessions all on ${[...homes].join(",")}`);
  assert.equal(stat(gw, "affinity.session_hits"), 8 * 4);

  // Hold many requests of one session open: the guard moves the session, which then follows its new home.
  const open = [];
  let moved = "";
  for (let i = 0; i < 12; i++) {
    const r = send(gw, JSON.stringify({ model: "llama", messages: [{ role: "user", content: text(7000 + i, 400) }] }), { headers: { "x-session-id": "busy" } });
    open.push(r);
    if (r.destination !== open[0].destination) {
      moved = r.destination!;
      break;
    }
  }
  assert.ok(moved !== "", "the guard never moved the busy session");
  assert.ok(stat(gw, "affinity.session_diverted") >= 1);
  for (const r of open) r.stream.complete();
  const after = send(gw, JSON.stringify({ model: "llama", messages: [{ role: "user", content: "next" }] }), { headers: { "x-session-id": "busy" }, complete: true });
  assert.equal(after.destination, moved, "the session did not follow its new home");
});

test("the affinity map keeps the last affinityEntries mappings, the oldest out first", async () => {
  const gw = await gateway({ endpoints: 8, config: { affinityEntries: 16 } });
  const homes: string[] = [];
  for (let i = 0; i < 40; i++) homes.push(answered(gw, responsesBody(text(300 + i, 600)), json(`resp_bound_${i}`)));
  const followed = (i: number) => {
    const before = stat(gw, "affinity.response_hits");
    send(gw, responsesBody(`again ${i}`, `resp_bound_${i}`), { path: "/v1/responses", complete: true });
    return stat(gw, "affinity.response_hits") > before;
  };
  // The newest 16 are known; the oldest fell out.
  for (let i = 39; i > 39 - 10; i--) assert.ok(followed(i), `recent id ${i} forgotten`);
  for (let i = 0; i < 10; i++) assert.ok(!followed(i), `old id ${i} still known`);
});
