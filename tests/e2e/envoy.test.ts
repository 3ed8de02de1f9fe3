// The end-to-end scenarios against real Envoy: the generated bootstrap (both
// variants the generator writes for the pinned release) with the built .wasm,
// in front of four simulated vLLM servers, everything on loopback and on ports
// the OS picks. Two workers, so two VMs share the index. Skipped without
// Envoy on a developer's machine; under CI it fails instead (real-envoy.ts).
// The same scenarios run against the dev gateway in dev-gateway.test.ts.
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { startServers } from "../../scripts/sim/server.ts";
import type { Variant } from "../../scripts/gateway/envoy-config.ts";
import { envoyTest, startEnvoyGateway } from "./real-envoy.ts";
import { runScenarios } from "./scenarios.ts";

envoyTest("end-to-end through real Envoy", { timeout: 300_000 }, async (t) => {
  const servers = await startServers({ count: 4, portBase: 0, host: "127.0.0.1", speedup: 20 });
  try {
    const variants: Variant[] = ["override_host", "original_dst"];
    for (const [i, variant] of variants.entries()) {
      await t.test(variant, async (t2) => {
        const gw = await startEnvoyGateway({ endpoints: servers.map((s) => s.address), variant }, { concurrency: 2 });
        try {
          await runScenarios(t2, {
            url: gw.url,
            adminUrl: gw.adminUrl,
            endpoints: gw.config.endpoints.map((e) => e.address),
            model: DEFAULT_SIM_PARAMS.model,
            destinationHeader: gw.config.destinationHeader,
            // Fresh prompts per variant: the servers' caches outlive each Envoy.
            seed: 101 + i,
          });
        } finally {
          await gw.stop();
        }
      });
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});
