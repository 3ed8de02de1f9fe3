// The Envoy release the configs in envoy/ are written for, and the version
// cut-overs that decide which config an Envoy can run, each with the source it
// was confirmed in. Owns: these constants and version parsing/comparison. Must
// not: do I/O (the launcher and the tests ask Envoy for its version).
//
// Why 1.40.0: it is the newest Envoy release whose changelog we could read
// (envoyproxy/envoy changelogs/1.40.0.yaml, "date: October 1, 2026"; no 1.40.x
// patch or 1.41.0 changelog exists in the sources we could search). It also
// fixes a filter-manager bug that dropped buffered body data after a Wasm
// filter with allow_on_headers_stop_iteration resumed
// (runtime guard envoy.reloadable_features.filter_manager_forward_added_data_on_continue).

/** The Envoy version `npm start` runs through func-e (ENVOY_VERSION) and the generated configs name. */
export const ENVOY_VERSION = "1.40.0";

/**
 * The override_host load-balancing policy ("Added Override Host Load Balancing
 * policy") and PluginConfig.allow_on_headers_stop_iteration ("Added support for
 * returning StopIteration from plugin onRequestHeader ...") both arrived in
 * Envoy 1.35.0, July 23, 2025 (changelogs/1.35.0.yaml; data-plane-api commits
 * 74f8ed7b and 471e4526). Before it, a Wasm filter cannot hold the request
 * headers while it reads the body, so prefix-router cannot route at all.
 */
export const OVERRIDE_HOST_SINCE = "1.35.0";
export const STOP_ITERATION_SINCE = "1.35.0";

/**
 * PluginConfig.failure_policy (FAIL_OPEN = 3) arrived with FAIL_RELOAD
 * (data-plane-api 1cfc0d5a, envoy #36456, October 2024: Envoy 1.33.0). Older
 * Envoy only knows the deprecated `fail_open: true`.
 */
export const FAILURE_POLICY_SINCE = "1.33.0";

/**
 * Cluster.OriginalDstLbConfig.http_header_name (so ORIGINAL_DST can read
 * x-gateway-destination-endpoint instead of x-envoy-original-dst-host):
 * data-plane-api 55b636e8 (envoy #20534), April 1, 2022: Envoy 1.22.0
 * (released April 15, 2022). The ORIGINAL_DST variant needs at least this.
 */
export const ORIGINAL_DST_HEADER_NAME_SINCE = "1.22.0";

const VERSION = /^(\d+)\.(\d+)\.(\d+)$/;

export function isVersion(v: string): boolean {
  return VERSION.test(v);
}

/** Negative when a < b, 0 when equal, positive when a > b. Both must be x.y.z. */
export function compareVersions(a: string, b: string): number {
  const pa = VERSION.exec(a);
  const pb = VERSION.exec(b);
  if (pa === null || pb === null) throw new Error(`not a version: ${pa === null ? a : b}`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  return 0;
}

export function atLeast(version: string, minimum: string): boolean {
  return compareVersions(version, minimum) >= 0;
}

/**
 * The x.y.z out of `envoy --version`, which prints e.g.
 * "envoy  version: 5a1b.../1.40.0/Clean/RELEASE/BoringSSL"
 * (source/common/version/version.cc VersionInfo::version: sha/version/status/type/ssl).
 */
export function parseEnvoyVersionOutput(output: string): string | null {
  const m = /version:\s*\S*?\/(\d+\.\d+\.\d+)(?:-[\w.]+)?\//.exec(output) ?? /\b(\d+\.\d+\.\d+)\b/.exec(output);
  return m === null ? null : m[1];
}
