// Follows the routed cluster's membership: one VM polls Envoy's admin API
// (`GET /clusters?filter=^<cluster>$` through the admin guard cluster,
// admin_clusters.ts) every intervalMs and publishes the members it read in
// shared data (membership.ts); every VM, the poller included, reads the
// record back on its tick and makes its endpoint slots follow it
// (endpoints.ts).
//
// A failed poll (no such cluster, no answer, a status other than 200, an
// answer that names no such cluster) changes nothing: the last membership
// stays, the failure is counted, and the first failure after a success is
// logged with its reason, the recovery once too.
import * as host from "../abi/host";
import { WasmResult, MapType, BufferType, LogLevel } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import { encodePairs } from "../abi/pairs";
import { ByteSink } from "./bytes";
import { DiscoveryConfig } from "./config";
import { Lease } from "./lease";
import { PublishedValue } from "./published";
import { MemberRecordWriter } from "./membership";
import { readClusterHosts, adminClustersPath, ClustersAnswer } from "./admin_clusters";
import { MAX_ANSWER_BYTES } from "./limits";

const LEASE_INTERVALS: i64 = 3;

@final
export class Discovery {
  private lease: Lease;
  private adminCluster: ArrayBuffer;
  private clusterName: ArrayBuffer;
  private requestHeaders: ArrayBuffer;
  /** The membership record in shared data: <ns>members, versioned by <ns>members_version. */
  private shared: PublishedValue;
  private buf: HostBuffer = new HostBuffer();
  private writer: MemberRecordWriter;
  /** The record this VM last published, to publish only changes. */
  private published: ByteSink;
  private publishedOnce: bool = false;
  private token: u32 = 0;
  private dispatchedAtMs: i64 = 0;
  private nextPollMs: i64 = 0;
  private holding: bool = false;
  private failing: bool = false;
  /** The last record read from shared data (owned). */
  readonly record: HostBuffer = new HostBuffer();
  /** Polls answered and failed since the router last took them (for its counters). */
  polls: u32 = 0;
  failures: u32 = 0;
  /** Hosts the last poll left out because they exceed maxEndpoints. */
  overLimit: i32 = 0;

  /** `role` names the poller in its log lines ("endpoint discovery"; peers.ts follows its replicas with one too). */
  constructor(readonly config: DiscoveryConfig, namespace: string, vmTag: u32, private role: string = "endpoint discovery") {
    this.lease = new Lease(namespace + "discovery_lease", vmTag);
    this.adminCluster = String.UTF8.encode(config.adminCluster);
    this.clusterName = String.UTF8.encode(config.cluster);
    this.requestHeaders = encodePairs(
      [":method", ":path", ":authority", "accept"],
      ["GET", adminClustersPath(config.cluster), "envoy-admin", "text/plain"]);
    this.shared = new PublishedValue(namespace + "members", namespace + "members_version", vmTag);
    const writer = new MemberRecordWriter(config.maxEndpoints);
    this.writer = writer;
    this.published = new ByteSink(writer.sink.cap);
  }

  /**
   * Whether the record last read is one this VM published: that VM counts
   * the change, once for the proxy. Not "the VM holding the lease when it
   * applies a record": a VM that took the lease just before applying the
   * last holder's record counted that change a second time (seen in real
   * Envoy with two workers: 6 endpoints added for 4).
   */
  recordIsOwn(): bool { return this.shared.lastReadIsOwn(); }

  free(): void {
    this.lease.free();
    this.shared.free();
    this.writer.free();
    this.published.free();
    this.record.release();
    this.buf.release();
  }

  /** Lease and poll when due; returns true when a new record was read into `record`. */
  tick(now: i64): bool {
    if (now >= this.nextPollMs) {
      const interval = <i64>this.config.intervalMs;
      this.nextPollMs = now + interval;
      this.holding = this.lease.acquire(now, now + LEASE_INTERVALS * interval);
      if (this.holding) this.poll(now);
    }
    return this.shared.readIfChanged(this.record);
  }

  private poll(now: i64): void {
    const c = this.config;
    // One poll in flight; Envoy answers every callout (a timeout is a 504),
    // but do not wait forever on a lost one.
    if (this.token != 0 && now - this.dispatchedAtMs < <i64>c.timeoutMs + <i64>c.intervalMs) return;
    if (this.token != 0) this.fail("no answer from cluster \"" + c.adminCluster + "\" within " + c.timeoutMs.toString() + " ms");
    this.token = host.httpCall(this.adminCluster, this.requestHeaders, <u32>c.timeoutMs);
    this.dispatchedAtMs = now;
    if (this.token == 0) {
      this.fail("Envoy refused the callout: is cluster \"" + c.adminCluster + "\" defined?");
    }
  }

  /** Handles a callout answer if it is the poll's; false for any other token. */
  onResponse(token: u32, headerCount: u32, bodySize: u32): bool {
    if (token == 0 || token != this.token) return false;
    this.token = 0;
    if (headerCount == 0 || !host.statusIs200(MapType.HttpCallResponseHeaders, this.buf)) {
      this.fail("cluster \"" + this.config.adminCluster + "\" answered GET " +
        adminClustersPath(this.config.cluster) + " with an error");
      return true;
    }
    if (bodySize > MAX_ANSWER_BYTES) {
      this.fail("the admin answer is larger than " + MAX_ANSWER_BYTES.toString() + " bytes");
      return true;
    }
    if (host.getBufferBytes(BufferType.HttpCallResponseBody, 0, bodySize, this.buf) != WasmResult.Ok && bodySize > 0) {
      this.buf.release();
      this.fail("the admin answer's body could not be read");
      return true;
    }
    const outcome = readClusterHosts(this.buf.ptr, this.buf.size, this.clusterName, this.writer);
    this.buf.release();
    if (outcome == ClustersAnswer.UnknownCluster) {
      this.fail("Envoy's admin API lists no cluster \"" + this.config.cluster + "\"");
      return true;
    }
    this.polls++;
    this.overLimit = this.writer.overflow;
    if (this.failing) {
      this.failing = false;
      host.log(LogLevel.Info, "prefix-router: " + this.role + " answers again; following cluster \"" + this.config.cluster + "\"");
    }
    if (this.holding) this.publish();
    return true;
  }

  private fail(reason: string): void {
    this.failures++;
    if (this.failing) return;
    this.failing = true;
    host.log(LogLevel.Error, "prefix-router: " + this.role + " failed, keeping the last membership: " + reason);
  }



  private publish(): void {
    const w = this.writer.sink;
    if (this.publishedOnce && w.equals(this.published)) return;
    this.publishedOnce = true;
    this.published.reset();
    this.published.writeBytes(w.ptr, w.len);
    this.shared.publish(w.ptr, w.len);
  }
}
