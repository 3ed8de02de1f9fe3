// §4: buffers. Reads are clamped to the buffer; which buffer exists when
// (plugin configuration only while configuring, callout body only in its
// callback, body buffers empty outside body callbacks); proxy_set_buffer_bytes
// as Envoy's Buffer::copyFrom (prepend, replace a prefix, append, nothing in
// the middle, immutable buffers refused); the cumulative body after
// StopIterationAndBuffer.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { BufferType, WasmResult, bodyText } from "../../scripts/host/index.ts";
import { pluginMessages, probeEnvoy, put, request, slots, text } from "./helpers.ts";

describe("buffers", () => {
  test("reads are clamped: past the end is Ok and empty (0/0), a long read is cut at the end", async () => {
    const { envoy, plugin } = await probeEnvoy({ vmConfiguration: "0123456789" });
    const vm = plugin.vms[0];
    const out = slots(vm);
    const read = (start: number, max: number) => {
      vm.setMemory(out.ptr, new Uint8Array(8).fill(0xff));
      const result = vm.hostCall("proxy_get_buffer_bytes", [BufferType.VmConfiguration, start, max, out.ptr, out.size], 1);
      return [result, out.sizeValue() === 0 ? `${out.ptrValue()}/0` : text(out.read())];
    };
    assert.deepEqual(read(0, 4), [WasmResult.Ok, "0123"]);
    assert.deepEqual(read(8, 10), [WasmResult.Ok, "89"]);
    assert.deepEqual(read(10, 5), [WasmResult.Ok, "0/0"]);
    assert.deepEqual(read(11, 1), [WasmResult.Ok, "0/0"]);
    assert.deepEqual(read(3, 0), [WasmResult.Ok, "0/0"]);
    const status = vm.alloc(8);
    assert.equal(vm.hostCall("proxy_get_buffer_status", [BufferType.VmConfiguration, status, status + 4], 1), WasmResult.Ok);
    assert.deepEqual([...vm.read(status, 8)], [10, 0, 0, 0, 0, 0, 0, 0], "length 10, flags 0");
    assert.ok(pluginMessages(envoy.logs).includes("probe: vm_start size=10"));
    envoy.shutdown();
  });

  test("a buffer type above 8 is BadArgument; buffers that do not exist now are NotFound", async () => {
    const { envoy, plugin } = await probeEnvoy({ configuration: "timeoutMs=5" });
    const vm = plugin.vms[0];
    const out = slots(vm);
    assert.equal(vm.hostCall("proxy_get_buffer_bytes", [9, 0, 1, out.ptr, out.size], 1), WasmResult.BadArgument);
    assert.equal(vm.hostCall("proxy_get_buffer_status", [9, out.ptr, out.size], 1), WasmResult.BadArgument);
    assert.equal(vm.hostCall("proxy_set_buffer_bytes", [9, 0, 0, out.ptr, 0], 1), WasmResult.BadArgument);
    // The plugin configuration was readable in on_configure (the probe parsed it) but not afterwards.
    assert.ok(pluginMessages(envoy.logs).some((m) => m.endsWith("config=timeoutMs=5")));
    assert.equal(vm.hostCall("proxy_get_buffer_bytes", [BufferType.PluginConfiguration, 0, 100, out.ptr, out.size], 1), WasmResult.NotFound);
    assert.equal(vm.hostCall("proxy_get_buffer_bytes", [BufferType.HttpCallResponseBody, 0, 100, out.ptr, out.size], 1), WasmResult.NotFound);
    envoy.shutdown();
  });

  test("outside a body callback the body buffer is valid but empty, and cannot be written", async () => {
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/"), false);
    const out = slots(vm);
    const [data, len] = put(vm, "x");
    assert.equal(vm.hostCall("proxy_get_buffer_bytes", [BufferType.HttpRequestBody, 0, 10, out.ptr, out.size], 2), WasmResult.Ok);
    assert.equal(out.sizeValue(), 0);
    assert.equal(vm.hostCall("proxy_set_buffer_bytes", [BufferType.HttpRequestBody, 0, 0, data, len], 2), WasmResult.BadArgument);
    assert.equal(vm.hostCall("proxy_set_buffer_bytes", [BufferType.VmConfiguration, 0, 0, data, len], 1), WasmResult.BadArgument, "immutable");
    envoy.shutdown();
  });

  test("set_buffer_bytes on the request body: start 0 drains then prepends, start >= length appends, the middle is refused", async () => {
    const cases: [string, number, number, string, number, string][] = [
      ["prepend", 0, 0, "<<", WasmResult.Ok, "<<hello world"],
      ["replace a prefix", 0, 2, "AB", WasmResult.Ok, "ABllo world"],
      ["replace everything", 0, 1000, "X", WasmResult.Ok, "X"],
      ["append at the end", 11, 0, ">>", WasmResult.Ok, "hello world>>"],
      ["append past the end", 50, 7, ">>", WasmResult.Ok, "hello world>>"],
      ["middle", 3, 1, "!", WasmResult.BadArgument, "hello world"],
    ];
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    for (const [name, start, size, data, result, body] of cases) {
      let got = -1;
      vm.beforeGuestCall = (fn, args) => {
        if (fn === "proxy_on_request_body") got = vm.hostCall("proxy_set_buffer_bytes", [BufferType.HttpRequestBody, start, size, ...put(vm, data)], args[0]);
      };
      const s = plugin.newStream(0);
      s.sendRequestHeaders(request("/"), false);
      s.sendRequestBody("hello world", true);
      assert.equal(got, result, name);
      assert.equal(bodyText(s.upstreamRequest!.body), body, name);
    }
    envoy.shutdown();
  });

  test("after StopIterationAndBuffer the body buffer is the whole body so far", async () => {
    const { envoy, plugin } = await probeEnvoy({ allowOnHeadersStopIteration: true });
    const vm = plugin.vms[0];
    const seen: string[] = [];
    vm.beforeGuestCall = (fn, args) => {
      if (fn !== "proxy_on_request_body") return;
      const out = slots(vm);
      vm.hostCall("proxy_get_buffer_bytes", [BufferType.HttpRequestBody, 0, 1000, out.ptr, out.size], args[0]);
      seen.push(`${args[1]}:${text(out.read())}`);
    };
    const s = plugin.newStream(0);
    s.sendRequestHeaders(request("/stop"), false);
    s.sendRequestBody("ab", false);
    s.sendRequestBody("cd", false);
    s.sendRequestBody("ef", true);
    assert.deepEqual(seen, ["2:ab", "4:abcd", "6:abcdef"]);
    assert.equal(bodyText(s.upstreamRequest!.body), "abcdef");
    envoy.shutdown();
  });
});
