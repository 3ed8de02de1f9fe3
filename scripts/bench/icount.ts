// Instructions, not seconds (npm run bench:icount): how many machine
// instructions the filter's compiled code executes per decision, counted by
// valgrind's callgrind, which gives the same count whatever else the machine
// is doing. The timed benchmarks (npm run bench, bench:ab) move by up to 40%
// between runs on a shared machine; this moves by a fraction of a percent, so
// it can tell two builds apart where they differ by a few percent. It reads
// the same on every run with the same Node on one machine; another CPU may
// differ, as V8 picks instructions by the CPU's extensions (AVX and others).
//
// How: icount-workload.ts runs under callgrind with V8 flags that make the
// count repeatable and close to Envoy's: --no-liftoff (the module compiled
// optimized up front, as proxy-wasm-cpp-host's V8 engine does: src/v8/v8.cc,
// "--no-liftoff"), --single-threaded (no background compiler or GC threads),
// and --perf-basic-prof, whose map of code addresses
// (/tmp/perf-<pid>.map) says where V8 put the module's code and which function
// each range is. Callgrind, with --dump-instr=yes, counts each instruction
// address: every one inside the module's code space (its functions, its jump
// table, its calls out to the host) is the module's, charged to the function
// whose code holds it (names from the module's name section, which the release
// build carries). Each mode runs at two sizes, and the difference per request
// (or per hash pass) is reported: start-up, compilation and the gateway's
// set-up cancel.
//
// What it does not count: the host functions (the emulator's, which are not
// Envoy's), and V8's own runtime called from the module: memory.grow, and
// memory.copy and memory.fill, which V8 compiles to calls into C++
// (wasm-external-refs.cc memory_copy_wrapper), so a copy of a body is not
// counted. Nor does a count see what instructions wait for: cache misses,
// branch mispredictions. It is the measure of work for changes that do not
// trade one for the other; the timed benchmarks remain the measure of time.
//
// At most 5 worker VMs: under valgrind, V8 cannot reserve a Wasm memory for
// more (each takes 10 GiB of address space with its guard region, and
// valgrind's is bounded), and a worker whose VM fails to load skips the
// filter, so the workload refuses to run rather than count its requests'
// pass-through as decisions (router-workload.ts benchGateway). Before it did,
// the counts "with 8 VMs" were of 6 VMs routing and 2 passing through.
//
// Usage: node --import tsx scripts/bench/icount.ts [--wasm A.wasm,B.wasm] [--vms 1,4]
//          [--requests 600,1000] [--size 16384] [--endpoints 64] [--passes 200,600] [--jobs 2]
//          [--functions 12]
//   --jobs: valgrind runs at once (each takes one core; the counts do not depend on it).
//   --functions: the functions with the most instructions per request, for each build
//     and VM count (0: none).
// Needs valgrind (Debian's package valgrind) and Node on glibc x86-64.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { positiveInteger } from "./options.ts";
import { machineFacts } from "./proc.ts";
import { type CodeRange, OUTSIDE_FUNCTIONS, instructionsInSpace, moduleCodeSpace, parsePerfMap } from "./callgrind.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    wasm: { type: "string", default: "build/prefix_router.wasm" },
    vms: { type: "string", default: "1,4" },
    requests: { type: "string", default: "600,1000" },
    size: { type: "string", default: "16384" },
    endpoints: { type: "string", default: "64" },
    passes: { type: "string", default: "200,600" },
    jobs: { type: "string", default: "2" },
    functions: { type: "string", default: "12" },
  },
});
const builds = values.wasm!.split(",");
const vmCounts = values.vms!.split(",").map((v) => positiveInteger("vms", v));
const pair = (name: string, text: string): [number, number] => {
  const [a, b] = text.split(",").map((v) => positiveInteger(name, v));
  if (b === undefined || b <= a) throw new Error(`--${name}: "${text}" is not two counts, the second larger`);
  return [a, b];
};
const requests = pair("requests", values.requests!);
const passes = pair("passes", values.passes!);
const size = positiveInteger("size", values.size!);
const endpoints = positiveInteger("endpoints", values.endpoints!);
const jobs = positiveInteger("jobs", values.jobs!);
const topFunctions = values.functions === "0" ? 0 : positiveInteger("functions", values.functions!);

if (spawnSync("valgrind", ["--version"]).status !== 0) {
  process.stderr.write("valgrind not found: apt-get install valgrind\n");
  process.exit(2);
}

function readPerfMap(pid: number): CodeRange[] {
  const path = `/tmp/perf-${pid}.map`;
  if (!existsSync(path)) throw new Error(`${path} missing: node did not write its perf map`);
  const ranges = parsePerfMap(readFileSync(path, "utf8"));
  rmSync(path);
  return ranges;
}

const dir = mkdtempSync(join(tmpdir(), "prefix-router-icount-"));
let runs = 0;

