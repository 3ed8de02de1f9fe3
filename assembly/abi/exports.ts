// The proxy_on_* callbacks a filter needs, as one-line dispatches to the
// context objects in contexts.ts. Re-exported by each module entry (index.ts,
// probe.ts, floor.ts). proxy_on_log, proxy_on_response_trailers and
// proxy_on_delete are in exports_observing.ts: the host calls a callback only
// if the module exports it (cpp-host src/context.cc onLog,
// onResponseTrailers, onDelete), and the router needs none of them (on_done
// forgets the context, below), so it leaves them out and saves Envoy two calls
// into the VM per request.
//
// Context bookkeeping follows cpp-host: proxy_on_context_create(id, 0) creates a
// root context, (id, root) a stream under that root (src/context.cc). A callback
// for an id we do not know (which Envoy should never send) is answered inertly
// instead of trapping: a trap would fail the whole VM and every stream on it.
import { factory, roots, rootOf, streamOf, streamCreated, streamDeleted } from "./registry";
import { HeadersAction, DataAction } from "./enums";
import { collectNow, collectAfterStream, collectAfterTick } from "./collect";

export { malloc } from "./memory";
// Pulls in the global abort handler that asconfig.json names with --use abort=.
import "./abort";

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_context_create(contextId: u32, parentId: u32): void {
  if (parentId == 0) {
    const f = factory();
    if (f !== null) roots.set(contextId, f.create(contextId));
    return;
  }
  const root = rootOf(parentId);
  if (root === null) return;
  streamCreated(contextId, root.newStream(contextId));
}

export function proxy_on_vm_start(rootId: u32, vmConfigurationSize: u32): u32 {
  const root = rootOf(rootId);
  const ok = root !== null && root.onVmStart(vmConfigurationSize);
  collectNow();
  return ok ? 1 : 0;
}

export function proxy_on_configure(rootId: u32, pluginConfigurationSize: u32): u32 {
  const root = rootOf(rootId);
  const ok = root !== null && root.onConfigure(pluginConfigurationSize);
  collectNow(); // a configuration's parse leaves its JSON values behind, and a replaced router
  return ok ? 1 : 0;
}

export function proxy_on_tick(rootId: u32): void {
  const root = rootOf(rootId);
  if (root !== null) root.onTick();
  collectAfterTick();
}

export function proxy_on_http_call_response(rootId: u32, token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  const root = rootOf(rootId);
  if (root !== null) root.onHttpCallResponse(token, headerCount, bodySize, trailerCount);
}

export function proxy_on_request_headers(id: u32, headerCount: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s !== null ? s.onRequestHeaders(headerCount, endOfStream != 0) : HeadersAction.Continue;
}

export function proxy_on_request_body(id: u32, bodySize: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s !== null ? s.onRequestBody(bodySize, endOfStream != 0) : DataAction.Continue;
}

export function proxy_on_request_trailers(id: u32, trailerCount: u32): u32 {
  const s = streamOf(id);
  return s !== null ? s.onRequestTrailers(trailerCount) : 0;
}

export function proxy_on_response_headers(id: u32, headerCount: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s !== null ? s.onResponseHeaders(headerCount, endOfStream != 0) : HeadersAction.Continue;
}

export function proxy_on_response_body(id: u32, bodySize: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s !== null ? s.onResponseBody(bodySize, endOfStream != 0) : DataAction.Continue;
}

/**
 * The context's end, and its deletion: Envoy calls proxy_on_delete right after
 * proxy_on_done for every stream (envoy source/extensions/common/wasm/context.cc
 * Context::onDestroy) and for a root that on_done says is done (cpp-host
 * src/wasm.cc startShutdown), so the context is forgotten here and
 * proxy_on_delete is not exported: one call into the VM fewer per request. A
 * root that is not done yet (none of this filter's) stays registered.
 */
export function proxy_on_done(id: u32): u32 {
  const s = streamOf(id);
  if (s !== null) {
    s.onDone();
    streamDeleted(id);
    collectAfterStream();
    return 1;
  }
  const root = rootOf(id);
  if (root === null) return 1;
  if (!root.onDone()) return 0;
  roots.delete(id);
  return 1;
}
