// The public API of the proxy-wasm host emulator, in three groups: configure the
// emulated Envoy (Envoy, options, clocks, clusters), drive a plugin (Plugin,
// HttpStream, VirtualClock.advance, Envoy.settle), inspect the host (logs,
// stats, shared data, pending callouts, VM state). Module inspection
// (inspectModule) serves tests that check a .wasm without running it.
export { Envoy, ConfigRejectedError } from "./envoy.ts";
export type { EnvoyOptions, HttpFilterOptions } from "./envoy.ts";
export { VirtualClock, RealClock, withOwnMonotonicOrigin } from "./clock.ts";
export type { Clock, TimerHandle } from "./clock.ts";
export type { Plugin, FailurePolicy } from "./plugin.ts";
export type { HttpStream, Message, DownstreamResponse, LocalResponse } from "./stream.ts";
export { bodyText } from "./stream.ts";
export type { Vm, FailState } from "./vm.ts";
export type { LogEntry, PluginInfo } from "./services.ts";
export type { ClusterConfig, CalloutRequest, CalloutReply, PendingCallout } from "./callouts.ts";
export type { StatsTagRule, HistogramSummary } from "./stats.ts";
export type { SharedDataView, SharedEntry } from "./shared-data.ts";
export type { HeaderInput, HeaderList } from "./header-map.ts";
export { inspectModule, ModuleLoadError } from "./module.ts";
export type { InspectedModule } from "./module.ts";
export { encodePairs, decodePairs } from "./pairs.ts";
export { WasmResult, BufferType, MapType, StreamType, MetricType } from "./enums.ts";
export type { HeadersStatus, DataStatus, TrailersStatus, LogLevelName, AbiVersion } from "./enums.ts";
