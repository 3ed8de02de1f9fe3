// Sticky routes in real Envoy 1.40: a Responses follow-up naming its
// previous_response_id reaches the endpoint that answered the first turn,
// whether that answer was JSON or a stream (the filter reads the id from the
// response without holding it), and a session header keeps a session on one
// endpoint. The upstreams are small loopback servers that answer
// /v1/responses with a fresh id, as vLLM does, and name themselves in
// x-served-by.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestContext } from "node:test";
import { envoyTest, startEnvoyGateway } from "./real-envoy.ts";
import { http, text } from "./scenarios.ts";
import { stat, waitFor } from "./live-traffic.ts";

interface Upstream {
  address: string;
  server: Server;
}

let ids = 0;

/** Answers every POST: /v1/responses with a new response id (JSON, or SSE when the body asks to stream), anything else with a chat completion. */
async function startUpstream(): Promise<Upstream> {
  let address = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.setHeader("x-served-by", address);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as { stream?: boolean };
      if (req.url !== "/v1/responses") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: "chatcmpl-1", object: "chat.completion", choices: [] }));
        return;
      }
      const id = `resp_${(++ids).toString(16).padStart(8, "0")}${address.replace(/\W/g, "")}`;
      if (!body.stream) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id, object: "response", status: "completed", output: [] }));
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`event: response.created\ndata: ${JSON.stringify({ type: "response.created", sequence_number: 0, response: { id, object: "response", status: "in_progress" } })}\n\n`);
      setTimeout(() => {
        res.write(`event: response.completed\ndata: ${JSON.stringify({ type: "response.completed", sequence_number: 1, response: { id, status: "completed" } })}\n\n`);
        res.end();
      }, 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { address, server };
}

/** The response id in a JSON answer or in a stream's response.created event. */
function idOf(body: string): string {
  const m = /"id":"(resp_[^"]+)"/.exec(body);
  assert.ok(m, `no response id in ${body.slice(0, 200)}`);
  return m[1];
}

envoyTest("previous_response_id and sessions keep conversations on their endpoint", { timeout: 120_000 }, async (t: TestContext) => {
  const ups = await Promise.all([0, 1, 2, 3].map(() => startUpstream()));
  t.after(() => Promise.all(ups.map((u) => new Promise((r) => { u.server.closeAllConnections(); u.server.close(r); }))));
  const gw = await startEnvoyGateway({ endpoints: ups.map((u) => u.address), metrics: false, filter: { sessionHeader: "x-session-id" } }, { concurrency: 2 });
  t.after(() => gw.stop());
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    http(`${gw.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const filterStat = (name: string) => stat(gw.adminUrl, `wasmcustom.prefix_router.${name}`);

  for (const stream of [false, true]) {
    const firstTurns = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const first = await post("/v1/responses", { model: "llama", input: text(i + (stream ? 100 : 0), 800), stream });
      assert.equal(first.status, 200);
      firstTurns.add(first.servedBy);
      const id = idOf(first.body);
      // The follow-up carries only the new turn: nothing in it matches the first.
      const next = await post("/v1/responses", { model: "llama", previous_response_id: id, input: `and then? ${i} ${text(5000 + i, 200)}`, stream });
      assert.equal(next.status, 200);
      assert.equal(next.servedBy, first.servedBy, `${stream ? "streamed" : "JSON"} turn ${i}: the follow-up went to ${next.servedBy}, not ${first.servedBy}`);
    }
    assert.ok(firstTurns.size >= 2, `all first turns on ${[...firstTurns].join(",")}`);
  }
  // Each worker hands Envoy its counters on its tick, and the last answer's id is learned after
  // its request's hit was counted: wait for both (reading the second after the first lost the
  // last one once in CI).
  let learned = 0;
  await waitFor("the hits counted and every answer's id learned", 5_000, async () => {
    learned = await filterStat("affinity.responses_learned");
    return (await filterStat("affinity.response_hits")) === 16 && learned >= 32;
  }).catch(() => undefined); // the assertions below say what is missing
  assert.equal(await filterStat("affinity.response_hits"), 16);
  assert.equal(learned, 32);

  const sessions = new Set<string>();
  for (let s = 0; s < 6; s++) {
    const where = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await post("/v1/chat/completions", { model: "llama", messages: [{ role: "user", content: text(s * 31 + i * 7 + 9000, 500) }] }, { "x-session-id": `s-${s}` });
      assert.equal(r.status, 200);
      where.add(r.servedBy);
    }
    assert.equal(where.size, 1, `session ${s} spread over ${[...where].join(",")}`);
    sessions.add([...where][0]);
  }
  assert.ok(sessions.size >= 2);
  await waitFor("the session hits counted", 5_000, async () => (await filterStat("affinity.session_hits")) === 18);
});
