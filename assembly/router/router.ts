// The router of one root context: everything built from a valid configuration,
// and the per-request decision. Streams (stream.ts) call it; the root (root.ts)
// creates it on configure and ticks it.
//
// A decision, in order: extract model and canonical prompt (request.ts); hash
// the prompt's full blocks, chained from H(model), straight into the outgoing
// journal event; catch up with other VMs' events (journal.ts: their loads at
// once, their index entries noted in pending_placements.ts and written by the
// tick, or at once where they extend this prompt's match); longest-prefix
// match per endpoint (prefix_table.ts); pick (scorer.ts). Committing a pick
// counts it in flight, records its blocks in the local table and appends it to
// the journal for the other VMs.
//
// Endpoints live in slots (endpoints.ts): fixed by a static list, or following
// the cluster's membership through discovery.ts, in which case the tick
// applies each new membership record and lifecycle.ts clears what a leaving
// endpoint leaves behind.
import * as host from "../abi/host";
import { LogLevel } from "../abi/enums";
import { Config } from "./config";
import { EndpointKeys } from "./endpoint_keys";
import { Endpoints } from "./endpoints";
import { EndpointLifecycle, EPOCH_UNKNOWN } from "./lifecycle";
import { Discovery } from "./discovery";
import { AffinityMap } from "./affinity";
import { BlockChain, xxh64, mix64 } from "./hash";
import { InFlightLedger } from "./inflight";
import { Journal, EventSink, EVENT_HEADER_BYTES, JournalStats, PEER_TAG } from "./journal";
import { Peers } from "./peers";
import { nowMs } from "./clock";
import { LoadView } from "./load";
import { CHARS_PER_TOKEN } from "./work";
import { PrefixTable } from "./prefix_table";
import { PendingPlacements } from "./pending_placements";
import { PromptExtractor, Extract, Api } from "./request";
import { Scorer } from "./scorer";
import { RouterStats, Pass, Sticky } from "./stats";
import { VmTags } from "./vm_tag";
import { Scraper } from "./scraper";
import {
  snapshotEntries, entryAt, entryKey, entryScrapedAtMs, entryWaiting, entryRunning, entryKv, entryBlockSizeTokens,
  entryGpuBlocks, entryFailures, entryMaxLora, entryAdapterCount, entryAdapters, entryEpoch, entryPrefillRate,
} from "./load_snapshot";
import { HEARTBEAT_MS, PAGE_EVENTS_PER_VM, MAX_RELEASES, MAX_ADDRESS_BYTES, MAX_RANKED, PENDING_PLACEMENTS, PENDING_ARENA_BYTES, VM_TIMEOUT_MS } from "./limits";

/**
 * The layout of everything this build keeps in shared data, in its namespace:
 * changed whenever a format or the time base changes, so that during an
 * upgrade the old build's VMs and the new one's never read each other's
 * records. "t1": times on the monotonic clock; "f2": journal events carry
 * `matched` (journal.ts); "f3": block hashes are the lane-carried chain
 * (hash.ts BlockChain), which no "f2" build's entry would ever match; "f4":
 * strings are hashed in their canonical JSON spelling (request.ts), so an
 * "f3" build's entries for prompts with escapes would not match this one's;
 * "f5": the journal is ordered by its open page, not by a head counter
 * (journal.ts), and an "f4" build's appends would never reach this one's.
 */
const SHARED_FORMAT = "f5";

/** Mixed into the seed of salted chains, so a salt never reproduces another model's seed. */
const SALT_SEED: u64 = 0x5A175A175A175A17;

/** The API a configured path serves, by its last segments (OpenAI and Anthropic spell them so). */
export function apiOfPath(path: string): i32 {
  if (path.endsWith("/chat/completions")) return Api.Chat;
  if (path.endsWith("/responses")) return Api.Responses;
  if (path.endsWith("/messages")) return Api.Messages;
  return Api.Completions;
}

/** Maps an extraction outcome to its pass-through reason. */
function passReasonFor(outcome: i32): i32 {
  if (outcome == Extract.NotJson) return Pass.NotJson;
  if (outcome == Extract.NoModel) return Pass.NoModel;
  if (outcome == Extract.TokenPrompt) return Pass.TokenPrompt;
  return Pass.NoPrompt;
}

