// `npm start` as a newcomer runs it (minus the build, which `npm test` has
// done): it says in one line which gateway it chose, starts simulated servers
// and that gateway, answers a chat request on the address it prints, and on
// SIGTERM stops everything it started. Run in its own process group, so the
// test can check that nothing of it is left behind.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { ENVOY_VERSION } from "../../scripts/gateway/envoy-version.ts";
import { ROOT, envoyTest } from "./real-envoy.ts";
import { http } from "./scenarios.ts";

interface Started {
  lines: string[];
  url: string;
  exitCode: number | null;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runStart(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/gateway/start.ts", "--no-build", "--port", "0", "--admin-port", "0", "--count", "2", ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pgid = child.pid!;
  const lines: string[] = [];
  let url = "";
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        lines.push(line);
        // The printed example: "  requests: curl -s http://127.0.0.1:PORT/v1/chat/completions ..."
        const m = /requests: curl -s (http:\/\/\S+)\/v1\/chat\/completions/.exec(line);
        if (m) {
          url = m[1];
          resolve();
        }
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`npm start exited (${code}) before it was running:\n${lines.join("\n")}`)));
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  try {
    await ready;
    const body = JSON.stringify({ model: DEFAULT_SIM_PARAMS.model, messages: [{ role: "user", content: "Hello! What is prefix caching?" }], max_tokens: 4 });
    const r = await http(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    assert.equal(r.status, 200, r.body);
    assert.match(r.servedBy, /^127\.0\.0\.1:\d+$/);
  } finally {
    const exited = child.exitCode !== null ? Promise.resolve() : once(child, "exit");
    child.kill("SIGTERM");
    await exited;
    clearTimeout(killer);
    // start.ts waits for Envoy and the simulators to exit; give the kernel a moment to reap them.
    for (let i = 0; i < 50 && groupAlive(pgid); i++) await new Promise((r) => setTimeout(r, 100));
    const left = groupAlive(pgid);
    if (left) process.kill(-pgid, "SIGKILL");
    assert.equal(left, false, "npm start left processes behind after SIGTERM");
  }
  return { lines, url, exitCode: child.exitCode };
}

envoyTest("npm start runs real Envoy when one is installed, says which in one line, and stops everything on SIGTERM", { timeout: 120_000 }, async () => {
  const started = await runStart([]);
  const chosen = started.lines.filter((l) => l.startsWith("prefix-router: starting Envoy through "));
  assert.equal(chosen.length, 1, started.lines.join("\n"));
  assert.ok(started.lines.some((l) => l.startsWith(`prefix-router is running: Envoy ${ENVOY_VERSION} (`)), started.lines.join("\n"));
  assert.equal(started.exitCode, 0);
});

test("npm start -- --dev runs the dev gateway and stops everything on SIGTERM", { timeout: 120_000 }, async () => {
  const started = await runStart(["--dev"]);
  assert.ok(started.lines.some((l) => l.startsWith("prefix-router is running: dev gateway")), started.lines.join("\n"));
  assert.equal(started.exitCode, 0);
});
