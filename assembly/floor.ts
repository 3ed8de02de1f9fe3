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
//
// Configured with the text ROUTER_HOST_CALLS where the router takes its JSON,
// it also makes the host calls the router makes for a decision
// (tests/bench/floor.test.ts holds the two to the same calls): the header map
// read whole, the monotonic clock, the journal's page read and its
// compare-and-swap write, and a ring slot's write, with the router's sizes for
// one VM. Against the plain floor it prices the calls between Envoy and the VM
// that the router needs (npm run bench:envoy-ab -- --wasm
// floor,floor-calls,build/prefix_router.wasm); the rest of what the router
// adds is its own code.
export * from "./abi/exports";
import { RootContext, StreamContext, RootContextFactory } from "./abi/contexts";
import { setRootContextFactory } from "./abi/registry";
import { HostBuffer } from "./abi/memory";
import { HeadersAction, DataAction, BufferType, MapType } from "./abi/enums";
import * as host from "./abi/host";
import { EVENT_HEADER_BYTES } from "./router/journal";
import { PAGE_EVENTS_PER_VM } from "./router/limits";

/** The generator's default destination header (scripts/gateway/config.ts). */
const DESTINATION = String.UTF8.encode("x-gateway-destination-endpoint");
const body = new HostBuffer();
/** Sum of the bodies' first bytes: reading the copy keeps it from being optimized away. */
let firstBytes: u64 = 0;

/** The plugin configuration that turns the router's host calls on. */
const ROUTER_HOST_CALLS = "router-host-calls";
let routerHostCalls = false;
const headerMap = new HostBuffer();
const page = new HostBuffer();
/** One decision's journal event: a 16 KB prompt's 16 index entries (indexStride 16), no releases. */
const EVENT_BYTES: usize = EVENT_HEADER_BYTES + 16 * 8;
/** A page of one VM's events (the page's 16-byte header and PAGE_EVENTS_PER_VM events). */
const PAGE_BYTES: usize = 16 + <usize>PAGE_EVENTS_PER_VM * EVENT_BYTES;
const pageImage = new ArrayBuffer(<i32>PAGE_BYTES);
const event = new ArrayBuffer(<i32>EVENT_BYTES);
const PAGE_KEY = String.UTF8.encode("prefix-router/floor/journal/page");
/** Slot keys "…/slot/NNNN": a ring of 1024, as the router writes one key per event. */
const SLOT_KEY = String.UTF8.encode("prefix-router/floor/journal/slot/0000");
const SLOT_DIGITS: usize = 4;
let appended: u32 = 0;

/** The router's journal append: the page read, its CAS write, the event's ring slot. */
function appendLikeTheRouter(): void {
  host.getSharedData(changetype<usize>(PAGE_KEY), PAGE_KEY.byteLength, page);
  const cas = page.cas;
  page.release();
  host.setSharedData(changetype<usize>(PAGE_KEY), PAGE_KEY.byteLength, changetype<usize>(pageImage), PAGE_BYTES, cas);
  let k = appended++ % 1024;
  const digits = changetype<usize>(SLOT_KEY) + <usize>SLOT_KEY.byteLength - SLOT_DIGITS;
  for (let i: usize = 0; i < SLOT_DIGITS; i++) {
    store<u8>(digits + SLOT_DIGITS - 1 - i, <u8>(0x30 + k % 10));
    k /= 10;
  }
  host.setSharedData(changetype<usize>(SLOT_KEY), SLOT_KEY.byteLength, changetype<usize>(event), EVENT_BYTES, 0);
}

class FloorStream extends StreamContext {
  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    host.removeHeader(MapType.RequestHeaders, DESTINATION);
    if (routerHostCalls) {
      host.getHeaderPairs(MapType.RequestHeaders, headerMap);
      if (headerMap.size > 0) firstBytes += load<u8>(headerMap.ptr);
      headerMap.release();
    }
    return endOfStream ? HeadersAction.Continue : HeadersAction.StopIteration;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): u32 {
    if (!endOfStream) return DataAction.StopIterationAndBuffer;
    host.getBufferBytes(BufferType.HttpRequestBody, 0, bodySize, body);
    if (body.size > 0) firstBytes += load<u8>(body.ptr);
    body.release();
    if (routerHostCalls) firstBytes += host.monotonicNanos() & 1;
    host.replaceHeader(MapType.RequestHeaders, DESTINATION, changetype<usize>(DESTINATION), 0);
    if (routerHostCalls) appendLikeTheRouter();
    return DataAction.Continue;
  }
}

class FloorRoot extends RootContext {
  onConfigure(pluginConfigurationSize: u32): bool {
    const text = new HostBuffer();
    host.getBufferBytes(BufferType.PluginConfiguration, 0, pluginConfigurationSize, text);
    routerHostCalls = text.toString() == ROUTER_HOST_CALLS;
    text.release();
    return true;
  }

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
