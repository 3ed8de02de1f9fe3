// SGLang's router (now SMG, lightseekorg/smg) cache_aware policy for HTTP
// workers, as a baseline. Owns: the per-model character radix tree with
// per-worker timestamps, its size-bounded LRU eviction, and the selection
// rule. Must not: read server metrics: over HTTP the policy sees only its own
// in-flight counts (its KV-usage triggers need a gRPC load snapshot and are off
// by default), so it never scrapes.
//
// Source: lightseekorg/smg at 73da68ca9472bbc0ff5f63d31a8a21fbb8696359
// (2026-08-07):
// - model_gateway/src/main.rs CLI defaults: cache_threshold 0.3,
//   balance_abs_threshold 64, balance_rel_threshold 1.5, eviction_interval
//   120 s, max_tree_size 2^26 characters per worker.
// - model_gateway/src/policies/cache_aware.rs select_worker: loads are the
//   router's own counts (worker.rs load(): +1 when a request is sent, −1 when
//   it finishes); imbalanced when max − min > abs AND max > rel · min →
//   the least-loaded worker (ties: fewer processed requests, then lower
//   index), and the tree still records the text for it; otherwise
//   select_worker_with_text: one descent matches the text, match rate =
//   matched chars / input chars; > cache_threshold → the tenant the match
//   resolved to, else the least-loaded worker (the header comment's "smallest
//   tree" is no longer what the code does); then the text is inserted for the
//   chosen worker.
// - crates/kv_index/src/string_tree.rs: nodes hold edge text, children by first
//   character, and tenant → last-access epoch. A match that ends inside an
//   edge still resolves on that child. The resolved tenant is the node's
//   cached last_tenant (the one that created the node, inherited on splits)
//   while it is still there, else the first tenant of the node's map (a
//   DashMap: arbitrary order; here insertion order). Inserting attaches the
//   tenant to every node on the path at epoch 0 and gives the final node a
//   fresh epoch; a match refreshes the resolved node's epoch one time in eight
//   (epoch & 7 == 0). evict_tenant_by_size: per tenant over max_tree_size
//   characters, remove its leaf attachments oldest epoch first, pruning empty
//   nodes, until it fits.
// - crates/protocols/src/{completion,chat}.rs extract_text_for_routing: the
//   prompt, or the message contents joined by spaces (request-text.ts).
// Differences: one tree per model name (each LoRA adapter its own tree, as
// SMG keys trees by the request's model id); chars are UTF-16 code units
// (Rust counts Unicode scalars; equal for the ASCII workloads here).

import type { Policy, PolicyContext, PolicyFactory } from "../policy.ts";
import { InFlight } from "../policy.ts";
import { joinedContents } from "./request-text.ts";

export const SMG_COMMIT = "73da68ca9472bbc0ff5f63d31a8a21fbb8696359";

export interface SglangOptions {
  cacheThreshold: number;
  balanceAbsThreshold: number;
  balanceRelThreshold: number;
  evictionIntervalMs: number;
  /** Characters per worker before eviction. */
  maxTreeSize: number;
}

export const SGLANG_DEFAULTS: Readonly<SglangOptions> = Object.freeze({
  cacheThreshold: 0.3,
  balanceAbsThreshold: 64,
  balanceRelThreshold: 1.5,
  evictionIntervalMs: 120_000,
  maxTreeSize: 2 ** 26,
});

const NO_TENANT = -1;

class Node {
  readonly children = new Map<string, Node>();
  /** worker index → last access epoch (0 = attached while passing through). */
  readonly tenants = new Map<number, number>();
  constructor(public text: string, public parent: Node | null, public lastTenant: number) {}
}

export interface MatchResult {
  tenant: number;
  matchedChars: number;
  inputChars: number;
}

function sharedPrefix(text: string, from: number, edge: string): number {
  const n = Math.min(edge.length, text.length - from);
  let i = 0;
  while (i < n && text.charCodeAt(from + i) === edge.charCodeAt(i)) i++;
  return i;
}

