// Endpoint address validation: "a.b.c.d:port" or "[ipv6]:port", exactly what
// Envoy's override_host policy and ORIGINAL_DST clusters accept as a host
// (envoy load_balancing_policies/override_host/load_balancer.cc parses the
// header value as an IP address and port). No host names: Envoy would not
// resolve them there, and a name would let DNS pick the upstream.
// Configuration time only; allocation is fine here. Valid addresses are then
// rewritten into the text Envoy gives the host (canonicalAddress, below).

function isDigit(c: i32): bool { return c >= 0x30 && c <= 0x39; }
function isHex(c: i32): bool { return isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66); }

function validPort(s: string): bool {
  if (s.length == 0 || s.length > 5) return false;
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return false;
  if (s.length > 1 && s.charCodeAt(0) == 0x30) return false;
  const port = I32.parseInt(s);
  return port >= 1 && port <= 65535;
}

export function validIPv4(s: string): bool {
  const parts = s.split(".");
  if (parts.length != 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (p.length == 0 || p.length > 3) return false;
    for (let j = 0; j < p.length; j++) if (!isDigit(p.charCodeAt(j))) return false;
    if (p.length > 1 && p.charCodeAt(0) == 0x30) return false;
    if (I32.parseInt(p) > 255) return false;
  }
  return true;
}

export function validIPv6(s: string): bool {
  if (s.length < 2) return false;
  const doubleColon = s.indexOf("::");
  if (doubleColon >= 0 && s.indexOf("::", doubleColon + 1) >= 0) return false;
  const groups = s.split(":");
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (g.length == 0) continue; // part of "::" (validated above) or a leading/trailing one
    if (i == groups.length - 1 && g.indexOf(".") >= 0) {
      // An embedded IPv4 tail such as ::ffff:10.0.0.1 counts as two groups.
      if (!validIPv4(g)) return false;
      count += 2;
      continue;
    }
    if (g.length > 4) return false;
    for (let j = 0; j < g.length; j++) if (!isHex(g.charCodeAt(j))) return false;
    count++;
  }
  // A lone leading or trailing colon is only valid as part of "::".
  if (s.startsWith(":") && !s.startsWith("::")) return false;
  if (s.endsWith(":") && !s.endsWith("::")) return false;
  return doubleColon >= 0 ? count < 8 : count == 8;
}

/** Returns null if `address` is a valid ip:port / [ipv6]:port, else the reason. */
export function addressError(address: string): string | null {
  if (address.startsWith("[")) {
    const close = address.indexOf("]");
    if (close < 0 || close + 1 >= address.length || address.charCodeAt(close + 1) != 0x3A) {
      return "expected [ipv6]:port";
    }
    if (!validIPv6(address.substring(1, close))) return "not a valid IPv6 address";
    if (isIPv4Compatible(ipv6Groups(address.substring(1, close)))) {
      return "a deprecated IPv4-compatible IPv6 address, which C libraries print differently; write a.b.c.d or ::ffff:a.b.c.d";
    }
    if (!validPort(address.substring(close + 2))) return "port must be 1-65535";
    return null;
  }
  const colon = address.lastIndexOf(":");
  if (colon < 0) return "expected ip:port";
  if (!validIPv4(address.substring(0, colon))) return "not a valid IPv4 address (host names are not allowed)";
  if (!validPort(address.substring(colon + 1))) return "port must be 1-65535";
  return null;
}

// ---- canonical text ----------------------------------------------------------------
//
// override_host finds the header's host by exact string lookup in the cluster's
// host map, keyed by each host's address text (override_host/load_balancer.cc
// findHost: crossPriorityHostMap()->find). For IPv6 that text is
// "[" + inet_ntop(AF_INET6) + "]:" + port (source/common/network/address_impl.cc,
// Ipv6Instance::Ipv6Helper::makeFriendlyAddress), i.e. RFC 5952 §4: lower-case
// hex, no leading zeros, the longest run of two or more zero groups (the first
// of equal runs) as "::", and IPv4-mapped addresses as ::ffff:a.b.c.d (§5).
// An endpoint written any other way ([0:0:0:0:0:0:0:1]:8000, [FD00::7]:80)
// would never match and every routed request would silently go to round robin,
// so the filter rewrites each address into that text before using it.

function hexValue(c: i32): i32 {
  if (isDigit(c)) return c - 0x30;
  return (c | 0x20) - 0x61 + 10;
}

/** Appends the groups of one side of "::" (already validated) to `out`. */
function parseGroups(part: string, out: u32[]): void {
  if (part.length == 0) return;
  const groups = part.split(":");
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (g.indexOf(".") >= 0) {
      const octets = g.split(".");
      out.push(<u32>(I32.parseInt(octets[0]) << 8 | I32.parseInt(octets[1])));
      out.push(<u32>(I32.parseInt(octets[2]) << 8 | I32.parseInt(octets[3])));
      continue;
    }
    let v: u32 = 0;
    for (let j = 0; j < g.length; j++) v = (v << 4) | <u32>hexValue(g.charCodeAt(j));
    out.push(v);
  }
}

/** The eight 16-bit groups of an address validIPv6 accepts. */
function ipv6Groups(s: string): u32[] {
  const groups: u32[] = [];
  const gap = s.indexOf("::");
  if (gap < 0) {
    parseGroups(s, groups);
    return groups;
  }
  const tail: u32[] = [];
  parseGroups(s.substring(0, gap), groups);
  parseGroups(s.substring(gap + 2), tail);
  while (groups.length + tail.length < 8) groups.push(0);
  for (let i = 0; i < tail.length; i++) groups.push(tail[i]);
  return groups;
}

/**
 * IPv4-compatible addresses (::a.b.c.d with the last 32 bits not 0 or 1-16-bit:
 * six zero groups, then a non-zero seventh) are deprecated (RFC 4291 §2.5.5.1)
 * and C libraries print them differently (glibc "::1.2.3.4", musl "::102:304"),
 * so no canonical text can be promised for them.
 */
function isIPv4Compatible(g: u32[]): bool {
  for (let i = 0; i < 6; i++) if (g[i] != 0) return false;
  return g[6] != 0;
}

function dotted(hi: u32, lo: u32): string {
  return (hi >> 8).toString() + "." + (hi & 0xFF).toString() + "." + (lo >> 8).toString() + "." + (lo & 0xFF).toString();
}

/** RFC 5952 text of a valid IPv6 address (without brackets), as inet_ntop writes it. */
export function canonicalIPv6(s: string): string {
  const g = ipv6Groups(s);
  let mapped = g[5] == 0xFFFF;
  for (let i = 0; i < 5; i++) if (g[i] != 0) mapped = false;
  if (mapped) return "::ffff:" + dotted(g[6], g[7]);
  // The longest run of zero groups, the first of equal runs, at least two long.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (g[i] != 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] == 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestLength < 2) bestStart = -1;
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (i == bestStart) {
      out += "::";
      i += bestLength - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(":")) out += ":";
    out += g[i].toString(16);
  }
  return out;
}

/**
 * The text Envoy gives the host at a valid `address`: IPv4 unchanged (the
 * rules above already refuse leading zeros), IPv6 in RFC 5952 form.
 */
export function canonicalAddress(address: string): string {
  if (!address.startsWith("[")) return address;
  const close = address.indexOf("]");
  return "[" + canonicalIPv6(address.substring(1, close)) + "]" + address.substring(close + 1);
}
