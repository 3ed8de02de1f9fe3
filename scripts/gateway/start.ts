// `npm start`: build the filter, start 4 simulated model servers on loopback (or
// use ENDPOINTS=ip:port,...), generate the config, and run it: in real Envoy
// (ENVOY_BIN, else the pinned Envoy in .venv from `npm run envoy:install`, else
// func-e with the pinned version, else `envoy` on PATH) or, when there is none,
// in the dev gateway (the same .wasm in the host emulator). Says in one line
// which it chose.
// Prints where to send requests and where to read stats; Ctrl-C (SIGINT) or
// SIGTERM stops everything it started.
//
//   npm start [-- --port 10000] [-- --admin-port 9901] [-- --concurrency 2]
//             [-- --count 4] [-- --dev] [-- --no-build] [-- --no-metrics]
//   ENDPOINTS=10.0.0.5:8000,10.0.0.6:8000 npm start     ENVOY_BIN=/usr/local/bin/envoy npm start
//
// Owns: process lifetime and what it prints. Must not: hold config logic
// (envoy-config.ts) or Envoy/emulator mechanics (envoy-runner.ts, dev-gateway.ts).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_SIM_PARAMS } from "../sim/params.ts";
import { parseEndpointList, renderEnvoyYaml, resolveConfig, GatewayConfigError, type GatewayConfig, type GatewayConfigInput } from "./envoy-config.ts";
import { DevGateway } from "./dev-gateway.ts";
import { INSTALL_FUNC_E, INSTALL_VENV, envoyVersionOf, findEnvoy, startEnvoy, type RunningEnvoy } from "./envoy-runner.ts";
import { ENVOY_VERSION, OVERRIDE_HOST_SINCE, atLeast, compareVersions } from "./envoy-version.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const OUT_DIR = resolve(ROOT, "out");
const WASM = resolve(ROOT, "build/prefix_router.wasm");

const USAGE = `usage: npm start [-- --port 10000] [-- --admin-port 9901] [-- --concurrency 2] [-- --count 4] [-- --dev] [-- --no-build] [-- --no-metrics]
  ENDPOINTS=ip:port,...   use these model servers instead of starting simulated ones
  ENVOY_BIN=/path/envoy   run this Envoy (otherwise .venv's from npm run envoy:install, func-e,
                          envoy on PATH, then the dev gateway)
  MODEL=name              the model name in the printed curl example
  --dev                   use the dev gateway even if an Envoy is installed
  --no-metrics            do not scrape the servers' /metrics (for ENDPOINTS without one)`;

const say = (line: string) => process.stdout.write(`prefix-router: ${line}\n`);
const warn = (line: string) => process.stderr.write(`prefix-router: ${line}\n`);

interface Running {
  sims: ChildProcess | null;
  envoy: RunningEnvoy | null;
  dev: DevGateway | null;
}

