// Endpoint address validation: "a.b.c.d:port" or "[ipv6]:port", exactly what
// Envoy's override_host policy and ORIGINAL_DST clusters accept as a host
// (envoy load_balancing_policies/override_host/load_balancer.cc parses the
// header value as an IP address and port). No host names: Envoy would not
// resolve them there, and a name would let DNS pick the upstream.
// Configuration time only; allocation is fine here.

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
    if (!validPort(address.substring(close + 2))) return "port must be 1-65535";
    return null;
  }
  const colon = address.lastIndexOf(":");
  if (colon < 0) return "expected ip:port";
  if (!validIPv4(address.substring(0, colon))) return "not a valid IPv4 address (host names are not allowed)";
  if (!validPort(address.substring(colon + 1))) return "port must be 1-65535";
  return null;
}
