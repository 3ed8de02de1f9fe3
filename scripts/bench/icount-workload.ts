// The program npm run bench:icount (icount.ts) runs under valgrind: either
// `requests` decisions through a build of the filter in the host emulator
// (router-workload.ts: 16 KB chat bodies sharing 8 system prompts, static
// endpoints, worker VMs taking turns, each stream answered and ended, a
// 100 ms tick every 100 requests, as decision-cost.ts drives them), or
// `passes` of the module's own xxHash64 over one such body. Nothing is timed:
// icount.ts counts the instructions the module's compiled code executed, and
// runs each mode at two sizes so that everything both runs share (start-up,
// compilation, the gateway) cancels out.
//
// Usage (from the repository root):
//   node --import tsx scripts/bench/icount-workload.ts decisions WASM VMS REQUESTS SIZE ENDPOINTS
//   node --import tsx scripts/bench/icount-workload.ts hash WASM PASSES SIZE
import { DEFAULT_DESTINATION_HEADER } from "../gateway/envoy-config.ts";
import { HEADERS, benchGateway, chatBody, moduleHash } from "./router-workload.ts";

/** Requests between ticks, as npm run bench (decision-cost.ts). */
const TICK_EVERY = 100;

async function decisions(wasm: string, vms: number, requests: number, size: number, endpoints: number): Promise<void> {
  const { clock, plugin } = await benchGateway(endpoints, vms, wasm);
  for (let i = 0; i < requests; i++) {
    const s = plugin.newStream(i % vms);
    s.sendRequestHeaders(HEADERS, false);
    s.sendRequestBody(Buffer.from(chatBody(size, i)), true);
    // Every request must be a decision: one that passed through (a VM failed) would be counted as one.
    if (!s.requestHeaders.some(([name]) => name === DEFAULT_DESTINATION_HEADER)) throw new Error(`request ${i} (worker ${i % vms}) was not routed`);
    s.sendResponseHeaders({ ":status": "200" }, true); // both directions over: the stream ends (on_done)
    if (i % TICK_EVERY === 0) clock.advance(100);
  }
}

/** The module's xxHash64 over one body, `passes` times (router-workload.ts moduleHash). */
async function hashPasses(wasm: string, passes: number, size: number): Promise<void> {
  const { load, hash } = await moduleHash(wasm);
  const body = Buffer.from(chatBody(size, 0));
  const base = load(body);
  for (let i = 0; i < passes; i++) hash(base, body.length);
}

const [mode, wasm, ...rest] = process.argv.slice(2);
const n = rest.map(Number);
if (mode === "decisions" && n.length === 4 && n.every((x) => Number.isInteger(x) && x > 0)) {
  await decisions(wasm, n[0], n[1], n[2], n[3]);
} else if (mode === "hash" && n.length === 2 && n.every((x) => Number.isInteger(x) && x > 0)) {
  await hashPasses(wasm, n[0], n[1]);
} else {
  process.stderr.write("usage: icount-workload.ts decisions WASM VMS REQUESTS SIZE ENDPOINTS | hash WASM PASSES SIZE\n");
  process.exit(2);
}