@final
export class Router extends EventSink {
  readonly endpoints: Endpoints;
  readonly keys: EndpointKeys;
  readonly destinationHeader: ArrayBuffer;
  readonly paths: ArrayBuffer[];
  /** Per configured path: the API its bodies are (request.ts Api). */
  readonly pathApis: i32[];
  readonly extractor: PromptExtractor;
  readonly table: PrefixTable;
  /** Other VMs' placements not yet in `table`. */
  readonly placements: PendingPlacements;
  readonly journal: Journal;
  readonly inFlight: InFlightLedger;
  readonly loads: LoadView;
  readonly scorer: Scorer;
  readonly stats: RouterStats;
  readonly vmTag: u32;
  readonly scraper: Scraper | null;
  readonly discovery: Discovery | null;
  /** Other Envoy replicas this one trades decisions with (peers.ts), or null. */
  readonly peers: Peers | null;
  readonly affinity: AffinityMap;
  /** The configured session header, lower-case; empty without sessions. */
  readonly sessionHeader: ArrayBuffer;
  private lifecycle: EndpointLifecycle;
  private match: StaticArray<i32>;
  private readonly chain: BlockChain = new BlockChain();
  private pendingReleases: StaticArray<u64> = new StaticArray<u64>(MAX_RELEASES);
  private pendingCount: i32 = 0;
  private lastAppendMs: i64 = 0;
  /** A decision or a release since the last tick. */
  private busySinceTick: bool = false;
  /** The last tick found something going on: own work, or another VM's appends (tick_pace.ts). */
  tickFoundWork: bool = false;
  private reported: JournalStats = new JournalStats();
  private reportedAtOnce: u64 = 0;
  private reportedByTick: u64 = 0;
  /**
   * Whether this VM keeps an index: from its first decision on. Envoy runs a
   * VM on its main thread as well as one per worker (ENVOY_HOST.md §1), and the
   * main thread's never sees a request; keeping a replica of every other VM's
   * entries there cost as much CPU and memory as a worker's for nothing. A VM
   * that starts deciding first replays the ring's placements (startIndexing).
   */
  private indexing: bool = false;
  // The current decision (valid between decide() and commit()).
  /** Full blocks hashed. */
  blocks: i32 = 0;
  /** Index entries (every indexStride-th block). */
  entries: i32 = 0;
  /** Index entries the chosen endpoint matched. */
  matched: i32 = 0;
  /** The prompt's length in tokens (characters hashed / CHARS_PER_TOKEN). */
  promptTokens: f64 = 0;
  /** The prompt tokens the chosen endpoint does not hold (valid after commit()). */
  chosenUncachedTokens: f64 = 0;
  /** The current decision's session hash (0: none), and the endpoint key it was mapped to before. */
  private session: u64 = 0;
  private sessionKnown: u64 = 0;
  /**
   * The destination header's value for the current decision (writeDestination):
   * raw memory sized once for the longest possible list, so routing allocates
   * nothing for it.
   */
  readonly destination: usize;

  constructor(readonly config: Config, rootId: string) {
    super();
    const paths: ArrayBuffer[] = [];
    const pathApis: i32[] = [];
    for (let i = 0; i < config.paths.length; i++) {
      paths.push(String.UTF8.encode(config.paths[i]));
      pathApis.push(apiOfPath(config.paths[i]));
    }
    // Index entries depend on block size and stride: indexes that differ in either must not mix,
    // nor may builds that lay shared data out differently (SHARED_FORMAT).
    const format = SHARED_FORMAT + "/b" + config.hashBlockSize.toString() + "x" + config.indexStride.toString();
    const namespace = "prefix-router/" + rootId + "/" + format + "/";
    const slots = config.slotCount();
    const endpoints = new Endpoints(slots);
    const inFlight = new InFlightLedger(slots);
    this.endpoints = endpoints;
    this.keys = endpoints.keys;
    this.paths = paths;
    this.pathApis = pathApis;
    this.destinationHeader = String.UTF8.encode(config.destinationHeader);
    this.extractor = new PromptExtractor(config.promptCap());
    // A salt for the table's buckets that clients cannot predict (see prefix_table.ts).
    // Slots start with no index share; each member gets one as it arrives (lifecycle.ts).
    const table = new PrefixTable(slots, 0, mix64(host.randomU64() ^ host.nowNanos() ^ 0x9E3779B97F4A7C15), config.indexEntriesPerRequest());
    this.table = table;
    this.placements = new PendingPlacements(table, endpoints.generation, PENDING_PLACEMENTS,
      max<usize>(PENDING_ARENA_BYTES, <usize>config.indexEntriesPerRequest() << 3));
    this.inFlight = inFlight;
    const loads = new LoadView(inFlight, config.prefillTokensPerSecond / 1000, config.peers !== null);
    this.loads = loads;
    this.scorer = new Scorer(config, endpoints);
    const stats = new RouterStats(slots);
    this.stats = stats;
    this.match = new StaticArray<i32>(slots);
    const vmTag = VmTags.claim(namespace);
    this.vmTag = vmTag;
    const journal = new Journal(namespace, config.journalSlots, config.indexEntriesPerRequest());
    this.journal = journal;
    const peers = config.peers;
    this.peers = peers !== null ? new Peers(peers, namespace, format, vmTag, journal, endpoints.keys) : null;
    const metrics = config.metrics;
    const scraper = metrics !== null ? new Scraper(metrics, namespace, endpoints.keys, vmTag) : null;
    this.scraper = scraper;
    const discovery = config.discovery;
    this.discovery = discovery !== null ? new Discovery(discovery, namespace, vmTag) : null;
    this.lifecycle = new EndpointLifecycle(config, endpoints, table, inFlight, loads, scraper, stats, journal);
    this.affinity = new AffinityMap(namespace, config.affinityEntries, vmTag, nowMs());
    this.sessionHeader = String.UTF8.encode(config.sessionHeader);
    const names: string[] = [];
    for (let i = 0; i < config.endpoints.length; i++) names.push(config.endpoints[i].address);
    endpoints.fill(names, this.lifecycle);
    this.lifecycle.sizeIndexes();
    stats.set(stats.members, <u64>endpoints.members);
    stats.set(stats.pickable, <u64>endpoints.pickable);
    this.reportVisibleShare();
    this.loads.nowMs = nowMs();
    this.journal.open(this, this.vmTag, this.loads.nowMs);
    this.lastAppendMs = nowMs();
    let longest = 0;
    for (let i = 0; i < names.length; i++) longest = max(longest, String.UTF8.byteLength(names[i]));
    if (discovery !== null) longest = <i32>MAX_ADDRESS_BYTES;
    this.destination = heap.alloc(<usize>(longest + 1) * <usize>MAX_RANKED);
  }

