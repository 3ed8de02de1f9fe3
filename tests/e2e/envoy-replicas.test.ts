// Two real Envoys in front of the same four simulated vLLM servers, sharing
// nothing, each with two workers and `replicas` left on "auto": with clients
// split evenly between them, each Envoy's servers report about twice what it
// has in flight itself, and each judges itself one of two replicas (gauge
// visible_share_permille near 500, README "Several Envoy replicas"). The
// emulator tests feed the same judgement pages that merely claim outside
// load; here the other load is real requests through another real Envoy.
// The servers run at real speed (a request of 40 tokens takes about 230 ms):
// sped up 20 times, the shares read 540-710‰, since the time a request spends
// in Envoy and on the wire, in flight but not at a server, is then a large
// part of it. That errs towards one gateway's bands; at real speed the shares
// read 503-526‰.
// Skipped without Envoy on a developer's machine; under CI it fails instead.
import assert from "node:assert/strict";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { startServers } from "../../scripts/sim/server.ts";
import { envoyTest, startEnvoyGateway, type EnvoyGateway } from "./real-envoy.ts";
import { chatLoad, visibleShare } from "./scenarios.ts";

envoyTest("two Envoy replicas in front of the same servers each judge themselves one of two", { timeout: 120_000 }, async () => {
  const servers = await startServers({ count: 4, portBase: 0, host: "127.0.0.1", speedup: 1 });
  const gateways: EnvoyGateway[] = [];
  try {
    for (let i = 0; i < 2; i++) gateways.push(await startEnvoyGateway({ endpoints: servers.map((s) => s.address) }, { concurrency: 2 }));
    const targets = gateways.map((g) => ({ adminUrl: g.adminUrl, endpoints: g.config.endpoints.map((e) => e.address) }));
    let mostReported = 0;
    let shares: (number | null)[] = [];
    const served = await chatLoad(gateways.map((g) => g.url), DEFAULT_SIM_PARAMS.model, 5, 16, 5000, async () => {
      const seen = await Promise.all(targets.map(visibleShare));
      mostReported = Math.max(mostReported, ...seen.map((v) => v.reported));
      shares = seen.map((v) => v.share);
    });
    assert.ok(mostReported >= 8, `the servers' pages never reported 8 requests running or waiting (at most ${mostReported}; ${served} served)`);
    for (const [i, share] of shares.entries()) {
      assert.ok(share !== null && share >= 300 && share <= 700, `Envoy ${i}: visible share ${share}‰, which is not one of two replicas (round(1000 / share) must be 2)`);
    }
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all(servers.map((s) => s.stop()));
  }
});
