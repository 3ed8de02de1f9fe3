// `npm run sim:servers -- --count 8 [--port-base 8000] [--host 127.0.0.1]
// [--speedup 1] [--blocks N] [--max-loras N] [--model NAME]`
// Starts N simulated vLLM servers on loopback, prints one address per line
// ("sim server i listening on host:port"), and stops on SIGINT or SIGTERM.
// Owns: argument parsing and process lifetime. Must not: hold simulation logic.

import { parseArgs } from "node:util";
import { startServers } from "./server.ts";
import type { SimParams } from "./params.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "8" },
    "port-base": { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    speedup: { type: "string", default: "1" },
    blocks: { type: "string" },
    "max-loras": { type: "string" },
    model: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  process.stdout.write(
    "usage: npm run sim:servers -- [--count 8] [--port-base P (0 = free ports)] [--host 127.0.0.1]\n" +
      "       [--speedup X] [--blocks NUM_GPU_BLOCKS] [--max-loras N] [--model SERVED_NAME]\n",
  );
  process.exit(0);
}

function int(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
}

const params: Partial<SimParams> = {};
if (values.blocks !== undefined) params.numGpuBlocks = int("blocks", values.blocks);
if (values["max-loras"] !== undefined) params.maxLoras = int("max-loras", values["max-loras"]);
if (values.model !== undefined) params.model = values.model;

const servers = await startServers({
  count: int("count", values.count!),
  portBase: int("port-base", values["port-base"]!),
  host: values.host,
  speedup: Number(values.speedup),
  params,
});
servers.forEach((s, i) => process.stdout.write(`sim server ${i} listening on ${s.address}\n`));

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${signal}: stopping ${servers.length} sim servers\n`);
  await Promise.all(servers.map((s) => s.stop()));
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