/** The module's instructions in one run of icount-workload.ts with these arguments, in all and by function. */
async function moduleInstructions(args: string[]): Promise<{ total: number; byFunction: Map<string, number> }> {
  const out = join(dir, `callgrind.${runs++}.out`);
  const child = spawn("valgrind", [
    "--tool=callgrind", "--smc-check=all-non-file", "--dump-instr=yes", `--callgrind-out-file=${out}`,
    process.execPath, "--no-liftoff", "--single-threaded", "--perf-basic-prof", "--import", "tsx",
    "scripts/bench/icount-workload.ts", ...args,
  ], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
  const status = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  if (status !== 0) throw new Error(`valgrind run failed (${status}): ${stderr.slice(-2000)}`);
  const count = instructionsInSpace(readFileSync(out, "utf8"), moduleCodeSpace(readPerfMap(child.pid!)));
  rmSync(out);
  return count;
}

/** Runs `tasks` at most `jobs` at a time; results in the tasks' order. */
async function pooled<T>(tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

try {
  const facts = machineFacts();
  console.log(`# Instructions per decision\n`);
  console.log(`\`node --import tsx scripts/bench/icount.ts --wasm ${values.wasm} --vms ${values.vms} --requests ${values.requests} --size ${size} --endpoints ${endpoints} --passes ${values.passes}\` (npm run bench:icount), ${new Date().toISOString().slice(0, 10)}: ` +
    `valgrind's callgrind counting the instructions the module's compiled code executes (Node ${process.version}, V8 ${process.versions.v8}, --no-liftoff --single-threaded; ${facts.cpuModel}). ` +
    `A decision: ${size} B chat bodies (one of 8 shared system prompts, half the body), ${endpoints} static endpoints, worker VMs taking requests in turn, ` +
    `a tick every 100 requests, everything the module does for a request counted (headers, body, decision, response, end of stream, its share of the ticks); ` +
    `requests ${requests[0] + 1} to ${requests[1]} of a run (the difference of two runs). Hash pass: the module's xxHash64 over the same body, the yardstick of npm run bench.\n`);
  // Every run is independent: all of them go to the pool at once, two per figure. A cell without
  // `vms` is the build's hash pass.
  interface Cell { wasm: string; vms?: number }
  const cells: Cell[] = builds.flatMap((wasm) => [{ wasm }, ...vmCounts.map((vms) => ({ wasm, vms }))]);
  const sizesOf = (c: Cell) => c.vms === undefined ? passes : requests;
  const argsOf = (c: Cell, n: number) => c.vms === undefined
    ? ["hash", c.wasm, String(n), String(size)]
    : ["decisions", c.wasm, String(c.vms), String(n), String(size), String(endpoints)];
  const counts = await pooled(cells.flatMap((c) => sizesOf(c).map((n) => () => moduleInstructions(argsOf(c, n)))));
  /** Per unit: the difference between a cell's two runs over the difference in units. */
  const perUnit = (i: number) => {
    const [a, b] = sizesOf(cells[i]);
    return (counts[2 * i + 1].total - counts[2 * i].total) / (b - a);
  };
  console.log(`| build | worker VMs | instructions per request | per hash pass | request ÷ hash pass |`);
  console.log(`|---|---|---|---|---|`);
  cells.forEach((c, i) => {
    if (c.vms === undefined) return;
    const hash = perUnit(cells.findIndex((h) => h.wasm === c.wasm && h.vms === undefined));
    const request = perUnit(i);
    console.log(`| ${c.wasm} | ${c.vms} | ${Math.round(request).toLocaleString("en-US")} | ${Math.round(hash).toLocaleString("en-US")} | ${(request / hash).toFixed(2)} |`);
  });
  if (topFunctions > 0) {
    console.log(`\n## By function\n\nThe ${topFunctions} functions with the most instructions per request (their own code, not their callees'; a function the compiler inlined counts in its caller), ` +
      `as the difference of the cell's two runs; "${OUTSIDE_FUNCTIONS}" is the code space outside any function: one jump per call into the module's functions, and V8's stubs.\n`);
    cells.forEach((c, i) => {
      if (c.vms === undefined) return;
      const [a, b] = requests;
      const [small, large] = [counts[2 * i].byFunction, counts[2 * i + 1].byFunction];
      const rows = [...large].map(([name, n]) => [name, (n - (small.get(name) ?? 0)) / (b - a)] as const).sort((x, y) => y[1] - x[1]);
      const total = perUnit(i);
      console.log(`${c.wasm}, ${c.vms} worker VM${c.vms > 1 ? "s" : ""}:\n`);
      console.log(`| function | instructions per request | share |`);
      console.log(`|---|---|---|`);
      for (const [name, n] of rows.slice(0, topFunctions)) {
        console.log(`| \`${name}\` | ${Math.round(n).toLocaleString("en-US")} | ${(100 * n / total).toFixed(1)}% |`);
      }
      console.log("");
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
