// Process-wide shared data, keyed by the vm_id string (not the VM or plugin):
// every VM of every plugin with the same vm_id sees one map. Semantics follow
// cpp-host src/shared_data.cc: a missing key is NotFound; cas 0 writes
// unconditionally; a nonzero cas that differs from the stored one is
// CasMismatch; a missing key is always written; every write takes the next value
// of one process-wide cas counter that starts at 1 and skips 0.
// Keys are byte strings (one char per byte, "latin1") so binary keys never collide.
import { WasmResult } from "./enums.ts";

export interface SharedEntry {
  value: Uint8Array;
  cas: number;
}

export class SharedDataStore {
  private readonly data = new Map<string, Map<string, SharedEntry>>();
  private cas: number;

  /** `firstCas` is 1 in Envoy; other values exist only to test the wrap-around. */
  constructor(firstCas = 1) {
    this.cas = firstCas >>> 0;
  }

  /** SharedData::nextCas. */
  private nextCas(): number {
    const result = this.cas;
    this.cas = (this.cas + 1) >>> 0;
    if (this.cas === 0) this.cas = 1;
    return result;
  }

  get(vmId: string, key: string): SharedEntry | undefined {
    return this.data.get(vmId)?.get(key);
  }

  set(vmId: string, key: string, value: Uint8Array, cas: number): number {
    let map = this.data.get(vmId);
    if (map === undefined) {
      map = new Map();
      this.data.set(vmId, map);
    }
    const existing = map.get(key);
    if (existing !== undefined && cas !== 0 && cas !== existing.cas) return WasmResult.CasMismatch;
    map.set(key, { value, cas: this.nextCas() });
    return WasmResult.Ok;
  }

  keys(vmId: string): string[] {
    return [...(this.data.get(vmId)?.keys() ?? [])];
  }
}

/** Read-only view of one vm_id's shared data, for tests and tools. */
export class SharedDataView {
  constructor(
    private readonly store: SharedDataStore,
    private readonly vmId: string,
  ) {}

  /** The entry for `key` (UTF-8 text or raw bytes), or undefined. */
  get(key: string | Uint8Array): SharedEntry | undefined {
    return this.store.get(this.vmId, toKey(key));
  }

  /** Keys as UTF-8 text. */
  keys(): string[] {
    return this.store.keys(this.vmId).map((k) => Buffer.from(k, "latin1").toString("utf8"));
  }

  /** Keys as raw bytes. */
  rawKeys(): Uint8Array[] {
    return this.store.keys(this.vmId).map((k) => new Uint8Array(Buffer.from(k, "latin1")));
  }

  /** Bytes of all keys and values. */
  totalBytes(): number {
    let n = 0;
    for (const k of this.store.keys(this.vmId)) n += k.length + (this.store.get(this.vmId, k)?.value.length ?? 0);
    return n;
  }
}

function toKey(key: string | Uint8Array): string {
  return Buffer.from(typeof key === "string" ? Buffer.from(key, "utf8") : key).toString("latin1");
}
