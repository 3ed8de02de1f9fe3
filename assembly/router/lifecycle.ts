// What happens to the router's per-endpoint state when an endpoint slot
// changes hands (endpoints.ts): a leaving endpoint's index entries, in-flight
// counts, load, scrape state and gauges are dropped, so nothing of it
// survives into the slot's next occupant, and an arriving one starts cold.
// Also sizes each endpoint's share of the index, which depends on how many
// endpoints there are.
import { Config } from "./config";
import { SlotListener, Endpoints } from "./endpoints";
import { InFlightLedger } from "./inflight";
import { Journal } from "./journal";
import { LoadView } from "./load";
import { PrefixTable } from "./prefix_table";
import { Scraper } from "./scraper";
import { RouterStats } from "./stats";

/** A restart epoch not yet seen (a new occupant adopts the first it reads). */
export const EPOCH_UNKNOWN: u32 = u32.MAX_VALUE;

@final
export class EndpointLifecycle extends SlotListener {
  /** Per slot: index entries the server's own cache geometry allows (0: not reported). */
  readonly serverCapacity: StaticArray<u32>;
  /** Per slot: the restart epoch this VM last saw in the load snapshot. */
  readonly epoch: StaticArray<u32>;
  /**
   * Per slot: the journal position when this VM last dropped the slot's
   * entries (a restart, a new occupant, a departure). The ring still holds the
   * placements made before; a VM that starts keeping an index later replays
   * the ring (router.ts startIndexing), and must not bring those back.
   */
  readonly forgottenAt: StaticArray<u64>;

  constructor(private config: Config, private endpoints: Endpoints, private table: PrefixTable,
              private inFlight: InFlightLedger, private loads: LoadView, private scraper: Scraper | null,
              private stats: RouterStats, private journal: Journal) {
    super();
    const n = endpoints.capacity;
    this.serverCapacity = new StaticArray<u32>(n);
    this.epoch = new StaticArray<u32>(n);
    this.forgottenAt = new StaticArray<u64>(n);
  }

  occupied(e: i32, address: string): void {
    unchecked(this.serverCapacity[e] = 0);
    unchecked(this.epoch[e] = EPOCH_UNKNOWN);
    this.forgetCache(e);
    this.inFlight.drop(e);
    this.loads.reset(e);
    const scraper = this.scraper;
    if (scraper !== null) scraper.assign(e, this.metricsAddressOf(e, address));
    this.stats.assign(e, address, 0);
  }

  vacated(e: i32): void {
    this.forgetCache(e);
    this.table.setCapacity(e, 0);
    this.inFlight.drop(e);
    this.loads.reset(e);
    const scraper = this.scraper;
    if (scraper !== null) scraper.clear(e);
    this.stats.vacate(e);
  }

  /**
   * Index entries endpoint e may hold: what its server's cache geometry
   * allows if it reported one and lruCapacityPerServer was not given,
   * lruCapacityPerServer otherwise, both within maxIndexBlocks shared by the
   * members.
   */
  capacityOf(e: i32): u32 {
    const c = this.config;
    const stride = <u32>c.indexStride;
    const fromServer = unchecked(this.serverCapacity[e]);
    if (c.lruCapacityExplicit || fromServer == 0) return max<u32>(1, c.capacityFor(this.endpoints.members) / stride);
    const share = <u32>(<u64>c.maxIndexBlocks / <u64>max(this.endpoints.members, 1)) / stride;
    return max<u32>(1, min<u32>(fromServer, share));
  }

  /** Re-sizes every member's index share (after the membership or a server's geometry changed). */
  sizeIndexes(): void {
    for (let e = 0; e < this.endpoints.span; e++) {
      if (this.endpoints.isMember(e)) this.sizeIndex(e);
    }
  }

  sizeIndex(e: i32): void {
    const capacity = this.capacityOf(e);
    if (capacity != this.table.capacityOf(e)) this.table.setCapacity(e, capacity);
    this.stats.set(this.stats.of(e).indexCapacity, <u64>capacity * <u64>this.config.indexStride);
  }

  /** The server restarted or reset its cache, or the slot changed hands: what the index says it holds is gone. */
  forgetCache(e: i32): void {
    this.table.dropEndpoint(e);
    unchecked(this.forgottenAt[e] = this.journal.position());
  }

  private metricsAddressOf(e: i32, address: string): string {
    const d = this.config.discovery;
    if (d === null) return this.config.endpoints[e].metricsAddress;
    if (d.metricsPort == 0) return address;
    // Envoy's text for the host: "ip:port" or "[ipv6]:port"; the port follows the last ':'.
    return address.substring(0, address.lastIndexOf(":") + 1) + d.metricsPort.toString();
  }
}
