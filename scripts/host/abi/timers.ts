// Time host calls (cpp-host src/exports.cc set_tick_period_milliseconds /
// get_current_time_nanoseconds). The tick belongs to the root context of the
// calling context, in this VM only (src/context.cc setTimerPeriod).
import { WasmResult } from "../enums.ts";
import type { HostFunctions } from "./index.ts";

export const TIMER_FUNCTIONS: HostFunctions = {
  proxy_set_tick_period_milliseconds(vm, periodMs: number) {
    const context = vm.contextOrEffectiveContext();
    vm.setTimerPeriod(context.rootContext().id, periodMs);
    return WasmResult.Ok;
  },

  proxy_get_current_time_nanoseconds(vm, resultPtr: number) {
    vm.contextOrEffectiveContext();
    const ns = BigInt(Math.round(vm.services.clock.now() * 1e6));
    return vm.setU64(resultPtr, ns) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  },
};
