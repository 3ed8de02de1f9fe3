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