  // ---- the decision ----------------------------------------------------------------

  /**
   * Parses the body and picks an endpoint. Returns its index, or -1 after
   * counting why the request passes through to Envoy's own load balancing.
   * `session`: the hash of the request's session header value, 0 for none.
   */
  decide(body: usize, length: usize, api: i32, session: u64 = 0): i32 {
    this.busySinceTick = true;
    const ex = this.extractor;
    const outcome = ex.extract(body, length, api);
    if (outcome != Extract.Ok) {
      this.stats.pass(passReasonFor(outcome));
      return -1;
    }
    if (this.endpoints.pickable == 0) {
      this.stats.pass(Pass.NoEndpoint);
      return -1;
    }
    const prompt = ex.prompt;
    const blockSize = <usize>this.config.hashBlockSize;
    const stride = this.config.indexStride;
    // The chain's seed: the model, and the request's cache_salt if it has one,
    // so that a salted request never matches an unsalted or differently salted one
    // (vLLM mixes cache_salt into its own block hashes the same way).
    let modelHash = xxh64(ex.model.ptr, ex.model.len, 0);
    if (ex.salt.len > 0) modelHash = xxh64(ex.salt.ptr, ex.salt.len, modelHash ^ SALT_SEED);
    const blocks = min(<i32>(prompt.len / blockSize), this.config.maxPrefixBlocks);
    // Chain every block; keep every stride-th hash as an index entry, written
    // straight into the outgoing journal event (only those, and the first
    // block's, are digested).
    const entries = this.journal.event + EVENT_HEADER_BYTES;
    const chain = this.chain;
    chain.start(modelHash);
    const firstBlock = chain.absorbBlocks(prompt.ptr, blocks, blockSize, stride, entries);
    const indexed = blocks / stride;
    // A prompt shorter than one block still gets a stable placement key.
    const placementKey = blocks > 0 ? firstBlock : xxh64(prompt.ptr, prompt.len, modelHash);
    this.blocks = blocks;
    this.entries = indexed;
    this.promptTokens = <f64>min(prompt.len, this.config.promptCap()) / CHARS_PER_TOKEN;
    // Every decision the other VMs made since this VM's last one: their loads
    // at once, their index entries where they extend this prompt's match (the
    // tick writes the rest). Deferring them all to the tick broke stickiness
    // across workers in real Envoy, whose connections do not alternate between
    // workers (README "Decision speed").
    if (!this.indexing) this.startIndexing();
    this.loads.nowMs = nowMs();
    this.journal.sync(this, this.vmTag, this.loads.nowMs);
    this.placements.applyRelevant(entries, indexed);
    this.table.matchPrefix(entries, indexed, this.match);
    let e = this.scorer.pick(this.match, indexed, this.loads, placementKey, modelHash, this.promptTokens);
    // A follow-up of a known response, or a known session, goes where it went before if it may.
    this.session = session;
    this.sessionKnown = 0;
    if (e >= 0 && ex.previousResponse != 0) e = this.stick(Sticky.Response, ex.previousResponse, e);
    else if (e >= 0 && session != 0) e = this.stick(Sticky.Session, session, e);
    this.matched = e >= 0 ? unchecked(this.match[e]) : 0;
    return e;
  }

