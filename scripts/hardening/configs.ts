// Generated plugin configurations for the configuration parser's fuzzer and the
// abuse checks: valid ones (every field, boundary values, IPv4 and IPv6
// endpoints, metrics with named and explicit dialects) and ones that try to
// smuggle something past validation (host names, lists, CR/LF, zone ids,
// octal or short IPv4 forms, header names that are not tokens). `acceptable`
// is the oracle: what an accepted configuration may contain.
import { isIPv6 } from "node:net";
import type { Rng } from "./rng.ts";
import { arr, lit, maybeDuplicate, num, obj, randomNumber, randomString, randomValue, serialize, str, type Json } from "./json-gen.ts";

/** Addresses a configuration must never accept (each paired with why). */
export const SMUGGLED_ADDRESSES: ReadonlyArray<[string, string]> = [
  ["evil.example.com:80", "host name"],
  ["localhost:8000", "host name"],
  ["metadata.google.internal:80", "host name"],
  ["10.0.0.1:80\r\nx-injected: 1", "CR/LF"],
  ["10.0.0.1:80\n", "LF"],
  ["10.0.0.1:80,169.254.169.254:80", "list"],
  ["10.0.0.1:80 169.254.169.254:80", "space-separated list"],
  ["10.0.0.1", "no port"],
  ["10.0.0.1:", "empty port"],
  ["10.0.0.1:0", "port 0"],
  ["10.0.0.1:65536", "port out of range"],
  ["10.0.0.1:080", "port with a leading zero"],
  ["10.0.0.1:+80", "signed port"],
  ["10.0.0.1:8O", "letter in port"],
  ["0x7f.0.0.1:80", "hex octet"],
  ["0177.0.0.1:80", "octal octet"],
  ["127.1:80", "short IPv4 form"],
  ["2130706433:80", "integer IPv4 form"],
  ["010.0.0.1:80", "leading zero octet"],
  ["256.0.0.1:80", "octet out of range"],
  [" 10.0.0.1:80", "leading space"],
  ["10.0.0.1:80 ", "trailing space"],
  ["10.0.0.1:80/", "path"],
  ["http://10.0.0.1:80", "URL"],
  ["user@10.0.0.1:80", "userinfo"],
  ["１０.0.0.1:80", "full-width digits"],
  ["10.0.0.1\u0000:80", "NUL"],
  ["[::1]", "IPv6 without port"],
  ["::1:80", "IPv6 without brackets"],
  ["[fe80::1%eth0]:80", "IPv6 zone id"],
  ["[fe80::1%25eth0]:80", "IPv6 escaped zone id"],
  ["[1::2::3]:80", "two ::"],
  ["[::1]80", "no colon after ]"],
  ["[::1]:80:80", "two ports"],
  ["[12345::1]:80", "IPv6 group too long"],
  ["[::ffff:999.0.0.1]:80", "bad embedded IPv4"],
  ["[]:80", "empty IPv6"],
  ["", "empty"],
];

const IPV4_PORT = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])){3}:([1-9][0-9]{0,4})$/;

/** The oracle for an accepted endpoint address: an IP literal and a port, nothing else. */
export function strictAddress(a: string): boolean {
  const v4 = IPV4_PORT.exec(a);
  if (v4 !== null) return Number(v4[4]) <= 65535;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:([1-9][0-9]{0,4})$/.exec(a);
  return v6 !== null && isIPv6(v6[1]) && Number(v6[2]) <= 65535;
}

/** The oracle for an accepted header name: a lower-case HTTP token, no pseudo-header. */
export function strictHeaderName(h: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(h);
}

/** The oracle for a path sent on the wire (metrics scrapes): no controls, spaces or DEL. */
export function strictPath(p: string): boolean {
  return p.startsWith("/") && !/[\u0000-\u0020\u007f]/.test(p);
}