/** A character radix tree over which workers were sent which texts (string_tree.rs Tree). */
export class StringTree {
  private readonly root = new Node("", null, NO_TENANT);
  /** Characters attached per worker (tenant_char_count). */
  readonly charCount: Float64Array;
  private epoch = 0;

  constructor(workers: number) {
    this.charCount = new Float64Array(workers);
  }

  private nextEpoch(): number {
    return ++this.epoch;
  }

  /**
   * Match `text`, let `select` choose a worker from the result, insert the text
   * for it (NO_TENANT: no insert). `touch` = false is a plain insert
   * (insert_text, the imbalanced path), which skips the match's epoch touch.
   */
  matchAndInsert(text: string, select: (r: MatchResult) => number, touch = true): MatchResult {
    let pos = 0;
    let matched = 0;
    let current = this.root;
    let resolveAt = this.root;
    const path: Node[] = [];
    while (pos < text.length) {
      const child = current.children.get(text[pos]);
      if (child === undefined) break;
      const shared = sharedPrefix(text, pos, child.text);
      matched += shared;
      resolveAt = child;
      if (shared < child.text.length) break;
      path.push(child);
      pos += shared;
      current = child;
    }
    let tenant = resolveAt.lastTenant;
    if (tenant === NO_TENANT || !resolveAt.tenants.has(tenant)) {
      const first = resolveAt.tenants.keys().next();
      tenant = first.done ? NO_TENANT : first.value;
      if (tenant !== NO_TENANT) resolveAt.lastTenant = tenant;
    }
    if (touch) {
      const e = this.nextEpoch();
      if ((e & 7) === 0 && tenant !== NO_TENANT) resolveAt.tenants.set(tenant, e);
    }
    const result: MatchResult = { tenant, matchedChars: matched, inputChars: text.length };

    const t = select(result);
    if (t === NO_TENANT) return result;
    if (!this.root.tenants.has(t)) this.root.tenants.set(t, 0);
    for (const node of path) this.attach(node, t);
    if (pos === text.length) current.tenants.set(t, this.nextEpoch());
    else this.insertFrom(current, text, pos, t);
    return result;
  }

  /** Attach a passing tenant to a node (epoch 0), counting its characters once. */
  private attach(node: Node, t: number): void {
    if (node.tenants.has(t)) return;
    node.tenants.set(t, 0);
    this.charCount[t] += node.text.length;
  }

  private insertFrom(start: Node, text: string, from: number, t: number): void {
    let node = start;
    let pos = from;
    while (pos < text.length) {
      const child = node.children.get(text[pos]);
      if (child === undefined) {
        const leaf = new Node(text.slice(pos), node, t);
        leaf.tenants.set(t, this.nextEpoch());
        this.charCount[t] += leaf.text.length;
        node.children.set(text[pos], leaf);
        return;
      }
      const shared = sharedPrefix(text, pos, child.text);
      if (shared < child.text.length) {
        // Split the edge: the new middle node inherits the child's tenants and last_tenant.
        const mid = new Node(child.text.slice(0, shared), node, child.lastTenant);
        for (const [k, v] of child.tenants) mid.tenants.set(k, v);
        child.text = child.text.slice(shared);
        child.parent = mid;
        mid.children.set(child.text[0], child);
        node.children.set(mid.text[0], mid);
        this.attach(mid, t);
        node = mid;
      } else {
        this.attach(child, t);
        node = child;
      }
      pos += shared;
    }
    node.tenants.set(t, this.nextEpoch());
  }

