// Envoy replicas that tell each other where they sent prompts.
//
// Replicas in front of the same servers otherwise share nothing: a
// conversation's next turn that reaches another replica finds nothing in its
// index and is placed by rendezvous hashing, which agrees with the replica
// that routed the last turn only while the two judge the servers' load alike
// (README "Several Envoy replicas"). Routers fed by the servers' KV-cache
// events (llm-d's precise prefix-cache scorer, Dynamo's KV router) do not have
// this problem, because the servers tell every replica; a proxy-wasm filter
// cannot subscribe to those event streams (ZMQ, NATS), but it can make HTTP
// callouts, and it can answer a request itself. So each replica asks every
// other, once per intervalMs, for the routing decisions it made since the
// last ask, and puts them into its own journal (journal.ts) as decisions of a
// peer: every VM of this Envoy then places their blocks in its index and
// counts their prefill as work ahead at their endpoints, as for another
// worker's decision (router.ts placePeerDecision), but counts nothing in
// flight (that request is the other Envoy's to count, and the servers' pages
// show it).
//
// The replicas are a static list (peers.addresses) or the hosts of an Envoy
// cluster (peers.members: e.g. STRICT_DNS over a Kubernetes headless Service,
// whose pods come and go), read from Envoy's admin API through the admin
// guard as endpoint discovery reads the model cluster (discovery.ts).
//
// Asking: one VM of the Envoy asks (it holds <ns>peers_lease), one ask in
// flight per peer, `GET <path>?since=<seq>&instance=<id>` through an
// ORIGINAL_DST cluster with x-envoy-original-dst-host set to the peer's
// address, as scrapes are sent (scraper.ts). The answer (peer_answer.ts)
// holds the peer's own decisions from that seq on, up to
// MAX_PEER_ANSWER_BYTES, and the seq to ask from next. A peer that answers
// with this Envoy's own instance id is this Envoy (the list is the same
// everywhere): it is asked no more.
//
// Where to ask each peer from next (its instance and seq, the "cursor") is
// kept in shared data (<ns>peer_cursor <address>), not in the asking VM: the
// lease passes to another VM whenever its holder misses a renewal (a thread
// held up for 3 intervals), and a VM with a cursor of its own would then ask
// from where it last asked, or from the peer's oldest decision, and take in
// again every decision since (real Envoy, 2 workers, the process stopped for
// 600 ms: 6 decisions imported 12 times). An answer is taken in only by the
// VM that moves the cursor on from where its ask began (CAS), so an answer
// to an ask the previous holder still had in flight is not taken in twice.
//
// Answering: any worker VM answers a GET to `path` that carries the shared
// token (x-prefix-router-peer-token, compared in constant time), from the
// journal ring in shared data, with the decisions this Envoy made itself:
// decisions it took in from peers are never passed on, so nothing echoes
// between replicas and each decision crosses each link once. A GET to the
// path without the right token is not answered: it goes on as any request
// would. The answer reveals only block hashes (seeded by the model, blocks of
// prompts) and endpoint keys, but the token still keeps it from clients.
import * as host from "../abi/host";
import { WasmResult, MapType, BufferType, LogLevel } from "../abi/enums";
import { HostBuffer } from "../abi/memory";
import { encodePairs, PairsReader } from "../abi/pairs";
import { PeersConfig, PEER_TOKEN_HEADER } from "./config";
import { Journal, EVENT_HEADER_BYTES, PEER_TAG } from "./journal";
import { EndpointKeys } from "./endpoint_keys";
import { Lease } from "./lease";
import { PeerAnswerWriter, PeerAnswerReader } from "./peer_answer";
import { Discovery } from "./discovery";
import { Member, MemberRecordReader } from "./membership";
import { xxh64String, mix64 } from "./hash";
import { pathBeforeQuery, sameBytes } from "./request_head";
import { MAX_PEER_ANSWER_BYTES } from "./limits";
import { nowMs } from "./clock";

const LEASE_INTERVALS: i64 = 3;
const SINCE = String.UTF8.encode("since=");
const INSTANCE = String.UTF8.encode("instance=");
const TOKEN_HEADER = String.UTF8.encode(PEER_TOKEN_HEADER);
const ANSWER_DETAILS = String.UTF8.encode("prefix_router_peer_answer");

/** One replica this filter asks. */
@final
class Peer {
  /** The callout in flight (0: none). */
  token: u32 = 0;
  dispatchedAtMs: i64 = 0;
  /** The seq to ask from, in the journal of `instance`: the shared cursor as the ask in flight read it. */
  since: u64 = 0;
  instance: u64 = 0;
  /** The cursor's CAS token when the ask in flight read it. */
  cursorCas: u32 = 0;
  /** The address is this Envoy's own. */
  isSelf: bool = false;
  failing: bool = false;
  /** Its cursor's shared-data key. */
  readonly cursorKey: ArrayBuffer;
  constructor(readonly address: string, namespace: string) {
    this.cursorKey = String.UTF8.encode(namespace + "peer_cursor " + address);
  }
}

