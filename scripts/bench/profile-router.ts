// Where a decision's module time goes (npm run bench:profile): the decision
// benchmark's 16 KB / 64-endpoint workload (router-workload.ts) run under
// V8's sampling profiler, the samples inside the module's functions grouped
// by the part of the filter they belong to. The module is the release build
// compiled again with its name section kept (asc --debug), so that samples
// carry function names; the code is otherwise the same optimized build.
//
// Usage: node --import tsx scripts/bench/profile-router.ts [--vms N] [--requests N] [--out FILE]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { HEADERS, benchGateway, chatBody } from "./router-workload.ts";

const { values } = parseArgs({
  options: {
    vms: { type: "string", default: "1" },
    requests: { type: "string", default: "20000" },
    out: { type: "string" },
    // "plain": bodies without line breaks, so without JSON escapes (as bench:ab --bodies plain).
    bodies: { type: "string", default: "lines" },
  },
});
const VMS = Number(values.vms);
const REQUESTS = Number(values.requests);
if (!(Number.isInteger(VMS) && VMS >= 1 && Number.isInteger(REQUESTS) && REQUESTS >= 1000)) {
  throw new Error("--vms must be a whole number ≥ 1 and --requests one ≥ 1000");
}
const ROOT = new URL("../..", import.meta.url).pathname;

/** Function-name prefixes (AssemblyScript's internal names: file path, then class#method) and the part they belong to. */
const PARTS: Array<[RegExp, string]> = [
  [/^assembly\/router\/(prefix_table|pending_placements)\//, "index (match, insert, evict)"],
  [/^assembly\/router\/(scorer|work|load|inflight)\//, "scoring and load"],
  [/^assembly\/router\/(json|request|bytes)\//, "reading the JSON, the prompt"],
  // The block chain runs in BlockChain#absorbBlocks (before commit cc72c61 it was inlined into Router#decide).
  [/^assembly\/router\/hash\//, "hashing the blocks"],
  [/^assembly\/router\/router\/Router#decide$/, "the decision's own steps (Router#decide)"],
  [/^assembly\/router\/(journal|affinity)\/|^assembly\/abi\/host\/getSharedData/, "journal (shared data)"],
  [/^~lib\/rt\//, "allocator and GC"],
];

function partOf(name: string): string {
  for (const [re, part] of PARTS) if (re.test(name)) return part;
  return "other";
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string }; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "prefix-router-profile-"));
  try {
    const wasm = join(dir, "prefix_router.named.wasm");
    execFileSync(join(ROOT, "node_modules/.bin/asc"), ["assembly/index.ts", "--target", "release", "--debug", "-o", wasm], { cwd: ROOT, stdio: "inherit" });
    const { clock, plugin } = await benchGateway(64, VMS, wasm);
    const bodies = Array.from({ length: 2048 }, (_, i) => Buffer.from(chatBody(16 * 1024, i, values.bodies !== "plain")));
    const send = (i: number) => {
      const s = plugin.newStream(i % VMS);
      s.sendRequestHeaders(HEADERS, false);
      s.sendRequestBody(bodies[i % bodies.length], true);
      s.complete();
      if (i % 100 === 0) clock.advance(100);
    };
    for (let i = 0; i < REQUESTS / 4; i++) send(i); // warm-up: the index fills, V8 optimizes
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    for (let i = REQUESTS / 4; i < REQUESTS; i++) send(i);
    const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: Profile };
    session.disconnect();

    const selfUs = new Map<number, number>();
    profile.samples.forEach((id, k) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[k] ?? 0)));
    const byPart = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let total = 0;
    for (const node of profile.nodes) {
      const t = selfUs.get(node.id) ?? 0;
      if (t === 0 || !node.callFrame.url.startsWith("wasm://")) continue;
      const name = node.callFrame.functionName;
      byPart.set(partOf(name), (byPart.get(partOf(name)) ?? 0) + t);
      byFunction.set(name, (byFunction.get(name) ?? 0) + t);
      total += t;
    }
    const share = (t: number) => `${((100 * t) / total).toFixed(1)}%`;
    const lines = [
      `# Where the module time of a decision goes`,
      "",
      `\`node --import tsx scripts/bench/profile-router.ts --vms ${VMS} --requests ${REQUESTS}${values.bodies === "plain" ? " --bodies plain" : ""}\` (npm run bench:profile): 16 KB chat bodies ` +
        `${values.bodies === "plain" ? "without line breaks (no JSON escapes)" : "with a line break every 80 characters or so"} ` +
        `(half one of 8 shared system prompts), 64 endpoints, ${VMS} worker VM${VMS === 1 ? "" : "s"}, ticks every 100 requests; ` +
        `V8's sampling profiler (100 µs) over the last ${(REQUESTS * 3) / 4} requests; samples inside the module's functions only ` +
        `(${(total / 1000).toFixed(0)} ms of them), ticks included.`,
      "",
      "| part | share of module time |",
      "|---|---|",
      ...[...byPart].sort((a, b) => b[1] - a[1]).map(([part, t]) => `| ${part} | ${share(t)} |`),
      "",
      "| function | share |",
      "|---|---|",
      ...[...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([name, t]) => `| \`${name}\` | ${share(t)} |`),
      "",
    ];
    const text = lines.join("\n");
    process.stdout.write(text);
    if (values.out) writeFileSync(values.out, text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
