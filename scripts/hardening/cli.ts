// The hardening commands: `npm run fuzz`, `npm run faults`, `npm run soak`,
// `npm run abuse` (each prints its figures as Markdown), or `all` for one
// report. Full size by default; --quick for the sizes npm test uses.
//
//   node --import tsx scripts/hardening/cli.ts <fuzz|faults|soak|abuse|all>
//       [--quick] [--seed N] [--count N] [--out FILE] [--no-save]
//
// --count sets the inputs per parser (fuzz) or requests (soak); --no-save keeps
// trapping inputs out of tests/fuzz/regressions/. Exit status 1 if anything
// broke (a trap, a violation, a problem in any scenario).
import { writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { fuzzParser, replayRegressions, PARSERS, REGRESSIONS_DIR } from "./fuzz.ts";
import { fuzzRouterBodies, fuzzRouterConfigs, fuzzRouterPages } from "./fuzz-router.ts";
import { metricsFaults, hugePages, vmRestart, raceEightVms, stalledWriter } from "./faults.ts";
import { soak } from "./soak.ts";
import { destinationHeaders, oversizedRequests, endlessBodies, workBounds, hashFlood, smuggledAddresses, failOpenHeader } from "./abuse.ts";
import { fuzzSection, faultsSection, soakSection, abuseSection } from "./report.ts";

interface Options {
  quick: boolean;
  seed: number;
  count: number | null;
  out: string | null;
  save: boolean;
}

function parseArgs(argv: string[]): { command: string; o: Options } {
  const o: Options = { quick: false, seed: 20261124, count: null, out: null, save: true };
  const command = argv[0] ?? "";
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") o.quick = true;
    else if (a === "--no-save") o.save = false;
    else if (a === "--seed") o.seed = Number(argv[++i]);
    else if (a === "--count") o.count = Number(argv[++i]);
    else if (a === "--out") o.out = argv[++i];
    else throw new Error(`unknown option ${a}`);
  }
  if (!["fuzz", "faults", "soak", "abuse", "all"].includes(command)) {
    throw new Error("usage: cli.ts <fuzz|faults|soak|abuse|all> [--quick] [--seed N] [--count N] [--out FILE] [--no-save]");
  }
  return { command, o };
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

async function fuzz(o: Options): Promise<{ text: string; ok: boolean }> {
  const count = o.count ?? (o.quick ? 20_000 : 1_000_000);
  const replays = PARSERS.map((p) => replayRegressions(p));
  const parsers = PARSERS.map((p, i) => {
    progress(`fuzz ${p}: ${count} inputs, seed ${o.seed + i}`);
    return fuzzParser(p, { count, seed: o.seed + i, regressionsDir: o.save ? REGRESSIONS_DIR : null, progress });
  });
  progress("fuzz through the filter");
  const router = [
    await fuzzRouterBodies(o.quick ? 2_000 : 50_000, o.seed),
    await fuzzRouterConfigs(o.quick ? 200 : 5_000, o.seed),
    await fuzzRouterPages(o.quick ? 1_000 : 20_000, o.seed),
  ];
  const ok = parsers.every((p) => p.traps === 0 && p.violations === 0 && p.memory.leakedBytes === 0) &&
    replays.every((r) => r.failures.length === 0) &&
    router.every((r) => r.problems.length === 0 && r.vmFailures === 0 && r.altered === 0 && r.badDestinations === 0 && r.inFlightAfter === 0);
  return { text: fuzzSection(parsers, replays, router), ok };
}

async function faults(o: Options): Promise<{ text: string; ok: boolean }> {
  progress("faults: metrics servers");
  const m = await metricsFaults({ window: o.quick ? 200 : 1000, deadlineMs: 15_000, seed: o.seed });
  progress("faults: big pages");
  const huge = await hugePages({ sizes: [100 << 20, (8 << 20) - 1] });
  progress("faults: VM restart");
  const restart = await vmRestart({ requests: o.quick ? 1_000 : 10_000, seed: o.seed });
  progress("faults: eight VMs racing");
  const race = await raceEightVms({ requests: o.count ?? (o.quick ? 10_000 : 100_000), seed: o.seed, probes: o.quick ? 32 : 256 });
  progress("faults: a stalled journal writer");
  const stall = await stalledWriter({ stalls: o.quick ? 4 : 32, burst: 200, seed: o.seed });
  const ok = [m.problems, huge.problems, restart.problems, race.problems, stall.problems].every((p) => p.length === 0);
  return { text: faultsSection(m, huge, restart, race, stall), ok };
}

async function runSoak(o: Options): Promise<{ text: string; ok: boolean }> {
  const r = await soak({ requests: o.count ?? (o.quick ? 50_000 : 1_000_000), seed: o.seed, gpuBlocks: o.quick ? 2000 : 20000, progress });
  return { text: soakSection(r), ok: r.problems.length === 0 };
}

async function abuse(o: Options): Promise<{ text: string; ok: boolean }> {
  progress("abuse");
  const h = await destinationHeaders();
  const ov = await oversizedRequests();
  const e = await endlessBodies({ streams: o.quick ? 10 : 40 });
  const w = await workBounds({ repeats: o.quick ? 5 : 21 });
  const f = await hashFlood({ entriesPerEndpoint: o.quick ? 1024 : 8192 });
  const sm = await smuggledAddresses();
  const fo = await failOpenHeader();
  const ok = [h.problems, ov.problems, e.problems, w.problems, f.problems, sm.problems].every((p) => p.length === 0);
  return { text: abuseSection(h, ov, e, w, f, sm, fo), ok };
}

function header(o: Options): string {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    // not a checkout
  }
  return [
    "# prefix-router hardening figures",
    "",
    `Produced by \`node --import tsx scripts/hardening/cli.ts\` (\`npm run fuzz|faults|soak|abuse\`) at commit ${commit} (plus the working tree), ` +
      `seed ${o.seed}${o.quick ? ", quick sizes" : ""}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}. ` +
      "Everything runs the built .wasm in the host emulator (scripts/host) or, for the parsers, build/fuzz.wasm compiled with the release flags.",
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const { command, o } = parseArgs(process.argv.slice(2));
  const runs = command === "all" ? [fuzz, faults, runSoak, abuse] : [{ fuzz, faults, soak: runSoak, abuse }[command as "fuzz"]];
  const sections: string[] = [];
  let ok = true;
  for (const run of runs) {
    const r = await run(o);
    sections.push(r.text);
    ok &&= r.ok;
    process.stdout.write(`${r.text}\n\n`);
  }
  if (o.out) writeFileSync(o.out, `${header(o)}\n${sections.join("\n\n")}\n`);
  if (!ok) {
    progress("FAILED: see the problems above");
    process.exitCode = 1;
  }
}

await main();
