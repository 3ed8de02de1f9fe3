// Socket addresses as the gateway configs use them. Endpoint addresses follow
// exactly the filter's rules (assembly/router/address.ts: "a.b.c.d:port" or
// "[ipv6]:port", no host names, no leading zeros, port 1-65535), because the
// same strings go into the filter's configuration and into Envoy's cluster:
// override_host looks the chosen "ip:port" up among the cluster's hosts, so
// both sides must spell an endpoint identically. Listener and admin addresses
// may use port 0 (the OS picks one; Envoy reports it). Owns: validation and
// parsing. Must not: resolve names or touch the network.

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

/** An endpoint address ("ip:port" / "[ipv6]:port", port ≥ 1); throws with the reason. */
export function parseEndpointAddress(address: string, field = "address"): SocketAddress {
  const bad = addressError(address);
  if (bad !== null) throw new Error(`${field}: "${address}": ${bad}`);
  return split(address);
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
