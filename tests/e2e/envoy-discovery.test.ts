// Endpoint discovery in real Envoy 1.40: the model cluster reads its hosts
// from a file through filesystem EDS (the generator's --eds), and the filter
// learns them from Envoy's admin API through the admin guard, at the default
// poll interval of 1 s. Simulated model servers (scripts/sim) answer with
// x-served-by, so where each request went is read from the reply: a host the
// filter names is the host that serves (override_host), and one it must not
// name would show up there.
//
// Scenarios, each on its own Envoy: 2 endpoints replaced by 3 that share one,
// under continuous traffic (no request fails, the removed endpoint gets
// nothing once the change is seen, new prefixes reach the new endpoints and
// stick); EDS health changes (draining, unhealthy and degraded hosts); growth
// from 1 to 64 endpoints; and churn, with Envoy's memory alongside.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import type { TestContext } from "node:test";
import { startServers, type SimServer } from "../../scripts/sim/server.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import type { EdsHost } from "../../scripts/gateway/eds-file.ts";
import { envoyTest, startEnvoyGateway, type EnvoyGateway } from "./real-envoy.ts";
import { http, text } from "./scenarios.ts";
import { stat, waitFor } from "./live-traffic.ts";

const MODEL = DEFAULT_SIM_PARAMS.model;
/** The bound: the filter follows a change within about 2 s of Envoy knowing it. */
const FOLLOW_MS = 2_500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sent {
  status: number;
  servedBy: string;
  /** When the reply came, ms since the epoch. */
  at: number;
}

async function ask(gw: EnvoyGateway, system: string): Promise<Sent> {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: "system", content: system }, { role: "user", content: "go" }], max_tokens: 2 });
  try {
    const r = await http(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    return { status: r.status, servedBy: r.servedBy, at: Date.now() };
  } catch {
    return { status: 0, servedBy: "", at: Date.now() };
  }
}

const prompt = (tag: string, i: number) => `${tag} ${i}. ${text(tag.length * 1000 + i, 1200)}`;

/** Sends requests with fresh prompts one after another until stopped. */
function traffic(gw: EnvoyGateway, tag: string): { sent: Sent[]; stop: () => Promise<Sent[]> } {
  const sent: Sent[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      sent.push(await ask(gw, prompt(tag, i)));
      await sleep(10);
    }
  })();
  return { sent, stop: async () => { stopped = true; await loop; return sent; } };
}

const filterStat = (gw: EnvoyGateway, name: string) => stat(gw.adminUrl, `wasmcustom.prefix_router.${name}`);

/** Waits until the filter's gauges show `members` members and `pickable` pickable; returns how long that took. */
async function followed(gw: EnvoyGateway, members: number, pickable: number, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  await waitFor(`${members} members, ${pickable} pickable`, timeoutMs, async () =>
    (await filterStat(gw, "endpoints.members")) === members && (await filterStat(gw, "endpoints.pickable")) === pickable);
  const tookMs = Date.now() - started;
  // The gauges are shared, last writer wins: one VM has applied the record. Every
  // other VM reads the same record on its next tick (100 ms); wait for those too.
  await sleep(250);
  return tookMs;
}

/** Rewrites the EDS file and waits for two polls after it (one may have started before the write): the filter has seen it. */
async function rewrite(gw: EnvoyGateway, hosts: EdsHost[]): Promise<void> {
  await gw.writeEds(hosts);
  const polls = await filterStat(gw, "discovery.polls");
  await waitFor("two polls after the EDS change", 10_000, async () => (await filterStat(gw, "discovery.polls")) >= polls + 2);
}

