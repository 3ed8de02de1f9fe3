// Metric host calls (cpp-host src/exports.cc *_metric; semantics from envoy
// source/extensions/common/wasm/context.cc defineMetric / incrementMetric /
// recordMetric / getMetric). Ids are per VM, (n * 4) | type; the stat is the
// process-wide "wasmcustom.<name>", so every VM adds into the same counter.
import { MetricType, WasmResult } from "../enums.ts";
import { CUSTOM_STAT_NAMESPACE, METRIC_TYPE_MASK } from "../limits.ts";
import type { HostFunctions } from "./index.ts";
import { readString } from "./memory.ts";

export const METRIC_FUNCTIONS: HostFunctions = {
  proxy_define_metric(vm, type: number, namePtr: number, nameSize: number, idPtr: number) {
    vm.contextOrEffectiveContext();
    const name = readString(vm, namePtr, nameSize);
    if (name === null) return WasmResult.InvalidMemoryAccess;
    if (type > MetricType.MAX) return WasmResult.BadArgument;
    const full = `${CUSTOM_STAT_NAMESPACE}.${name}`;
    const stats = vm.services.stats;
    const stat = type === MetricType.Counter ? stats.counter(full) : type === MetricType.Gauge ? stats.gauge(full) : stats.histogram(full);
    const id = vm.nextMetricId(type);
    vm.metrics.set(id, stat);
    return vm.setWord(idPtr, id) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },

  proxy_increment_metric(vm, id: number, offsetU64: bigint) {
    vm.contextOrEffectiveContext();
    const offset = BigInt.asIntN(64, offsetU64);
    const type = id & METRIC_TYPE_MASK;
    const stat = vm.metrics.get(id);
    if (type === MetricType.Counter) {
      if (stat?.kind !== "counter") return WasmResult.NotFound;
      if (offset <= 0n) return WasmResult.BadArgument;
      stat.add(offset);
      return WasmResult.Ok;
    }
    if (type === MetricType.Gauge) {
      if (stat?.kind !== "gauge") return WasmResult.NotFound;
      if (offset > 0n) stat.add(offset);
      else stat.sub(-offset);
      return WasmResult.Ok;
    }
    return WasmResult.BadArgument;
  },

  proxy_record_metric(vm, id: number, value: bigint) {
    vm.contextOrEffectiveContext();
    const stat = vm.metrics.get(id);
    // A counter record adds; a gauge record sets; a histogram records a sample.
    if (stat?.kind === "counter") stat.add(value);
    else if (stat?.kind === "gauge") stat.set(value);
    else if (stat?.kind === "histogram") stat.record(value);
    else return WasmResult.NotFound;
    return WasmResult.Ok;
  },

  proxy_get_metric(vm, id: number, resultPtr: number) {
    vm.contextOrEffectiveContext();
    const type = id & METRIC_TYPE_MASK;
    if (type !== MetricType.Counter && type !== MetricType.Gauge) return WasmResult.BadArgument;
    const stat = vm.metrics.get(id);
    if (stat === undefined || stat.kind === "histogram") return WasmResult.NotFound;
    return vm.setU64(resultPtr, stat.value) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },
};
