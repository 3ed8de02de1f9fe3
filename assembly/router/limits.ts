// Every fixed bound of the filter, in one place: sizes it never exceeds,
// counts it keeps, and the times it waits, whatever the configuration or the
// traffic. Configurable bounds (maxBodyBytes, maxIndexBlocks, journalSlots…)
// are in config.ts with their defaults; these are the ones a configuration
// cannot change, each with the reason for its value.

// ---- the index and its replication ----------------------------------------------

/**
 * Index entries one root context may hold. Envoy keeps the VM across a
 * configuration update and runs the new root context next to the old one until
 * the old one's streams drain, so two indexes share one linear memory, and V8
 * caps that memory at 1 GiB (proxy-wasm-cpp-host include/proxy-wasm/limits.h
 * PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES, applied in src/v8/v8.cc as
 * v8_flags.wasm_max_mem_pages = 16384 pages of 64 KiB). A grow past it fails
 * and the allocator traps, which fails the worker's VM.
 *
 *   per entry, at rest (prefix_table.ts): table ≤ 16 B (8-byte slots, at most
 *     two per entry of capacity) + ring slot ≤ 16 B (a u64 hash, doubled up to
 *     capacity) = 32 B; growth doubles the rings (quadruples the table) and
 *     the heap may keep every superseded smaller array unreused (a geometric
 *     series, at most the final size again): 64 B per entry at the
 *     high-water mark.
 *   one index:   2^22 entries × 64 B                                  = 256 MiB
 *   per root, besides its index: prompt buffer ≤ 16 MiB (4096 blocks × 4096 B),
 *     metrics page ≤ 8 MiB plus Envoy's copy of it 8 MiB, per-endpoint arrays
 *     and stat names ≤ 16 MiB at 65534 endpoints, other VMs' pending
 *     placements ≤ 1 MiB (PENDING_*)                                 ≤  49 MiB
 *   per VM, once: one request body copy ≤ 64 MiB (maxBodyBytes' bound; stream
 *     callbacks never nest), configuration text and its parse ≤ 16 MiB ≤  80 MiB
 *   two roots: 2 × (256 + 49) + 80 = 690 MiB, leaving 334 MiB of the 1024 MiB for
 *     the managed heap and fragmentation.
 *
 * maxIndexBlocks / indexStride (or the explicit per-server capacities, if
 * smaller) must stay at or below this; the defaults use 2^20.
 */
export const MAX_INDEX_ENTRIES: u64 = 1 << 22;

/** Endpoint slots the index can tell apart (a node's endpoint is a u16; 0xFFFF marks a free node). */
export const MAX_ENDPOINTS: i32 = 0xFFFE;

/** Releases one journal event carries; a VM with more pending appends an event of releases only. */
export const MAX_RELEASES: i32 = 64;
/**
 * Bytes of events the journal's open page keeps (journal.ts): a VM deciding
 * reads every other VM's events since its last decision from it in one host
 * call. Below the 4 KiB at which the host's buffers leave the small-block
 * path (abi/memory.ts), and room for 20 events of a 16 KB prompt's 16 index
 * entries and a few releases; a page always holds its newest event, however
 * large.
 */
export const JOURNAL_PAGE_BYTES: usize = 4000;
/**
 * Events per worker VM the journal's page keeps (router.ts sets the page's
 * count from the VMs heard from): a VM that Envoy gave a few requests in a
 * row more than the others still finds the others' events in the page.
 */
export const PAGE_EVENTS_PER_VM: i32 = 4;
/**
 * How long a journal reader waits for a slot whose writer has taken its seq
 * but not yet written it before skipping it as lost (journal.ts). Its writer
 * is between two host calls, so only a stalled thread keeps it there: a
 * container over its CPU quota is stopped for up to a CFS period (100 ms by
 * default) at a time, and an overloaded node stalls threads for longer. A
 * reader that waits applies no newer events meanwhile; a second of a stale
 * view is cheaper than a lost decision.
 */
export const PENDING_SLOT_MS: i64 = 1000;
/** Compare-and-swap attempts to append to the journal's page before the event is dropped (counted). */
export const CLAIM_ATTEMPTS: i32 = 16;

/**
 * Other VMs' placements a VM notes between ticks, and the bytes of index
 * entries they may hold, before a decision writes them all at once
 * (pending_placements.ts): a tick's worth at 10^4 decisions a second per
 * proxy, in 0.3 MiB per VM.
 */
export const PENDING_PLACEMENTS: i32 = 1024;
export const PENDING_ARENA_BYTES: usize = 256 << 10;

/** A VM with streams in flight tells the others it is alive at least this often (router.ts). */
export const HEARTBEAT_MS: i32 = 1000;
/** Another VM silent this long is presumed gone; its in-flight counts are dropped. */
export const VM_TIMEOUT_MS: i64 = 5 * <i64>HEARTBEAT_MS;

// ---- requests ----------------------------------------------------------------------

/** JSON nesting the reader follows (a fixed stack, so deep input cannot exhaust the Wasm stack). */
export const MAX_DEPTH: i32 = 512;
/** Longer model names pass through (no_model): no served model name is near it. */
export const MAX_MODEL_BYTES: usize = 512;
/** Longer salts are cut (a salt's first 256 bytes still tell tenants apart). */
export const MAX_SALT_BYTES: usize = 256;
/** How far into a Responses answer its id is looked for (it is the first "id" of the JSON or of the response.created event). */
export const RESPONSE_ID_WINDOW: u32 = 4096;
/** The pick and at most three fallbacks (config.ts bounds fallbackHosts to 0-3). */
export const MAX_RANKED: i32 = 4;

// ---- endpoints and their servers ------------------------------------------------------

/** Longest address a membership record holds ("[" + 45-character IPv6 + "]:" + 5-digit port is 53). */
export const MAX_ADDRESS_BYTES: usize = 255;
/** Larger admin /clusters answers are a failed poll (about 1 KB per host: 4096 hosts fit). */
export const MAX_ANSWER_BYTES: u32 = 8 << 20;
/** Metrics pages larger than this are a failed scrape; only this much is ever copied in. */
export const MAX_PAGE_BYTES: u32 = 8 << 20;
/** LoRA adapters remembered per endpoint in the load snapshot. */
export const MAX_ADAPTERS: i32 = 32;
/** Adapters remembered as seen running anywhere, a request naming one being treated as an adapter request (a ring: the oldest are forgotten first). */
export const KNOWN_ADAPTERS: i32 = 256;

// ---- peer replicas (peers.ts) ------------------------------------------------------

/** Envoy replicas one filter asks at most. */
export const MAX_PEERS: i32 = 64;
/**
 * The most one peer answer holds: about 500 decisions of 16 KB prompts at the
 * default stride. An answer that fills it ends early; the rest come with the
 * next ask. Answers are built in, and read from, linear memory of this size.
 */
export const MAX_PEER_ANSWER_BYTES: usize = 1 << 20;