const CURSOR_BYTES: usize = 16;

@final
export class Peers {
  private lease: Lease;
  private namespace: string;
  /** With peers.members: follows the replicas' cluster (the list changes as they come and go). */
  private members: Discovery | null;
  private memberReader: MemberRecordReader = new MemberRecordReader();
  private cluster: ArrayBuffer;
  private token: ArrayBuffer;
  /** peers.path, the bytes an ask's :path starts with. */
  private path: ArrayBuffer;
  private list: Peer[] = [];
  private instanceKey: ArrayBuffer;
  private instanceId: u64 = 0;
  /** What makes index entries comparable between filters (peer_answer.ts `format`). */
  readonly format: u64;
  private nextAskMs: i64 = 0;
  private holding: bool = false;
  private buf: HostBuffer = new HostBuffer();
  private cursorBuf: HostBuffer = new HostBuffer();
  private cursorScratch: usize = heap.alloc(CURSOR_BYTES);
  private reader: PeerAnswerReader = new PeerAnswerReader();
  private writer: PeerAnswerWriter | null = null;
  private pairs: PairsReader = new PairsReader();
  private answerHeaders: ArrayBuffer = encodePairs(["content-type", "cache-control"], ["application/octet-stream", "no-store"]);
  // Counts since the router last took them (for its counters).
  asks: u32 = 0;
  askFailures: u32 = 0;
  imported: u32 = 0;
  answered: u32 = 0;
  refused: u32 = 0;
  memberPollFailures: u32 = 0;

  constructor(readonly config: PeersConfig, namespace: string, formatKey: string, vmTag: u32, private journal: Journal, private keys: EndpointKeys) {
    this.lease = new Lease(namespace + "peers_lease", vmTag);
    this.cluster = String.UTF8.encode(config.cluster);
    this.token = String.UTF8.encode(config.token);
    this.instanceKey = String.UTF8.encode(namespace + "instance");
    this.format = xxh64String(formatKey);
    this.path = String.UTF8.encode(config.path);
    this.namespace = namespace;
    for (let i = 0; i < config.addresses.length; i++) this.list.push(new Peer(config.addresses[i], namespace));
    const members = config.members;
    this.members = members !== null ? new Discovery(members, namespace + "peers/", vmTag, "peer discovery") : null;
  }

  /**
   * The replicas are now the members the record lists, less those Envoy does
   * not count healthy: a peer that stays keeps its cursor and any ask in
   * flight; the answer to an ask sent to one that left is ignored.
   */
  private follow(record: HostBuffer): void {
    const r = this.memberReader;
    if (!r.open(record.ptr, record.size)) return;
    const next: Peer[] = [];
    while (r.next()) {
      if (r.state == Member.Excluded) continue;
      const address = String.UTF8.decodeUnsafe(r.address, r.length);
      let peer: Peer | null = null;
      for (let i = 0; i < this.list.length; i++) {
        if (unchecked(this.list[i]).address == address) {
          peer = unchecked(this.list[i]);
          break;
        }
      }
      next.push(peer !== null ? peer : new Peer(address, this.namespace));
    }
    this.list = next;
  }

  free(): void {
    this.lease.free();
    const members = this.members;
    if (members !== null) members.free();
    this.buf.release();
    this.cursorBuf.release();
    heap.free(this.cursorScratch);
    this.cursorScratch = 0;
    const w = this.writer;
    if (w !== null) w.free();
    this.writer = null;
  }

  /**
   * This Envoy's instance id: drawn by the first VM that needs it and kept in
   * shared data, which lives as long as the Envoy process. Racing first VMs
   * may both write; each reads the key back, so all settle on the last write
   * before any of them answers or asks.
   */
  private instance(): u64 {
    if (this.instanceId != 0) return this.instanceId;
    const key = changetype<usize>(this.instanceKey);
    const keyLen = <usize>this.instanceKey.byteLength;
    if (host.getSharedData(key, keyLen, this.buf) != WasmResult.Ok || this.buf.size != 8) {
      this.buf.release();
      const drawn = memory.data(8);
      // The host's random bits, mixed with both clocks should a host refuse them.
      store<u64>(drawn, mix64(host.randomU64() ^ host.nowNanos() ^ (host.monotonicNanos() << 17)) | 1);
      host.setSharedData(key, keyLen, drawn, 8, 0);
      host.getSharedData(key, keyLen, this.buf);
    }
    if (this.buf.size == 8) this.instanceId = load<u64>(this.buf.ptr);
    this.buf.release();
    return this.instanceId;
  }

