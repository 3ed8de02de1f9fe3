// Runs wrk (Debian's package, `apt-get install wrk`) with a generated Lua
// script and returns what it measured. wrk rather than an npm generator such
// as autocannon, for two reasons that decide this benchmark:
//   - resolution: wrk records each request's latency in microseconds in an
//     HdrHistogram (its src/stats.c), so p50 and p99 can show the 0.1 ms the
//     target is about; autocannon records latency into a histogram of whole
//     milliseconds (its lib/histUtil.js, lowestDiscernibleValue 1 on values in
//     ms), which cannot;
//   - cost: wrk is C on epoll, where a Node generator needs about a core of its
//     own at these rates. On a 2-core machine that core is taken from Envoy.
// Its LuaJIT hooks build a distinct body for every request (request()) and
// can pause between requests (delay()), which a fixed-body generator cannot.
//
// The scripts (wrk-scripts.ts) define request/delay/response; this file adds
// setup() and done(), which print one JSON line: completed requests, duration,
// latency percentiles, errors, and the sum over threads of the counters the
// script names (thread globals read through thread:get, wrk's SCRIPTING).
// Owns: running wrk. Must not: start servers.
import { spawn, execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { accessSync, constants } from "node:fs";

export const INSTALL_WRK = "bash scripts/bench/install-wrk.sh (Debian's wrk package through apt-get; as root)";

/** wrk on PATH, or null. */
export function findWrk(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, "wrk"), constants.X_OK);
      return join(dir, "wrk");
    } catch {
      // not here
    }
  }
  return null;
}

/** What `wrk --version` says of itself ("4.1.0-3+b2"), or "unknown". */
export function wrkVersion(wrk: string): string {
  try {
    execFileSync(wrk, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    // wrk 4.1 prints its version and usage, then exits 1.
    const out = String((e as { stdout?: string }).stdout ?? "");
    return /^wrk (\S+)/m.exec(out)?.[1] ?? "unknown";
  }
  return "unknown";
}

export interface WrkScript {
  /** Lua defining request() and optionally init(args), delay(), response(). */
  lua: string;
  /** Thread globals (numbers) to sum over threads and report. */
  counters: readonly string[];
}

export interface WrkRun {
  url: string;
  connections: number;
  /** A cap: a script may stop its thread earlier (wrk.thread:stop()). */
  durationSeconds: number;
  script: WrkScript;
  /** Passed to the script's init(args). */
  args?: string[];
  timeoutSeconds?: number;
  /** Aborting it kills wrk (SIGTERM) and rejects (a test's t.signal: a timed-out test leaves no wrk behind). */
  signal?: AbortSignal;
}

/**
 * What a script prints when its thread has stopped itself (a quota reached).
 * wrk's main thread sleeps out the whole duration whatever its threads do and
 * ends early only on SIGINT (its src/wrk.c), so on this line runWrk sends one,
 * and wrk prints its results as at the end of the duration.
 */
export const STOPPED_MARK = "WRK_THREAD_STOPPED";

export interface WrkResult {
  /** Completed requests (responses read). */
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  latencyUs: { p50: number; p90: number; p99: number; mean: number; max: number };
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  counters: Record<string, number>;
}

/** Every error wrk counted: connect, read, write, timeout, and answers of status 400 and up. */
export function errorsOf(r: WrkResult): number {
  return r.errors.connect + r.errors.read + r.errors.write + r.errors.status + r.errors.timeout;
}

/** runWrk, throwing if wrk counted any error (errorsOf); `label` names the run in the message. */
export async function runWrkWithoutErrors(wrk: string, run: WrkRun, label: string): Promise<WrkResult> {
  const r = await runWrk(wrk, run);
  if (errorsOf(r) > 0) throw new Error(`${label}: wrk counted errors ${JSON.stringify(r.errors)}`);
  return r;
}

const RESULT_MARK = "WRK_RESULT ";

function doneHooks(counters: readonly string[]): string {
  const names = counters.map((c) => JSON.stringify(c)).join(", ");
  return `
local bench_threads = {}
function setup(thread) table.insert(bench_threads, thread) end
function done(summary, latency, requests)
  local sums = {}
  for _, name in ipairs({ ${names} }) do
    local total = 0
    for _, t in ipairs(bench_threads) do total = total + (t:get(name) or 0) end
    table.insert(sums, string.format('"%s":%d', name, total))
  end
  local e = summary.errors
  io.write(string.format(
    '${RESULT_MARK}{"requests":%d,"durationUs":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"counters":{%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout, table.concat(sums, ",")))
end
`;
}

/** One wrk thread: on this 2-core machine one is far from its limit, and another would take CPU from Envoy. */
export async function runWrk(wrk: string, run: WrkRun): Promise<WrkResult> {
  const dir = await mkdtemp(join(tmpdir(), "prefix-router-wrk-"));
  try {
    const scriptPath = join(dir, "script.lua");
    await writeFile(scriptPath, `${run.script.lua}\n${doneHooks(run.script.counters)}`);
    const args = [
      "-t", "1",
      "-c", String(run.connections),
      "-d", `${run.durationSeconds}s`,
      "--timeout", `${run.timeoutSeconds ?? 5}s`,
      "-s", scriptPath,
      run.url,
      ...(run.args && run.args.length > 0 ? ["--", ...run.args] : []),
    ];
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(wrk, args, { stdio: ["ignore", "pipe", "pipe"], signal: run.signal });
      let out = "";
      let err = "";
      let interrupted = false;
      child.stdout.setEncoding("utf8").on("data", (c: string) => {
        out += c;
        if (!interrupted && out.includes(STOPPED_MARK)) {
          interrupted = true;
          child.kill("SIGINT");
        }
      });
      // wrk reports a script's Lua error on stderr and goes on with plain GETs of the URL: stop it at once.
      child.stderr.setEncoding("utf8").on("data", (c: string) => {
        err += c;
        if (!interrupted && /\.lua:\d+:/.test(err)) {
          interrupted = true;
          child.kill("SIGKILL");
        }
      });
      child.on("error", reject);
      child.on("close", (c) => resolve({ code: c, stdout: out, stderr: err }));
    });
    const line = stdout.split("\n").find((l) => l.startsWith(RESULT_MARK));
    if (code !== 0 || line === undefined) throw new Error(`wrk ${args.join(" ")} exited ${code}:\n${stdout}\n${stderr}`);
    const r = JSON.parse(line.slice(RESULT_MARK.length)) as Record<string, number> & { counters: Record<string, number> };
    const durationSeconds = r.durationUs / 1e6;
    return {
      requests: r.requests,
      durationSeconds,
      requestsPerSecond: r.requests / durationSeconds,
      latencyUs: { p50: r.p50, p90: r.p90, p99: r.p99, mean: r.mean, max: r.max },
      errors: { connect: r.connect, read: r.read, write: r.write, status: r.status, timeout: r.timeout },
      counters: r.counters,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
