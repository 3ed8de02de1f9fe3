// What one discovery poll costs Envoy (npm run bench:discovery): real Envoy
// runs the --eds bootstrap (model cluster of 16 hosts, the admin guard) plus
// 10, then 1,000, other STATIC clusters of 4 hosts each, and the filter's
// request, GET /clusters?filter=^P$ through the guard's Unix socket, is sent
// --calls times over one kept-alive connection (as the filter's callouts reuse
// the guard cluster's connection pool). Printed per call: the answer's bytes,
// Envoy's CPU time (utime + stime of /proc/<pid>/stat before and after, minus
// what the same wall time costs Envoy idle) and the wall time; plus, for
// scale, the size of the unfiltered /clusters the filter avoids.
//
// The filter itself runs too but polls once an hour here, so the measured
// calls are the only /clusters traffic. Linux only (/proc).
//
// Usage: node --import tsx scripts/bench/discovery.ts [--calls N] [--out FILE]
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import YAML from "yaml";
import { adminClustersPath } from "../gateway/admin-guard.ts";
import { writeEdsFile } from "../gateway/eds-file.ts";
import { freePort } from "../gateway/files.ts";
import { NAMES, envoyBootstrap, resolveConfig } from "../gateway/envoy-config.ts";
import { envoyVersionOf, findEnvoy, startEnvoy, INSTALL_VENV } from "../gateway/envoy-runner.ts";
import { clockTicksPerSecond, cpuSeconds } from "./proc.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
const MODEL_HOSTS = 16;
const HOSTS_PER_OTHER_CLUSTER = 4;
const OTHER_CLUSTER_COUNTS = [10, 1000];

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "3000" },
    out: { type: "string", default: "reports/discovery.md" },
  },
});
const CALLS = Number(values.calls);
if (!Number.isInteger(CALLS) || CALLS < 1) throw new Error(`--calls: "${values.calls}" is not a positive whole number`);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any


/** Clusters that are not the filter's: unrouted STATIC ones, never connected to. */
function otherClusters(count: number): Obj[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `other_service_${i}`,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: `other_service_${i}`,
      endpoints: [{
        lb_endpoints: Array.from({ length: HOSTS_PER_OTHER_CLUSTER }, (_, h) => ({
          endpoint: { address: { socket_address: { address: `10.${(i >> 8) & 255}.${i & 255}.${h + 1}`, port_value: 8000 } } },
        })),
      }],
    },
  }));
}

function call(agent: Agent, socketPath: string, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, agent, headers: { host: "envoy-admin" } }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => (bytes += c.length));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

interface Row {
  others: number;
  clusters: number;
  bytes: number;
  unfilteredBytes: number;
  cpuUsPerCall: number;
  idleCpuUs: number;
  wallUsPerCall: number;
  p99WallUs: number;
}

