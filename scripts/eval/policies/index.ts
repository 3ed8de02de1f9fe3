// The policy registry: every policy name the report knows, in report order,
// and the factory behind it. Owns: names and order. Must not: implement
// policies. A name whose factory is absent is skipped with a note.

import type { PolicyFactory } from "../policy.ts";
import { chwblPolicy, leastRequest, random, roundRobin } from "./baselines.ts";
import { aibrixPolicy } from "./aibrix.ts";
import { dynamoPolicy } from "./dynamo.ts";
import { gaiePolicy } from "./gaie.ts";
import { llmdApproxPolicy, llmdPrecisePolicy } from "./llmd.ts";
import { oracle } from "./oracle.ts";
import { sglangPolicy } from "./sglang.ts";
import { prefixRouterPolicy, prefixRouterPeersPolicy } from "./prefix-router.ts";

export const POLICY_NAMES = [
  "random", "round-robin", "least-request", "chwbl",
  "gaie-approx", "llm-d-approx", "llm-d-precise", "sglang-cache-aware", "aibrix-prefix", "dynamo-kv",
  "prefix-router", "oracle",
] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export const REGISTRY: Readonly<Record<PolicyName, PolicyFactory | undefined>> = Object.freeze({
  random,
  "round-robin": roundRobin,
  "least-request": leastRequest,
  chwbl: chwblPolicy(),
  "gaie-approx": gaiePolicy(),
  "llm-d-approx": llmdApproxPolicy(),
  "llm-d-precise": llmdPrecisePolicy(),
  "sglang-cache-aware": sglangPolicy(),
  "aibrix-prefix": aibrixPolicy(),
  "dynamo-kv": dynamoPolicy(),
  // The built .wasm driven through the host emulator (prefix-router.ts).
  "prefix-router": prefixRouterPolicy(),
  // The same, its Envoy replicas trading decisions (assembly/router/peers.ts); one gateway alone routes as prefix-router.
  "prefix-router-peers": prefixRouterPeersPolicy(),
  oracle,
});
