// Socket addresses as the gateway configs use them. Endpoint addresses follow
// exactly the filter's rules (assembly/router/address.ts: "a.b.c.d:port" or
// "[ipv6]:port", no host names, no leading zeros, port 1-65535), because the
// same strings go into the filter's configuration and into Envoy's cluster:
// override_host looks the chosen "ip:port" up among the cluster's hosts, so
// both sides must spell an endpoint identically. Listener and admin addresses
// may use port 0 (the OS picks one; Envoy reports it). Valid endpoint
// addresses are then written as Envoy names the host (canonicalAddress, the
// filter's rule too). Owns: validation, parsing and that canonical text. Must
// not: resolve names or touch the network.

export interface SocketAddress {
  /** The IP without brackets ("10.0.0.5", "::1"), as Envoy's socket_address.address wants it. */
  ip: string;
  port: number;
  ipv6: boolean;
}

const isDigit = (c: string) => c >= "0" && c <= "9";
const isHex = (c: string) => isDigit(c) || (c.toLowerCase() >= "a" && c.toLowerCase() <= "f");

function validPort(s: string, allowZero: boolean): boolean {
  if (s.length === 0 || s.length > 5 || ![...s].every(isDigit)) return false;
  if (s.length > 1 && s[0] === "0") return false;
  const port = Number(s);
  return port <= 65535 && (port >= 1 || (allowZero && port === 0));
}

export function validIPv4(s: string): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  return parts.every((p) => p.length > 0 && p.length <= 3 && [...p].every(isDigit) && !(p.length > 1 && p[0] === "0") && Number(p) <= 255);
}

export function validIPv6(s: string): boolean {
  if (s.length < 2) return false;
  const doubleColon = s.indexOf("::");
  if (doubleColon >= 0 && s.indexOf("::", doubleColon + 1) >= 0) return false;
  const groups = s.split(":");
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (g.length === 0) continue;
    if (i === groups.length - 1 && g.includes(".")) {
      // An embedded IPv4 tail such as ::ffff:10.0.0.1 counts as two groups.
      if (!validIPv4(g)) return false;
      count += 2;
      continue;
    }
    if (g.length > 4 || ![...g].every(isHex)) return false;
    count++;
  }
  if (s.startsWith(":") && !s.startsWith("::")) return false;
  if (s.endsWith(":") && !s.endsWith("::")) return false;
  return doubleColon >= 0 ? count < 8 : count === 8;
}

function check(address: string, allowPortZero: boolean): string | null {
  if (address.startsWith("[")) {
    const close = address.indexOf("]");
    if (close < 0 || close + 1 >= address.length || address[close + 1] !== ":") return "expected [ipv6]:port";
    if (!validIPv6(address.substring(1, close))) return "not a valid IPv6 address";
    if (isIPv4Compatible(ipv6Groups(address.substring(1, close)))) {
      return "a deprecated IPv4-compatible IPv6 address, which C libraries print differently; write a.b.c.d or ::ffff:a.b.c.d";
    }
    if (!validPort(address.substring(close + 2), allowPortZero)) return allowPortZero ? "port must be 0-65535" : "port must be 1-65535";
    return null;
  }
  const colon = address.lastIndexOf(":");
  if (colon < 0) return "expected ip:port";
  if (!validIPv4(address.substring(0, colon))) return "not a valid IPv4 address (host names are not allowed)";
  if (!validPort(address.substring(colon + 1), allowPortZero)) return allowPortZero ? "port must be 0-65535" : "port must be 1-65535";
  return null;
}

/** The filter's rule for an endpoint address: null if valid, else the reason (same wording as the filter). */
export function addressError(address: string): string | null {
  return check(address, false);
}