  /**
   * This VM's first decision: from now on it keeps an index, starting from the
   * placements the ring still holds (a VM that routed from its start would
   * have taken in the same ones; older ones have left the ring either way).
   */
  private startIndexing(): void {
    this.indexing = true;
    this.journal.replay(new IndexReplay(this.table, this.keys, this.journal, this.lifecycle.forgottenAt), this.vmTag);
  }

  /** The endpoint a sticky route names if it is eligible now, else the score's pick `e`; counted by kind. */
  private stick(kind: i32, hash: u64, e: i32): i32 {
    const s = this.stats;
    this.affinity.sync(this.loads.nowMs);
    const key = this.affinity.lookup(hash);
    if (kind == Sticky.Session) this.sessionKnown = key;
    const sticky = this.keys.indexOf(key);
    if (sticky < 0) {
      s.count(unchecked(s.stickyMisses[kind]));
      return e;
    }
    if (!this.scorer.isEligible(sticky)) {
      s.count(unchecked(s.stickyDiverted[kind]));
      return e;
    }
    s.count(unchecked(s.stickyHits[kind]));
    if (sticky != e) this.scorer.promote(sticky);
    return sticky;
  }

  /** A routed Responses request's answer named its id: follow-ups naming it come back to e. */
  learnResponse(e: i32, generation: u32, idHash: u64): void {
    if (generation != this.generationOf(e)) return;
    this.affinity.remember(idHash, unchecked(this.keys.keys[e]));
    this.stats.count(this.stats.responsesLearned);
  }

  /**
   * Writes the destination header's value for the current decision into
   * `destination` and returns its length: the chosen endpoint, then up to
   * fallbackHosts runners-up, comma-separated. Envoy's override_host splits
   * the value on ',' (trimming whitespace, skipping empty entries) and takes
   * the next entry that is a host of the cluster on each attempt, the first
   * try and every retry alike; when the list is used up it falls back to its
   * fallback policy (override_host/load_balancer.cc getSelectedHosts and
   * getEndpoint, override_host_filter_state.h consumeNextHost). With the
   * generated route's retry policy, a pick whose server refuses connections
   * costs a retry to the next best endpoint instead of an error.
   */
  writeDestination(): usize {
    const ranked = this.scorer.ranked;
    let at = this.destination;
    for (let i = 0; i < this.scorer.rankedCount; i++) {
      if (i > 0) {
        store<u8>(at, 0x2C /* , */);
        at++;
      }
      const a = unchecked(this.endpoints.headerBytes[unchecked(ranked[i])]);
      memory.copy(at, changetype<usize>(a), <usize>a.byteLength);
      at += <usize>a.byteLength;
    }
    return at - this.destination;
  }

  /** The pick reached the request headers: count it, index it, share it. */
  commit(e: i32): void {
    const entries = this.entries;
    this.inFlight.pickOwn(e);
    this.loads.noteSent(e);
    this.chosenUncachedTokens = this.uncachedTokens(this.promptTokens, this.matched);
    this.loads.work.addOwn(e, this.chosenUncachedTokens, this.promptTokens);
    // The match just walked these entries: refresh what it found instead of looking them up again.
    this.table.touchMatched(e, this.journal.event + EVENT_HEADER_BYTES, entries);
    const s = this.stats;
    // Predicted hit: matched entries cover stride blocks each; a tail shorter
    // than a stride is never predicted, so it counts as a miss.
    const matchedBlocks = <u64>this.matched * <u64>this.config.indexStride;
    const blocks = <u64>this.blocks;
    const es = s.of(e);
    s.count(s.routed);
    s.count(es.picks);
    s.add(s.blocksMatched, matchedBlocks);
    s.add(s.blocksTotal, blocks);
    s.add(es.blocksMatched, matchedBlocks);
    s.add(es.blocksTotal, blocks);
    if (this.scorer.lastWasRendezvous) s.count(s.rendezvous);
    if (this.scorer.lastDiverted) s.count(s.guardDiversions);
    const key = unchecked(this.keys.keys[e]);
    // A session follows its requests: remembered when it is new or had to move.
    if (this.session != 0 && this.sessionKnown != key) this.affinity.remember(this.session, key);
    this.appendEvent(key, entries, this.matched);
  }