async function measure(others: number, ticksPerSecond: number): Promise<Row> {
  const runner = findEnvoy();
  if (runner === null) throw new Error(`real Envoy not found: ${INSTALL_VENV}`);
  const version = (await envoyVersionOf(runner)) ?? undefined;
  const dir = await mkdtemp(join(tmpdir(), "prefix-router-bench-discovery-"));
  try {
    const eds = join(dir, "eds", "models.json");
    await writeEdsFile(eds, NAMES.modelCluster, Array.from({ length: MODEL_HOSTS }, (_, i) => ({ address: `127.0.0.1:${18000 + i}` })), "1");
    const socket = join(dir, "guard.sock");
    const config = resolveConfig({
      eds, adminGuardSocket: socket, admin: `127.0.0.1:${await freePort()}`, listen: "127.0.0.1:0", wasmFile: WASM,
      envoyVersion: version, metrics: false, accessLog: false, discovery: { intervalMs: 3_600_000 },
    });
    const bootstrap = envoyBootstrap(config) as Obj;
    bootstrap.static_resources.clusters.push(...otherClusters(others));
    const clusters = bootstrap.static_resources.clusters.length as number;
    const configPath = join(dir, "envoy.yaml");
    await writeFile(configPath, YAML.stringify(bootstrap));
    const envoy = await startEnvoy(runner, { configPath, adminAddressPath: join(dir, "admin-address"), concurrency: 2, cwd: ROOT });
    try {
      const pid = envoy.child.pid!;
      const path = adminClustersPath(NAMES.modelCluster);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const unfiltered = await fetch(`${envoy.adminUrl}/clusters`).then((r) => r.arrayBuffer());
      // Warm-up: the connection, the admin handler's first run.
      for (let i = 0; i < 20; i++) await call(agent, socket, path);

      const walls: number[] = [];
      let bytes = 0;
      const cpuBefore = await cpuSeconds(pid, ticksPerSecond);
      const start = process.hrtime.bigint();
      for (let i = 0; i < CALLS; i++) {
        const t = process.hrtime.bigint();
        const r = await call(agent, socket, path);
        walls.push(Number(process.hrtime.bigint() - t) / 1000);
        if (r.status !== 200) throw new Error(`${path} through the guard: ${r.status}`);
        bytes = r.bytes;
      }
      const wallSeconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cpuBusy = (await cpuSeconds(pid, ticksPerSecond)) - cpuBefore;
      // The same wall time with no calls: what Envoy spends anyway (timers, stats flushes).
      const idleBefore = await cpuSeconds(pid, ticksPerSecond);
      await new Promise((r) => setTimeout(r, wallSeconds * 1000));
      const cpuIdle = (await cpuSeconds(pid, ticksPerSecond)) - idleBefore;
      agent.destroy();
      walls.sort((a, b) => a - b);
      return {
        others,
        clusters,
        bytes,
        unfilteredBytes: unfiltered.byteLength,
        cpuUsPerCall: (Math.max(0, cpuBusy - cpuIdle) / CALLS) * 1e6,
        idleCpuUs: cpuIdle * 1e6,
        wallUsPerCall: walls.reduce((a, b) => a + b, 0) / walls.length,
        p99WallUs: walls[Math.floor(walls.length * 0.99)],
      };
    } finally {
      await envoy.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const ticksPerSecond = clockTicksPerSecond();
  const runner = findEnvoy();
  const version = runner === null ? "none" : await envoyVersionOf(runner);
  const rows: Row[] = [];
  for (const others of OTHER_CLUSTER_COUNTS) {
    process.stderr.write(`${others} other clusters ...\n`);
    rows.push(await measure(others, ticksPerSecond));
  }
  const us = (n: number) => (n < 10 ? n.toFixed(1) : Math.round(n).toString());
  const kb = (n: number) => (n / 1024).toFixed(1);
  const lines = [
    "# Endpoint discovery: what one poll costs Envoy",
    "",
    `\`node --import tsx scripts/bench/discovery.ts --calls ${CALLS}\` (npm run bench:discovery), ${new Date().toISOString().slice(0, 10)}, Envoy ${version}, 2 workers.`,
    "",
    `The --eds bootstrap (model cluster of ${MODEL_HOSTS} hosts, the admin guard on a Unix socket) plus N other STATIC`,
    `clusters of ${HOSTS_PER_OTHER_CLUSTER} hosts each. The filter's request, \`GET ${adminClustersPath(NAMES.modelCluster)}\` through the guard,`,
    `sent ${CALLS} times in a row over one kept-alive connection. Envoy CPU: utime + stime from /proc/<pid>/stat`,
    "around the calls, minus the same wall time idle, divided by the calls (clock ticks of 1/" + ticksPerSecond + " s, so",
    "per-call figures are averages). Wall time: request sent to answer read, from Node. The unfiltered",
    "`/clusters` is what the answer would be without `filter` (the admin API's whole text).",
    "",
    "| other clusters | clusters in Envoy | bytes per answer | Envoy CPU per call, µs | wall per call, µs (mean / p99) | unfiltered /clusters, KiB |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.others} | ${r.clusters} | ${r.bytes} | ${us(r.cpuUsPerCall)} | ${us(r.wallUsPerCall)} / ${us(r.p99WallUs)} | ${kb(r.unfilteredBytes)} |`),
    "",
    `Clusters in Envoy: the other clusters plus the bootstrap's own (model, guard, admin; no metrics cluster: scrapes are off).`,
    `Idle CPU over the same wall time, subtracted: ${rows.map((r) => `${us(r.idleCpuUs)} µs at ${r.others}`).join(", ")}.`,
    `At the default intervalMs of 1000, one VM polls once a second: the CPU per call is Envoy's cost per second.`,
    "",
  ];
  const text = lines.join("\n");
  process.stdout.write(text);
  if (values.out) await writeFile(values.out, text);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:discovery: ${(e as Error).message}\n`);
  process.exit(1);
});
