// Garbage collection at safe points.
//
// The filter is built with AssemblyScript's minimal runtime (asconfig.json):
// a two-colour mark and sweep that runs only when asked (~lib/rt/tcms.ts
// __collect) and finds live objects from the globals alone. The incremental
// runtime it replaced collected on its own, at any allocation, so it had to
// find every object a function still held: each function kept its managed
// locals on a shadow stack in linear memory, and every store of a reference
// ran a write barrier. That bookkeeping ran on every call of the request
// path: without it a 16 KB / 64-endpoint request executes 23% fewer
// instructions (npm run bench:icount; README "Decision speed and memory").
//
// A collection is safe only where no Wasm local holds an object nothing else
// reaches: at the end of a callback from the host, after its work returned.
// The callbacks in exports.ts end with these. No callback runs inside
// another: while one runs, Envoy calls into the VM only for its malloc, and
// defers a local reply, a continue and an HTTP call's answer until the
// callback returns (ENVOY_HOST.md, proxy_send_local_response and
// proxy_continue_stream). What a request leaves behind (its
// stream's object, little else: the request path is built not to allocate)
// waits for the next collection, at most COLLECT_EVERY_STREAMS streams or one
// tick away.

/** ~lib/shared/runtime.ts Runtime.Minimal: the builds that keep the incremental runtime collect on their own. */
// @ts-ignore: decorator
@inline const MINIMAL_RUNTIME: i32 = 1;

/** Streams between collections while ticks are far apart (a busy worker's ticks can lag). */
const COLLECT_EVERY_STREAMS: u32 = 1024;

let streamsSinceCollect: u32 = 0;

/** At the end of a callback that may leave much behind (configuration, VM start): collects now. */
export function collectNow(): void {
  if (ASC_RUNTIME != MINIMAL_RUNTIME) return;
  __collect();
  streamsSinceCollect = 0;
}

/** At the end of a stream's last callback: collects every COLLECT_EVERY_STREAMS streams. */
export function collectAfterStream(): void {
  if (++streamsSinceCollect >= COLLECT_EVERY_STREAMS) collectNow();
}

/** At the end of a tick: collects what the streams since the last collection left, if any did. */
export function collectAfterTick(): void {
  if (streamsSinceCollect > 0) collectNow();
}
