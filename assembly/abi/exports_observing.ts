// The callbacks only a module that observes every stream's end exports: the
// ABI probe (which records what Envoy passes to each) and the trap harness.
// The router leaves them out (exports.ts says why).
import { streamOf } from "./registry";

export function proxy_on_response_trailers(id: u32, trailerCount: u32): u32 {
  const s = streamOf(id);
  return s !== null ? s.onResponseTrailers(trailerCount) : 0;
}

export function proxy_on_log(id: u32): void {
  const s = streamOf(id);
  if (s !== null) s.onLog();
}

/**
 * Exported so that the probe sees Envoy's call; proxy_on_done (exports.ts)
 * has already forgotten the context by then.
 */
export function proxy_on_delete(id: u32): void {}
