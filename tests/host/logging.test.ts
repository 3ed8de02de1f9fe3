// §10: proxy_log lines with Envoy's prefixes and levels, proxy_get_log_level,
// and the WASI functions: stdout/stderr as log lines, clocks, random_get,
// environ, and proc_exit returning instead of trapping.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Envoy, VirtualClock, WasmResult } from "../../scripts/host/index.ts";
import { minimalModule, probeEnvoy, put, request, u32At, u64At, wat } from "./helpers.ts";

describe("logging", () => {
  test("stream lines carry ' <name> <root_id> <vm_id>', root lines ' <root_id> <vm_id>', _initialize lines nothing", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "debug" });
    plugin.newStream(0).sendRequestHeaders(request("/p"), true);
    const line = (start: string) => envoy.logs.find((l) => l.message.startsWith(start) && l.vm === 0)!;
    assert.equal(line("probe: initialize").line, "wasm log: probe: initialize");
    assert.equal(line("probe: vm_start").line, "wasm log probe_root probe_vm: probe: vm_start size=0");
    assert.deepEqual(
      { ...line("probe: headers"), message: undefined },
      { level: "debug", vm: 0, context: 2, message: undefined, line: "wasm log probe_plugin probe_root probe_vm: probe: headers id=2 count=4 path=/p", source: "plugin" },
    );
    envoy.shutdown();

    const bare = await probeEnvoy({ rootId: "", vmId: "" });
    assert.equal(bare.envoy.logs.find((l) => l.message.startsWith("probe: vm_start"))!.line, "wasm log: probe: vm_start size=0", "empty parts are skipped");
    bare.envoy.shutdown();
  });

  test("lines below the wasm logger's level are not recorded; proxy_get_log_level reports it, also after a change", async () => {
    const info = await probeEnvoy();
    info.plugin.newStream(0).sendRequestHeaders(request("/"), true);
    assert.equal(info.envoy.logs.filter((l) => l.level === "debug").length, 0);
    const vm = info.plugin.vms[0];
    const level = vm.alloc(4);
    assert.equal(vm.hostCall("proxy_get_log_level", [level], 1), WasmResult.Ok);
    assert.equal(u32At(vm, level), 2);
    info.envoy.logLevel = "trace";
    vm.hostCall("proxy_get_log_level", [level], 1);
    assert.equal(u32At(vm, level), 0);
    info.envoy.logLevel = "off";
    vm.hostCall("proxy_get_log_level", [level], 1);
    assert.equal(u32At(vm, level), 6);
    assert.equal(vm.hostCall("proxy_log", [6, ...put(vm, "x")], 1), WasmResult.BadArgument, "above critical");
    info.envoy.shutdown();

    const debug = await probeEnvoy({}, { logLevel: "debug" });
    debug.plugin.newStream(0).sendRequestHeaders(request("/"), true);
    assert.ok(debug.envoy.logs.some((l) => l.level === "debug" && l.message.startsWith("probe: headers")));
    debug.envoy.shutdown();
  });
});

describe("WASI", () => {
  test("fd_write: stdout is an info line, stderr an error line, the trailing newline dropped; other fds are BADF", async () => {
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    const iov = (s: string) => {
      const [p, n] = put(vm, s);
      const v = vm.alloc(8);
      vm.setMemory(v, new Uint8Array(new Uint32Array([p, n]).buffer));
      return v;
    };
    const written = vm.alloc(4);
    assert.equal(vm.hostCall("fd_write", [1, iov("to stdout\n"), 1, written], 1), 0);
    assert.equal(u32At(vm, written), 10, "bytes written, newline included");
    assert.equal(vm.hostCall("fd_write", [2, iov("to stderr"), 1, written], 1), 0);
    assert.equal(vm.hostCall("fd_write", [3, iov("x"), 1, written], 1), 8);
    const last = envoy.logs.slice(-2).map((l) => [l.level, l.line]);
    assert.deepEqual(last, [["info", "wasm log probe_root probe_vm: to stdout"], ["error", "wasm log probe_root probe_vm: to stderr"]]);
    envoy.shutdown();
  });

  test("clocks, random_get, environ", async () => {
    const clock = new VirtualClock(Date.UTC(2025, 5, 1));
    const { envoy, plugin } = await probeEnvoy({ environment: { MODEL: "llama", ZONE: "a" } }, { clock });
    const vm = plugin.vms[0];
    const t = vm.alloc(8);
    clock.advance(1500);
    assert.equal(vm.hostCall("clock_time_get", [0, 1n, t], 1), 0);
    assert.equal(u64At(vm, t), BigInt(Date.UTC(2025, 5, 1) + 1500) * 1_000_000n);
    assert.equal(vm.hostCall("clock_time_get", [1, 1n, t], 1), 0);
    assert.equal(u64At(vm, t), 1_500_000_000n, "monotonic");
    assert.equal(vm.hostCall("clock_time_get", [2, 1n, t], 1), 58, "other clocks: NOTSUP");

    const buf = vm.alloc(16);
    assert.equal(vm.hostCall("random_get", [buf, 16], 1), 0);
    assert.equal(vm.hostCall("random_get", [buf, 65537], 1), 28, "over 64 KiB: INVAL");
    assert.equal(vm.hostCall("random_get", [buf, 0], 1), 0);

    const sizes = vm.alloc(8);
    assert.equal(vm.hostCall("environ_sizes_get", [sizes, sizes + 4], 1), 0);
    assert.deepEqual([u32At(vm, sizes), u32At(vm, sizes + 4)], [2, "MODEL=llama\0".length + "ZONE=a\0".length]);
    const array = vm.alloc(8);
    const chars = vm.alloc(32);
    assert.equal(vm.hostCall("environ_get", [array, chars], 1), 0);
    assert.equal(new TextDecoder().decode(vm.read(u32At(vm, array), 12)), "MODEL=llama\0");
    assert.equal(new TextDecoder().decode(vm.read(u32At(vm, array + 4), 7)), "ZONE=a\0");
    envoy.shutdown();
  });

  test("proc_exit only logs and returns: the module keeps running and the VM is not failed", async () => {
    const module = minimalModule(`
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $exit (i32.const 1))
        (i32.const 0))`);
    const envoy = new Envoy({ clock: new VirtualClock(), logLevel: "trace" });
    const plugin = await envoy.addHttpFilter({ name: "p", wasm: await wat(module) });
    const s = plugin.newStream(0);
    assert.equal(s.sendRequestHeaders(request("/"), true), "Continue");
    assert.equal(plugin.vms[0].failed, false);
    assert.ok(s.upstreamRequest !== null);
    assert.ok(envoy.logs.some((l) => l.level === "trace" && l.message === "wasi_unstable proc_exit"));
    envoy.shutdown();
  });
});