  /** Prompt tokens an endpoint holding `matchedEntries` index entries still has to prefill. */
  private uncachedTokens(promptTokens: f64, matchedEntries: i32): f64 {
    const perEntry = <f64>this.config.indexStride * <f64>this.config.hashBlockSize / CHARS_PER_TOKEN;
    return max(promptTokens - <f64>matchedEntries * perEntry, 0.0);
  }

  /** Slot e's generation: a stream keeps it to tell whether its endpoint is still the slot's (release). */
  // @ts-ignore: decorator
  @inline generationOf(e: i32): u32 { return unchecked(this.endpoints.generation[e]); }

  /** A routed stream's response began: its prefill is no longer ahead of anyone at e. */
  prefillDone(e: i32, generation: u32, uncachedTokens: f64): void {
    if (generation == this.generationOf(e)) this.loads.work.prefillDone(e, uncachedTokens);
  }

  /**
   * A routed stream ended (completed, reset or aborted); it held
   * `contextTokens` at e, and `uncachedTokens` of prefill if its response had
   * not started. Nothing is released when its endpoint has left since (the
   * slot's counts were dropped then, and may be another endpoint's now).
   */
  release(e: i32, generation: u32, contextTokens: f64 = 0, uncachedTokens: f64 = 0): void {
    this.busySinceTick = true;
    if (generation != this.generationOf(e)) return;
    this.inFlight.releaseOwn(e);
    this.loads.noteDone(e);
    this.loads.work.release(e, contextTokens);
    this.loads.work.prefillDone(e, uncachedTokens);
    unchecked(this.pendingReleases[this.pendingCount++] = unchecked(this.keys.keys[e]));
    if (this.pendingCount == MAX_RELEASES) this.appendEvent(0, 0, 0);
  }

  /** Writes the outgoing event: the route (if any; `matched` of its `blocks` entries the endpoint held) and every pending release. */
  private appendEvent(routedKey: u64, blocks: i32, matched: i32): void {
    const releases = this.journal.event + EVENT_HEADER_BYTES + (<usize>blocks << 3);
    for (let i = 0; i < this.pendingCount; i++) store<u64>(releases + (<usize>i << 3), unchecked(this.pendingReleases[i]));
    this.journal.append(this.journal.writeHeader(this.vmTag, this.pendingCount, blocks, routedKey, matched));
    this.pendingCount = 0;
    // The last decision's or tick's clock reading: at most a tick old, and a heartbeat only needs to be
    // roughly on time.
    this.lastAppendMs = this.loads.nowMs;
  }

  // ---- replication (EventSink) ---------------------------------------------------------

  apply(tag: u32, routedKey: u64, releases: usize, releaseCount: i32, hashes: usize, blockCount: i32, matched: i32): void {
    if (tag == PEER_TAG) {
      this.placePeerDecision(routedKey, hashes, blockCount, matched);
      return;
    }
    // One clock reading per catch-up (its caller's), not one per event.
    const now = this.loads.nowMs;
    this.inFlight.seen(tag, now);
    for (let i = 0; i < releaseCount; i++) {
      const e = this.keys.indexOf(load<u64>(releases + (<usize>i << 3)));
      if (e >= 0) {
        // The journal carries no token counts: another VM's request is taken as
        // holding the mean context of those in flight at e.
        const inFlight = this.inFlight.load(e);
        if (inFlight > 0) this.loads.work.release(e, unchecked(this.loads.work.context[e]) / <f64>inFlight);
        this.loads.work.releaseRemote(e);
        this.inFlight.releaseRemote(tag, e, now);
        this.loads.noteDone(e);
      }
    }
    if (routedKey == 0) return;
    const e = this.keys.indexOf(routedKey);
    if (e < 0) return; // an endpoint another configuration has and this one does not
    this.inFlight.pickRemote(tag, e, now);
    this.loads.noteSent(e);
    const tokens = this.tokensCovered(blockCount);
    this.loads.work.addRemote(e, this.uncachedTokens(tokens, matched), tokens, now);
    this.place(e, hashes, blockCount, matched);
  }

  /**
   * The prompt tokens an event's `entries` index entries cover: an event
   * carries the entries, not the prompt, so a pick's work is what they
   * cover, less what its endpoint held of them (as the picking VM saw it).
   */
  private tokensCovered(entries: i32): f64 {
    return <f64>entries * <f64>this.config.indexStride * <f64>this.config.hashBlockSize / CHARS_PER_TOKEN;
  }

