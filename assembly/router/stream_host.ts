// What a request stream needs from its root context: the router, and the
// parking of streams whose body has not come yet. Streams see the root only
// through this class, so root.ts (which creates streams) and stream.ts do not
// import each other.
import { RootContext, StreamContext } from "../abi/contexts";
import { Router } from "./router";

export abstract class StreamHost extends RootContext {
  /** The router of the current configuration; null before one was accepted and after the root is done. */
  router: Router | null = null;
  /** False while Envoy is believed not to hold request headers while the body arrives (root.ts). */
  abstract mayHoldHeaders(): bool;
  /** A stream stopped its headers to wait for its body (it is about to be routed). */
  abstract park(s: StreamContext): void;
  /** The stream's wait is over; `bodySeen`: a body callback came while it waited. */
  abstract unpark(s: StreamContext, bodySeen: bool): void;
}
