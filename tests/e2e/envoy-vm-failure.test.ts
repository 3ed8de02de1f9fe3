// A Wasm VM failure in real Envoy, with the generated bootstrap's
// failure_policy FAIL_OPEN: what README "Reliability" → "Failure model"
// promises, checked against Envoy 1.40.0. The filter is the test-only build
// build/prefix_router_trap.wasm (assembly/testing/trap.ts): the real router,
// plus a trap in proxy_on_request_headers when a request carries
// x-prefix-router-test-trap. The release build has no such path.
//
// One HTTP/2 connection is pinned to one worker, so its streams show what
// that worker's VM does, without depending on how Envoy spreads connections:
// the stream that traps, a stream that was in flight on the same VM, and a
// stream opened after the failure. Fresh HTTP/1.1 connections spread over
// both workers (SO_REUSEPORT), and the requests the filter still routes show
// the other worker's VM carrying on.
//
// The model cluster holds a third upstream that the filter's configuration
// does not list: a client naming it in x-gateway-destination-endpoint would
// steer its request there through override_host, if the header survived. The
// recording upstreams see every header that reaches them.
//
// Also here: a stream already at a model server when the VM fails, the same
// failure without the header_mutation filter (the client steers), README's other policies (FAIL_CLOSED, FAIL_RELOAD, the
// deprecated fail_open), and followed by an ECDS update, which replaces the
// failed VM.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, renameSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect, type ClientHttp2Session } from "node:http2";
import { join } from "node:path";
import { test } from "node:test";
import YAML from "yaml";
import { resolveConfig } from "../../scripts/gateway/envoy-config.ts";
import { ECDS_RESOURCE, discoveryResponseText, publishDiscoveryResponse, renderEcdsYaml } from "../../scripts/gateway/ecds.ts";
import { ROOT, WASM, envoyTest, requireEnvoy, startEnvoyGateway, type EnvoyGateway } from "./real-envoy.ts";
import { startRecordingUpstream, destinations, pickOf, type RecordingUpstream } from "./recording-upstream.ts";
import { chatBody, postChat, stats, waitFor } from "./live-traffic.ts";

const TRAP_WASM = new URL("../../build/prefix_router_trap.wasm", import.meta.url).pathname;

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourcesUnder(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : []);
}

/**
 * build/prefix_router_trap.wasm, rebuilt (`asc assembly/testing/trap.ts --target
 * trap`, as npm run build does) when missing or older than assembly/, so that it
 * never tests an older router than the one in the tree. Built to a file of its
 * own and renamed into place, as scripts/hardening/fuzz-module.ts does.
 */
function trapWasm(): string {
  const newest = Math.max(...sourcesUnder(join(ROOT, "assembly")).map((f) => statSync(f).mtimeMs), statSync(join(ROOT, "asconfig.json")).mtimeMs);
  if (!existsSync(TRAP_WASM) || statSync(TRAP_WASM).mtimeMs < newest) {
    const staging = `${TRAP_WASM}.${process.pid}.tmp`;
    execFileSync("npx", ["asc", "assembly/testing/trap.ts", "--target", "trap", "--outFile", staging], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
    renameSync(staging, TRAP_WASM);
  }
  return TRAP_WASM;
}
const TRAP_HEADER = "x-prefix-router-test-trap";
const HEADER = "x-gateway-destination-endpoint";
const TEST_ID = "x-test-id";
const MODEL = "test-model";
// The error Envoy logs for a trap: cpp-host's WasmVm::fail → Envoy's
// EnvoyWasmVmIntegration::error (source/extensions/common/wasm/wasm_vm.cc), with
// the message cpp-host builds in src/v8/v8.cc getFailMessage.
const TRAP_LOG = /\[error\]\[wasm\].*Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable/;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface H2Reply {
  status: number;
  body: string;
  /** Set when the stream ended without a response (reset). */
  error: string;
}

/** One HTTP/2 stream on `session`; `hold` keeps the body's second half back until `release` is called. */
function h2Chat(session: ClientHttp2Session, seed: number, headers: Record<string, string>, hold = false): { reply: Promise<H2Reply>; release: () => void } {
  const body = chatBody(MODEL, seed);
  const half = Math.floor(body.length / 2);
  const req = session.request({ ":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json", ...headers });
  const reply = new Promise<H2Reply>((resolve) => {
    let status = 0;
    const chunks: Buffer[] = [];
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString("utf8"), error: "" }));
    req.on("error", (e: Error) => resolve({ status, body: "", error: e.message }));
    req.setTimeout(20_000, () => req.close());
  });
  if (hold) {
    req.write(body.slice(0, half));
    return { reply, release: () => req.end(body.slice(half)) };
  }
  req.end(body);
  return { reply, release: () => {} };
}

