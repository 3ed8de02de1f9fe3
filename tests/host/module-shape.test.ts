// The shipped modules must load in Envoy (ABI 0.2.1): every import is a host
// function Envoy provides for that ABI (no env.abort, env.trace, env.seed,
// proxy_get_configuration, proxy_clear_route_cache …), every callback Envoy
// looks up has the signature it expects, and the exports a proxy-wasm filter
// needs are there. The checks are the emulator's loader checks
// (inspectModule), so this test and the emulator cannot disagree.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { inspectModule } from "../../scripts/host/index.ts";
import { ROUTER, probePath } from "./helpers.ts";

/** What a filter built on assembly/abi/exports.ts exports (presence; signatures are the loader's). */
const REQUIRED_EXPORTS = [
  "proxy_abi_version_0_2_1",
  "malloc",
  "_initialize",
  "proxy_on_context_create",
  "proxy_on_vm_start",
  "proxy_on_configure",
  "proxy_on_tick",
  "proxy_on_http_call_response",
  "proxy_on_request_headers",
  "proxy_on_request_body",
  "proxy_on_request_trailers",
  "proxy_on_response_headers",
  "proxy_on_response_body",
  "proxy_on_done",
];

/**
 * Exported by the probe (assembly/abi/exports_observing.ts), left out of the
 * router: the host calls a callback only if it is exported, and the router
 * needs none (its proxy_on_done forgets the context), so Envoy makes two
 * calls into the VM fewer per request.
 */
const OBSERVING_EXPORTS = ["proxy_on_response_trailers", "proxy_on_log", "proxy_on_delete"];

function exportsOf(path: string): Map<string, string> {
  return new Map(inspectModule(readFileSync(path)).info!.exports.map((e) => [e.name, e.kind]));
}

function checkShape(path: string): void {
  const shape = inspectModule(readFileSync(path));
  assert.deepEqual(shape.problems, [], `${path} would not load in Envoy`);
  assert.equal(shape.abiVersion, "0.2.1", `${path}: the first ABI marker must be proxy_abi_version_0_2_1`);
  const exports = new Map(shape.info!.exports.map((e) => [e.name, e.kind]));
  for (const name of REQUIRED_EXPORTS) assert.equal(exports.get(name), "function", `${path} must export function ${name}`);
  assert.equal(exports.get("memory"), "memory", `${path} must export its memory as "memory"`);
  for (const imp of shape.info!.imports) {
    assert.ok(imp.kind === "function", `${path} imports a ${imp.kind} (${imp.module}.${imp.name})`);
  }
}

describe("module shape", () => {
  test("build/abi_probe.wasm imports only Envoy's ABI 0.2.1 host functions and exports the filter callbacks", () => {
    checkShape(probePath());
    const exports = exportsOf(probePath());
    for (const name of OBSERVING_EXPORTS) assert.equal(exports.get(name), "function", `the probe must export ${name}`);
  });

  test("build/prefix_router.wasm imports only Envoy's ABI 0.2.1 host functions and exports the filter callbacks", {
    skip: existsSync(ROUTER) ? false : `${ROUTER} is absent: build it with \`npm run build\` (the router is not written yet, or not built)`,
  }, () => {
    checkShape(ROUTER);
    const exports = exportsOf(ROUTER);
    for (const name of OBSERVING_EXPORTS) assert.equal(exports.get(name), undefined, `the router must not export ${name}`);
    // Its function names ship with it (asconfig.json "debug"): with them, Envoy
    // logs a trap's frames by name (proxy-wasm-cpp-host src/v8/v8.cc getFailMessage).
    const module = new WebAssembly.Module(readFileSync(ROUTER));
    assert.equal(WebAssembly.Module.customSections(module, "name").length, 1, `${ROUTER} has no name section`);
  });
});
