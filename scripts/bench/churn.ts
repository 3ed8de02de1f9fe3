// Membership churn: does the filter's memory stay flat while endpoints come
// and go (npm run bench:churn)?
//
// The built filter in the host emulator follows a discovered cluster (the
// admin /clusters text served in-process, as tests/router/discovery.test.ts
// does) through N membership changes, as a rolling update or an autoscaler
// makes them: each change removes 1 to 4 members and adds 1 to 4 from a pool
// of addresses (between 8 and 64 members), and sets a few members' health
// flags; 16 requests follow each change, so the members' index shares fill. Printed every tenth of the
// run: the VM's linear memory, the index's own bytes (index.memory_bytes),
// and how many stat names exist (Envoy keeps every defined stat for the
// plugin's life, so this grows with distinct addresses, never with changes).
//
// Usage: node --import tsx scripts/bench/churn.ts [--changes N] [--pool N] [--out FILE]
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Envoy, VirtualClock } from "../host/index.ts";

const WASM = new URL("../../build/prefix_router.wasm", import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    changes: { type: "string", default: "10000" },
    pool: { type: "string", default: "512" },
    out: { type: "string", default: "reports/churn.md" },
  },
});
const CHANGES = Number(values.changes);
const POOL = Number(values.pool);
const CLUSTER = "prefix_router_models";

function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = Math.imul(x ^ (x >>> 15), 1 | x);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FLAGS = ["healthy", "healthy", "healthy", "healthy", "/failed_active_hc", "/eds_status_draining", "/degraded_eds_health"];

function clustersText(hosts: Array<{ address: string; flags: string }>): string {
  const lines = [`${CLUSTER}::observability_name::${CLUSTER}`, `${CLUSTER}::added_via_api::true`];
  for (const h of hosts) lines.push(`${CLUSTER}::${h.address}::cx_active::0`, `${CLUSTER}::${h.address}::health_flags::${h.flags}`);
  return lines.join("\n") + "\n";
}

function body(rand: () => number): string {
  const system = `system prompt ${Math.floor(rand() * 32)} `.repeat(40);
  const user = `question ${Math.floor(rand() * 1e9)} `.repeat(20);
  return JSON.stringify({ model: "llama", messages: [{ role: "system", content: system }, { role: "user", content: user }] });
}

async function main(): Promise<void> {
  const clock = new VirtualClock();
  let answer = clustersText([]);
  const envoy = new Envoy({
    clock,
    logLevel: "error",
    recordLogs: false,
    clusters: { admin: { type: "handler", handle: () => ({ status: 200, body: answer }) } },
  });
  const plugin = await envoy.addHttpFilter({
    name: "prefix_router", rootId: "prefix_router", vmId: "prefix_router", wasm: WASM,
    configuration: JSON.stringify({ discovery: { cluster: CLUSTER, adminCluster: "admin", intervalMs: 100 }, lruCapacityPerServer: 2048 }),
    concurrency: 2, allowOnHeadersStopIteration: true,
  });
  const pool = Array.from({ length: POOL }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8000`);
  const rand = random(7);
  const seen = new Set<string>();
  const members = new Map<string, string>();
  for (let i = 0; i < 32; i++) members.set(pool[i], "healthy");
  const rows: string[] = [];
  const stat = (name: string) => Number(envoy.stats.get(`wasmcustom.prefix_router.${name}`) ?? 0);
  const sample = (change: number) => {
    const memory = plugin.vms.map((vm) => vm.memoryBytes());
    rows.push(`| ${change} | ${memory.map((m) => (m / 1048576).toFixed(2)).join(" / ")} | ${(stat("index.memory_bytes") / 1024).toFixed(0)} | ` +
      `${stat("endpoints.members")} | ${seen.size} | ${envoy.stats.names().length} |`);
  };
  for (let change = 0; change <= CHANGES; change++) {
    if (change % Math.max(1, Math.floor(CHANGES / 10)) === 0) sample(change);
    if (change === CHANGES) break;
    const leaving = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < leaving && members.size > 8; k++) members.delete([...members.keys()][Math.floor(rand() * members.size)]);
    const arriving = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < arriving && members.size < 64; k++) members.set(pool[Math.floor(rand() * POOL)], "healthy");
    for (let k = 0; k < 2; k++) {
      const address = [...members.keys()][Math.floor(rand() * members.size)];
      members.set(address, FLAGS[Math.floor(rand() * FLAGS.length)]);
    }
    for (const address of members.keys()) seen.add(address);
    answer = clustersText([...members].map(([address, flags]) => ({ address, flags })));
    clock.advance(100);
    await envoy.settle();
    for (let r = 0; r < 16; r++) {
      const s = plugin.newStream(r % 2);
      s.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
      s.sendRequestBody(Buffer.from(body(rand)), true);
      s.complete();
    }
  }
  const report = [
    "# Membership churn",
    "",
    `\`node --import tsx scripts/bench/churn.ts --changes ${CHANGES} --pool ${POOL}\` (npm run bench:churn), ${new Date().toISOString().slice(0, 10)}.`,
    "",
    `The built filter in the host emulator, two worker VMs, discovery every 100 ms, lruCapacityPerServer 2048. Each change`,
    `removes 1-4 members and adds 1-4 from a pool of ${POOL} addresses (8-64 members), sets two members' health flags,`,
    "then sends 16 requests (about 1.6 KB, 32 shared system prompts).",
    "Linear memory per VM; the index's own bytes; members after the change; distinct addresses seen;",
    "stat names defined (Envoy keeps a defined stat for the plugin's life: 15 per distinct address).",
    "",
    "| changes | linear memory per VM, MiB | index KiB | members | addresses seen | stat names |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
  writeFileSync(values.out!, report);
  process.stdout.write(report);
}

await main();