/** The request an upstream saw with this x-test-id, if any, and the host its destination header named. */
function seen(ups: RecordingUpstream[], id: string): { upstream: string; destination: string } | null {
  for (const u of ups) {
    const r = u.requests.find((x) => x.headers[TEST_ID] === id);
    if (r) return { upstream: u.address, destination: pickOf(r.headers[HEADER]) };
  }
  return null;
}

interface Variation {
  /** false: drop the Envoy-native removal of the destination header (the negative control). */
  keepHeaderMutation: boolean;
  /** Replaces the generated FAIL_OPEN; "legacy fail_open" is the deprecated `fail_open: true` instead. */
  failurePolicy?: "FAIL_CLOSED" | "FAIL_RELOAD" | "legacy fail_open";
}

/**
 * The generated bootstrap, with the third upstream added to the model cluster,
 * the access log naming each response's details, and the variation applied.
 */
function editBootstrap(extra: string, { keepHeaderMutation, failurePolicy }: Variation) {
  return (yaml: string): string => {
    const boot = YAML.parse(yaml) as Obj;
    const cluster = (boot.static_resources.clusters as Obj[]).find((c) => c.name === "prefix_router_models");
    assert.ok(cluster);
    const [ip, port] = extra.split(":");
    cluster.load_assignment.endpoints[0].lb_endpoints.push({ endpoint: { address: { socket_address: { address: ip, port_value: Number(port) } } } });
    const hcm = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config as Obj;
    hcm.access_log[0].typed_config.log_format.text_format_source.inline_string =
      `ACCESS %RESPONSE_CODE% %RESPONSE_CODE_DETAILS% id=%REQ(${TEST_ID.toUpperCase()})% upstream=%UPSTREAM_HOST%\n`;
    if (!keepHeaderMutation) hcm.http_filters = (hcm.http_filters as Obj[]).filter((f) => f.name !== "envoy.filters.http.header_mutation");
    const wasm = (hcm.http_filters as Obj[]).find((f) => f.name === "envoy.filters.http.wasm");
    assert.equal(wasm?.typed_config.config.failure_policy, "FAIL_OPEN", "the generator no longer writes FAIL_OPEN");
    if (failurePolicy === "legacy fail_open") {
      delete wasm!.typed_config.config.failure_policy;
      wasm!.typed_config.config.fail_open = true;
    } else if (failurePolicy) {
      wasm!.typed_config.config.failure_policy = failurePolicy;
      // Each stream draws a wait in [base, 2 × base) (JitteredLowerBoundBackOffStrategy);
      // 3 s rather than the default 1 s, so a stalled shared machine cannot skip the backoff.
      if (failurePolicy === "FAIL_RELOAD") wasm!.typed_config.config.reload_config = { backoff: { base_interval: "3s" } };
    }
    return YAML.stringify(boot);
  };
}

/** Runs `body` against a fresh Envoy; returns everything Envoy printed, up to its exit. */
async function withGateway(variation: Variation, body: (gw: EnvoyGateway, ups: RecordingUpstream[]) => Promise<void>): Promise<string[]> {
  const ups = await Promise.all([0, 1, 2].map(() => startRecordingUpstream()));
  let gw: EnvoyGateway | null = null;
  try {
    gw = await startEnvoyGateway(
      { endpoints: [ups[0].address, ups[1].address], metrics: false, wasmFile: trapWasm() },
      { concurrency: 2, edit: editBootstrap(ups[2].address, variation) },
    );
    await body(gw, ups);
    // Stopping flushes the stdout access log (buffered, flushed every 10 s while running).
    await gw.stop();
    return gw.output;
  } finally {
    if (gw) await gw.stop();
    await Promise.all(ups.map((u) => u.stop()));
  }
}