  /** evict_tenant_by_size: oldest leaf attachments first, per worker, until each holds ≤ maxChars. */
  evictBySize(maxChars: number): void {
    type Entry = { ts: number; t: number; node: Node };
    const heap: Entry[] = [];
    const push = (x: Entry): void => {
      heap.push(x);
      for (let i = heap.length - 1; i > 0; ) {
        const p = (i - 1) >> 1;
        if (heap[p].ts <= heap[i].ts) break;
        [heap[p], heap[i]] = [heap[i], heap[p]];
        i = p;
      }
    };
    const pop = (): Entry => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        for (let i = 0; ; ) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && heap[l].ts < heap[m].ts) m = l;
          if (r < heap.length && heap[r].ts < heap[m].ts) m = r;
          if (m === i) break;
          [heap[m], heap[i]] = [heap[i], heap[m]];
          i = m;
        }
      }
      return top;
    };
    const isLeafFor = (node: Node, t: number): boolean => {
      if (!node.tenants.has(t)) return false;
      for (const c of node.children.values()) if (c.tenants.has(t)) return false;
      return true;
    };
    const stack: Node[] = [this.root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      for (const c of node.children.values()) stack.push(c);
      if (node === this.root) continue;
      for (const [t, ts] of node.tenants) if (isLeafFor(node, t)) push({ ts, t, node });
    }
    while (heap.length > 0) {
      const { t, node } = pop();
      if (this.charCount[t] <= maxChars) continue;
      if (!isLeafFor(node, t)) continue;
      this.charCount[t] = Math.max(0, this.charCount[t] - node.text.length);
      node.tenants.delete(t);
      const parent = node.parent;
      if (parent !== null && node.children.size === 0 && node.tenants.size === 0) parent.children.delete(node.text[0]);
      if (parent !== null && parent !== this.root && isLeafFor(parent, t)) push({ ts: parent.tenants.get(t)!, t, node: parent });
    }
  }
}

export function sglangPolicy(o: Readonly<SglangOptions> = SGLANG_DEFAULTS): PolicyFactory {
  return {
    name: "sglang-cache-aware",
    description: `SGLang router (SMG @${SMG_COMMIT.slice(0, 8)}) cache_aware: char radix tree per model, own in-flight counts, gate max−min > ${o.balanceAbsThreshold} and max > ${o.balanceRelThreshold}·min → least loaded, else match > ${o.cacheThreshold} → matched worker, else least loaded`,
    scrapeIntervalMs: 0,
    create(ctx: PolicyContext): Policy {
      const n = ctx.endpoints.length;
      const inflight = new InFlight(ctx.endpoints);
      const processed = new Float64Array(n);
      const trees = new Map<string, StringTree>();
      const tree = (model: string): StringTree => {
        let t = trees.get(model);
        if (t === undefined) trees.set(model, (t = new StringTree(n)));
        return t;
      };
      if (o.evictionIntervalMs > 0) {
        const evict = (): void => {
          for (const t of trees.values()) t.evictBySize(o.maxTreeSize);
          ctx.clock.setTimer(o.evictionIntervalMs, evict);
        };
        ctx.clock.setTimer(o.evictionIntervalMs, evict);
      }
      /** Least loaded, ties to fewer processed requests, then the lower index. */
      const minLoad = (): number => {
        let best = 0;
        for (let i = 1; i < n; i++) {
          const a = inflight.counts[i];
          const b = inflight.counts[best];
          if (a < b || (a === b && processed[i] < processed[best])) best = i;
        }
        return best;
      };
      return {
        pick(req) {
          let lo = Infinity;
          let hi = -Infinity;
          for (const c of inflight.counts) {
            lo = Math.min(lo, c);
            hi = Math.max(hi, c);
          }
          const imbalanced = hi - lo > o.balanceAbsThreshold && hi > lo * o.balanceRelThreshold;
          const text = joinedContents(req);
          const least = minLoad();
          let chosen = least;
          if (imbalanced) tree(req.model).matchAndInsert(text, () => least, false);
          else {
            tree(req.model).matchAndInsert(text, (r) => {
              const rate = r.inputChars === 0 ? 0 : r.matchedChars / r.inputChars;
              chosen = rate > o.cacheThreshold && r.tenant !== NO_TENANT ? r.tenant : least;
              return chosen;
            });
          }
          processed[chosen]++;
          inflight.add(chosen);
          return ctx.endpoints[chosen];
        },
        onComplete: (_req, endpoint) => inflight.done(endpoint),
      };
    },
  };
}