export function randomAddress(rng: Rng): string {
  const port = rng.chance(0.8) ? 8000 + rng.int(4) : rng.range(1, 65535);
  switch (rng.int(6)) {
    case 0: return `[2001:db8::${rng.int(0xffff).toString(16)}]:${port}`;
    case 1: return `[::ffff:10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}]:${port}`;
    case 2: return `[fd00:${Array.from({ length: 7 }, () => rng.int(0x10000).toString(16)).join(":")}]:${port}`;
    default: return `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}:${port}`;
  }
}

/** A valid value, a boundary value or a wrong type for a numeric field with range [lo, hi]. */
function numberField(rng: Rng, lo: number, hi: number, integer = true): Json {
  const r = rng.int(24);
  if (r < 16) return num(integer ? rng.range(lo, Math.min(hi, lo + 1000)) : lo + rng.float() * (Math.min(hi, lo + 100) - lo));
  if (r < 19) return num(rng.pick([lo, hi]));
  if (r === 19) return num(rng.pick([lo - 1, hi + 1]));
  if (r === 20) return num(`${lo}.5`);
  if (r === 21) return num(randomNumber(rng));
  if (r === 22) return str(String(lo));
  return lit("null");
}

function endpoint(rng: Rng, addresses: string[]): Json {
  const entries: Array<[string, Json]> = [];
  const address = rng.chance(0.997) ? randomAddress(rng) : rng.chance(0.7) ? rng.pick(SMUGGLED_ADDRESSES)[0] : randomString(rng, 16, 64);
  addresses.push(address);
  entries.push(["address", rng.chance(0.998) ? str(address) : randomValue(rng, 1)]);
  if (rng.chance(0.3)) entries.push(["metricsAddress", str(rng.chance(0.99) ? `127.0.0.1:${9000 + rng.int(100)}` : rng.pick(SMUGGLED_ADDRESSES)[0])]);
  if (rng.chance(0.002)) entries.push(["weight", num(1)]);
  return obj(maybeDuplicate(rng, entries, 0.005, () => str(rng.pick(SMUGGLED_ADDRESSES)[0])));
}

const HEADER_NAMES = ["x-gateway-destination-endpoint", "X-Upstream", "x-envoy-original-dst-host", ":authority", "host", "", "x dest", "x-dest\r\nx-evil: 1", "x-dest\u0000", "x-dést", "x-dest:", "x(dest)", "x-dest\t"];
const METRIC_SPECS = ["vllm:num_requests_waiting", "nv_trt_llm_request_metrics{request_type=\"waiting\"}", "m{a=b,c=\"d\\\"e\"}", "m{", "m{a=}", "", "1bad", "m{a=\"b\"} trailing", "m{a=\"\\n\"}"];

function metrics(rng: Rng): Json {
  const entries: Array<[string, Json]> = [];
  if (rng.chance(0.95)) entries.push(["cluster", str(rng.chance(0.9) ? "metrics" : randomString(rng, 8, 32))]);
  if (rng.chance(0.3)) entries.push(["path", str(rng.pick(["/metrics", "/v1/metrics?x=1", "metrics", "/metrics\r\nHost: evil", "/m etrics", "/"]))]);
  if (rng.chance(0.5)) entries.push(["intervalMs", numberField(rng, 10, 3600000)]);
  if (rng.chance(0.3)) entries.push(["timeoutMs", numberField(rng, 1, 600000)]);
  if (rng.chance(0.2)) entries.push(["unhealthyAfter", numberField(rng, 1, 1000)]);
  if (rng.chance(0.2)) entries.push(["staleAfterIntervals", numberField(rng, 1, 1000)]);
  if (rng.chance(0.5)) {
    if (rng.chance(0.6)) {
      entries.push(["dialect", str(rng.pick(["vllm", "sglang", "trtllm", "trtllm-serve", "", "tgi"]))]);
    } else {
      const names = ["queue", "running", "kvUtilization", "blockSize", "numBlocks", "cacheInfo", "cacheBlockSizeLabel", "cacheNumBlocksLabel", "prefixQueries", "prefixHits", "lora", "unknown"];
      entries.push(["dialect", obj(Array.from({ length: rng.int(5) }, () => [rng.pick(names), str(rng.pick(METRIC_SPECS))] as [string, Json]))]);
    }
  }
  return obj(entries);
}

