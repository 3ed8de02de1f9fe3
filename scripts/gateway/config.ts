// CLI: generate an Envoy bootstrap (or the filter's JSON configuration) for an
// endpoint list, from the one template in envoy-config.ts.
//
//   node --import tsx scripts/gateway/config.ts --endpoints 127.0.0.1:8001,127.0.0.1:8002 --out envoy/generated/envoy.yaml
//   node --import tsx scripts/gateway/config.ts --examples     # rewrite the committed envoy/generated/*
//
// When build/prefix_router.wasm exists it also asks the filter itself, through
// the host emulator, to accept the generated configuration (--no-check skips).
// Owns: process I/O (files, stdout, exit codes). Must not: hold config logic.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GatewayConfigError, NAMES, type GatewayConfig } from "./envoy-config.ts";
import { writeEdsFile } from "./eds-file.ts";
import { publishDiscoveryResponse } from "./ecds.ts";
import { checkFilterConfiguration } from "./filter-check.ts";
import { EXAMPLES, EXAMPLE_EDS, USAGE, parseGenerateArgs, render, renderExample } from "./generate.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BUILT_WASM = resolve(ROOT, "build/prefix_router.wasm");

async function check(config: GatewayConfig, required: boolean | null): Promise<void> {
  if (required === false) return;
  if (!existsSync(BUILT_WASM)) {
    if (required) throw new Error(`--check: ${BUILT_WASM} does not exist; run npm run build`);
    return;
  }
  const problem = await checkFilterConfiguration(BUILT_WASM, config);
  if (problem !== null) throw new Error(`the filter rejects this configuration: ${problem}`);
}

async function write(file: string, text: string): Promise<void> {
  const path = resolve(process.cwd(), file);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/**
 * Envoy refuses to start while the EDS file is missing ("paths must refer to
 * an existing path in the system"), so a missing one is created with no hosts.
 * An existing one is left alone: it may be serving a running Envoy.
 */
async function ensureEdsFile(file: string): Promise<void> {
  const path = resolve(process.cwd(), file);
  if (existsSync(path)) return;
  await writeEdsFile(path, NAMES.modelCluster, [], "0");
  process.stderr.write(
    `wrote ${file} with no hosts (Envoy does not start without it). Put the model servers in it with\n` +
    `  node --import tsx scripts/gateway/eds-file.ts --out ${file} --hosts ip:port,ip:port,...\n`,
  );
}

async function main(argv: string[]): Promise<void> {
  const req = parseGenerateArgs(argv);
  if (req.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (req.examples) {
    process.chdir(ROOT);
    for (const ex of EXAMPLES) {
      const { text, config } = renderExample(ex);
      await check(config, req.check);
      await write(ex.file, text);
      process.stderr.write(`wrote ${ex.file}\n`);
    }
    await writeEdsFile(EXAMPLE_EDS.file, NAMES.modelCluster, EXAMPLE_EDS.hosts, EXAMPLE_EDS.version);
    process.stderr.write(`wrote ${EXAMPLE_EDS.file}\n`);
    return;
  }
  const { text, config, ecds } = render(req, argv.filter((a, i) => a !== "--out" && argv[i - 1] !== "--out"));
  await check(ecds?.config ?? config, req.check);
  if (ecds) {
    // Atomically, so that a running Envoy watching the file sees one whole new version.
    const path = resolve(process.cwd(), ecds.file);
    await mkdir(dirname(path), { recursive: true });
    await publishDiscoveryResponse(path, ecds.text);
    process.stderr.write(`wrote ${ecds.file} (the filter's configuration, served through ECDS)\n`);
  }
  if (config.discovery !== null) await ensureEdsFile(config.discovery.edsFile);
  if (req.out === null) process.stdout.write(text);
  else {
    await write(req.out, text);
    process.stderr.write(`wrote ${req.out}\n`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const message = e instanceof GatewayConfigError || e instanceof Error ? e.message : String(e);
  process.stderr.write(`config: ${message}\n`);
  if (!(e instanceof GatewayConfigError) && /unknown option|argument/i.test(message)) process.stderr.write(`${USAGE}\n`);
  process.exit(1);
});