/** Parses an address already known to be valid under the given port rule. */
function split(address: string): SocketAddress {
  if (address.startsWith("[")) {
    const close = address.indexOf("]");
    return { ip: address.substring(1, close), port: Number(address.substring(close + 2)), ipv6: true };
  }
  const colon = address.lastIndexOf(":");
  return { ip: address.substring(0, colon), port: Number(address.substring(colon + 1)), ipv6: false };
}

/** An endpoint address ("ip:port" / "[ipv6]:port", port ≥ 1), its IP in canonical form; throws with the reason. */
export function parseEndpointAddress(address: string, field = "address"): SocketAddress {
  const bad = addressError(address);
  if (bad !== null) throw new Error(`${field}: "${address}": ${bad}`);
  return split(canonicalAddress(address));
}

/** A listener or admin address; port 0 lets the OS choose. Throws with the reason. */
export function parseBindAddress(address: string, field = "address"): SocketAddress {
  const bad = check(address, true);
  if (bad !== null) throw new Error(`${field}: "${address}": ${bad}`);
  return split(address);
}

/** 127.0.0.0/8 or ::1 (also ::ffff:127.x.y.z): an address only this machine can reach. */
export function isLoopback(a: SocketAddress): boolean {
  if (!a.ipv6) return a.ip.startsWith("127.");
  const ip = a.ip.toLowerCase();
  if (ip === "::1" || ip === "0:0:0:0:0:0:0:1") return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  return mapped !== null && mapped[1].startsWith("127.");
}

/** "ip:port" or "[ipv6]:port" again, for URLs and messages. */
export function formatAddress(a: SocketAddress, port = a.port): string {
  return a.ipv6 ? `[${a.ip}]:${port}` : `${a.ip}:${port}`;
}

// ---- canonical text (the filter's assembly/router/address.ts, the same rules) ----------
//
// override_host looks the header's entries up by exact string among the
// cluster's hosts, each named by its address text (override_host/load_balancer.cc
// findHost), and an IPv6 host's text is "[" + inet_ntop(AF_INET6) + "]:" + port
// (source/common/network/address_impl.cc, makeFriendlyAddress): RFC 5952 §4,
// lower-case hex without leading zeros, the first longest run of two or more
// zero groups as "::", and ::ffff:a.b.c.d for IPv4-mapped addresses (§5).
// The generator writes that text into both the filter's configuration and the
// cluster, so a config written [0:0:0:0:0:0:0:1]:8000 still routes by prefix.

/** The eight 16-bit groups of an address validIPv6 accepts. */
function ipv6Groups(s: string): number[] {
  const parse = (part: string): number[] =>
    part.length === 0
      ? []
      : part.split(":").flatMap((g) => {
          if (!g.includes(".")) return [parseInt(g, 16)];
          const [a, b, c, d] = g.split(".").map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const gap = s.indexOf("::");
  if (gap < 0) return parse(s);
  const head = parse(s.substring(0, gap));
  const tail = parse(s.substring(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * Deprecated IPv4-compatible addresses (six zero groups, then a non-zero
 * seventh; RFC 4291 §2.5.5.1): glibc writes "::1.2.3.4", musl "::102:304".
 */
function isIPv4Compatible(g: number[]): boolean {
  return g.slice(0, 6).every((x) => x === 0) && g[6] !== 0;
}

/** RFC 5952 text of a valid IPv6 address (no brackets), as inet_ntop writes it. */
export function canonicalIPv6(s: string): string {
  const g = ipv6Groups(s);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${g[6] >> 8}.${g[6] & 0xff}.${g[7] >> 8}.${g[7] & 0xff}`;
  }
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  if (bestLength < 2) return g.map((x) => x.toString(16)).join(":");
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLength))}`;
}

/** The text Envoy gives the host at a valid endpoint address: IPv4 as it is, IPv6 in RFC 5952 form. */
export function canonicalAddress(address: string): string {
  if (!address.startsWith("[")) return address;
  const close = address.indexOf("]");
  return `[${canonicalIPv6(address.substring(1, close))}]${address.substring(close + 1)}`;
}