  /**
   * Another Envoy replica's decision (peers.ts): its blocks are placed at its
   * endpoint like another worker's, and its prefill is work ahead there,
   * drained at the endpoint's rate (work.ts addPeer), but nothing is counted
   * in flight: no release will come. Without that work, a replica saw only
   * its own requests ahead at each server and, between scrapes, sent new
   * prompts where the others had just sent theirs (four replicas on the
   * trace at 4×: 592 ms mean TTFT without it, 427 with it; one gateway 403).
   */
  private placePeerDecision(routedKey: u64, hashes: usize, blockCount: i32, matched: i32): void {
    const e = this.keys.indexOf(routedKey);
    if (e < 0 || this.journal.deliveringSeq < unchecked(this.lifecycle.forgottenAt[e])) return;
    this.loads.work.addPeer(e, this.uncachedTokens(this.tokensCovered(blockCount), matched), this.loads.nowMs);
    this.place(e, hashes, blockCount, matched);
  }

  /** Notes another decision's placement for this VM's index (written on the next flush). */
  private place(e: i32, hashes: usize, blockCount: i32, matched: i32): void {
    if (!this.indexing) return;
    const generation = this.generationOf(e);
    if (!this.placements.add(e, generation, hashes, blockCount, matched)) {
      // Full: write what is noted, then note this one; an event larger than the whole arena (from a
      // configuration with more entries per request, under the same vm_id) is written at once.
      this.placements.flush();
      if (!this.placements.add(e, generation, hashes, blockCount, matched)) this.table.touchAll(e, hashes, blockCount);
    }
  }

  // ---- housekeeping (root tick) ---------------------------------------------------------

  onTick(): void {
    const now = nowMs();
    this.loads.nowMs = now;
    const read = this.journal.position() + this.affinity.position();
    this.journal.sync(this, this.vmTag, this.loads.nowMs);
    this.placements.flush();
    this.affinity.sync(this.loads.nowMs);
    const holdsRequests = this.inFlight.ownTotal() > 0;
    this.tickFoundWork = this.busySinceTick || this.pendingCount > 0 || holdsRequests ||
      this.journal.position() + this.affinity.position() != read;
    this.busySinceTick = false;
    if (this.pendingCount > 0 || (holdsRequests && now - this.lastAppendMs >= <i64>HEARTBEAT_MS)) {
      this.appendEvent(0, 0, 0);
    }
    const s = this.stats;
    s.add(s.staleVmsDropped, <u64>this.inFlight.expire(now, VM_TIMEOUT_MS));
    // Room in the journal's page for each VM's last few events: a VM deciding
    // in turn with the others reads about one from each since its last read.
    this.journal.setPageEvents(PAGE_EVENTS_PER_VM * (this.inFlight.remoteVms() + 1));
    const js = this.journal.stats;
    s.add(s.journalGaps, js.gaps - this.reported.gaps);
    s.add(s.journalConflicts, js.casConflicts - this.reported.casConflicts);
    s.add(s.journalAppendFailures, js.appendFailures - this.reported.appendFailures);
    this.reported.gaps = js.gaps;
    this.reported.casConflicts = js.casConflicts;
    this.reported.appendFailures = js.appendFailures;
    const pp = this.placements;
    s.add(s.placementsAtOnce, pp.writtenAtOnce - this.reportedAtOnce);
    s.add(s.placementsByTick, pp.writtenByFlush - this.reportedByTick);
    this.reportedAtOnce = pp.writtenAtOnce;
    this.reportedByTick = pp.writtenByFlush;
    const discovery = this.discovery;
    if (discovery !== null) this.followMembership(discovery, now);
    const endpoints = this.endpoints;
    for (let e = 0; e < endpoints.span; e++) {
      if (!endpoints.isMember(e)) continue;
      const es = s.of(e);
      s.set(es.inFlight, <u64>max(this.inFlight.load(e), 0));
      // A VM that keeps no index (Envoy's main thread's) must not report an empty one.
      if (this.indexing) s.set(es.indexBlocks, <u64>this.table.size(e) * <u64>this.config.indexStride);
    }
    if (this.indexing) s.set(s.indexMemoryBytes, <u64>this.table.memoryBytes());
    const peers = this.peers;
    if (peers !== null) this.tradeWithPeers(peers, now);
    const scraper = this.scraper;
    if (scraper !== null) {
      const fresh = scraper.tick(now);
      this.applyLoadSnapshot(scraper, now, fresh);
    }
    s.flush();
  }

