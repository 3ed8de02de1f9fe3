// §3: the pairs wire format byte for byte (golden bytes, limits, malformed
// input) and the header-map host calls as Envoy implements them (lower-cased
// keys, first value, duplicates, replace-all, byteSize, set_pairs replacing
// everything, map types out of range).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WasmResult, decodePairs, encodePairs } from "../../scripts/host/index.ts";
import { probeEnvoy, put, putPairs, request, slots, text } from "./helpers.ts";

describe("pairs format", () => {
  test("golden bytes", () => {
    // u32 count | (u32 key_len, u32 value_len) x N | key NUL value NUL x N, little-endian.
    assert.deepEqual(
      [...encodePairs([["a", "1"], ["b", "22"]])],
      [
        0x02, 0x00, 0x00, 0x00, //          2 pairs
        0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // "a" -> "1"
        0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // "b" -> "22"
        0x61, 0x00, 0x31, 0x00, //                        a\0 1\0
        0x62, 0x00, 0x32, 0x32, 0x00, //                  b\0 22\0
      ],
    );
    assert.deepEqual([...encodePairs([])], [0, 0, 0, 0]);
  });

  test("round trip, including empty strings, UTF-8 and every ASCII byte but NUL", () => {
    const ascii = String.fromCharCode(...Array.from({ length: 127 }, (_, i) => i + 1));
    const pairs: [string, string][] = [["", ""], [":path", "/v1/chat"], ["x-ü", "€ \u{1F600}"], [ascii, ascii]];
    assert.deepEqual(decodePairs(encodePairs(pairs)), pairs);
  });

  test("malformed or oversized input decodes to an empty list", () => {
    const good = encodePairs([["a", "1"]]);
    const variant = (edit: (b: Uint8Array) => Uint8Array) => decodePairs(edit(good.slice()));
    assert.deepEqual(variant((b) => b), [["a", "1"]]);
    assert.deepEqual(variant((b) => b.subarray(0, 3)), [], "shorter than the count");
    assert.deepEqual(variant((b) => b.subarray(0, b.length - 1)), [], "value overruns");
    assert.deepEqual(variant((b) => ((b[13] = 0x78), b)), [], "key not NUL-terminated");
    assert.deepEqual(variant((b) => ((b[15] = 0x78), b)), [], "value not NUL-terminated");
    assert.deepEqual(variant((b) => Uint8Array.from([...b, 0])), [], "bytes after the last pair");
    assert.deepEqual(variant((b) => ((b[0] = 2), b)), [], "more pairs than sizes");
    assert.deepEqual(decodePairs(new Uint8Array(0)), []);

    const many = (n: number) => encodePairs(Array.from({ length: n }, (_, i) => [`k${i}`, ""] as [string, string]));
    assert.equal(decodePairs(many(1024)).length, 1024);
    assert.deepEqual(decodePairs(many(1025)), [], "more than 1024 pairs");
    const big = encodePairs([["k", "v".repeat(1024 * 1024)]]);
    assert.ok(big.length > 1024 * 1024);
    assert.deepEqual(decodePairs(big), [], "more than 1 MiB");
    assert.equal(decodePairs(encodePairs([["k", "v".repeat(1024 * 1024 - 20)]])).length, 1);
  });
});

