// The router's root context: configuration, the tick, and the streams parked
// while Envoy may or may not hold their headers.
//
// Envoy lets a filter change request headers after the body only when the
// filter config has allow_on_headers_stop_iteration: true (Envoy ≥ 1.35;
// ENVOY_HOST.md §1.5). Without it Envoy turns our headers StopIteration into
// StopAllIterationAndWatermark and delivers no body until we continue, which
// would hang the request. We cannot ask Envoy which mode it is in, so the root
// watches: a parked stream that sees no body callback within parkTimeoutMs is
// continued from the tick (routing falls back to Envoy's load balancing), and
// after three such streams in a row whose body Envoy had received but never
// delivered (request.total_size minus the header bytes), with no body seen in
// between, the root stops parking, logs what to configure, and tries one
// stream again every 30 s.
import { RootContext, StreamContext, RootContextFactory } from "../abi/contexts";
import { StreamHost } from "./stream_host";
import { BufferType, LogLevel } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import * as host from "../abi/host";
import { parseConfig, peerTokenError, Config } from "./config";
import { Router, logError } from "./router";
import { nowMs } from "./clock";
import { RouterStream } from "./stream";
import { Pass } from "./stats";
import { TickPace } from "./tick_pace";

const STREAK_TO_GIVE_UP: i32 = 3;
const REPROBE_MS: i64 = 30000;

/** Applies a period TickPace asked for; 0: keep the one running. */
function setTickPeriod(periodMs: u32): void {
  if (periodMs != 0) host.setTickPeriodMs(periodMs);
}

/**
 * peers.tokenEnv: the token from the VM's environment, checked as a token
 * written in the configuration is. Returns what is wrong, or null; a message
 * names the variable, never its value.
 */
function readPeerToken(config: Config): string | null {
  const peers = config.peers;
  if (peers === null || peers.tokenEnv.length == 0) return null;
  const name = peers.tokenEnv;
  const value = host.environmentVariable(name);
  if (value === null) {
    return "peers.tokenEnv: the Wasm VM has no environment variable " + name +
      " (Envoy: set it in Envoy's environment and name it in vm_config.environment_variables.host_env_keys)";
  }
  const bad = peerTokenError(value);
  if (bad !== null) return "peers.tokenEnv: the value of " + name + " " + bad;
  peers.token = value;
  return null;
}

export class RouterRoot extends StreamHost {
  private parked: RouterStream[] = [];
  private noBodyStreak: i32 = 0;
  /**
   * Body callbacks parked streams have had: a stream that parked at the same
   * count saw none arrive on this worker while it waited, a sign that Envoy
   * does not hold headers. A count, not a clock reading: exact, and no host
   * call per request.
   */
  private bodiesSeen: u32 = 0;
  private headersNotHeld: bool = false;
  private reprobeAtMs: i64 = 0;
  private pace: TickPace | null = null;