  // ---- asking ------------------------------------------------------------------------

  tick(now: i64): void {
    const members = this.members;
    if (members !== null) {
      if (members.tick(now)) this.follow(members.record);
      this.memberPollFailures += members.failures;
      members.polls = 0;
      members.failures = 0;
    }
    if (now < this.nextAskMs) return;
    const interval = <i64>this.config.intervalMs;
    this.nextAskMs = now + interval;
    this.holding = this.lease.acquire(now, now + LEASE_INTERVALS * interval);
    if (!this.holding) return;
    const instance = this.instance();
    const timeout = <i64>this.config.timeoutMs;
    for (let i = 0; i < this.list.length; i++) {
      const p = unchecked(this.list[i]);
      if (p.isSelf) continue;
      // One ask in flight per peer; Envoy answers every callout (a timeout is a 504), but do not wait forever.
      if (p.token != 0 && now - p.dispatchedAtMs < timeout + interval) continue;
      if (p.token != 0) this.fail(p, "no answer within " + timeout.toString() + " ms");
      if (!this.readCursor(p)) continue;
      const path = this.config.path + "?since=" + p.since.toString() + "&instance=" + p.instance.toString();
      const headers = encodePairs(
        [":method", ":path", ":authority", "x-envoy-original-dst-host", PEER_TOKEN_HEADER],
        ["GET", path, p.address, p.address, this.config.token]);
      p.token = host.httpCall(this.cluster, headers, <u32>this.config.timeoutMs);
      p.dispatchedAtMs = now;
      if (p.token == 0) this.fail(p, "Envoy refused the callout: is cluster \"" + this.config.cluster + "\" defined?");
    }
  }

  /** Handles a callout answer if it is one of the asks' or the members poll's; false for any other token. */
  onResponse(token: u32, headerCount: u32, bodySize: u32): bool {
    if (token == 0) return false;
    const members = this.members;
    if (members !== null && members.onResponse(token, headerCount, bodySize)) return true;
    let p: Peer | null = null;
    for (let i = 0; i < this.list.length; i++) {
      if (unchecked(this.list[i]).token == token) {
        p = unchecked(this.list[i]);
        break;
      }
    }
    if (p === null) return false;
    p.token = 0;
    if (headerCount == 0 || !host.statusIs200(MapType.HttpCallResponseHeaders, this.buf)) {
      this.fail(p, "it did not answer 200 (is its filter configured with the same peers.token and peers.path?)");
      return true;
    }
    if (bodySize > <u32>MAX_PEER_ANSWER_BYTES ||
        (host.getBufferBytes(BufferType.HttpCallResponseBody, 0, bodySize, this.buf) != WasmResult.Ok && bodySize > 0)) {
      this.buf.release();
      this.fail(p, "its answer could not be read, or is over " + MAX_PEER_ANSWER_BYTES.toString() + " bytes");
      return true;
    }
    const r = this.reader;
    if (!r.open(this.buf.ptr, this.buf.size)) {
      this.buf.release();
      this.fail(p, "its answer is not a peer answer (a different build, or something else at that address)");
      return true;
    }
    if (r.format != this.format) {
      this.buf.release();
      this.fail(p, "its filter hashes prompts differently (another build, hashBlockSize or indexStride)");
      return true;
    }
    if (r.instance == this.instance()) {
      this.buf.release();
      p.isSelf = true;
      host.log(LogLevel.Info, "prefix-router: peer " + p.address + " is this Envoy; it is not asked");
      return true;
    }
    this.asks++;
    if (p.failing) {
      p.failing = false;
      host.log(LogLevel.Info, "prefix-router: peer " + p.address + " answers again");
    }
    // A restarted peer's seqs began again: the answer (to a since from its last life) starts at its oldest.
    // Another VM moved the cursor on since this ask read it: it took these decisions in already.
    if (!this.moveCursor(p, r.instance, r.nextSeq)) {
      this.buf.release();
      return true;
    }
    const journal = this.journal;
    const hashes = journal.event + EVENT_HEADER_BYTES;
    while (r.next()) {
      // An endpoint this Envoy does not route to, or a record larger than this filter's events: nothing to place.
      if (r.blocks > journal.eventCapacity || this.keys.indexOf(r.routed) < 0) continue;
      memory.copy(hashes, r.hashes, <usize>r.blocks << 3);
      journal.append(journal.writeHeader(PEER_TAG, 0, r.blocks, r.routed, r.matched), false);
      this.imported++;
    }
    this.buf.release();
    return true;
  }