describe("header-map host calls", () => {
  /** A stopped stream 2 whose request headers Envoy still holds. */
  async function heldHeaders() {
    const setup = await probeEnvoy({ configuration: "tick=100" });
    const stream = setup.plugin.newStream(0);
    stream.sendRequestHeaders(request("/stop", { "x-multi": "one" }), false);
    return { ...setup, stream, vm: setup.plugin.vms[0] };
  }

  test("get_header_map_pairs returns the held map in the pairs format, byte for byte", async () => {
    const { envoy, vm, stream } = await heldHeaders();
    const out = slots(vm);
    assert.equal(vm.hostCall("proxy_get_header_map_pairs", [0, out.ptr, out.size], 2), WasmResult.Ok);
    assert.deepEqual(out.read(), encodePairs(stream.requestHeaders));
    assert.deepEqual(stream.requestHeaders.slice(0, 4).map(([k]) => k), [":method", ":path", ":authority", ":scheme"], "pseudo-headers first");
    envoy.shutdown();
  });

  test("keys are lower-cased; get returns the first value; add appends; replace replaces all; remove is Ok on a missing key", async () => {
    const { envoy, vm, stream } = await heldHeaders();
    const out = slots(vm);
    const s = (v: string) => put(vm, v);
    const r = vm.runAsGuest(2, (call) => [
      call("proxy_add_header_map_value", 0, ...s("X-Multi"), ...s("two")),
      call("proxy_get_header_map_value", 0, ...s("X-MULTI"), out.ptr, out.size),
      text(out.read()),
      call("proxy_get_header_map_value", 0, ...s("x-absent"), out.ptr, out.size),
      call("proxy_remove_header_map_value", 0, ...s("x-absent")),
      call("proxy_replace_header_map_value", 0, ...s("x-Other"), ...s("1")),
      call("proxy_replace_header_map_value", 0, ...s("x-probe-seen"), ...s("2")),
    ]);
    assert.deepEqual(r, [WasmResult.Ok, WasmResult.Ok, "one", WasmResult.NotFound, WasmResult.Ok, WasmResult.Ok, WasmResult.Ok]);
    const list = stream.requestHeaders;
    assert.deepEqual(list.filter(([k]) => k === "x-multi"), [["x-multi", "one"], ["x-multi", "two"]]);
    assert.deepEqual(list.filter(([k]) => k === "x-probe-seen"), [["x-probe-seen", "2"]]);
    assert.ok(list.some(([k, v]) => k === "x-other" && v === "1"));

    vm.hostCall("proxy_remove_header_map_value", [0, ...s("X-MULTI")], 2);
    assert.equal(stream.requestHeaders.filter(([k]) => k === "x-multi").length, 0, "remove drops every value");
    envoy.shutdown();
  });

  test("get_header_map_size is the byte size of keys and values, not the count", async () => {
    const { envoy, vm, stream } = await heldHeaders();
    const size = vm.alloc(4);
    assert.equal(vm.hostCall("proxy_get_header_map_size", [0, size], 2), WasmResult.Ok);
    const expected = stream.requestHeaders.reduce((n, [k, v]) => n + k.length + v.length, 0);
    assert.equal(new DataView(vm.read(size, 4).buffer).getUint32(0, true), expected);
    assert.equal(vm.hostCall("proxy_get_header_map_size", [0, size], 1), WasmResult.BadArgument, "no map on the root");
    envoy.shutdown();
  });

  test("set_header_map_pairs replaces every entry, pseudo-headers included; malformed pairs remove everything and are Ok", async () => {
    const { envoy, vm, stream } = await heldHeaders();
    assert.equal(vm.hostCall("proxy_set_header_map_pairs", [0, ...putPairs(vm, [[":path", "/new"], ["X-A", "1"]])], 2), WasmResult.Ok);
    assert.deepEqual(stream.requestHeaders, [[":path", "/new"], ["x-a", "1"]]);
    assert.equal(vm.hostCall("proxy_set_header_map_pairs", [0, ...put(vm, new Uint8Array([1, 0, 0, 0, 9]))], 2), WasmResult.Ok);
    assert.deepEqual(stream.requestHeaders, []);
    envoy.shutdown();
  });

  test("a map type above 7 is BadArgument; a map Envoy does not hold is BadArgument (NotFound for a missing key)", async () => {
    const { envoy, vm } = await heldHeaders();
    const out = slots(vm);
    const [k, kl] = put(vm, ":status");
    for (const fn of ["proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_replace_header_map_value"]) {
      const args = fn === "proxy_get_header_map_value" ? [8, k, kl, out.ptr, out.size] : [8, k, kl, k, kl];
      assert.equal(vm.hostCall(fn, args, 2), WasmResult.BadArgument, fn);
    }
    assert.equal(vm.hostCall("proxy_get_header_map_pairs", [8, out.ptr, out.size], 2), WasmResult.BadArgument);
    assert.equal(vm.hostCall("proxy_get_header_map_value", [2, k, kl, out.ptr, out.size], 2), WasmResult.BadArgument, "no response yet");
    assert.equal(vm.hostCall("proxy_get_header_map_value", [6, k, kl, out.ptr, out.size], 1), WasmResult.BadArgument, "no callout response now");
    envoy.shutdown();
  });
});