async function withServers(count: number, fn: (servers: SimServer[]) => Promise<void>): Promise<void> {
  const servers = await startServers({ count, portBase: 0, host: "127.0.0.1", speedup: 50 });
  try {
    await fn(servers);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

envoyTest("2 endpoints replaced by 3 sharing one, under traffic: none fails, the removed one is left, new prefixes stick", { timeout: 120_000 }, async (t: TestContext) => {
  await withServers(4, async (servers) => {
    const [a, b, c, d] = servers.map((s) => s.address);
    const gw = await startEnvoyGateway({ eds: [{ address: a }, { address: b }], metrics: false }, { concurrency: 2 });
    t.after(() => gw.stop());
    await followed(gw, 2, 2);
    // Prefixes placed on the first two, and sticking there.
    const homes = new Map<string, string>();
    for (let i = 0; i < 16; i++) {
      const p = prompt("before", i);
      const r = await ask(gw, p);
      assert.equal(r.status, 200);
      homes.set(p, r.servedBy);
    }
    assert.deepEqual([...new Set(homes.values())].sort(), [a, b].sort(), "both endpoints take new prefixes");
    for (const [p, home] of homes) assert.equal((await ask(gw, p)).servedBy, home, "a prefix sticks to its endpoint");

    const load = traffic(gw, "during");
    await sleep(500);
    const changedAt = Date.now();
    await gw.writeEds([{ address: b }, { address: c }, { address: d }]);
    const tookMs = await followed(gw, 3, 3);
    assert.ok(tookMs <= FOLLOW_MS, `the filter followed the new membership after ${tookMs} ms`);
    await sleep(1000);
    const during = await load.stop();
    assert.ok(during.length > 20, `only ${during.length} requests during the change`);
    assert.deepEqual(during.filter((s) => s.status !== 200), [], "a request failed while the membership changed");
    const settled = changedAt + tookMs + 100;
    const late = during.filter((s) => s.at > settled);
    assert.ok(late.length > 5);
    assert.deepEqual(late.filter((s) => s.servedBy === a), [], "the removed endpoint still got traffic after the filter saw the change");

    // The shared endpoint keeps its prefixes; new prefixes reach all three and stick.
    for (const [p, home] of homes) if (home === b) assert.equal((await ask(gw, p)).servedBy, b, "b kept the prefixes it held");
    const fresh = new Map<string, string>();
    for (let i = 0; i < 24; i++) {
      const p = prompt("after", i);
      const r = await ask(gw, p);
      assert.equal(r.status, 200);
      fresh.set(p, r.servedBy);
    }
    assert.deepEqual([...new Set(fresh.values())].sort(), [b, c, d].sort(), "new prefixes reach every new member");
    for (const [p, home] of fresh) assert.equal((await ask(gw, p)).servedBy, home, "a new prefix sticks");
    assert.equal(await filterStat(gw, "discovery.endpoints_removed"), 1);
    assert.equal(await filterStat(gw, "discovery.endpoints_added"), 4);
    assert.equal(await filterStat(gw, `endpoint.${a}.index_blocks`), 0, "the removed endpoint's index entries are gone");
  });
});

envoyTest("EDS health: draining and unhealthy hosts are never picked, degraded ones only when nothing is healthy", { timeout: 120_000 }, async (t: TestContext) => {
  await withServers(4, async (servers) => {
    const [a, b, c, d] = servers.map((s) => s.address);
    const gw = await startEnvoyGateway({ eds: servers.map((s) => ({ address: s.address })), metrics: false }, { concurrency: 2 });
    t.after(() => gw.stop());
    await followed(gw, 4, 4);
    // Fresh prompts go where their first block's rendezvous weight is highest (the
    // loads are equal between sequential requests), and the ports change every run:
    // 48 of them miss one of 4 hosts about once in 10^5 runs (4 × (3/4)^48); 24 did
    // once in 250.
    const spread = async (tag: string, n: number) => {
      const where = new Set<string>();
      for (let i = 0; i < n; i++) {
        const r = await ask(gw, prompt(tag, i));
        assert.equal(r.status, 200);
        where.add(r.servedBy);
      }
      return [...where].sort();
    };
    assert.deepEqual(await spread("all", 48), [a, b, c, d].sort());

    const hosts: EdsHost[] = [{ address: a }, { address: b, health: "DRAINING" }, { address: c, health: "UNHEALTHY" }, { address: d, health: "DEGRADED" }];
    await rewrite(gw, hosts);
    await followed(gw, 4, 1);
    assert.deepEqual(await spread("one-healthy", 16), [a], "only the healthy host is picked");

    await rewrite(gw, [{ address: a, health: "TIMEOUT" }, hosts[1], hosts[2], hosts[3]]);
    await followed(gw, 4, 1);
    assert.deepEqual(await spread("degraded-left", 12), [d], "with nothing healthy, the degraded host");

    // Nothing healthy or degraded: the filter names no one, and Envoy balances on its own (panic mode).
    const passedBefore = await filterStat(gw, "passthrough.no_endpoint");
    await rewrite(gw, servers.map((s) => ({ address: s.address, health: "UNHEALTHY" as const })));
    await followed(gw, 4, 0);
    await spread("none-left", 8);
    await waitFor("8 requests passed through", 5_000, async () => (await filterStat(gw, "passthrough.no_endpoint")) === passedBefore + 8);

    await gw.writeEds(servers.map((s) => ({ address: s.address })));
    await followed(gw, 4, 4);
    assert.deepEqual(await spread("healthy-again", 48), [a, b, c, d].sort());
  });
});

envoyTest("growth from 1 to 64 endpoints, then churn: every member used, memory flat, nothing fails", { timeout: 240_000 }, async (t: TestContext) => {
  await withServers(64, async (servers) => {
    const all = servers.map((s) => s.address);
    const gw = await startEnvoyGateway({ eds: [{ address: all[0] }], metrics: false }, { concurrency: 2 });
    t.after(() => gw.stop());
    await followed(gw, 1, 1);
    assert.deepEqual([...new Set((await Promise.all([0, 1, 2].map((i) => ask(gw, prompt("one", i))))).map((r) => r.servedBy))], [all[0]]);
    for (const n of [2, 4, 8, 16, 32, 64]) {
      await gw.writeEds(all.slice(0, n).map((address) => ({ address })));
      const tookMs = await followed(gw, n, n);
      assert.ok(tookMs <= FOLLOW_MS, `${n} members followed after ${tookMs} ms`);
    }
    const used = new Set<string>();
    for (let i = 0; i < 256; i++) {
      const r = await ask(gw, prompt("sixty-four", i));
      assert.equal(r.status, 200);
      used.add(r.servedBy);
    }
    // Cold prefixes are placed by rendezvous hashing over idle endpoints: 256 of them miss
    // any given one of 64 with probability (63/64)^256 ≈ 1.8%.
    assert.ok(used.size >= 56, `only ${used.size} of 64 endpoints took new prefixes`);

    // Churn: 40 changes, 300 ms apart (faster than the 1 s poll: the filter sees some, skips others),
    // each a different subset of 8 to 64 members, with traffic throughout.
    const rss = async () => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${gw.envoy.child.pid}/status`, "utf8"))![1]);
    const load = traffic(gw, "churn");
    const rssBefore = await rss();
    let last: string[] = [];
    for (let change = 0; change < 40; change++) {
      const n = 8 + ((change * 13) % 57);
      last = Array.from({ length: n }, (_, i) => all[(change * 7 + i * 5) % 64]);
      last = [...new Set(last)];
      await gw.writeEds(last.map((address) => ({ address })));
      await sleep(300);
    }
    await followed(gw, last.length, last.length);
    const settledAt = Date.now();
    await sleep(1500);
    const outcomes = await load.stop();
    assert.deepEqual(outcomes.filter((s) => s.status !== 200), [], "a request failed during churn");
    const after = outcomes.filter((s) => s.at > settledAt);
    assert.ok(after.length > 5);
    assert.deepEqual(after.filter((s) => !last.includes(s.servedBy)), [], "a request went to an endpoint outside the final membership");
    const rssAfter = await rss();
    t.diagnostic(`Envoy RSS ${rssBefore} KiB before the churn, ${rssAfter} KiB after; ${outcomes.length} requests during it`);
    // Envoy's resident memory: the filter's index and stats for 64 known addresses are allocated by now.
    assert.ok(rssAfter - rssBefore < 64 * 1024, `Envoy's RSS grew ${rssAfter - rssBefore} KiB over 40 changes`);
  });
});
