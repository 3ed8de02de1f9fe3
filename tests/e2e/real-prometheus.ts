// A real Prometheus for the tests that check envoy/observability/ (the
// dashboard's queries and the alert rules): finding the binary (PROMETHEUS_BIN,
// else `prometheus` on PATH, where Debian's package puts it:
// scripts/prometheus/install.sh), starting it on loopback with a temporary
// TSDB, asking its HTTP API, and stopping it.
//
// `prometheusTest` is envoyTestWith (real-envoy.ts): without Prometheus a
// developer's run skips with the install line, and CI=true FAILS, since .ci/run
// installs it. Owns: Prometheus child processes and their directories. Must
// not: start Envoy or send traffic.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { TestContext } from "node:test";
import { envoyTestWith, freePort } from "./real-envoy.ts";
import { http } from "./scenarios.ts";

export const INSTALL_PROMETHEUS = "sudo bash scripts/prometheus/install.sh (Debian's prometheus package), or set PROMETHEUS_BIN";

/** PROMETHEUS_BIN, else `prometheus` on PATH; null when neither is there. */
export function findPrometheus(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates = env.PROMETHEUS_BIN ? [env.PROMETHEUS_BIN] : (env.PATH ?? "").split(delimiter).filter((d) => d !== "").map((d) => join(d, "prometheus"));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

const found = findPrometheus();

/** envoyTest for a test that also needs Prometheus: skipped without it, except in CI, where it fails. */
export function prometheusTest(name: string, options: { timeout?: number }, fn: (t: TestContext, prometheus: string) => Promise<void>): void {
  envoyTestWith({ name: "Prometheus", path: found, install: INSTALL_PROMETHEUS }, name, options, fn);
}

export interface PrometheusOptions {
  /** host:port of each Envoy admin API to scrape at /stats/prometheus. */
  envoyAdmins: string[];
  /** Alerting rule files' contents, written into the temporary directory. */
  ruleFiles: string[];
  /** Scrape and rule evaluation interval; default 1s. */
  interval?: string;
}

export interface RunningPrometheus {
  url: string;
  /** Every line it printed (level warn and up). */
  output: string[];
  /** An instant query; throws unless Prometheus answers with status success. */
  query(expr: string): Promise<InstantResult[]>;
  /** GET /api/v1/<path> → data. */
  api<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

export interface InstantResult {
  metric: Record<string, string>;
  value: [number, string];
}

interface ApiReply<T> {
  status: "success" | "error";
  data: T;
  errorType?: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts Prometheus on 127.0.0.1 (a free port) with its TSDB in a temporary
 * directory, scraping each Envoy's /stats/prometheus and evaluating the rule
 * files every `interval`; resolves once /-/ready answers 200.
 */
export async function startPrometheus(binary: string, options: PrometheusOptions): Promise<RunningPrometheus> {
  const interval = options.interval ?? "1s";
  const dir = await mkdtemp(join(tmpdir(), "prefix-router-prometheus-"));
  const ruleFiles = options.ruleFiles.map((_, i) => join(dir, `rules-${i}.yaml`));
  await Promise.all(options.ruleFiles.map((text, i) => writeFile(ruleFiles[i], text)));
  // JSON is YAML: no serializer needed for prometheus.yml.
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: ruleFiles,
    scrape_configs: [{ job_name: "envoy", metrics_path: "/stats/prometheus", static_configs: [{ targets: options.envoyAdmins }] }],
  };
  const configPath = join(dir, "prometheus.yml");
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const output: string[] = [];
  const child = spawn(binary, [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--log.level=warn",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => output.push(...chunk.split("\n").filter((l) => l !== "")));
  }
  let exitCode: number | string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => { exitCode = code ?? signal ?? -1; resolve(); });
    child.on("error", (e) => { output.push(`failed to start ${binary}: ${e.message}`); exitCode = -1; resolve(); });
  });
  const stop = async () => {
    if (exitCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    for (const deadline = Date.now() + 30_000; ; await sleep(100)) {
      if (exitCode !== null) throw new Error(`Prometheus exited (${exitCode}) before it was ready`);
      if (Date.now() > deadline) throw new Error("Prometheus was not ready within 30 s");
      const r = await http(`${url}/-/ready`).catch(() => null);
      if (r?.status === 200) break;
    }
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${output.join("\n")}`);
  }

  const api = async <T>(path: string): Promise<T> => {
    const r = await http(`${url}/api/v1/${path}`);
    const reply = JSON.parse(r.body) as ApiReply<T>;
    assert.equal(reply.status, "success", `GET /api/v1/${path}: ${r.status} ${reply.errorType ?? ""} ${reply.error ?? r.body}`);
    return reply.data;
  };
  return {
    url,
    output,
    api,
    query: async (expr) => (await api<{ resultType: string; result: InstantResult[] }>(`query?query=${encodeURIComponent(expr)}`)).result,
    stop,
  };
}
