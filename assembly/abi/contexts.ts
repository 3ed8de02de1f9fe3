// Context base classes with no-op defaults. A filter subclasses RootContext and
// StreamContext and registers a RootContextFactory; exports.ts routes each
// proxy_on_* callback to the right object. Defaults answer the way a filter
// that does nothing would (continue, success), so an unhandled callback is inert.
import { HeadersAction, DataAction } from "./enums";

export abstract class StreamContext {
  constructor(public readonly id: u32, public readonly root: RootContext) {}

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 { return HeadersAction.Continue; }
  onRequestBody(bodySize: u32, endOfStream: bool): u32 { return DataAction.Continue; }
  onRequestTrailers(trailerCount: u32): u32 { return 0; }
  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 { return HeadersAction.Continue; }
  onResponseBody(bodySize: u32, endOfStream: bool): u32 { return DataAction.Continue; }
  onResponseTrailers(trailerCount: u32): u32 { return 0; }
  /** Access-log time: Envoy calls it only for completed requests (before onDone). */
  onLog(): void {}
  /** The stream is over, completed or reset. The return value is ignored by Envoy. */
  onDone(): void {}
}

export abstract class RootContext {
  constructor(public readonly id: u32) {}

  onVmStart(vmConfigurationSize: u32): bool { return true; }
  onConfigure(pluginConfigurationSize: u32): bool { return true; }
  onTick(): void {}
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {}
  /** Returning true lets the host delete the root context right away. */
  onDone(): bool { return true; }
  abstract newStream(id: u32): StreamContext;
}

export abstract class RootContextFactory {
  abstract create(id: u32): RootContext;
}