function options() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      port: { type: "string", default: "10000" },
      "admin-port": { type: "string", default: "9901" },
      concurrency: { type: "string", default: "2" },
      count: { type: "string", default: "4" },
      dev: { type: "boolean", default: false },
      "no-build": { type: "boolean", default: false },
      "no-metrics": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const int = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be a whole number between ${min} and ${max}, got ${v}`);
    return n;
  };
  return {
    port: int("port", values.port!, 0, 65535),
    adminPort: int("admin-port", values["admin-port"]!, 0, 65535),
    concurrency: int("concurrency", values.concurrency!, 1, 256),
    count: int("count", values.count!, 1, 64),
    dev: values.dev!,
    build: !values["no-build"],
    metrics: !values["no-metrics"],
    help: values.help!,
  };
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolvePromise() : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))));
  });
}

/** The simulator's CLI in its own process (its HTTP mode), answering on loopback ports it picks. */
function startSims(count: number): Promise<{ child: ChildProcess; addresses: string[] }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/sim/cli.ts", "--count", String(count), "--host", "127.0.0.1"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const addresses: string[] = [];
    let buffered = "";
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error("the simulated servers did not start within 30 s"));
    }, 30_000);
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      const lines = (buffered + chunk).split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        // scripts/sim/cli.ts prints "sim server i listening on host:port".
        const m = /listening on (\S+)/.exec(line);
        if (m) addresses.push(m[1]);
      }
      if (addresses.length === count) {
        clearTimeout(timer);
        resolvePromise({ child, addresses });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (addresses.length < count) reject(new Error(`the simulated servers exited (${code}) before they were listening`));
    });
  });
}

function curlExample(url: string, model: string): string {
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "Hello! What is prefix caching?" }], max_tokens: 16 });
  return `curl -s ${url}/v1/chat/completions -H 'content-type: application/json' -d '${body}'`;
}

async function stopAll(r: Running): Promise<void> {
  const waits: Promise<unknown>[] = [];
  if (r.envoy) waits.push(r.envoy.stop());
  if (r.dev) waits.push(r.dev.stop());
  const sims = r.sims;
  if (sims && sims.exitCode === null && sims.signalCode === null) {
    waits.push(new Promise((done) => {
      sims.once("exit", done);
      sims.kill("SIGTERM");
      setTimeout(() => sims.kill("SIGKILL"), 5000).unref();
    }));
  }
  await Promise.allSettled(waits);
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const running: Running = { sims: null, envoy: null, dev: null };
  let stopping = false;
  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    say(`${why}: stopping everything it started`);
    await stopAll(running);
    process.exit(code);
  };
  process.on("SIGINT", () => {
    if (stopping) process.exit(130);
    void shutdown("SIGINT", 0);
  });
  process.on("SIGTERM", () => void shutdown("SIGTERM", 0));

  try {
    if (opts.build) {
      say("building the filter (npm run build)");
      await run(process.platform === "win32" ? "npm.cmd" : "npm", ["run", "--silent", "build"]);
    }

    // Endpoints: ENDPOINTS, or simulated vLLM servers.
    let endpoints: GatewayConfigInput["endpoints"];
    const fromEnv = process.env.ENDPOINTS?.trim();
    if (fromEnv) {
      const list = parseEndpointList(fromEnv);
      endpoints = list;
      say(`using ENDPOINTS: ${list.map((e) => e.address).join(" ")}`);
    } else {
      const sims = await startSims(opts.count);
      running.sims = sims.child;
      sims.child.on("exit", (code) => void shutdown(`the simulated servers exited (${code})`, 1));
      endpoints = sims.addresses;
      say(`started ${opts.count} simulated vLLM servers: ${sims.addresses.join(" ")}`);
    }

    const runner = opts.dev ? null : findEnvoy();
    let version = ENVOY_VERSION;
    if (runner !== null && runner.kind !== "func-e") {
      const v = await envoyVersionOf(runner);
      if (v === null) warn(`could not read the version of ${runner.describe}; assuming ${ENVOY_VERSION}`);
      else version = v;
    }
    const base: GatewayConfigInput = {
      endpoints,
      wasmFile: WASM,
      listen: `127.0.0.1:${opts.port}`,
      admin: `127.0.0.1:${opts.adminPort}`,
      // ENDPOINTS without Prometheus pages: route on the filter's in-flight counts only.
      metrics: opts.metrics ? {} : false,
    };
    let config: GatewayConfig;
    if (runner !== null && !atLeast(version, OVERRIDE_HOST_SINCE)) {
      warn(`Envoy ${version} is older than ${OVERRIDE_HOST_SINCE}: using the ORIGINAL_DST variant, and the filter will pass every request through (README "Envoy older than 1.35")`);
      config = resolveConfig({ ...base, variant: "original_dst", envoyVersion: version });
    } else {
      config = resolveConfig({ ...base, envoyVersion: runner === null ? ENVOY_VERSION : version });
    }
    if (runner !== null && runner.kind !== "func-e" && compareVersions(version, ENVOY_VERSION) !== 0) {
      warn(`the configs are written for Envoy ${ENVOY_VERSION}; ${runner.describe} is ${version}`);
    }
    const configPath = resolve(OUT_DIR, "envoy.yaml");
    await mkdir(OUT_DIR, { recursive: true });
    await writeFile(configPath, renderEnvoyYaml(config, { generatedBy: "npm start (scripts/gateway/start.ts)" }));

    let what: string;
    let url: string;
    let adminUrl: string;
    if (runner !== null) {
      say(`starting Envoy through ${runner.describe}${runner.kind === "func-e" ? " (the first run downloads it)" : ""}`);
      const envoy = await startEnvoy(runner, {
        configPath,
        adminAddressPath: resolve(OUT_DIR, "admin-address.txt"),
        concurrency: opts.concurrency,
        cwd: ROOT,
        onOutput: (line) => process.stdout.write(`envoy| ${line}\n`),
      });
      running.envoy = envoy;
      void envoy.exited.then((code) => shutdown(`Envoy exited (${code})`, 1));
      what = `Envoy ${version} (${runner.describe}), ${opts.concurrency} workers`;
      url = `http://${envoy.listenerAddress}`;
      adminUrl = envoy.adminUrl;
    } else {
      if (!opts.dev) {
        say(`no Envoy found (ENVOY_BIN unset, none in .venv, no func-e or envoy on PATH): running the same .wasm in the dev gateway (host emulator); for real Envoy: ${INSTALL_VENV} (or func-e: ${INSTALL_FUNC_E})`);
      }
      const dev = await DevGateway.start({
        config,
        concurrency: opts.concurrency,
        onLog: (e) => process.stderr.write(`[${e.level}][wasm] ${e.line}\n`),
      });
      running.dev = dev;
      what = `dev gateway (the same .wasm in the host emulator), ${opts.concurrency} worker VMs`;
      url = dev.url;
      adminUrl = dev.adminUrl;
    }

    const model = process.env.MODEL ?? DEFAULT_SIM_PARAMS.model;
    process.stdout.write(
      [
        "",
        `prefix-router is running: ${what}, ${config.endpoints.length} endpoints (${config.endpoints.map((e) => e.address).join(" ")})`,
        `  config:   ${configPath}`,
        `  requests: ${curlExample(url, model)}`,
        `  stats:    curl -s ${adminUrl}/stats/prometheus | grep '^prefix_router'`,
        `  Ctrl-C stops everything.`,
        "",
      ].join("\n"),
    );
  } catch (e) {
    const message = e instanceof GatewayConfigError ? `invalid configuration: ${e.message}` : (e as Error).message;
    warn(message);
    await stopAll(running);
    process.exit(1);
  }
}

void main();
