// The floor of the real-Envoy load test (npm run bench:envoy): the least a
// filter that routes on the request body does in Envoy, with the same ABI
// layer as the router and none of its work. Per request it removes the
// destination header (a client must not choose its upstream), holds the
// headers, buffers the body to its end, copies it into the module, and sets
// the destination header; it picks no endpoint (the value is empty, so
// override_host falls back to round robin, as the plain Envoy does). What the
// router costs beyond this Envoy is its own work; what this costs beyond
// Envoy without a Wasm filter is the price of any body-reading Wasm filter.
// Built as build/floor.wasm; bench equipment, it never ships.
export * from "./abi/exports";
import { RootContext, StreamContext, RootContextFactory } from "./abi/contexts";
import { setRootContextFactory } from "./abi/registry";
import { HostBuffer } from "./abi/memory";
import { HeadersAction, DataAction, BufferType, MapType } from "./abi/enums";
import * as host from "./abi/host";

/** The generator's default destination header (scripts/gateway/config.ts). */
const DESTINATION = String.UTF8.encode("x-gateway-destination-endpoint");
const body = new HostBuffer();
/** Sum of the bodies' first bytes: reading the copy keeps it from being optimized away. */
let firstBytes: u64 = 0;

class FloorStream extends StreamContext {
  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    host.removeHeader(MapType.RequestHeaders, DESTINATION);
    return endOfStream ? HeadersAction.Continue : HeadersAction.StopIteration;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): u32 {
    if (!endOfStream) return DataAction.StopIterationAndBuffer;
    host.getBufferBytes(BufferType.HttpRequestBody, 0, bodySize, body);
    if (body.size > 0) firstBytes += load<u8>(body.ptr);
    body.release();
    host.replaceHeader(MapType.RequestHeaders, DESTINATION, changetype<usize>(DESTINATION), 0);
    return DataAction.Continue;
  }
}

class FloorRoot extends RootContext {
  newStream(id: u32): StreamContext {
    return new FloorStream(id, this);
  }
}

class FloorFactory extends RootContextFactory {
  create(id: u32): RootContext {
    return new FloorRoot(id);
  }
}

setRootContextFactory(new FloorFactory());

/** Exported so that the optimizer keeps the reads of every body. */
export function floor_first_bytes(): u64 {
  return firstBytes;
}
