// §9: properties. plugin_name / plugin_root_id / plugin_vm_id everywhere;
// request.* from the request headers only while Envoy holds them (or during
// on_log), NotFound otherwise and on the root; values serialized as Envoy does;
// proxy_set_property needs a stream.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WasmResult, decodePairs } from "../../scripts/host/index.ts";
import { probeEnvoy, put, request, slots, text } from "./helpers.ts";

describe("properties", () => {
  async function setup() {
    const s = await probeEnvoy({ configuration: "tick=100" });
    const vm = s.plugin.vms[0];
    const out = slots(vm);
    const get = (path: string, context: number): [number, string] => {
      vm.setMemory(out.ptr, new Uint8Array(8));
      const r = vm.hostCall("proxy_get_property", [...put(vm, path), out.ptr, out.size], context);
      return [r, text(out.read())];
    };
    const getBytes = (path: string, context: number) => {
      vm.hostCall("proxy_get_property", [...put(vm, path), out.ptr, out.size], context);
      return out.read();
    };
    return { ...s, vm, get, getBytes };
  }

  test("plugin_name, plugin_root_id and plugin_vm_id on root and stream contexts; a trailing NUL is tolerated", async () => {
    const { envoy, plugin, get } = await setup();
    plugin.newStream(0).sendRequestHeaders(request("/"), false);
    for (const context of [1, 2]) {
      assert.deepEqual(get("plugin_name", context), [WasmResult.Ok, "probe_plugin"]);
      assert.deepEqual(get("plugin_root_id", context), [WasmResult.Ok, "probe_root"]);
      assert.deepEqual(get("plugin_vm_id\0", context), [WasmResult.Ok, "probe_vm"]);
    }
    assert.equal(get("no_such_thing", 1)[0], WasmResult.NotFound);
    assert.equal(get("plugin_name\0length", 1)[0], WasmResult.NotFound, "a string has no fields");
    envoy.shutdown();
  });

  test("request.size and request.total_size: content-length or body bytes received, plus the header map's size (expr/context.cc RequestWrapper)", async () => {
    const { envoy, plugin, getBytes } = await setup();
    const int = (b: Uint8Array) => Number(new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0, true));
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/stop", { "content-length": "11" }), false);
    const headerBytes = s.requestHeaders.reduce((n, [k, v]) => n + k.length + v.length, 0);
    assert.equal(int(getBytes("request\0size", 2)), 11, "content-length wins");
    assert.equal(int(getBytes("request\0total_size", 2)), headerBytes, "no body bytes yet");
    s.sendRequestBody("hello", false);
    assert.equal(int(getBytes("request\0total_size", 2)), headerBytes + 5, "counted as Envoy receives it, held or not");
    const chunked = plugin.newStream(0);
    chunked.sendRequestHeaders(request("/stop"), false);
    chunked.sendRequestBody("abc", false);
    assert.equal(int(getBytes("request\0size", 3)), 3, "without content-length: the bytes received");
    envoy.shutdown();
  });

  test("request.* reads the held request headers; once they continue it is NotFound; the root has none", async () => {
    const { clock, envoy, plugin, get, getBytes } = await setup();
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/stop?x=1", { "user-agent": "t", "x-multi": "a" }), false);
    assert.deepEqual(get("request\0path", 2), [WasmResult.Ok, "/stop?x=1"]);
    assert.deepEqual(get("request\0url_path", 2), [WasmResult.Ok, "/stop"]);
    assert.deepEqual(get("request\0query", 2), [WasmResult.Ok, "x=1"]);
    assert.deepEqual(get("request\0method", 2), [WasmResult.Ok, "POST"]);
    assert.deepEqual(get("request\0host", 2), [WasmResult.Ok, "gw"]);
    assert.deepEqual(get("request\0useragent", 2), [WasmResult.Ok, "t"]);
    assert.deepEqual(get("request\0headers\0x-multi", 2), [WasmResult.Ok, "a"]);
    assert.equal(get("request\0referer", 2)[0], WasmResult.NotFound, "absent header");
    assert.deepEqual(decodePairs(getBytes("request\0headers", 2)).find(([k]) => k === ":path"), [":path", "/stop?x=1"]);
    assert.equal(get("request\0path", 1)[0], WasmResult.NotFound, "root context: no stream");

    clock.advance(100); // the probe's tick continues the stream: Envoy lets go of the headers
    assert.equal(get("request\0path", 2)[0], WasmResult.NotFound);
    assert.equal(get("request\0headers\0x-multi", 2)[0], WasmResult.NotFound);
    assert.deepEqual([...getBytes("request\0headers", 2)], [0, 0, 0, 0], "an empty map");
    assert.deepEqual(get("request\0protocol", 2), [WasmResult.Ok, "HTTP/1.1"], "stream info stays");
    envoy.shutdown();
  });

  test("during on_log the access-log request headers are readable again", async () => {
    const { envoy, plugin, vm, get } = await setup();
    const seen: [number, string][] = [];
    vm.beforeGuestCall = (fn, args) => {
      if (fn === "proxy_on_log") seen.push(get("request\0path", args[0]));
    };
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/logged"), true);
    assert.equal(get("request\0path", 2)[0], WasmResult.NotFound);
    s.complete();
    assert.deepEqual(seen, [[WasmResult.Ok, "/logged"]]);
    envoy.shutdown();
  });

  test("proxy_set_property stores filter state on a stream (readable by its path), NotFound on the root", async () => {
    const { envoy, plugin, vm, get } = await setup();
    plugin.newStream(0).sendRequestHeaders(request("/"), false);
    assert.equal(vm.hostCall("proxy_set_property", [...put(vm, "chosen_endpoint"), ...put(vm, "10.0.0.7:8000")], 1), WasmResult.NotFound);
    assert.equal(vm.hostCall("proxy_set_property", [...put(vm, "chosen_endpoint"), ...put(vm, "10.0.0.7:8000")], 2), WasmResult.Ok);
    assert.deepEqual(get("chosen_endpoint", 2), [WasmResult.Ok, "10.0.0.7:8000"]);
    assert.equal(get("chosen_endpoint", 1)[0], WasmResult.NotFound);
    envoy.shutdown();
  });
});
