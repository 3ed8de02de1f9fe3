// prefix-router module entry: the ABI exports and the router's root context.
export * from "./abi/exports";
import { setRootContextFactory } from "./abi/registry";
import { RouterFactory } from "./router/root";

setRootContextFactory(new RouterFactory());
