// Live contexts and the filter's root-context factory. Kept apart from
// exports.ts so that module entries can register a factory without these
// helpers becoming Wasm exports.
import { RootContext, StreamContext, RootContextFactory } from "./contexts";

let registered: RootContextFactory | null = null;
export const roots = new Map<u32, RootContext>();
export const streams = new Map<u32, StreamContext>();

/** Called once from module top level (it runs inside _initialize). */
export function setRootContextFactory(f: RootContextFactory): void {
  registered = f;
}

export function factory(): RootContextFactory | null {
  return registered;
}

export function rootOf(id: u32): RootContext | null {
  return roots.has(id) ? roots.get(id) : null;
}

// The stream last looked up or created: a stream's callbacks tend to come one
// after another (headers, then body), and the map's has() and get() are two
// hash lookups each time. Forgotten when that stream is deleted.
let recentId: u32 = 0;
let recent: StreamContext | null = null;

export function streamOf(id: u32): StreamContext | null {
  if (id == recentId && recent !== null) return recent;
  if (!streams.has(id)) return null;
  const s = streams.get(id);
  recentId = id;
  recent = s;
  return s;
}

export function streamCreated(id: u32, s: StreamContext): void {
  streams.set(id, s);
  recentId = id;
  recent = s;
}

export function streamDeleted(id: u32): void {
  streams.delete(id);
  if (id == recentId) {
    recentId = 0;
    recent = null;
  }
}