  /**
   * Reads p's shared cursor into p.instance, p.since and p.cursorCas; writes
   * a zero one first if there is none (racing creators write the same), so
   * that the CAS in moveCursor always has a token to check. False when it
   * cannot be read (not expected): p is not asked this time.
   */
  private readCursor(p: Peer): bool {
    const key = changetype<usize>(p.cursorKey);
    const keyLen = <usize>p.cursorKey.byteLength;
    const b = this.cursorBuf;
    if (host.getSharedData(key, keyLen, b) != WasmResult.Ok || b.size != CURSOR_BYTES) {
      b.release();
      memory.fill(this.cursorScratch, 0, CURSOR_BYTES);
      host.setSharedData(key, keyLen, this.cursorScratch, CURSOR_BYTES, 0);
      if (host.getSharedData(key, keyLen, b) != WasmResult.Ok || b.size != CURSOR_BYTES) {
        b.release();
        return false;
      }
    }
    p.instance = load<u64>(b.ptr);
    p.since = load<u64>(b.ptr + 8);
    p.cursorCas = b.cas;
    b.release();
    return true;
  }

  /** Moves p's cursor on to (instance, next) if no VM moved it since p's ask read it. */
  private moveCursor(p: Peer, instance: u64, next: u64): bool {
    store<u64>(this.cursorScratch, instance);
    store<u64>(this.cursorScratch + 8, next);
    return host.setSharedData(changetype<usize>(p.cursorKey), <usize>p.cursorKey.byteLength, this.cursorScratch, CURSOR_BYTES, p.cursorCas) == WasmResult.Ok;
  }

  private fail(p: Peer, reason: string): void {
    this.askFailures++;
    if (p.failing) return;
    p.failing = true;
    host.log(LogLevel.Warn, "prefix-router: peer " + p.address + ": " + reason);
  }

  // ---- answering ---------------------------------------------------------------------

  /**
   * Answers a GET whose path (query included) is [pathPtr, +pathLen), given
   * the request's header pairs, if it is a peer's ask with the right token.
   * Returns true when it sent the answer (the stream must then stop).
   */
  answer(pathPtr: usize, pathLen: usize, pairsPtr: usize, pairsSize: usize): bool {
    const q = pathBeforeQuery(pathPtr, pathLen);
    if (!sameBytes(pathPtr, q, this.path)) return false;
    if (!this.carriesToken(pairsPtr, pairsSize)) {
      this.refused++;
      return false;
    }
    const queryPtr = pathPtr + q;
    const queryLen = pathLen - q;
    const since = queryNumber(queryPtr, queryLen, SINCE);
    const instance = this.instance();
    // A since from another life of this Envoy's journal means nothing: start at the oldest.
    const from = queryNumber(queryPtr, queryLen, INSTANCE) == instance ? since : u64.MAX_VALUE;
    let w = this.writer;
    if (w === null) {
      w = new PeerAnswerWriter(MAX_PEER_ANSWER_BYTES);
      this.writer = w;
    }
    w.begin();
    const next = this.journal.scan(from, w, nowMs());
    w.finish(instance, this.format, next);
    host.sendLocalResponse(200, w.ptr, w.len, this.answerHeaders, ANSWER_DETAILS);
    this.answered++;
    return true;
  }

  /** The header pairs hold the token header with exactly the token: compared without an early exit. */
  private carriesToken(ptr: usize, size: usize): bool {
    const r = this.pairs;
    if (!r.reset(ptr, size)) return false;
    const token = changetype<usize>(this.token);
    const n = <usize>this.token.byteLength;
    let found = false;
    while (r.next()) {
      if (!sameBytes(r.key, r.keyLength, TOKEN_HEADER)) continue;
      if (found) return false; // two token headers: not a peer's ask
      found = true;
      let diff: u32 = <u32>(r.valueLength ^ n);
      for (let i: usize = 0; i < n; i++) {
        const got: u32 = i < r.valueLength ? <u32>load<u8>(r.value + i) : 0x100;
        diff |= got ^ <u32>load<u8>(token + i);
      }
      if (diff != 0) return false;
    }
    return found && !r.malformed;
  }
}

/** The decimal value of `name` (e.g. "since=") in a query string, 0 when absent or not a decimal u64. */
function queryNumber(p: usize, n: usize, name: ArrayBuffer): u64 {
  const k = <usize>name.byteLength;
  for (let i: usize = 0; i + k <= n; i++) {
    const before = i == 0 ? <u8>0x3F : load<u8>(p + i - 1);
    if ((before != 0x3F && before != 0x26) || memory.compare(p + i, changetype<usize>(name), k) != 0) continue;
    let value: u64 = 0;
    let digits = 0;
    for (let j = i + k; j < n; j++) {
      const d = <i32>load<u8>(p + j) - 0x30;
      if (d < 0 || d > 9) {
        if (load<u8>(p + j) != 0x26) return 0;
        break;
      }
      if (++digits > 20 || value > (u64.MAX_VALUE - <u64>d) / 10) return 0;
      value = value * 10 + <u64>d;
    }
    return value;
  }
  return 0;
}
