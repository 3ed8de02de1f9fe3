// Random JSON text for the fuzzers of the two JSON parsers (request bodies and
// the plugin configuration): a small value tree that may hold duplicate keys,
// serialized with random whitespace and random (but valid) escaping, so one
// JSON value has many spellings. Strings draw from ASCII, multi-byte UTF-8,
// every escape form, lone surrogate escapes and NUL escapes; numbers from
// every corner of the grammar, including huge ones. Raw invalid UTF-8 and raw
// control bytes are the mutators' job (mutate.ts), not this file's.
import type { Rng } from "./rng.ts";

export type Json =
  | { t: "obj"; entries: Array<[string, Json]> }
  | { t: "arr"; items: Json[] }
  | { t: "str"; v: string }
  | { t: "num"; text: string }
  | { t: "lit"; text: "true" | "false" | "null" }
  /** Valid JSON text used verbatim (deep nesting, which a recursive walk could not serialize). */
  | { t: "raw"; text: string };

export const obj = (entries: Array<[string, Json]>): Json => ({ t: "obj", entries });
export const arr = (items: Json[]): Json => ({ t: "arr", items });
export const str = (v: string): Json => ({ t: "str", v });
export const num = (n: number | string): Json => ({ t: "num", text: String(n) });
export const lit = (text: "true" | "false" | "null"): Json => ({ t: "lit", text });

const WORDS = ["the", "model", "cache", "prefix", "token", "route", "envoy", "server", "user", "system", "assistant", "content", "role", "text", "prompt", "messages", "lorem", "ipsum"];
const UNICODE = ["é", "ß", "中文", "日本語", "😀", "👩‍💻", "\u2028", "\u00a0", "\ufeff", "Ω", "\u0301", "\uffff", "\u{10ffff}"];
const ESCAPES = ["\\n", "\\t", "\\r", "\\b", "\\f", "\\/", "\\\\", "\\\"", "\\u0000", "\\u001f", "\\u00e9", "\\u00E9", "\\ud83d\\ude00", "\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud800\\u0041", "\\uD834\\uDD1E", "\\u0041"];

/** A string's content as JSON text (without quotes): raw characters and escapes mixed. */
export function stringText(rng: Rng, typical: number, max: number): string {
  const target = rng.size(typical, max);
  let s = "";
  if (target > 4096 && rng.chance(0.7)) {
    // A huge string: one cheap repeated run, so generation stays fast.
    return rng.pick(WORDS).repeat(Math.ceil(target / 5)).slice(0, target);
  }
  while (s.length < target) {
    const r = rng.int(10);
    if (r < 6) s += rng.pick(WORDS) + " ";
    else if (r < 8) s += rng.pick(UNICODE);
    else s += rng.pick(ESCAPES);
  }
  return s;
}

/** A random string value (decoded form; serialize() chooses its spelling). */
export function randomString(rng: Rng, typical = 24, max = 4096): string {
  return JSON.parse(`"${stringText(rng, typical, max)}"`) as string;
}

export function randomNumber(rng: Rng): string {
  switch (rng.int(12)) {
    case 0: return "0";
    case 1: return "-0";
    case 2: return String(rng.int(1000));
    case 3: return String(-rng.int(1 << 30));
    case 4: return `${rng.int(100)}.${rng.int(1000)}`;
    case 5: return `${rng.int(10)}e${rng.range(-400, 400)}`;
    case 6: return `-${rng.int(10)}.${rng.int(10)}E+${rng.int(30)}`;
    case 7: return "1e999999999";
    case 8: return "9".repeat(rng.range(20, 400));
    case 9: return `0.${"0".repeat(rng.range(10, 400))}1`;
    case 10: return String(Number.MAX_SAFE_INTEGER + rng.int(100));
    default: return `${rng.range(1, 9)}${"0".repeat(rng.int(30))}`;
  }
}