envoyTest("VM failure under FAIL_OPEN: the trapping stream and the VM's in-flight stream get 503, new streams skip the filter with the client's header still removed, the other worker keeps routing", { timeout: 60_000 }, async (t) => {
  const output = await withGateway({ keepHeaderMutation: true }, async (gw, ups) => {
    const [a, b, c] = ups.map((u) => u.address);
    // Before the failure every chat request is routed: it reaches the endpoint its header names.
    for (let i = 0; i < 10; i++) {
      const r = await postChat(gw.url, MODEL, i, { [TEST_ID]: `warm-${i}` });
      assert.equal(r.status, 200);
      assert.equal(seen(ups, `warm-${i}`)?.destination, r.servedBy, `warm-up request ${i} was not routed by the filter`);
    }
    const before = await stats(gw.adminUrl);

    const session = connect(gw.url);
    session.on("error", () => {});
    try {
      // In flight on this worker's VM: headers and half the body delivered (the
      // filter holds the request while it buffers the body).
      const inFlight = h2Chat(session, 500, { [TEST_ID]: "in-flight" }, true);
      // Frames of one connection are handled in order by its worker, so the
      // in-flight stream's callbacks have run before this one traps.
      const trap = await h2Chat(session, 501, { [TEST_ID]: "trap", [TRAP_HEADER]: "1", [HEADER]: c }).reply;
      assert.equal(trap.status, 503, `the trapping stream got ${trap.status} ${trap.error}`);
      assert.equal(seen(ups, "trap"), null, "the trapping request reached an upstream");

      // A new stream on the failed VM's worker: FAIL_OPEN leaves the filter out
      // (PluginConfig::createContext returns no context), Envoy's round robin
      // chooses, and the client's header was removed before the Wasm filter.
      const next = await h2Chat(session, 502, { [TEST_ID]: "after-on-failed-worker", [HEADER]: c }).reply;
      assert.equal(next.status, 200, `a new stream on the failed worker got ${next.status} ${next.error}`);
      assert.equal(seen(ups, "after-on-failed-worker")?.destination, "", "a request on the failed worker arrived with a destination header");

      // The in-flight stream's next callback (the rest of its body) finds the VM failed: 503.
      inFlight.release();
      const held = await inFlight.reply;
      assert.equal(held.status, 503, `the in-flight stream got ${held.status} ${held.error}`);
      assert.equal(seen(ups, "in-flight"), null);
    } finally {
      session.close();
    }

    // Fresh connections land on either worker. Every request is answered; the
    // filter on the live worker still routes (only it can set the header),
    // the failed worker's requests go out without one, and the client's own
    // header (naming the third upstream) never arrives anywhere.
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = `after-${i}`;
      ids.push(id);
      const r = await postChat(gw.url, MODEL, 1000 + i, { [TEST_ID]: id, [HEADER]: c });
      assert.equal(r.status, 200, `request ${i} after the failure: ${r.status} ${r.body}`);
    }
    const after = ids.map((id) => seen(ups, id));
    assert.ok(after.every((s) => s !== null));
    const routed = after.filter((s) => s!.destination !== "");
    const skipped = after.filter((s) => s!.destination === "");
    t.diagnostic(`after the failure: ${routed.length} routed by the live worker's VM, ${skipped.length} through the failed worker`);
    assert.ok(routed.length > 0, "no request was routed after the failure: the other worker's VM stopped too");
    assert.ok(skipped.length > 0, "every request was routed: none reached the failed worker (40 fresh connections)");
    for (const s of routed) {
      assert.ok([a, b].includes(s!.destination) && s!.destination === s!.upstream, `routed to ${s!.upstream} for ${s!.destination}`);
    }
    assert.deepEqual(destinations(ups[2], HEADER).filter((d) => d !== ""), [], "the client's destination header reached the third upstream");

    // What there is to alert on. The trapping and the in-flight stream are 5xx
    // of the connection manager; the filter's own request counter falls behind
    // the connection manager's (the failed worker's requests skip it); Envoy
    // logs the trap once, at error, and nothing says "Wasm VM failed" (that
    // text is Envoy's Wasm::error, for VMs that fail to load or configure).
    // The wasm.<plugin>.vm_reload_* counters exist but count FAIL_RELOAD's
    // reloads only: they stay 0 here.
    const requests = (s: Map<string, number>) => s.get("wasmcustom.prefix_router.requests") ?? 0;
    // The filter flushes its counters on its tick; the failed VM's last ones are lost with it.
    await waitFor("the live VM's stats flush", 10_000, async () => requests(await stats(gw.adminUrl)) >= routed.length);
    const now = await stats(gw.adminUrl);
    const delta = (name: string) => (now.get(name) ?? 0) - (before.get(name) ?? 0);
    assert.equal(delta("http.prefix_router.downstream_rq_5xx"), 2);
    const total = now.get("http.prefix_router.downstream_rq_total") ?? 0;
    assert.equal(total, 10 + 3 + 40);
    assert.ok(requests(now) <= total - skipped.length - 1, `the filter counted ${requests(now)} of ${total} requests, ${skipped.length + 1} of which skipped it`);
    for (const name of ["vm_reload", "vm_reload_backoff", "vm_reload_success", "vm_reload_failure"]) {
      assert.equal(now.get(`wasm.prefix_router.${name}`), 0, `wasm.prefix_router.${name}`);
    }
    assert.equal(gw.output.filter((l) => TRAP_LOG.test(l)).length, 1, `the trap's log line:\n${gw.output.join("\n")}`);
    // The module carries its name section (asconfig.json "debug"), so cpp-host
    // follows the message with the trap's frames by function name (v8.cc
    // getFailMessage prints no backtrace for a module without one).
    const backtrace = gw.output.indexOf("Proxy-Wasm plugin in-VM backtrace:");
    assert.ok(backtrace >= 0, `no backtrace after the trap:\n${gw.output.join("\n")}`);
    assert.match(gw.output.slice(backtrace + 1).join("\n"), /^\s+\d+:\s+0x[0-9a-f]+ - assembly\/abi\/exports\/proxy_on_request_headers$/m);
    assert.ok(!gw.output.some((l) => l.includes("Wasm VM failed")));
  });
  // Both 503s are Envoy's failStream local reply (source/extensions/common/wasm/context.cc).
  // Envoy's stdout may still be draining when it exits.
  await waitFor("the 503s' access log lines", 5_000, () => output.filter((l) => l.startsWith("ACCESS 503")).length >= 2);
  assert.deepEqual(output.filter((l) => l.startsWith("ACCESS 503")).map((l) => l.split(" upstream=")[0]).sort(),
    ["ACCESS 503 wasm_fail_stream id=in-flight", "ACCESS 503 wasm_fail_stream id=trap"]);
});