  /** Asks the peers when due, and counts what they answered and what this VM answered them. */
  private tradeWithPeers(peers: Peers, now: i64): void {
    peers.tick(now);
    const s = this.stats;
    s.add(s.peerAsks, <u64>peers.asks);
    s.add(s.peerAskFailures, <u64>peers.askFailures);
    s.add(s.peerDecisionsImported, <u64>peers.imported);
    s.add(s.peerAnswers, <u64>peers.answered);
    s.add(s.peerAsksRefused, <u64>peers.refused);
    s.add(s.peerMemberPollFailures, <u64>peers.memberPollFailures);
    peers.memberPollFailures = 0;
    peers.asks = 0;
    peers.askFailures = 0;
    peers.imported = 0;
    peers.answered = 0;
    peers.refused = 0;
  }

  /**
   * Applies a new membership record, if discovery read one: endpoints
   * arrive and leave (lifecycle.ts), index shares are re-sized, and the
   * counters say what changed.
   */
  private followMembership(discovery: Discovery, now: i64): void {
    const s = this.stats;
    const fresh = discovery.tick(now);
    s.add(s.discoveryPolls, <u64>discovery.polls);
    s.add(s.discoveryPollFailures, <u64>discovery.failures);
    discovery.polls = 0;
    discovery.failures = 0;
    if (!fresh) return;
    const endpoints = this.endpoints;
    const record = discovery.record;
    const ch = endpoints.apply(record.ptr, record.size, this.lifecycle);
    if (!ch.changed) return;
    if (ch.added > 0 || ch.removed > 0) this.lifecycle.sizeIndexes();
    s.set(s.members, <u64>endpoints.members);
    s.set(s.pickable, <u64>endpoints.pickable);
    // Every VM applies the change; the VM that published it alone counts and logs it, once for the proxy.
    if (!discovery.recordIsOwn()) return;
    s.add(s.endpointsAdded, <u64>ch.added);
    s.add(s.endpointsRemoved, <u64>ch.removed);
    // The poller's record holds at most maxEndpoints hosts; what it left out, and what found no slot here.
    const overLimit = ch.overLimit + discovery.overLimit;
    if (overLimit > 0) {
      s.add(s.endpointsOverLimit, <u64>overLimit);
      logError(overLimit.toString() + " members of cluster \"" + discovery.config.cluster +
        "\" are not routed to: discovery.maxEndpoints is " + discovery.config.maxEndpoints.toString());
    }
    host.log(LogLevel.Info, "prefix-router: cluster \"" + discovery.config.cluster + "\": " +
      endpoints.members.toString() + " members, " + endpoints.pickable.toString() + " pickable (+" +
      ch.added.toString() + " -" + ch.removed.toString() + ")");
  }

