// Real Envoy in EDS mode (config.ts --eds): the admin guard on its Unix socket
// answers exactly the filter's GET /clusters?filter=^P$ from the admin API and
// 403 to everything else (other paths, other methods, the same path
// percent-encoded or with more parameters), and a rewritten EDS file shows in
// that answer within 2 s. The filter polls through the same guard, so its
// member gauges show that its path rule (assembly/router/admin_clusters.ts)
// and the generator's (scripts/gateway/admin-guard.ts) agree.
import assert from "node:assert/strict";
import { request } from "node:http";
import { adminClustersPath } from "../../scripts/gateway/admin-guard.ts";
import { NAMES } from "../../scripts/gateway/envoy-config.ts";
import { envoyTest, startEnvoyGateway, type EnvoyGateway } from "./real-envoy.ts";

interface Answer {
  status: number;
  body: string;
}

/** One HTTP/1.1 request over the guard's Unix socket (Node's http client takes socketPath). */
function overSocket(socketPath: string, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { host: "envoy-admin" }, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on("error", reject);
    req.end();
  });
}

async function get(url: string): Promise<Answer> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** `address → flags` from the admin text's `<cluster>::<address>::health_flags::<flags>` lines. */
function healthFlags(body: string, cluster: string): Map<string, string> {
  const flags = new Map<string, string>();
  for (const line of body.split("\n")) {
    const parts = line.split("::");
    if (parts.length === 4 && parts[0] === cluster && parts[2] === "health_flags") flags.set(parts[1], parts[3]);
  }
  return flags;
}

async function filterGauge(gw: EnvoyGateway, name: string): Promise<number | null> {
  const text = (await get(`${gw.adminUrl}/stats?filter=^wasmcustom\\.prefix_router\\.${name.replace(/\./g, "\\.")}$`)).body;
  const m = /: (\d+)/.exec(text);
  return m === null ? null : Number(m[1]);
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== null) return { value, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

envoyTest("admin guard: only the exact GET passes, and a rewritten EDS file shows in its answer within 2 s", { timeout: 60_000 }, async () => {
  const gw = await startEnvoyGateway(
    { eds: [{ address: "127.0.0.1:18001" }, { address: "127.0.0.1:18002" }], metrics: false, discovery: { intervalMs: 200 } },
  );
  try {
    const socket = gw.adminGuardSocket!;
    const allowed = adminClustersPath(NAMES.modelCluster);
    assert.equal(allowed, "/clusters?filter=^prefix_router_models$");

    const ok = await overSocket(socket, "GET", allowed);
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(healthFlags(ok.body, NAMES.modelCluster), new Map([["127.0.0.1:18001", "healthy"], ["127.0.0.1:18002", "healthy"]]));
    // Only that cluster: the filter narrows the answer to the model cluster's lines.
    assert.ok(ok.body.split("\n").filter((l) => l.length > 0).every((l) => l.startsWith(`${NAMES.modelCluster}::`)), ok.body);

    const refused: Array<[string, string]> = [
      ["GET", "/clusters"],
      ["GET", "/config_dump"],
      ["POST", "/quitquitquit"],
      ["POST", "/healthcheck/fail"],
      ["POST", allowed],
      ["HEAD", allowed],
      ["GET", "/clusters?filter=%5Eprefix_router_models%24"],
      ["GET", "/clusters?filter=^prefix_router_models$&format=json"],
      ["GET", "/clusters?filter=^prefix_router_models$&filter=.*"],
      ["GET", "/clusters?filter=.*"],
      ["GET", "//clusters?filter=^prefix_router_models$"],
    ];
    for (const [method, path] of refused) {
      const answer = await overSocket(socket, method, path);
      assert.equal(answer.status, 403, `${method} ${path}: ${answer.status} ${answer.body.slice(0, 200)}`);
    }
    // The refused POSTs did nothing: Envoy is up and still passes health checks.
    assert.equal((await get(`${gw.adminUrl}/ready`)).body.trim(), "LIVE");
    assert.equal(gw.envoy.child.exitCode, null);

    // The filter polls through the same guard: it sees the two hosts.
    await until("the filter's members gauge at 2", 10_000, async () => ((await filterGauge(gw, "endpoints.members")) === 2 ? true : null));

    // 2 hosts → 3, one draining: the guard's answer follows within 2 s.
    await gw.writeEds([{ address: "127.0.0.1:18001" }, { address: "127.0.0.1:18002", health: "DRAINING" }, { address: "127.0.0.1:18003" }]);
    const { value: flags, ms } = await until("the new hosts in the guard's answer", 2000, async () => {
      const f = healthFlags((await overSocket(socket, "GET", allowed)).body, NAMES.modelCluster);
      return f.size === 3 ? f : null;
    });
    assert.deepEqual(flags, new Map([["127.0.0.1:18001", "healthy"], ["127.0.0.1:18002", "/eds_status_draining"], ["127.0.0.1:18003", "healthy"]]), `after ${ms} ms`);
    // And the filter: three members, the draining one not pickable.
    await until("the filter's gauges at 3 members, 2 pickable", 10_000, async () =>
      (await filterGauge(gw, "endpoints.members")) === 3 && (await filterGauge(gw, "endpoints.pickable")) === 2 ? true : null);
  } finally {
    await gw.stop();
  }
});