/** Any value, nesting at most `depth` more levels. */
export function randomValue(rng: Rng, depth: number): Json {
  const r = rng.int(depth > 0 ? 10 : 6);
  if (r < 2) return str(randomString(rng));
  if (r < 4) return num(randomNumber(rng));
  if (r < 6) return lit(rng.pick(["true", "false", "null"] as const));
  if (r < 8) return arr(Array.from({ length: rng.int(5) }, () => randomValue(rng, depth - 1)));
  return obj(Array.from({ length: rng.int(5) }, () => [randomString(rng, 8, 64), randomValue(rng, depth - 1)] as [string, Json]));
}

/** `depth` nested arrays or objects around the number 1. */
export function nested(rng: Rng, depth: number): Json {
  const objects = rng.chance(0.5);
  return { t: "raw", text: objects ? '{"a":'.repeat(depth) + "1" + "}".repeat(depth) : "[".repeat(depth) + "1" + "]".repeat(depth) };
}

export interface SerializeOptions {
  /** Chance of whitespace between tokens. */
  space: number;
  /** Chance of escaping an ordinary character of a string. */
  escape: number;
}

const WHITESPACE = [" ", "\n", "\t", "\r\n", "  ", " \t "];

/** JSON text for `v`, spelled at random but always valid. */
export function serialize(rng: Rng, v: Json, o: SerializeOptions = { space: 0.1, escape: 0.02 }): string {
  const parts: string[] = [];
  const ws = () => {
    if (rng.chance(o.space)) parts.push(rng.pick(WHITESPACE));
  };
  const walk = (x: Json) => {
    ws();
    switch (x.t) {
      case "str": parts.push(quote(rng, x.v, o.escape)); break;
      case "num": case "lit": case "raw": parts.push(x.text); break;
      case "arr":
        parts.push("[");
        x.items.forEach((item, i) => {
          if (i > 0) parts.push(",");
          walk(item);
        });
        ws();
        parts.push("]");
        break;
      case "obj":
        parts.push("{");
        x.entries.forEach(([k, item], i) => {
          if (i > 0) parts.push(",");
          ws();
          parts.push(quote(rng, k, o.escape));
          ws();
          parts.push(":");
          walk(item);
        });
        ws();
        parts.push("}");
        break;
    }
    ws();
  };
  walk(v);
  return parts.join("");
}

/** A JSON string literal for `s`; with probability `escape` per character, a \u escape. */
export function quote(rng: Rng, s: string, escape: number): string {
  if (escape <= 0 || s.length > 256) return JSON.stringify(s);
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    const lone = code >= 0xd800 && code <= 0xdfff;
    if (rng.chance(escape) || code < 0x20 || lone || ch === '"' || ch === "\\") {
      if (code > 0xffff) {
        const hi = 0xd800 + ((code - 0x10000) >> 10);
        const lo = 0xdc00 + ((code - 0x10000) & 0x3ff);
        out += `\\u${hex4(hi)}\\u${hex4(lo)}`;
      } else if (ch === '"' || ch === "\\") {
        out += rng.chance(0.5) ? "\\" + ch : `\\u${hex4(code)}`;
      } else {
        out += `\\u${rng.chance(0.5) ? hex4(code) : hex4(code).toUpperCase()}`;
      }
    } else {
      out += ch;
    }
  }
  return out + '"';
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** With probability p, a copy of `entries` with one key repeated (a decoy value first). */
export function maybeDuplicate(rng: Rng, entries: Array<[string, Json]>, p: number, decoy: () => Json): Array<[string, Json]> {
  if (entries.length === 0 || !rng.chance(p)) return entries;
  const i = rng.int(entries.length);
  const copy = entries.slice();
  // Mostly before the original (which then still wins), sometimes after it.
  copy.splice(rng.chance(0.7) ? rng.int(i + 1) : i + 1, 0, [entries[i][0], decoy()]);
  return copy;
}