envoyTest("VM failure under FAIL_OPEN: a stream whose request a model server already has gets 503 in place of its answer", { timeout: 60_000 }, async () => {
  // Its next callback on the failed VM is proxy_on_response_headers (the module
  // exports it), and CHECK_FAIL answers with failStream's 503 instead of the
  // server's response: the server's work is lost to the client.
  const output = await withGateway({ keepHeaderMutation: true }, async (gw, ups) => {
    const session = connect(gw.url);
    session.on("error", () => {});
    try {
      const busy = h2Chat(session, 1, { [TEST_ID]: "upstream-busy", "x-test-hold": "1" });
      await waitFor("the held request at an upstream", 10_000, () => seen(ups, "upstream-busy") !== null);
      assert.notEqual(seen(ups, "upstream-busy")?.destination, "", "the held request was not routed");
      assert.equal((await h2Chat(session, 2, { [TEST_ID]: "trap", [TRAP_HEADER]: "1" }).reply).status, 503);
      for (const u of ups) u.release();
      const r = await busy.reply;
      assert.equal(r.status, 503, `the answered stream got ${r.status} ${r.error}`);
    } finally {
      session.close();
    }
  });
  await waitFor("the access log line", 5_000, () => output.some((l) => l.startsWith("ACCESS 503 wasm_fail_stream id=upstream-busy")));
});