  onConfigure(size: u32): bool {
    host.refreshLogLevel();
    const buf = new HostBuffer();
    host.getBufferBytes(BufferType.PluginConfiguration, 0, size, buf);
    const result = parseConfig(buf.ptr, buf.size);
    buf.release();
    const config = result.config;
    if (config === null) {
      logError("invalid configuration: " + result.error);
      return false;
    }
    const tokenError = readPeerToken(config);
    if (tokenError !== null) {
      logError("invalid configuration: " + tokenError);
      return false;
    }
    host.getProperty("plugin_root_id", buf);
    const rootId = buf.toString();
    buf.release();
    this.router = new Router(config, rootId);
    const pace = new TickPace(config);
    this.pace = pace;
    host.setTickPeriodMs(pace.activeMs);
    const discovery = config.discovery;
    const endpoints = discovery !== null
      ? "endpoints of cluster \"" + discovery.cluster + "\" (up to " + discovery.maxEndpoints.toString() + ", from Envoy's admin API through \"" + discovery.adminCluster + "\")"
      : config.endpoints.length.toString() + " endpoints, index capacity " + config.effectiveCapacity().toString() + " blocks per endpoint";
    host.log(LogLevel.Info, "prefix-router: configured " + endpoints + ", " + config.hashBlockSize.toString() + "-byte blocks");
    return true;
  }

  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    const router = this.router;
    if (router !== null) router.onHttpCallResponse(token, headerCount, bodySize);
  }

  /** Envoy is done with this root (configuration replaced or VM shutting down). */
  onDone(): bool {
    const router = this.router;
    this.router = null;
    if (router !== null) router.free();
    return true;
  }

  newStream(id: u32): StreamContext {
    return new RouterStream(id, this);
  }

  // ---- parking -----------------------------------------------------------------------

  /** False while we believe Envoy will not hold headers (see the file comment). */
  mayHoldHeaders(): bool {
    if (!this.headersNotHeld) return true;
    const now = nowMs();
    if (now < this.reprobeAtMs) return false;
    this.reprobeAtMs = now + REPROBE_MS;
    return true;
  }

  /** Also the first sign of work for a VM whose ticks slowed down (tick_pace.ts): they speed up now. */
  park(s: StreamContext): void {
    const stream = changetype<RouterStream>(s);
    stream.bodiesSeenAtPark = this.bodiesSeen;
    this.parked.push(stream);
    const pace = this.pace;
    if (pace !== null) setTickPeriod(pace.wake());
  }

  /** `bodySeen`: the stream got a body callback while parked, so headers are held. */
  unpark(s: StreamContext, bodySeen: bool): void {
    const i = this.parked.indexOf(changetype<RouterStream>(s));
    if (i >= 0) this.parked.splice(i, 1);
    if (bodySeen) {
      this.noBodyStreak = 0;
      this.bodiesSeen++;
      if (this.headersNotHeld) {
        this.headersNotHeld = false;
        host.log(LogLevel.Info, "prefix-router: request bodies arrive while headers are held again; routing resumed");
      }
    }
  }

  onTick(): void {
    host.refreshLogLevel();
    const router = this.router;
    if (router === null) return;
    this.failOpenStuckStreams();
    router.onTick();
    setTickPeriod(this.pace!.afterTick(nowMs(), router.tickFoundWork || this.parked.length > 0));
  }

  private failOpenStuckStreams(): void {
    if (this.parked.length == 0) return;
    const now = nowMs();
    const timeout = <i64>this.router!.config.parkTimeoutMs;
    for (let i = this.parked.length - 1; i >= 0; i--) {
      const s = this.parked[i];
      // The wait is counted from the first tick that finds the stream parked (up to a tick late).
      if (s.parkSeenAtMs < 0) s.parkSeenAtMs = now;
      if (now - s.parkSeenAtMs < timeout) continue;
      this.parked.splice(i, 1);
      // A timeout says "headers not held" only when Envoy had body bytes for
      // the stream that it never gave us. A client that has sent no body yet
      // is just slow (passthrough.body_timeout): counting those let three slow
      // clients on one worker turn routing off for everyone for 30 s
      // (tests/e2e/envoy-requests.test.ts, late bodies). Where the host cannot
      // say, fall back to: no other body arrived during the wait.
      const received = s.bodyBytesReceived();
      const withheld = received > 0 || (received < 0 && this.bodiesSeen == s.bodiesSeenAtPark);
      s.failOpen(withheld ? Pass.HeadersNotHeld : Pass.BodyTimeout);
      if (withheld) this.noBodyStreak++;
    }
    if (this.noBodyStreak >= STREAK_TO_GIVE_UP && !this.headersNotHeld) {
      this.headersNotHeld = true;
      this.reprobeAtMs = now + REPROBE_MS;
      logError("request bodies never arrive while the headers are stopped, so the destination header " +
        "cannot be set: add `allow_on_headers_stop_iteration: true` to the Wasm filter's config " +
        "(Envoy >= 1.35). Requests pass through to Envoy's load balancing until then.");
    }
  }
}

export class RouterFactory extends RootContextFactory {
  create(id: u32): RootContext {
    return new RouterRoot(id);
  }
}