/** One configuration (valid JSON; whether the filter must accept it is the parser's call). */
export function generateConfig(rng: Rng): { text: string; addresses: string[] } {
  const addresses: string[] = [];
  const entries: Array<[string, Json]> = [];
  if (rng.chance(0.97)) {
    const n = rng.chance(0.0002) ? rng.range(60000, 65600) : rng.chance(0.02) ? 0 : 1 + rng.size(4, 300);
    entries.push(["endpoints", rng.chance(0.98) ? arr(Array.from({ length: n }, () => endpoint(rng, addresses))) : randomValue(rng, 2)]);
  }
  if (rng.chance(0.2)) entries.push(["destinationHeader", str(rng.chance(0.5) ? rng.pick(HEADER_NAMES.slice(0, 3)) : rng.pick(HEADER_NAMES))]);
  if (rng.chance(0.2)) {
    const good = ["/v1/completions", "/v1/chat/completions", "/x/chat/completions"];
    const any = [...good, "relative", "/q?x", ""];
    entries.push(["paths", arr(Array.from({ length: rng.range(rng.chance(0.9) ? 1 : 0, 4) }, () => str(rng.pick(rng.chance(0.8) ? good : any))))]);
  }
  const ranges: Array<[string, number, number]> = [
    ["hashBlockSize", 8, 4096], ["maxPrefixBlocks", 1, 4096], ["indexStride", 1, 64], ["lruCapacityPerServer", 1, 100000000],
    ["maxIndexBlocks", 1024, 1 << 26], ["maxBodyBytes", 1024, 64 << 20], ["minMatchBlocks", 1, 4096],
    ["journalSlots", 16, 1 << 16], ["tickMs", 10, 60000], ["parkTimeoutMs", 10, 60000],
  ];
  for (const [name, lo, hi] of ranges) if (rng.chance(0.15)) entries.push([name, numberField(rng, lo, hi)]);
  if (rng.chance(0.1)) entries.push(["inFlightSaturation", numberField(rng, 1, 1e6, false)]);
  if (rng.chance(0.1)) entries.push(["queueSaturation", numberField(rng, 1, 1e6, false)]);
  if (rng.chance(0.15)) {
    const keys = rng.chance(0.9) ? ["prefix", "queue", "kvCache", "inFlight"] : ["prefix", "other"];
    entries.push(["weights", obj(keys.filter(() => rng.chance(0.5)).map((k) => [k, numberField(rng, 0, 1000, false)] as [string, Json]))]);
  }
  if (rng.chance(0.1)) entries.push(["guard", obj([["loadFactor", numberField(rng, 1, 100, false)], ["slack", numberField(rng, 0, 1e6, false)]])]);
  if (rng.chance(0.3)) entries.push(["metrics", metrics(rng)]);
  if (rng.chance(0.03)) entries.push([randomString(rng, 8, 32), randomValue(rng, 2)]);
  const top = rng.chance(0.01) ? randomValue(rng, 2) : obj(maybeDuplicate(rng, rng.chance(0.5) ? entries : rng.shuffle(entries), 0.05, () => randomValue(rng, 1)));
  return { text: serialize(rng, top, { space: rng.pick([0, 0, 0.1]), escape: rng.pick([0, 0, 0.02]) }), addresses };
}

export const CONFIG_TOKENS = [
  "{", "}", "[", "]", ",", ":", '"', "\\", "\\u0000", "\\ud800", "null", "1e999", "-1", "0.5", '"endpoints"', '{"address":"',
  '"10.0.0.1:80"', '"[::1]:80"', '"evil.example.com:80"', '"metrics":{"cluster":"m"}', '"destinationHeader":"', "\r\n",
  '"maxPrefixBlocks":4096', '"hashBlockSize":4096', '"journalSlots":65536', "\u0000", "\u00ff",
];