envoyTest("VM failure under FAIL_OPEN without the header_mutation filter: the client's destination header reaches the upstream it names", { timeout: 60_000 }, async () => {
  // The negative control for the removal above, and README's FAIL_OPEN row: a
  // failed VM is skipped, and nothing else removes the client's header.
  await withGateway({ keepHeaderMutation: false }, async (gw, ups) => {
    const c = ups[2].address;
    const session = connect(gw.url);
    session.on("error", () => {});
    try {
      assert.equal((await h2Chat(session, 1, { [TEST_ID]: "trap", [TRAP_HEADER]: "1" }).reply).status, 503);
      const r = await h2Chat(session, 2, { [TEST_ID]: "steered", [HEADER]: c }).reply;
      assert.equal(r.status, 200);
      assert.deepEqual(seen(ups, "steered"), { upstream: c, destination: c }, "the client did not steer its request");
    } finally {
      session.close();
    }
  });
});

envoyTest("VM failure, README's other two rows: FAIL_CLOSED answers 503 to new streams; FAIL_RELOAD answers 503 during the backoff, then a fresh VM routes", { timeout: 60_000 }, async (t) => {
  await withGateway({ keepHeaderMutation: true, failurePolicy: "FAIL_CLOSED" }, async (gw) => {
    const session = connect(gw.url);
    session.on("error", () => {});
    try {
      assert.equal((await h2Chat(session, 1, { [TEST_ID]: "trap", [TRAP_HEADER]: "1" }).reply).status, 503);
      for (let i = 0; i < 3; i++) assert.equal((await h2Chat(session, 10 + i, { [TEST_ID]: `closed-${i}` }).reply).status, 503, "FAIL_CLOSED let a new stream through");
    } finally {
      session.close();
    }
  });

  await withGateway({ keepHeaderMutation: true, failurePolicy: "FAIL_RELOAD" }, async (gw, ups) => {
    const session = connect(gw.url);
    session.on("error", () => {});
    try {
      assert.equal((await h2Chat(session, 1, { [TEST_ID]: "trap", [TRAP_HEADER]: "1" }).reply).status, 503);
      // Each new stream on the failed worker either falls in the backoff
      // (PluginConfig::maybeReloadHandleIfNeeded) and gets 503, or reloads the
      // VM from the base and is routed by the new one.
      let refused = 0;
      let routedBy = "";
      await waitFor("a reloaded VM to route", 20_000, async () => {
        const id = `reload-${refused}`;
        const r = await h2Chat(session, 100 + refused, { [TEST_ID]: id }).reply;
        if (r.status === 503) {
          refused++;
          await new Promise((res) => setTimeout(res, 250));
          return false;
        }
        assert.equal(r.status, 200, `${r.status} ${r.error}`);
        routedBy = seen(ups, id)?.destination ?? "";
        return true;
      });
      assert.ok(refused >= 1, "no 503 during the backoff");
      assert.notEqual(routedBy, "", "the reloaded VM did not route");
      const s = await stats(gw.adminUrl);
      t.diagnostic(`FAIL_RELOAD: ${refused} streams refused during the backoff; ${[...s].filter(([k]) => k.startsWith("wasm.prefix_router.")).map(([k, v]) => `${k} ${v}`).join(", ")}`);
      assert.ok((s.get("wasm.prefix_router.vm_reload_backoff") ?? 0) >= 1);
      assert.equal(s.get("wasm.prefix_router.vm_reload_success"), 1);
      assert.equal(s.get("wasm.prefix_router.vm_reload_failure"), 0);
    } finally {
      session.close();
    }
  });
});

envoyTest("VM failure with the deprecated fail_open: true: the trapping stream itself continues, unrouted", { timeout: 60_000 }, async () => {
  // README: only the deprecated field lets the trapping stream through (cpp-host
  // src/context.cc CHECK_FAIL reads PluginBase::fail_open_, which Envoy fills
  // from `fail_open` alone: source/extensions/common/wasm/plugin.h).
  await withGateway({ keepHeaderMutation: true, failurePolicy: "legacy fail_open" }, async (gw, ups) => {
    const session = connect(gw.url);
    session.on("error", () => {});
    try {
      const r = await h2Chat(session, 1, { [TEST_ID]: "trap", [TRAP_HEADER]: "1", [HEADER]: ups[2].address }).reply;
      assert.equal(r.status, 200, `${r.status} ${r.error}`);
      assert.equal(seen(ups, "trap")?.destination, "", "the trapping stream was routed, or kept the client's header");
    } finally {
      session.close();
    }
  });
});

