// §8: metrics. Ids (n*4)|type per VM; increment/record/get rules by type; one
// Envoy stat "wasmcustom.<name>" shared by every VM; the Prometheus text with
// the custom prefix stripped, names sanitized, no envoy_ prefix, digit-first
// names dropped, and tags extracted by stats_tags regexes and Envoy's defaults.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MetricType, WasmResult } from "../../scripts/host/index.ts";
import { probeEnvoy, put, request, u64At } from "./helpers.ts";

function define(vm: import("../../scripts/host/index.ts").Vm, type: number, name: string): [number, number] {
  const id = vm.alloc(4);
  const result = vm.hostCall("proxy_define_metric", [type, ...put(vm, name), id], 1);
  return [result, new DataView(vm.read(id, 4).buffer).getUint32(0, true)];
}

describe("metrics", () => {
  test("ids are (n*4)|type, counted per type and per VM", async () => {
    // The probe defined counter 4, gauge 5, histogram 6, gauge 9 in on_configure.
    const { envoy, plugin } = await probeEnvoy({ concurrency: 2 });
    for (const vm of plugin.vms) {
      assert.deepEqual(define(vm, MetricType.Counter, "c"), [WasmResult.Ok, 8]);
      assert.deepEqual(define(vm, MetricType.Histogram, "h"), [WasmResult.Ok, 10]);
      assert.deepEqual(define(vm, MetricType.Gauge, "g"), [WasmResult.Ok, 13]);
      assert.deepEqual(define(vm, MetricType.Counter, "c"), [WasmResult.Ok, 12], "a re-definition is a new id for the same stat");
      assert.equal(define(vm, 3, "x")[0], WasmResult.BadArgument);
    }
    envoy.shutdown();
  });

  test("increment, record and get follow Envoy's rules per type", async () => {
    const { envoy, plugin } = await probeEnvoy();
    const vm = plugin.vms[0];
    const [, c] = define(vm, MetricType.Counter, "t.c");
    const [, g] = define(vm, MetricType.Gauge, "t.g");
    const [, h] = define(vm, MetricType.Histogram, "t.h");
    const inc = (id: number, d: bigint) => vm.hostCall("proxy_increment_metric", [id, d], 1);
    const rec = (id: number, v: bigint) => vm.hostCall("proxy_record_metric", [id, v], 1);
    const out = vm.alloc(8);
    const get = (id: number) => [vm.hostCall("proxy_get_metric", [id, out], 1), u64At(vm, out)];

    assert.equal(inc(c, 2n), WasmResult.Ok);
    assert.equal(inc(c, 0n), WasmResult.BadArgument, "a counter only grows");
    assert.equal(inc(c, -1n), WasmResult.BadArgument);
    assert.equal(rec(c, 5n), WasmResult.Ok, "record on a counter adds");
    assert.deepEqual(get(c), [WasmResult.Ok, 7n]);

    assert.equal(inc(g, 10n), WasmResult.Ok);
    assert.equal(inc(g, -3n), WasmResult.Ok, "a gauge subtracts");
    assert.deepEqual(get(g), [WasmResult.Ok, 7n]);
    assert.equal(rec(g, 42n), WasmResult.Ok, "record on a gauge sets");
    assert.deepEqual(get(g), [WasmResult.Ok, 42n]);

    assert.equal(inc(h, 1n), WasmResult.BadArgument);
    assert.equal(rec(h, 12n), WasmResult.Ok);
    assert.equal(get(h)[0], WasmResult.BadArgument, "get is not supported on histograms");

    assert.equal(inc(100, 1n), WasmResult.NotFound);
    assert.equal(rec(100, 1n), WasmResult.NotFound);
    assert.equal(get(100)[0], WasmResult.NotFound);
    assert.equal(inc(7, 1n), WasmResult.BadArgument, "type bits 3");
    assert.equal(get(7)[0], WasmResult.BadArgument);

    assert.equal(envoy.stats.get("wasmcustom.t.c"), 7);
    assert.equal(envoy.stats.get("wasmcustom.t.g"), 42);
    assert.deepEqual(envoy.stats.get("wasmcustom.t.h"), { count: 1, sum: 12, min: 12, max: 12, mean: 12, p50: 12, p90: 12, p99: 12 });
    envoy.shutdown();
  });

  test("one stat for every VM: counters from all workers add up", async () => {
    const { envoy, plugin } = await probeEnvoy({ concurrency: 2 });
    plugin.newStream(0).sendRequestHeaders(request("/"), true);
    plugin.newStream(1).sendRequestHeaders(request("/"), true);
    plugin.newStream(1).sendRequestHeaders(request("/"), true);
    assert.equal(envoy.stats.get("wasmcustom.probe.requests"), 3);
    const out = plugin.vms[0].alloc(8);
    assert.equal(plugin.vms[0].hostCall("proxy_get_metric", [4, out], 1), WasmResult.Ok);
    assert.equal(u64At(plugin.vms[0], out), 3n, "worker 0 reads the shared value");
    envoy.shutdown();
  });

  test("Prometheus text: prefix stripped, sanitized, no envoy_ prefix, digit-first dropped, tags extracted", async () => {
    const { envoy, plugin } = await probeEnvoy({}, { statsTags: [{ tagName: "status", regex: String.raw`\.status\.((\d+)\.)` }] });
    const vm = plugin.vms[0];
    const count = (name: string, n: bigint) => vm.hostCall("proxy_increment_metric", [define(vm, MetricType.Counter, name)[1], n], 1);
    count("myplug.status.200.requests", 1n);
    count("myplug.status.503.requests", 2n);
    count("odd-name.with:chars", 1n);
    count("9lives", 1n);
    count("upstream_rq_200", 4n);
    const text = envoy.stats.prometheus();
    const counters = text.slice(0, text.indexOf("# TYPE probe_callout_bytes gauge"));
    assert.equal(
      counters,
      [
        "# TYPE myplug_status_requests counter",
        'myplug_status_requests{status="200"} 1',
        'myplug_status_requests{status="503"} 2',
        "# TYPE odd_name_with_chars counter",
        "odd_name_with_chars{} 1",
        "# TYPE probe_requests counter",
        "probe_requests{} 0",
        "# TYPE upstream_rq counter",
        'upstream_rq{envoy_response_code="200"} 4',
        "",
      ].join("\n"),
    );
    assert.ok(!text.includes("9lives"));
    assert.ok(!text.includes("envoy_probe"));
    envoy.shutdown();
  });
});
