// IPv6 endpoints in real Envoy, written the long way by hand. override_host
// looks the destination header's text up in the cluster's host map, keyed by
// Envoy's own text for each address: "[" + inet_ntop + "]:port"
// (source/common/network/address_impl.cc Ipv6Instance; override_host
// load_balancer.cc findHost). A filter that echoed "[0:0:0:0:0:0:0:1]:port"
// back would match no host, and every request would silently fall to round
// robin. The filter canonicalizes what it is given (assembly/router/address.ts),
// so here both the filter's endpoint list and the cluster's socket addresses
// use the long form, as an operator writing a config by hand might, and each
// routed request must land where the filter chose.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { startServers } from "../../scripts/sim/server.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { envoyTest, startEnvoyGateway } from "./real-envoy.ts";
import { http, text } from "./scenarios.ts";
import { stats, waitFor } from "./live-traffic.ts";

const LONG = "0:0:0:0:0:0:0:1";

envoyTest("IPv6 endpoints written in long form: the filter names them as Envoy does, and override_host obeys", { timeout: 90_000 }, async (t: TestContext) => {
  const servers = await startServers({ count: 3, portBase: 0, host: "::1", speedup: 50 });
  try {
    const canonical = servers.map((s) => s.address);
    assert.ok(canonical.every((a) => a.startsWith("[::1]:")), canonical.join(","));
    const long = canonical.map((a) => a.replace("[::1]", `[${LONG}]`));
    const gw = await startEnvoyGateway({ endpoints: canonical, metrics: { intervalMs: 200, timeoutMs: 500 } }, {
      concurrency: 2,
      fileFlushIntervalMs: 50,
      // The generator writes canonical text; rewrite both sides the long way.
      edit: (yaml) => {
        const out = yaml.replaceAll("[::1]:", `[${LONG}]:`).replaceAll('address: "::1"', `address: "${LONG}"`);
        assert.ok(!out.includes("::1"), "some ::1 left in the bootstrap");
        return out;
      },
    });
    try {
      // The metrics cluster reaches the servers at the same addresses: every one scraped healthy.
      await waitFor("every endpoint scraped", 10_000, async () => {
        const s = await stats(gw.adminUrl);
        return canonical.every((a) => s.get(`wasmcustom.prefix_router.endpoint.${a}.healthy`) === 1);
      });
      const model = DEFAULT_SIM_PARAMS.model;
      const homes = new Map<number, Set<string>>();
      const probes: string[] = [];
      for (let p = 0; p < 6; p++) {
        homes.set(p, new Set());
        const system = `IPv6 ${p}. ${text(600 + p, 1500)}`;
        for (let i = 0; i < 4; i++) {
          const id = `v6-${p}-${i}`;
          probes.push(id);
          const body = JSON.stringify({ model, messages: [{ role: "system", content: system }, { role: "user", content: `q${i}` }], max_tokens: 2 });
          const r = await http(`${gw.url}/v1/chat/completions?probe=${id}`, { method: "POST", headers: { "content-type": "application/json" }, body });
          assert.equal(r.status, 200, r.body);
          homes.get(p)!.add(r.servedBy);
        }
      }
      for (const [p, h] of homes) assert.equal(h.size, 1, `prefix ${p} served by ${[...h].join(", ")}`);
      assert.ok(new Set([...homes.values()].map((h) => [...h][0])).size >= 2, "six prefixes all on one server");
      // The header the filter set is the canonical text, and it is the host Envoy used.
      for (const id of probes) {
        let line = "";
        await waitFor(`the access log line of ${id}`, 5_000, () => (line = gw.output.find((l) => l.includes(`?probe=${id} `)) ?? "") !== "");
        const m = /chosen=(\S+) upstream=(\S+)/.exec(line);
        assert.ok(m, line);
        const [first] = m[1].split(",");
        assert.ok(canonical.includes(first), `the filter named ${first}, not Envoy's text for it`);
        assert.equal(m[2], first, `chosen ${first} but Envoy used ${m[2]}: override_host did not find it`);
      }
      t.diagnostic(`endpoints configured as [${LONG}]:port; 24 requests over 6 prefixes each stayed on one server, every one on the host the filter named`);
    } finally {
      await gw.stop();
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});
