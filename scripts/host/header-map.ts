// An Envoy header map as the Wasm host calls see it (envoy source/common/http/
// header_map_impl.cc): keys are lower-cased, entries keep insertion order except
// that pseudo-headers (":path" …) always come before ordinary ones, addCopy
// appends a duplicate, setCopy removes every entry of the key then appends one,
// byteSize() is the total length of keys and values.

export type HeaderInput = Readonly<Record<string, string>> | readonly (readonly [string, string])[];
export type HeaderList = [string, string][];

const encoder = new TextEncoder();

export class HeaderMap {
  private entries: HeaderList = [];

  constructor(input?: HeaderInput) {
    if (input === undefined) return;
    const list = Array.isArray(input) ? (input as readonly (readonly [string, string])[]) : Object.entries(input);
    for (const [k, v] of list) this.add(k, v);
  }

  /** Number of entries (Envoy HeaderMap::size(), what on_*_headers receives). */
  get size(): number {
    return this.entries.length;
  }

  /** HeaderMap::byteSize(): bytes of all keys and values (proxy_get_header_map_size). */
  byteSize(): number {
    let n = 0;
    for (const [k, v] of this.entries) n += encoder.encode(k).length + encoder.encode(v).length;
    return n;
  }

  get(key: string): string | undefined {
    const lower = key.toLowerCase();
    for (const [k, v] of this.entries) if (k === lower) return v;
    return undefined;
  }

  getAll(key: string): string[] {
    const lower = key.toLowerCase();
    return this.entries.filter(([k]) => k === lower).map(([, v]) => v);
  }

  /** addCopy: pseudo-headers are inserted after the last pseudo-header. */
  add(key: string, value: string): void {
    const lower = key.toLowerCase();
    if (lower.startsWith(":")) {
      let at = 0;
      while (at < this.entries.length && this.entries[at][0].startsWith(":")) at++;
      this.entries.splice(at, 0, [lower, value]);
    } else {
      this.entries.push([lower, value]);
    }
  }

  /** setCopy: remove every entry of the key, then add one. */
  set(key: string, value: string): void {
    this.remove(key);
    this.add(key, value);
  }

  remove(key: string): void {
    const lower = key.toLowerCase();
    this.entries = this.entries.filter(([k]) => k !== lower);
  }

  clear(): void {
    this.entries = [];
  }

  /** A copy of the entries in iteration order. */
  toList(): HeaderList {
    return this.entries.map(([k, v]) => [k, v]);
  }

  clone(): HeaderMap {
    const copy = new HeaderMap();
    copy.entries = this.toList();
    return copy;
  }
}