envoyTest("VM failure under FAIL_OPEN, then an ECDS update: the failed worker gets a fresh VM and routes again", { timeout: 60_000 }, async () => {
  // cpp-host's getOrCreateThreadLocalPlugin (src/wasm.cc) does not reuse a
  // failed thread-local VM for a new plugin configuration: it clones a new one
  // from the base. So publishing any new version restarts failed VMs without
  // restarting Envoy (the live workers' VMs are reused, with a new root context).
  const { version } = await requireEnvoy();
  const ups = await Promise.all([0, 1].map(() => startRecordingUpstream()));
  const input = { endpoints: ups.map((u) => u.address), metrics: false as const, wasmFile: trapWasm(), envoyVersion: version, listen: "127.0.0.1:0", admin: "127.0.0.1:0", accessLog: false };
  let ecdsPath = "";
  let gw: EnvoyGateway | null = null;
  try {
    gw = await startEnvoyGateway(input, {
      concurrency: 2,
      edit: async (_yaml, dir) => {
        // YAML here (JSON in envoy-ecds.test.ts): Envoy reads either, by the name's extension.
        ecdsPath = join(dir, "prefix-router-ecds.json");
        await publishDiscoveryResponse(ecdsPath, discoveryResponseText(resolveConfig(input), ecdsPath));
        return renderEcdsYaml(resolveConfig(input), ecdsPath);
      },
    });
    const g = gw;
    const session = connect(g.url);
    session.on("error", () => {});
    try {
      assert.equal((await h2Chat(session, 1, { [TEST_ID]: "trap", [TRAP_HEADER]: "1" }).reply).status, 503);
      assert.equal((await h2Chat(session, 2, { [TEST_ID]: "skipped" }).reply).status, 200);
      assert.equal(seen(ups, "skipped")?.destination, "", "the failed worker's filter ran");

      const created = (await stats(g.adminUrl)).get("wasm.envoy.wasm.runtime.v8.created") ?? 0;
      await publishDiscoveryResponse(ecdsPath, discoveryResponseText(resolveConfig({ ...input, filter: { tickMs: 150 } }), ecdsPath));
      await waitFor("the new version", 20_000, async () => (await stats(g.adminUrl)).get(`extension_config_discovery.http_filter.${ECDS_RESOURCE}.update_success`) === 2);
      // Same connection, so same worker: a new stream now gets the new version's filter.
      await waitFor("the failed worker to route again", 20_000, async () => {
        const id = `recovered-${Date.now()}`;
        const r = await h2Chat(session, 3, { [TEST_ID]: id }).reply;
        assert.equal(r.status, 200, `${r.status} ${r.error}`);
        const s = seen(ups, id);
        return s !== null && s.destination === s.upstream;
      });
      // The canary and the failed worker's replacement are new VMs (the live worker's is reused).
      assert.ok(((await stats(g.adminUrl)).get("wasm.envoy.wasm.runtime.v8.created") ?? 0) >= created + 2);
    } finally {
      session.close();
    }
  } finally {
    if (gw) await gw.stop();
    await Promise.all(ups.map((u) => u.stop()));
  }
});

test("the trap exists only in the test build: the release .wasm does not contain the marker header", async () => {
  // AssemblyScript keeps string literals as UTF-16 in the data segment.
  const markers = [Buffer.from(TRAP_HEADER, "utf16le"), Buffer.from(TRAP_HEADER, "utf8")];
  const trap = await readFile(trapWasm());
  const release = await readFile(WASM);
  assert.ok(markers.some((m) => trap.includes(m)), `${TRAP_WASM} lacks the marker: is it built (npm run build)?`);
  assert.ok(!markers.some((m) => release.includes(m)), `${WASM} contains ${TRAP_HEADER}`);
});
