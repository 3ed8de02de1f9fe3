// Asks the built filter itself whether it accepts a generated configuration:
// the host emulator loads the .wasm and runs Envoy's canary (on_vm_start, then
// on_configure with the exact configuration text), as Envoy does before it
// accepts a filter config. Catches what the generator cannot know (a misspelt
// field in `filter`, a weight out of range) before Envoy would refuse to start.
// Owns: that one check. Must not: start timers or talk to the network.
import { ConfigRejectedError, Envoy, VirtualClock } from "../host/index.ts";
import { NAMES, filterConfigurationText, type GatewayConfig } from "./envoy-config.ts";

/** null when the filter accepts the configuration, else the reason and the filter's error lines. */
export async function checkFilterConfiguration(wasm: string | Uint8Array, c: GatewayConfig): Promise<string | null> {
  // A virtual clock: nothing ticks, no scrape is ever sent.
  const envoy = new Envoy({
    clock: new VirtualClock(),
    logLevel: "error",
    clusters: { [NAMES.metricsCluster]: { type: "original_dst" } },
  });
  try {
    await envoy.addHttpFilter({
      name: NAMES.plugin,
      rootId: NAMES.rootId,
      vmId: NAMES.vmId,
      wasm,
      configuration: filterConfigurationText(c),
      concurrency: 1,
      allowOnHeadersStopIteration: c.holdsHeaders,
      failurePolicy: "FAIL_OPEN",
      // peers.tokenEnv: the secret is in Envoy's environment where it runs, not here; a stand-in of
      // the accepted form lets the check cover everything else.
      ...(c.peers?.tokenEnv != null ? { environment: { [c.peers.tokenEnv]: "stand-in-token-for-the-check" } } : {}),
    });
    return null;
  } catch (e) {
    if (e instanceof ConfigRejectedError) return e.message;
    throw e;
  } finally {
    envoy.shutdown();
  }
}
