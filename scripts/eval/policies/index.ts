// The policy registry: every policy name the report knows, in report order,
// and the factory behind it. Owns: names and order. Must not: implement
// policies. A name whose factory is absent is skipped with a note.

import type { PolicyFactory } from "../policy.ts";
import { chwblPolicy, leastRequest, random, roundRobin } from "./baselines.ts";
import { gaiePolicy } from "./gaie.ts";
import { oracle } from "./oracle.ts";
import { prefixRouterPolicy } from "./prefix-router.ts";

export const POLICY_NAMES = ["random", "round-robin", "least-request", "chwbl", "gaie-approx", "prefix-router", "oracle"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export const REGISTRY: Readonly<Record<PolicyName, PolicyFactory | undefined>> = Object.freeze({
  random,
  "round-robin": roundRobin,
  "least-request": leastRequest,
  chwbl: chwblPolicy(),
  "gaie-approx": gaiePolicy(),
  // The built .wasm driven through the host emulator (prefix-router.ts).
  "prefix-router": prefixRouterPolicy(),
  oracle,
});
