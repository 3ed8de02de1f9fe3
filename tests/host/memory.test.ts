// §2: memory conventions. Returned data is copied into memory from the module's
// own malloc (called in the VM context 0) and its address/size written as u32
// little-endian; empty data is 0/0 without malloc; any out-of-bounds pointer is
// InvalidMemoryAccess; the effective context lasts only until the call returns.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WasmResult } from "../../scripts/host/index.ts";
import { probeEnvoy, put, request, slots, text, u32At } from "./helpers.ts";

describe("memory conventions", () => {
  test("a returned buffer comes from the module's malloc, run in the VM context", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const vm = plugin.vms[0];
    const out = slots(vm);
    const [path, len] = put(vm, "plugin_name");
    const before = envoy.logs.length;
    assert.equal(vm.hostCall("proxy_get_property", [path, len, out.ptr, out.size], 1), WasmResult.Ok);
    const mallocs = envoy.logs.slice(before).filter((l) => l.message.startsWith("[host->vm] malloc("));
    assert.deepEqual(mallocs.map((l) => [l.message, l.context]), [["[host->vm] malloc(12)", 0]]);
    assert.notEqual(out.ptrValue(), 0);
    assert.equal(out.sizeValue(), 12);
    assert.equal(text(out.read()), "probe_plugin");
    envoy.shutdown();
  });

  test("empty data is written as 0/0 and malloc is not called", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { logLevel: "trace" });
    const vm = plugin.vms[0];
    const out = slots(vm);
    vm.setMemory(out.ptr, new Uint8Array([0xef, 0xbe, 0xad, 0xde, 0xef, 0xbe, 0xad, 0xde]));
    const before = envoy.logs.length;
    // The root context holds no request headers: the pairs are empty.
    assert.equal(vm.hostCall("proxy_get_header_map_pairs", [0, out.ptr, out.size], 1), WasmResult.Ok);
    assert.deepEqual([out.ptrValue(), out.sizeValue()], [0, 0]);
    assert.equal(envoy.logs.slice(before).filter((l) => l.message.startsWith("[host->vm] malloc(")).length, 0);
    envoy.shutdown();
  });

  test("pointers outside linear memory are InvalidMemoryAccess, for inputs and for outputs", async () => {
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    const end = vm.memoryBytes();
    const out = slots(vm);
    const [key, keyLen] = put(vm, "k");
    assert.equal(vm.hostCall("proxy_log", [2, end - 2, 4], 1), WasmResult.InvalidMemoryAccess);
    assert.equal(vm.hostCall("proxy_get_shared_data", [end, 1, out.ptr, out.size, out.ptr], 1), WasmResult.InvalidMemoryAccess);
    assert.equal(vm.hostCall("proxy_set_shared_data", [key, keyLen, end - 1, 8, 0], 1), WasmResult.InvalidMemoryAccess);
    const [path, len] = put(vm, "plugin_name");
    assert.equal(vm.hostCall("proxy_get_property", [path, len, end - 2, out.size], 1), WasmResult.InvalidMemoryAccess);
    assert.equal(vm.hostCall("proxy_get_current_time_nanoseconds", [end - 4], 1), WasmResult.InvalidMemoryAccess);
    // (0, 0) is a valid empty input.
    assert.equal(vm.hostCall("proxy_log", [2, 0, 0], 1), WasmResult.Ok);
    envoy.shutdown();
  });

  test("integers are written little-endian at their native width", async () => {
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    const [key, keyLen] = put(vm, "endian");
    const [value, valueLen] = put(vm, "v");
    const out = slots(vm);
    const cas = vm.alloc(8);
    vm.setMemory(cas, new Uint8Array(8).fill(0xff));
    assert.equal(vm.hostCall("proxy_set_shared_data", [key, keyLen, value, valueLen, 0], 1), WasmResult.Ok);
    assert.equal(vm.hostCall("proxy_get_shared_data", [key, keyLen, out.ptr, out.size, cas], 1), WasmResult.Ok);
    const stored = envoy.sharedData("probe_vm").get("endian")!.cas;
    assert.deepEqual([...vm.read(cas, 8)], [stored & 0xff, (stored >> 8) & 0xff, (stored >> 16) & 0xff, stored >>> 24, 0xff, 0xff, 0xff, 0xff], "a u32, nothing more");
    const now = vm.alloc(8);
    assert.equal(vm.hostCall("proxy_get_current_time_nanoseconds", [now], 1), WasmResult.Ok);
    assert.equal(new DataView(vm.read(now, 8).buffer).getBigUint64(0, true), BigInt(Math.round(envoy.clock.now() * 1e6)));
    envoy.shutdown();
  });

  test("the effective context set by proxy_set_effective_context ends with the call", async () => {
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/stop"), false); // headers held by the stopped stream 2
    const [key, keyLen] = put(vm, ":path");
    const out = slots(vm);
    const inside = vm.runAsGuest(1, (call) => {
      const missing = call("proxy_set_effective_context", 99);
      const set = call("proxy_set_effective_context", 2);
      const got = call("proxy_get_header_map_value", 0, key, keyLen, out.ptr, out.size);
      const value = text(out.read());
      // A host->malloc call in between (for the value above) did not disturb it.
      const again = call("proxy_get_header_map_value", 0, key, keyLen, out.ptr, out.size);
      return { missing, set, got, value, again };
    });
    assert.deepEqual(inside, { missing: WasmResult.BadArgument, set: WasmResult.Ok, got: WasmResult.Ok, value: "/stop", again: WasmResult.Ok });
    // A new call on the root starts without it: the root has no request headers.
    assert.equal(vm.hostCall("proxy_get_header_map_value", [0, key, keyLen, out.ptr, out.size], 1), WasmResult.BadArgument);
    assert.equal(u32At(vm, out.size), 5);
    envoy.shutdown();
  });
});
