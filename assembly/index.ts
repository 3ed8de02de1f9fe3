// prefix-router module entry: the ABI exports and the router's root context.
export * from "./abi/exports";
import { setRootContextFactory } from "./abi/registry";
import { RouterFactory } from "./router/root";
import { xxh64 } from "./router/hash";

setRootContextFactory(new RouterFactory());

/**
 * Diagnostic export for `npm run bench`: one xxHash64 pass over [ptr, ptr+len),
 * the yardstick the decision cost is compared with in the same module. Envoy
 * never calls it; it reads memory and has no side effects.
 */
export function prefix_router_hash_pass(ptr: usize, len: usize): u64 {
  return xxh64(ptr, len, 0);
}