  /** A callout answer: a peer ask's or its members poll's, a membership poll's or a metrics scrape's. */
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32): void {
    const peers = this.peers;
    if (peers !== null && peers.onResponse(token, headerCount, bodySize)) return;
    const discovery = this.discovery;
    if (discovery !== null && discovery.onResponse(token, headerCount, bodySize)) return;
    const scraper = this.scraper;
    if (scraper === null || !scraper.onResponse(token, headerCount, bodySize, nowMs())) return;
    const r = scraper.result;
    const s = this.stats;
    const es = s.of(r.endpoint);
    s.count(r.ok ? es.scrapeSuccesses : es.scrapeFailures);
    if (r.restarted) {
      s.count(es.restarts);
      s.count(s.serverRestarts);
      host.log(LogLevel.Info, "prefix-router: " + this.endpoints.names[r.endpoint] +
        " restarted (its process start time or prefix-cache counters say so): its index entries are dropped");
    }
    if (r.queriesDelta > 0) {
      const q = <u64>r.queriesDelta;
      const h = <u64>r.hitsDelta;
      s.add(es.serverQueries, q);
      s.add(es.serverHits, h);
      s.add(s.serverQueries, q);
      s.add(s.serverHits, h);
    }
  }

  /**
   * Applies the published load snapshot to the load view. Run every tick, not
   * only when it changes, because metrics go stale as time passes.
   */
  private applyLoadSnapshot(scraper: Scraper, now: i64, changed: bool): void {
    const snap = scraper.snapshot;
    const count = snapshotEntries(snap.ptr, snap.size);
    if (count < 0) return;
    const m = scraper.config;
    const staleMs = <i64>m.staleAfterIntervals * <i64>m.intervalMs;
    const loads = this.loads;
    const lifecycle = this.lifecycle;
    const s = this.stats;
    const c = this.config;
    let ownRequests: f64 = 0;
    let serverRequests: f64 = 0;
    for (let i = 0; i < count; i++) {
      const p = entryAt(snap.ptr, i);
      const e = this.keys.indexOf(entryKey(p));
      if (e < 0) continue;
      const scrapedAt = entryScrapedAtMs(p);
      const fresh = scrapedAt > 0 && now - scrapedAt <= staleMs;
      const waiting = entryWaiting(p);
      const running = entryRunning(p);
      if (changed && fresh && !isNaN(running + waiting)) {
        serverRequests += running + waiting;
        ownRequests += loads.inFlight(e);
      }
      const healthy = entryFailures(p) < <u32>m.unhealthyAfter;
      const kv = entryKv(p);
      unchecked(loads.healthy[e] = healthy);
      loads.report(e, scrapedAt, fresh ? waiting : NaN, fresh ? kv : NaN);
      // A measured rate stays good when the page goes stale: the hardware did not change.
      unchecked(loads.work.measuredRate[e] = entryPrefillRate(p));
      loads.setAdapters(e, entryAdapters(p), fresh ? entryAdapterCount(p) : 0, fresh ? entryMaxLora(p) : -1);
      // A restart seen by the scraping VM: the server's cache is empty, so is its share of the index.
      const epoch = entryEpoch(p);
      const seenEpoch = unchecked(lifecycle.epoch[e]);
      if (seenEpoch != EPOCH_UNKNOWN && epoch != seenEpoch) lifecycle.forgetCache(e);
      unchecked(lifecycle.epoch[e] = epoch);
      const blockSize = entryBlockSizeTokens(p);
      const gpuBlocks = entryGpuBlocks(p);
      if (blockSize > 0 && gpuBlocks > 0) {
        const fromServer = gpuBlocks * blockSize * <i64>CHARS_PER_TOKEN / <i64>c.hashBlockSize / <i64>c.indexStride;
        const entries = <u32>min<i64>(max<i64>(fromServer, 1), <i64>u32.MAX_VALUE);
        if (entries != unchecked(lifecycle.serverCapacity[e])) {
          unchecked(lifecycle.serverCapacity[e] = entries);
          lifecycle.sizeIndex(e);
        }
      }
      if (changed) {
        const es = s.of(e);
        s.set(es.healthy, healthy ? 1 : 0);
        s.set(es.queue, isNaN(waiting) ? 0 : <u64>max(waiting, 0.0));
        s.set(es.running, isNaN(running) ? 0 : <u64>max(running, 0.0));
        s.set(es.kvPermille, isNaN(kv) ? 0 : <u64>Math.round(min(max(kv, 0.0), 1.0) * 1000));
      }
    }
    if (c.measuredSpeed) loads.work.updateSpeeds();
    if (changed) {
      loads.noteServerLoad(ownRequests, serverRequests);
      this.reportVisibleShare();
    }
  }

  private reportVisibleShare(): void {
    this.stats.set(this.stats.visibleSharePermille, <u64>Math.round(this.loads.visibleShare * 1000));
  }

  apiOf(pathIndex: i32): i32 { return this.pathApis[pathIndex]; }

  /**
   * Frees what lives outside the garbage collector (the index, the prompt
   * buffers, the journal's and scraper's buffers). Envoy keeps a VM across
   * configuration updates and deletes the old root context, so without this
   * every update leaked a whole index. The router must not be used afterwards.
   */
  free(): void {
    heap.free(this.destination);
    this.extractor.free();
    this.table.free();
    this.placements.free();
    this.journal.free();
    const scraper = this.scraper;
    if (scraper !== null) scraper.free();
    const discovery = this.discovery;
    if (discovery !== null) discovery.free();
    const peers = this.peers;
    if (peers !== null) peers.free();
    this.affinity.free();
  }
}

export function logError(message: string): void {
  host.log(LogLevel.Error, "prefix-router: " + message);
}

/**
 * Writes the placements a replayed ring holds straight into an index
 * (Router.startIndexing), and nothing else; not those made before this VM
 * dropped their endpoint's entries (lifecycle.ts forgottenAt: a restarted
 * server's cache is empty, whatever the ring says it held).
 */
@final
class IndexReplay extends EventSink {
  constructor(private table: PrefixTable, private keys: EndpointKeys, private journal: Journal, private forgottenAt: StaticArray<u64>) {
    super();
  }

  apply(tag: u32, routedKey: u64, releases: usize, releaseCount: i32, hashes: usize, blockCount: i32, matched: i32): void {
    if (routedKey == 0) return;
    const e = this.keys.indexOf(routedKey);
    if (e >= 0 && this.journal.deliveringSeq >= unchecked(this.forgottenAt[e])) this.table.touchAll(e, hashes, blockCount);
  }
}
