// What the router reads of a request's headers, from one host call.
//
// In Envoy every host call that returns bytes also calls back into the module
// to allocate them (proxy-wasm-cpp-host src/exports.cc, copyToPointerSize ->
// the module's malloc). Reading :method, :path and content-length one by one
// cost three such calls per request; the whole map in one
// proxy_get_header_map_pairs costs one. That took about 1.4 µs of Envoy CPU
// off a 16 KB request (npm run bench:envoy-ab, 1 worker, the build before
// against this one).
//
// Header names reach the filter lower-cased (Envoy's codecs lower-case them;
// HTTP/2 and HTTP/3 forbid upper case), as the configuration's header names
// are (config.ts).
import { PairsReader } from "../abi/pairs";
import { xxh64 } from "./hash";

/** Seeds the hash of a session header value, so that it never equals a response id's. */
const SESSION_SEED: u64 = 0x53455353494F4E31;
const METHOD = String.UTF8.encode(":method");
const PATH = String.UTF8.encode(":path");
const CONTENT_LENGTH = String.UTF8.encode("content-length");

@final
export class RequestHead {
  /** The method is POST. */
  isPost: bool = false;
  /** The method is GET (a peer's ask, peers.ts, is one). */
  isGet: bool = false;
  /** The :path value, query included, inside the map read (valid while it is). */
  pathPtr: usize = 0;
  pathLength: usize = 0;
  /** Index of the configured path the :path names (query ignored), or -1. */
  pathIndex: i32 = -1;
  /** content-length as a number; -1 when absent or not a plain decimal. */
  declaredLength: i64 = -1;
  /** The hash of the session header's first value, 0 without one (or no session header configured). */
  session: u64 = 0;
  private pairs: PairsReader = new PairsReader();

  /** Reads the facts above from a serialized header map. False when the map is malformed: nothing read from it counts. */
  read(ptr: usize, size: usize, paths: ArrayBuffer[], sessionHeader: ArrayBuffer): bool {
    this.isPost = false;
    this.isGet = false;
    this.pathLength = 0;
    this.pathIndex = -1;
    this.declaredLength = -1;
    this.session = 0;
    if (size == 0) return true; // no headers at all
    const r = this.pairs;
    if (!r.reset(ptr, size)) return false;
    let sawMethod = false;
    let sawPath = false;
    let sawLength = false;
    while (r.next()) {
      const k = r.key;
      const kn = r.keyLength;
      if (!sawMethod && sameBytes(k, kn, METHOD)) {
        sawMethod = true;
        this.isPost = r.valueLength == 4 && load<u32>(r.value) == 0x54534F50; // "POST"
        this.isGet = r.valueLength == 3 && load<u16>(r.value) == 0x4547 && load<u8>(r.value, 2) == 0x54; // "GET"
      } else if (!sawPath && sameBytes(k, kn, PATH)) {
        sawPath = true;
        this.pathPtr = r.value;
        this.pathLength = r.valueLength;
        this.pathIndex = pathIndexOf(r.value, r.valueLength, paths);
      } else if (!sawLength && sameBytes(k, kn, CONTENT_LENGTH)) {
        sawLength = true;
        this.declaredLength = decimal(r.value, r.valueLength);
      } else if (this.session == 0 && sessionHeader.byteLength > 0 && r.valueLength > 0 && sameBytes(k, kn, sessionHeader)) {
        this.session = xxh64(r.value, r.valueLength, SESSION_SEED) | 1;
      }
    }
    return !r.malformed;
  }
}

/** [p, p+n) holds exactly the bytes of `name`. */
export function sameBytes(p: usize, n: usize, name: ArrayBuffer): bool {
  return n == <usize>name.byteLength && memory.compare(p, changetype<usize>(name), n) == 0;
}

/** The length of the path in the :path value [p, p+n), before any query ("?"). */
export function pathBeforeQuery(p: usize, n: usize): usize {
  for (let i: usize = 0; i < n; i++) {
    if (load<u8>(p + i) == 0x3F /* ? */) return i;
  }
  return n;
}

/** Index of the path in `paths` that [p, p+n) names up to any query, or -1. */
function pathIndexOf(p: usize, n: usize, paths: ArrayBuffer[]): i32 {
  const length = pathBeforeQuery(p, n);
  for (let i = 0; i < paths.length; i++) {
    if (sameBytes(p, length, unchecked(paths[i]))) return i;
  }
  return -1;
}

/** A plain decimal of 1 to 18 digits, or -1. */
function decimal(p: usize, n: usize): i64 {
  if (n == 0 || n > 18) return -1;
  let value: i64 = 0;
  for (let i: usize = 0; i < n; i++) {
    const d = <i32>load<u8>(p + i) - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}
