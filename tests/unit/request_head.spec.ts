import { encodePairs, PairsReader } from "../../assembly/abi/pairs";
import { RequestHead } from "../../assembly/router/request_head";
import { xxh64 } from "../../assembly/router/hash";

// What the router reads of a request's headers comes from one serialized map
// (proxy_get_header_map_pairs). The map is the host's, so every length in it
// is checked against the buffer; a map that lies ends the walk.

const PATHS: ArrayBuffer[] = [String.UTF8.encode("/v1/completions"), String.UTF8.encode("/v1/chat/completions")];
const NO_SESSION = new ArrayBuffer(0);
const SESSION = String.UTF8.encode("x-session-id");

function read(head: RequestHead, map: ArrayBuffer, session: ArrayBuffer = NO_SESSION): bool {
  return head.read(changetype<usize>(map), <usize>map.byteLength, PATHS, session);
}

describe("PairsReader", () => {
  it("walks every pair of a map the host serialized", () => {
    const map = encodePairs([":method", ":path", "", "content-type"], ["POST", "/v1/x", "", "application/json"]);
    const r = new PairsReader();
    expect<bool>(r.reset(changetype<usize>(map), <usize>map.byteLength)).toBe(true);
    const keys: string[] = [];
    const values: string[] = [];
    while (r.next()) {
      keys.push(String.UTF8.decodeUnsafe(r.key, r.keyLength));
      values.push(String.UTF8.decodeUnsafe(r.value, r.valueLength));
    }
    expect<string>(keys.join("|")).toBe(":method|:path||content-type");
    expect<string>(values.join("|")).toBe("POST|/v1/x||application/json");
  });

  it("stops where a length runs past the buffer, and refuses a count that cannot fit", () => {
    const map = encodePairs([":method", ":path"], ["POST", "/v1/completions"]);
    // The second value claims 1,000 bytes: the first pair is read, the second is not.
    store<u32>(changetype<usize>(map) + 4 + 8 + 4, 1000);
    const r = new PairsReader();
    expect<bool>(r.reset(changetype<usize>(map), <usize>map.byteLength)).toBe(true);
    expect<bool>(r.next()).toBe(true);
    expect<bool>(r.malformed).toBe(false);
    expect<bool>(r.next()).toBe(false);
    expect<bool>(r.malformed).toBe(true);
    expect<bool>(r.next()).toBe(false);
    // A count of 2^31 pairs in a 40-byte buffer.
    store<u32>(changetype<usize>(map), 0x80000000);
    expect<bool>(r.reset(changetype<usize>(map), <usize>map.byteLength)).toBe(false);
    expect<bool>(r.next()).toBe(false);
    expect<bool>(r.reset(changetype<usize>(map), 3)).toBe(false);
  });
});

describe("RequestHead", () => {
  it("reads method, configured path (query ignored), length and session in one pass", () => {
    const head = new RequestHead();
    const map = encodePairs(
      [":authority", ":method", ":path", "content-length", "x-session-id"],
      ["gw", "POST", "/v1/chat/completions?stream=1", "16384", "conversation-7"]);
    expect<bool>(read(head, map, SESSION)).toBe(true);
    expect<bool>(head.isPost).toBe(true);
    expect<i32>(head.pathIndex).toBe(1);
    expect<i64>(head.declaredLength).toBe(16384);
    const value = String.UTF8.encode("conversation-7");
    expect<u64>(head.session).toBe(xxh64(changetype<usize>(value), value.byteLength, 0x53455353494F4E31) | 1);
  });

  it("says what is not an inference request, and forgets the previous request", () => {
    const head = new RequestHead();
    expect<bool>(read(head, encodePairs([":method", ":path", "content-length"], ["POST", "/v1/completions", "12"]))).toBe(true);
    expect<i32>(head.pathIndex).toBe(0);
    expect<bool>(read(head, encodePairs([":method", ":path"], ["GET", "/v1/completions"]))).toBe(true);
    expect<bool>(head.isPost).toBe(false);
    expect<i64>(head.declaredLength).toBe(-1);
    expect<bool>(read(head, encodePairs([":method", ":path"], ["POST", "/v1/completionsX"]))).toBe(true);
    expect<i32>(head.pathIndex).toBe(-1);
    expect<bool>(read(head, encodePairs([":method", ":path", "content-length"], ["POST", "/v1/completions", "1e3"]))).toBe(true);
    expect<i64>(head.declaredLength).toBe(-1);
    // No session header configured: the header is not read.
    expect<bool>(read(head, encodePairs(["x-session-id"], ["s"]))).toBe(true);
    expect<u64>(head.session).toBe(0);
    // An empty map (the host's answer for no headers) is no request.
    expect<bool>(head.read(0, 0, PATHS, NO_SESSION)).toBe(true);
    expect<bool>(head.isPost).toBe(false);
  });

  it("tells a GET (a peer's ask) and where the whole :path value is, query included", () => {
    const head = new RequestHead();
    const map = encodePairs([":method", ":path", ":authority"], ["GET", "/.well-known/prefix-router/decisions?since=12&instance=7", "10.1.0.1:10000"]);
    expect<bool>(read(head, map)).toBe(true);
    expect<bool>(head.isGet).toBe(true);
    expect<bool>(head.isPost).toBe(false);
    expect<i32>(head.pathIndex).toBe(-1);
    expect<string>(String.UTF8.decodeUnsafe(head.pathPtr, head.pathLength)).toBe("/.well-known/prefix-router/decisions?since=12&instance=7");
    // The pointer is into the map read.
    expect<bool>(head.pathPtr > changetype<usize>(map) && head.pathPtr + head.pathLength <= changetype<usize>(map) + <usize>map.byteLength).toBe(true);
    for (let i = 0; i < 6; i++) {
      const method = ["get", "GETS", "GE", "HEAD", "POST", "G\u0000T"][i];
      expect<bool>(read(head, encodePairs([":method", ":path"], [method, "/x"]))).toBe(true);
      expect<bool>(head.isGet).toBe(false);
    }
    // Forgotten with the next request: no :path, no length.
    expect<bool>(read(head, encodePairs([":method"], ["GET"]))).toBe(true);
    expect<bool>(head.isGet).toBe(true);
    expect<usize>(head.pathLength).toBe(0);
    // Only the first :method counts.
    expect<bool>(read(head, encodePairs([":method", ":method", ":path"], ["POST", "GET", "/x"]))).toBe(true);
    expect<bool>(head.isGet).toBe(false);
  });

  it("keeps the first of repeated headers, and trusts nothing of a malformed map", () => {
    const head = new RequestHead();
    expect<bool>(read(head, encodePairs([":path", ":path", ":method"], ["/v1/completions", "/other", "POST"]))).toBe(true);
    expect<i32>(head.pathIndex).toBe(0);
    const bad = encodePairs([":method"], ["POST"]);
    store<u32>(changetype<usize>(bad), 99);
    expect<bool>(read(head, bad)).toBe(false);
    // The method is read before the path's length turns out to run past the end.
    const cut = encodePairs([":method", ":path"], ["POST", "/v1/completions"]);
    store<u32>(changetype<usize>(cut) + 4 + 8 + 4, 1000);
    expect<bool>(read(head, cut)).toBe(false);
  });
});
