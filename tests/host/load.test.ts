// §1.1: what Envoy checks when it loads a module (ABI marker, allocator, strict
// import linking with cpp-host's messages, export signatures, ABI-specific host
// functions, the WASI set), seen through Envoy.addHttpFilter.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigRejectedError, Envoy, VirtualClock, inspectModule } from "../../scripts/host/index.ts";
import { guestCalls, minimalModule, wat } from "./helpers.ts";

async function load(text: string, envoy = new Envoy({ clock: new VirtualClock() })) {
  const plugin = await envoy.addHttpFilter({ name: "m", rootId: "r", vmId: "v", wasm: await wat(text) });
  return { envoy, plugin };
}

async function rejection(text: string): Promise<ConfigRejectedError> {
  try {
    await load(text);
  } catch (e) {
    assert.ok(e instanceof ConfigRejectedError, `expected ConfigRejectedError, got ${e}`);
    return e;
  }
  assert.fail("the module loaded");
}

describe("load checks", () => {
  test("a module without an ABI marker is rejected", async () => {
    const e = await rejection(minimalModule().replace('(func (export "proxy_abi_version_0_2_1"))', ""));
    assert.deepEqual(e.details, ["Missing or unknown Proxy-Wasm ABI version"]);
  });

  test("the first ABI marker in the export section wins", async () => {
    const importsContinue = '(import "env" "proxy_continue_stream" (func (param i32) (result i32)))';
    // 0.2.1 first: proxy_continue_stream exists.
    await load(minimalModule(`${importsContinue} (func (export "proxy_abi_version_0_2_1")) (func (export "proxy_abi_version_0_1_0"))`, { abi: "0_2_0" }));
    // 0.1.0 first: the same import is unknown.
    const e = await rejection(minimalModule(`${importsContinue} (func (export "proxy_abi_version_0_1_0")) (func (export "proxy_abi_version_0_2_1"))`, { abi: "0_2_0" }));
    assert.deepEqual(e.details, ["Failed to load Wasm module due to a missing import: env.proxy_continue_stream"]);
    assert.equal(inspectModule(await wat(minimalModule(`(func (export "proxy_abi_version_0_1_0"))`))).abiVersion, "0.1.0");
  });

  test("imports Envoy does not provide fail the load with cpp-host's message", async () => {
    for (const [imp, name] of [
      ['(import "env" "abort" (func (param i32 i32 i32 i32)))', "env.abort"],
      ['(import "env" "trace" (func (param i32 i32 f64 f64 f64 f64 f64)))', "env.trace"],
      ['(import "env" "seed" (func (result f64)))', "env.seed"],
      ['(import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))', "env.proxy_get_configuration"],
      ['(import "env" "proxy_clear_route_cache" (func (result i32)))', "env.proxy_clear_route_cache"],
      ['(import "env" "proxy_continue_request" (func (result i32)))', "env.proxy_continue_request"],
      ['(import "wasi_snapshot_preview1" "clock_res_get" (func (param i32 i32) (result i32)))', "wasi_snapshot_preview1.clock_res_get"],
      ['(import "envoy" "proxy_log" (func (param i32 i32 i32) (result i32)))', "envoy.proxy_log"],
    ] as const) {
      const e = await rejection(minimalModule(imp));
      assert.equal(e.reason, "Failed to load Wasm code");
      assert.deepEqual(e.details, [`Failed to load Wasm module due to a missing import: ${name}`], name);
    }
  });

  test("ABI 0.1.0 modules get the 0.1.0-only functions, and 0.2.0 has no proxy_get_log_level", async () => {
    await load(minimalModule('(import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))', { abi: "0_1_0" }));
    const e = await rejection(minimalModule('(import "env" "proxy_get_log_level" (func (param i32) (result i32)))', { abi: "0_2_0" }));
    assert.deepEqual(e.details, ["Failed to load Wasm module due to a missing import: env.proxy_get_log_level"]);
  });

  test("an import with the wrong signature is a type mismatch; importing a global is a missing import", async () => {
    let e = await rejection(minimalModule('(import "env" "proxy_log" (func (param i32 i32) (result i32)))'));
    assert.deepEqual(e.details, [
      "Failed to load Wasm module due to an import type mismatch: env.proxy_log, want: i32 i32 -> i32, but host exports: i32 i32 i32 -> i32",
    ]);
    // i64 arguments where cpp-host takes (u)int64_t.
    e = await rejection(minimalModule('(import "env" "proxy_increment_metric" (func (param i32 i32) (result i32)))'));
    assert.match(e.details[0], /import type mismatch: env.proxy_increment_metric, want: i32 i32 -> i32, but host exports: i32 i64 -> i32/);
    e = await rejection(minimalModule('(import "env" "some_global" (global i32))'));
    assert.deepEqual(e.details, ["Failed to load Wasm module due to a missing import: env.some_global"]);
  });

  test("exports cpp-host calls are type-checked; every bad one is reported", async () => {
    const e = await rejection(
      minimalModule(`
        (func (export "proxy_on_tick") (param i32) (result i32) i32.const 0)
        (func (export "proxy_on_request_headers") (param i32 i32) (result i32) i32.const 0)
        (func (export "proxy_on_done") (param i32))
        (func (export "my_helper") (param i64))`),
    );
    assert.deepEqual(e.details, [
      "Bad function signature for: proxy_on_tick, want: i32 -> void, but the module exports: i32 -> i32",
      "Bad function signature for: proxy_on_done, want: i32 -> i32, but the module exports: i32 -> void",
      "Bad function signature for: proxy_on_request_headers, want: i32 i32 i32 -> i32, but the module exports: i32 i32 -> i32",
    ]);
  });

  test("malloc is required; proxy_on_memory_allocate stands in; malloc is preferred when both exist", async () => {
    let e = await rejection(minimalModule("", { malloc: false }));
    assert.deepEqual(e.details, ["Wasm module is missing malloc function."]);
    e = await rejection(minimalModule('(func (export "malloc") (param i64) (result i64) i64.const 0)', { malloc: false }));
    assert.deepEqual(e.details, ["Bad function signature for: malloc, want: i32 -> i32, but the module exports: i64 -> i64", "Wasm module is missing malloc function."]);

    const alt = `(func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 4096)`;
    const envoy = new Envoy({ clock: new VirtualClock(), logLevel: "trace" });
    const onlyAlt = await load(minimalModule(alt, { malloc: false }), envoy);
    onlyAlt.plugin.vms[0].alloc(8);
    assert.ok(guestCalls(envoy.logs).includes("proxy_on_memory_allocate(8)"));

    const both = await load(minimalModule(alt), new Envoy({ clock: new VirtualClock(), logLevel: "trace" }));
    const vm = both.plugin.vms[0];
    vm.alloc(8);
    assert.ok(guestCalls(both.envoy.logs).includes("malloc(8)"));
    assert.ok(!guestCalls(both.envoy.logs).includes("proxy_on_memory_allocate(8)"));
  });

  test("the Envoy 1.33+ WASI set links under both wasi_snapshot_preview1 and wasi_unstable", async () => {
    // Types written from cpp-host's C signatures (Word -> i32, (u)int64_t -> i64).
    const wasi: [string, string][] = [
      ["fd_write", "(param i32 i32 i32 i32) (result i32)"],
      ["fd_read", "(param i32 i32 i32 i32) (result i32)"],
      ["fd_seek", "(param i32 i64 i32 i32) (result i32)"],
      ["fd_close", "(param i32) (result i32)"],
      ["fd_fdstat_get", "(param i32 i32) (result i32)"],
      ["fd_fdstat_set_flags", "(param i32 i32) (result i32)"],
      ["environ_get", "(param i32 i32) (result i32)"],
      ["environ_sizes_get", "(param i32 i32) (result i32)"],
      ["args_get", "(param i32 i32) (result i32)"],
      ["args_sizes_get", "(param i32 i32) (result i32)"],
      ["clock_time_get", "(param i32 i64 i32) (result i32)"],
      ["random_get", "(param i32 i32) (result i32)"],
      ["sched_yield", "(result i32)"],
      ["poll_oneoff", "(param i32 i32 i32 i32) (result i32)"],
      ["proc_exit", "(param i32)"],
      ["path_open", "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)"],
      ["fd_prestat_get", "(param i32 i32) (result i32)"],
      ["fd_prestat_dir_name", "(param i32 i32 i32) (result i32)"],
    ];
    assert.equal(wasi.length, 18);
    const imports = ["wasi_snapshot_preview1", "wasi_unstable"]
      .flatMap((m) => wasi.map(([n, t]) => `(import "${m}" "${n}" (func ${t}))`))
      .join("\n");
    const { plugin } = await load(minimalModule(imports));
    assert.equal(plugin.vms.length, 1);
  });

  test("a healthy module's shape has no problems", async () => {
    const shape = inspectModule(await wat(minimalModule('(import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))')));
    assert.equal(shape.abiVersion, "0.2.1");
    assert.deepEqual(shape.problems, []);
  });
});
