// The decision benchmark's workload, shared by npm run bench (router.ts),
// npm run bench:profile (profile-router.ts) and npm run bench:icount
// (icount-workload.ts): the built filter in the host emulator, a static list
// of endpoints, chat bodies that share one of 8 system prompts, and the
// module's own xxHash64 pass, the yardstick of their figures.
import { readFileSync } from "node:fs";
import { Envoy, VirtualClock } from "../host/index.ts";

export const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;

export const HEADERS = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gateway", "content-type": "application/json" };

/**
 * Deterministic filler text of `n` characters, in lines of 80 characters or
 * so: real prompts are lines, and a JSON body carries each break as the
 * escape \n, which the filter's reader checks (json.ts), so a body without
 * them would time less work than real ones cost. With `code`, each line ends
 * as a line of source code might, in a string literal holding a backslash
 * (`= "\n";`), which JSON carries as \" and \\.
 */
export function filler(seed: number, n: number, lineBreaks = true, code = false): string {
  let x = (seed * 2654435761) >>> 0;
  const words = ["the", "model", "cache", "prefix", "token", "route", "envoy", "server", "block", "hash", "query", "answer"];
  let s = "";
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += words[x % words.length] + (lineBreaks && x % 13 === 0 ? (code ? ' = "\\n";\n' : "\n") : " ");
  }
  return s.slice(0, n);
}

/** A chat body of about `size` bytes: one of 8 shared system prompts (half the body) and a distinct question; `lineBreaks` false: without escapes. */
export function chatBody(size: number, i: number, lineBreaks = true, code = false): string {
  const system = filler(1000 + (i % 8), Math.floor(size / 2), lineBreaks, code);
  const skeleton = JSON.stringify({ model: "llama-3.1-8b", messages: [{ role: "system", content: system }, { role: "user", content: "" }], max_tokens: 64 });
  const user = `request ${i}: ` + filler(i, Math.max(0, size - skeleton.length - 20), lineBreaks, code);
  return JSON.stringify({ model: "llama-3.1-8b", messages: [{ role: "system", content: system }, { role: "user", content: user }], max_tokens: 64 });
}

/** The filter with `endpoints` static endpoints and `vms` worker VMs, on a virtual clock. */
export async function benchGateway(endpoints: number, vms = 1, wasm = WASM) {
  const clock = new VirtualClock();
  const envoy = new Envoy({ clock, logLevel: "warn" });
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router", rootId: "prefix_router", vmId: "prefix_router", wasm, concurrency: vms,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({ endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `10.${(i >> 8) & 255}.${i & 255}.1:8000` })) }),
  });
  // A worker whose VM failed to load skips the filter, as in Envoy: a benchmark
  // would time (or count) its requests' pass-through as decisions.
  if (plugin.vms.length !== vms) {
    const errors = envoy.logs.filter((l) => l.level === "error" || l.level === "critical").map((l) => l.message);
    throw new Error(`${vms - plugin.vms.length} of ${vms} worker VMs failed to load: ${errors.join("; ")}`);
  }
  return { clock, envoy, plugin };
}

/**
 * The module's own xxHash64 (its diagnostic export prefix_router_hash_pass),
 * in a second instance of `wasm` with inert imports: `load` copies bytes into
 * its memory and returns where, `hash` hashes [ptr, ptr + len). The benchmarks'
 * yardstick, the same code in the same V8.
 */
export async function moduleHash(wasm = WASM): Promise<{ load(bytes: Uint8Array): number; hash(ptr: number, len: number): bigint }> {
  const module = await WebAssembly.compile(readFileSync(wasm));
  const imports: Record<string, Record<string, () => number>> = {};
  for (const imp of WebAssembly.Module.imports(module)) (imports[imp.module] ??= {})[imp.name] = () => 0;
  const instance = await WebAssembly.instantiate(module, imports as WebAssembly.Imports);
  const memory = instance.exports.memory as WebAssembly.Memory;
  return {
    load(bytes) {
      const base = memory.buffer.byteLength;
      memory.grow(Math.ceil(bytes.length / 65536) + 1);
      new Uint8Array(memory.buffer).set(bytes, base);
      return base;
    },
    hash: instance.exports.prefix_router_hash_pass as (ptr: number, len: number) => bigint,
  };
}
