// Test-only module entry: the real router with one added way to fail. It is
// compiled to build/prefix_router_trap.wasm by its own asconfig target
// ("trap"), and nothing in the release entry (assembly/index.ts) imports this
// file, so the release build cannot trap on a header: the marker exists only in
// this separate binary, which no shipped configuration names.
//
// A request carrying the header `x-prefix-router-test-trap` (any value) makes
// proxy_on_request_headers execute `unreachable` before the router sees it.
// Envoy then marks this worker's VM failed (proxy-wasm-cpp-host src/v8/v8.cc
// `call` → `fail(FailState::RuntimeError, …)`) and applies the plugin's
// failure_policy to later streams (envoy source/extensions/common/wasm/wasm.cc
// `PluginConfig::createContext`). Every other request is the router's, so the
// e2e test (tests/e2e/envoy-vm-failure.test.ts) can show that the other
// workers' VMs keep routing.
//
// Why a wrapper and not a configuration switch in the router: a switch would
// ship in the release binary and be one configuration push away from
// production; a wrapper adds no byte to it.
export * from "../abi/exports";
export * from "../abi/exports_observing";
import { RootContext, StreamContext, RootContextFactory } from "../abi/contexts";
import { setRootContextFactory } from "../abi/registry";
import { LogLevel, MapType } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import * as host from "../abi/host";
import { RouterFactory } from "../router/root";

const TRAP_HEADER = String.UTF8.encode("x-prefix-router-test-trap");
const scratch = new HostBuffer();

/** Delegates every callback to the router's stream, after checking for the marker. */
class TrapStream extends StreamContext {
  constructor(id: u32, root: RootContext, private readonly inner: StreamContext) {
    super(id, root);
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    const found = host.getHeader(MapType.RequestHeaders, TRAP_HEADER, scratch) == 0;
    scratch.release();
    if (found) {
      host.log(LogLevel.Warn, "prefix-router test module: trapping on x-prefix-router-test-trap");
      unreachable();
    }
    return this.inner.onRequestHeaders(headerCount, endOfStream);
  }
  onRequestBody(bodySize: u32, endOfStream: bool): u32 { return this.inner.onRequestBody(bodySize, endOfStream); }
  onRequestTrailers(trailerCount: u32): u32 { return this.inner.onRequestTrailers(trailerCount); }
  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 { return this.inner.onResponseHeaders(headerCount, endOfStream); }
  onResponseBody(bodySize: u32, endOfStream: bool): u32 { return this.inner.onResponseBody(bodySize, endOfStream); }
  onResponseTrailers(trailerCount: u32): u32 { return this.inner.onResponseTrailers(trailerCount); }
  onLog(): void { this.inner.onLog(); }
  onDone(): void { this.inner.onDone(); }
}

/** The router's root context, handing out trap-checking streams. */
class TrapRoot extends RootContext {
  constructor(id: u32, private readonly inner: RootContext) {
    super(id);
  }

  onVmStart(vmConfigurationSize: u32): bool { return this.inner.onVmStart(vmConfigurationSize); }
  onConfigure(pluginConfigurationSize: u32): bool { return this.inner.onConfigure(pluginConfigurationSize); }
  onTick(): void { this.inner.onTick(); }
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    this.inner.onHttpCallResponse(token, headerCount, bodySize, trailerCount);
  }
  onDone(): bool { return this.inner.onDone(); }
  newStream(id: u32): StreamContext { return new TrapStream(id, this, this.inner.newStream(id)); }
}

class TrapFactory extends RootContextFactory {
  private readonly router: RouterFactory = new RouterFactory();
  create(id: u32): RootContext { return new TrapRoot(id, this.router.create(id)); }
}

setRootContextFactory(new TrapFactory());
