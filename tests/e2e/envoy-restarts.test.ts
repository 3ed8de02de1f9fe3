// A model server that restarts comes back with an empty prefix cache. In real
// Envoy the filter must notice from the server's own metrics page (its
// process_start_time_seconds moves; or, where a page has no start time, its
// prefix-cache counters go back) and drop the endpoint's index entries, so
// the prefixes it held are no longer predicted as hits there, and count it.
// The simulated servers (scripts/sim) print a vLLM page with the start time;
// the restart is a new server process on the same port.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { SimServer, startServers } from "../../scripts/sim/server.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { envoyTest, startEnvoyGateway } from "./real-envoy.ts";
import { http, text } from "./scenarios.ts";
import { stat, waitFor } from "./live-traffic.ts";

const MODEL = DEFAULT_SIM_PARAMS.model;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

envoyTest("a restarted server's index entries are dropped and counted", { timeout: 120_000 }, async (t: TestContext) => {
  const servers = await startServers({ count: 2, portBase: 0, host: "127.0.0.1", speedup: 50 });
  let replacement: SimServer | null = null;
  try {
    const gw = await startEnvoyGateway({ endpoints: servers.map((s) => s.address), metrics: { intervalMs: 100 } }, { concurrency: 2 });
    t.after(() => gw.stop());
    const filter = (name: string) => stat(gw.adminUrl, `wasmcustom.prefix_router.${name}`);
    const body = JSON.stringify({ model: MODEL, messages: [{ role: "system", content: text(31, 3000) }, { role: "user", content: "go" }], max_tokens: 2 });
    const ask = async () => {
      const r = await http(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      assert.equal(r.status, 200);
      return r.servedBy;
    };
    // Both servers scraped before the first request, so the start times are known.
    await waitFor("a scrape of each server", 10_000, async () =>
      (await Promise.all(servers.map((s) => filter(`endpoint.${s.address}.scrape_successes`)))).every((n) => n >= 2));
    const home = await ask();
    for (let i = 0; i < 3; i++) assert.equal(await ask(), home, "the prompt sticks to its home");
    await waitFor("the index entries of the home", 5_000, async () => (await filter(`endpoint.${home}.index_blocks`)) > 0);
    assert.equal(await filter("server_restarts"), 0);

    // The home restarts: a new process on the same port, with a new start time and fresh counters.
    const old = servers.find((s) => s.address === home)!;
    await old.stop();
    await sleep(50);
    replacement = new SimServer({ port: Number(home.split(":")[1]), host: "127.0.0.1", speedup: 50 });
    await replacement.start();
    await waitFor("the restart to be seen", 10_000, async () => (await filter("server_restarts")) === 1);
    assert.equal(await filter(`endpoint.${home}.server_restarts`), 1);
    await waitFor("the home's index entries to be dropped", 5_000, async () => (await filter(`endpoint.${home}.index_blocks`)) === 0);
    // The gauge is whichever VM wrote it last; each worker VM drops its own
    // copy of the entries on its next tick after the snapshot carrying the
    // new start time (tickMs 25, or 50 for a VM with nothing to do: half the
    // 100 ms metrics interval). Give every VM a few ticks.
    await sleep(200);
    // Nobody is predicted to hold the prompt now.
    const matched = await filter("prefix_blocks_matched");
    await ask();
    await waitFor("the request to be counted", 5_000, async () => (await filter("routed")) >= 5);
    assert.equal(await filter("prefix_blocks_matched"), matched, "a hit was predicted on a cache the restart emptied");
    // One restart, once: later scrapes of the same process count nothing more.
    await sleep(500);
    assert.equal(await filter("server_restarts"), 1);
  } finally {
    await Promise.all([...servers.map((s) => s.stop()), replacement?.stop()]);
  }
});
