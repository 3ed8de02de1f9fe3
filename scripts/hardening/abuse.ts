// Abuse scenarios: what a client (or a compromised model server, or a
// careless configuration) can try against the filter, and the figures that
// show none of it lets anyone choose an upstream or reach anything but a
// configured endpoint, and that per-request work stays bounded:
//   destinationHeaders  client-sent destination headers on every kind of request
//   oversizedRequests   huge and odd headers, bodies past maxBodyBytes
//   endlessBodies       bodies that never end, headers whose body never comes
//   workBounds          decision time against body size and prompt length
//   hashFlood           prompts ground offline so index entries share a bucket
//   smuggledAddresses   endpoint addresses in metrics labels and configurations
//   failOpenHeader      what FAIL_OPEN does with a client's header once the VM failed
import { performance } from "node:perf_hooks";
import { ConfigRejectedError, Envoy, VirtualClock } from "../host/index.ts";
import { FuzzModule } from "./fuzz-module.ts";
import { SMUGGLED_ADDRESSES } from "./configs.ts";
import { DEST, gateway, send, advance, stat, inFlightTotal, chatBody, filler, routerWasm, addresses, entriesOf, type Gateway } from "./gateway.ts";
import type { HttpStream } from "../host/index.ts";
import { journalEventBound } from "./journal-check.ts";
import { DEFAULT_INDEX_STRIDE, DEFAULT_MAX_PREFIX_BLOCKS } from "../gateway/envoy-config.ts";

function finish(s: HttpStream): void {
  if (s.ended) return;
  if (s.upstreamRequest === null || s.localResponse !== null) {
    s.reset();
    return;
  }
  s.sendResponseHeaders({ ":status": "200" }, false);
  s.sendResponseBody("{}", true);
}

function upstreamDestinations(s: HttpStream): string[] {
  return (s.upstreamRequest?.headers ?? []).filter(([k]) => k === DEST).map(([, v]) => v);
}

// ---------------------------------------------------------------------------

export interface HeaderReport {
  requests: number;
  /** Requests that reached upstream carrying a destination the filter did not choose. */
  clientChosen: number;
  /** Requests with more than one destination header upstream. */
  duplicated: number;
  routed: number;
  passedThrough: number;
  problems: string[];
}

const CLIENT_VALUES = ["10.0.0.2:8000", "10.0.0.3:8000", "169.254.169.254:80", "127.0.0.1:15000", "evil.example.com:443", "10.0.0.2:8000,10.0.0.3:8000", "", " 10.0.0.2:8000"];

/** Client-sent destination headers on routable and pass-through requests of every kind. */
export async function destinationHeaders(): Promise<HeaderReport> {
  const gw = await gateway({ endpoints: 4, vms: 2, config: { maxBodyBytes: 4096 } });
  const configured = new Set(gw.endpoints);
  const r: HeaderReport = { requests: 0, clientChosen: 0, duplicated: 0, routed: 0, passedThrough: 0, problems: [] };
  const shapes: Array<{ name: string; body: string; o: Parameters<typeof send>[2] }> = [
    { name: "routable chat", body: chatBody([["user", "hello there"]]), o: {} },
    { name: "routable completion", body: JSON.stringify({ model: "m", prompt: filler(1, 500) }), o: { path: "/v1/completions" } },
    { name: "GET", body: "", o: { method: "GET", noBody: true } },
    { name: "other path", body: chatBody([["user", "x"]]), o: { path: "/v1/embeddings" } },
    { name: "no body", body: "", o: { noBody: true } },
    { name: "not JSON", body: "{{{", o: {} },
    { name: "no model", body: JSON.stringify({ messages: [{ role: "user", content: "x" }] }), o: {} },
    { name: "token prompt batch", body: JSON.stringify({ model: "m", prompt: [[1, 2], [3]] }), o: { path: "/v1/completions" } },
    { name: "too large (declared)", body: chatBody([["user", filler(2, 8000)]]), o: { headers: [["content-length", String(chatBody([["user", filler(2, 8000)]]).length)]] } },
    { name: "too large (streamed)", body: chatBody([["user", filler(3, 8000)]]), o: { chunks: 4 } },
    { name: "trailers", body: chatBody([["user", "x"]]), o: { trailers: true } },
  ];
  for (const shape of shapes) {
    for (const value of CLIENT_VALUES) {
      for (const copies of [1, 3]) {
        const headers: Array<[string, string]> = [];
        for (let c = 0; c < copies; c++) headers.push([c === 1 ? "X-Gateway-Destination-Endpoint" : DEST, value]);
        const sent = send(gw, shape.body, { ...shape.o, headers: [...(shape.o?.headers ?? []), ...headers] });
        r.requests++;
        const up = upstreamDestinations(sent.stream);
        if (up.length > 1) r.duplicated++;
        if (up.length === 1) r.routed++;
        else r.passedThrough++;
        // The only destination that may reach upstream is the one the filter set on a request it
        // routed: one header, a configured address.
        if (up.some((d) => entriesOf(d).some((x) => !configured.has(x)))) {
          r.clientChosen++;
          r.problems.push(`${shape.name}, client sent ${JSON.stringify(value)} ×${copies}: upstream has ${JSON.stringify(up)}`);
        }
        if (shape.name !== "routable chat" && shape.name !== "routable completion" && up.length > 0) {
          r.clientChosen++;
          r.problems.push(`${shape.name} (not routable) reached upstream with ${JSON.stringify(up)}`);
        }
        finish(sent.stream);
      }
    }
  }
  gw.envoy.shutdown();
  return r;
}

// ---------------------------------------------------------------------------

export interface OversizeReport {
  cases: Array<{ name: string; outcome: string }>;
  vmFailures: number;
  altered: number;
  problems: string[];
}

/** Huge and odd headers, bodies past maxBodyBytes: passed through unaltered, nothing fails. */
export async function oversizedRequests(): Promise<OversizeReport> {
  const maxBodyBytes = 64 * 1024;
  const gw = await gateway({ endpoints: 4, vms: 1, bufferLimitBytes: 4 * maxBodyBytes, config: { maxBodyBytes } });
  const r: OversizeReport = { cases: [], vmFailures: 0, altered: 0, problems: [] };
  const body = chatBody([["user", "hello"]]);
  const big = (n: number) => chatBody([["user", filler(9, n)]]);
  const cases: Array<{ name: string; body: string; o: Parameters<typeof send>[2]; routable: boolean }> = [
    { name: "100 headers of 8 KiB", body, o: { headers: Array.from({ length: 100 }, (_, i) => [`x-h${i}`, "v".repeat(8192)] as [string, string]) }, routable: true },
    { name: "one 1 MiB header", body, o: { headers: [["x-big", "v".repeat(1 << 20)]] }, routable: true },
    { name: "64 KiB path", body, o: { path: "/v1/chat/completions?" + "q".repeat(65536) }, routable: true },
    { name: "content-length 20 digits", body, o: { headers: [["content-length", "9".repeat(20)]] }, routable: true },
    { name: "content-length negative", body, o: { headers: [["content-length", "-1"]] }, routable: true },
    { name: "two content-lengths", body, o: { headers: [["content-length", "1"], ["content-length", String(1 << 30)]] }, routable: true },
    { name: "body of maxBodyBytes", body: big(maxBodyBytes - 100), o: {}, routable: true },
    { name: "body of maxBodyBytes + 1 (declared)", body: big(maxBodyBytes + 1), o: { headers: [["content-length", String(big(maxBodyBytes + 1).length)]] }, routable: false },
    { name: "body of 2 × maxBodyBytes (streamed in 4 KiB frames)", body: big(2 * maxBodyBytes), o: { chunks: 32 }, routable: false },
    { name: "body of 3 × maxBodyBytes (one frame)", body: big(3 * maxBodyBytes), o: {}, routable: false },
  ];
  for (const c of cases) {
    const sent = send(gw, c.body, c.o);
    const up = sent.stream.upstreamRequest;
    let outcome: string;
    if (sent.stream.localResponse) outcome = `Envoy ${sent.stream.localResponse.status}`;
    else if (up === null) outcome = "held";
    else outcome = upstreamDestinations(sent.stream).length === 1 ? "routed" : "passed through";
    r.cases.push({ name: c.name, outcome });
    if (up !== null && Buffer.compare(Buffer.from(up.body), Buffer.from(c.body)) !== 0) {
      r.altered++;
      r.problems.push(`${c.name}: body altered`);
    }
    if (c.routable !== (outcome === "routed")) r.problems.push(`${c.name}: ${outcome}`);
    finish(sent.stream);
  }
  r.vmFailures = gw.plugin.allVms().filter((vm) => vm.failed).length;
  if (r.vmFailures > 0) r.problems.push(`${r.vmFailures} VMs failed`);
  gw.envoy.shutdown();
  return r;
}

// ---------------------------------------------------------------------------

export interface EndlessReport {
  /** Streams whose body never ended, held open while other traffic flowed. */
  endless: number;
  /** Streams whose headers came without a body, ever. */
  headersOnly: number;
  legit: number;
  legitRouted: number;
  vmMemoryGrowthBytes: number;
  aborted: number;
  bodyTimeout: number;
  inFlightAfter: number;
  problems: string[];
}

/** Bodies that never end and headers whose body never comes: other requests keep being routed. */
export async function endlessBodies(o: { streams: number }): Promise<EndlessReport> {
  const gw = await gateway({ endpoints: 4, vms: 2 });
  const r: EndlessReport = { endless: 0, headersOnly: 0, legit: 0, legitRouted: 0, vmMemoryGrowthBytes: 0, aborted: 0, bodyTimeout: 0, inFlightAfter: 0, problems: [] };
  const memory0 = Math.max(...gw.plugin.vms.map((vm) => vm.memoryBytes()));
  const stuck: HttpStream[] = [];
  for (let i = 0; i < o.streams; i++) {
    const s = gw.plugin.newStream();
    s.sendRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
    if (i % 2 === 0) {
      // A body that never ends: frames keep coming, the last never does.
      for (let k = 0; k < 16; k++) s.sendRequestBody(Buffer.from(`{"model":"m","messages":[{"role":"user","content":"${"a".repeat(1000)}`), false);
      r.endless++;
    } else {
      r.headersOnly++;
    }
    stuck.push(s);
    // Legitimate traffic meanwhile, across the parked streams' timeouts.
    for (let k = 0; k < 2; k++) {
      const sent = send(gw, chatBody([["user", filler(i * 2 + k, 300)]]));
      r.legit++;
      if (sent.destinations.length === 1) r.legitRouted++;
      finish(sent.stream);
    }
    advance(gw, 100);
  }
  r.vmMemoryGrowthBytes = Math.max(...gw.plugin.vms.map((vm) => vm.memoryBytes())) - memory0;
  // Envoy's stream idle timeout ends them eventually: a reset.
  for (const s of stuck) if (!s.ended) s.reset();
  advance(gw, 1000);
  r.aborted = stat(gw, "prefix_router.passthrough.aborted");
  r.bodyTimeout = stat(gw, "prefix_router.passthrough.body_timeout");
  r.inFlightAfter = inFlightTotal(gw);
  if (r.legitRouted !== r.legit) r.problems.push(`${r.legit - r.legitRouted} of ${r.legit} ordinary requests not routed while slow clients waited`);
  if (gw.envoy.logs.some((l) => l.level === "error")) r.problems.push("an error was logged (the filter concluded Envoy does not hold headers)");
  if (r.inFlightAfter !== 0) r.problems.push(`in flight after: ${r.inFlightAfter}`);
  if (r.vmMemoryGrowthBytes > 1 << 20) r.problems.push(`VM memory grew by ${r.vmMemoryGrowthBytes} bytes`);
  gw.envoy.shutdown();
  return r;
}

// ---------------------------------------------------------------------------

export interface WorkReport {
  rows: Array<{ bodyBytes: number; promptBytes: number; hashedBlocks: number; moduleMicros: number }>;
  maxEventBytes: number;
  eventBound: number;
  problems: string[];
}

/** Decision time (the module's own time for the body callback) against body size and prompt length. */
export async function workBounds(o: { repeats: number }): Promise<WorkReport> {
  // The defaults, given explicitly so that the event bound below is exact.
  const maxPrefixBlocks = DEFAULT_MAX_PREFIX_BLOCKS;
  const indexStride = DEFAULT_INDEX_STRIDE;
  const gw = await gateway({ endpoints: 16, vms: 1, bufferLimitBytes: 8 << 20, config: { maxPrefixBlocks, indexStride, maxBodyBytes: 4 << 20 } });
  const vm = gw.plugin.vm(0)!;
  vm.profileTime = true;
  const r: WorkReport = { rows: [], maxEventBytes: 0, eventBound: journalEventBound(maxPrefixBlocks, indexStride), problems: [] };
  for (const promptBytes of [1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4000 << 10]) {
    const times: number[] = [];
    let hashed = 0;
    for (let k = 0; k < o.repeats; k++) {
      const body = JSON.stringify({ model: "m", prompt: `${k} ${filler(k, promptBytes)}` });
      const before = vm.moduleMs();
      const blocksBefore = stat(gw, "prefix_router.prefix_blocks_total");
      const sent = send(gw, body, { path: "/v1/completions" });
      times.push((vm.moduleMs() - before) * 1000);
      finish(sent.stream);
      advance(gw, 100);
      hashed = stat(gw, "prefix_router.prefix_blocks_total") - blocksBefore;
    }
    times.sort((a, b) => a - b);
    r.rows.push({ bodyBytes: promptBytes + 30, promptBytes, hashedBlocks: hashed, moduleMicros: Math.round(times[Math.floor(times.length / 2)]) });
  }
  const shared = gw.envoy.sharedData("prefix_router");
  for (const k of shared.keys()) if (k.includes("/slot/")) r.maxEventBytes = Math.max(r.maxEventBytes, shared.get(k)!.value.length);
  if (r.maxEventBytes > r.eventBound) r.problems.push(`journal event of ${r.maxEventBytes} bytes over ${r.eventBound}`);
  for (const row of r.rows) if (row.hashedBlocks > maxPrefixBlocks) r.problems.push(`${row.hashedBlocks} blocks hashed for one request`);
  // Past the cap the extra bytes are only scanned: time per byte must fall, not rise.
  const capped = r.rows.filter((x) => x.promptBytes >= 64 << 10);
  for (let i = 1; i < capped.length; i++) {
    const perByte = (x: (typeof capped)[number]) => x.moduleMicros / x.bodyBytes;
    if (perByte(capped[i]) > 2 * perByte(capped[0])) r.problems.push(`${capped[i].promptBytes}-byte prompt costs ${capped[i].moduleMicros} µs`);
  }
  gw.envoy.shutdown();
  return r;
}

// ---------------------------------------------------------------------------

export interface FloodReport {
  entriesPerEndpoint: number;
  collidingBits: number;
  groundEntries: number;
  grindSeconds: number;
  /** Median module time per request, µs, once the table is full. */
  attackMicros: number;
  controlMicros: number;
  ratio: number;
  problems: string[];
}

/**
 * Prompts whose every index entry (each indexStride-th chained block hash) is ground to
 * share its low bits, the bucket index of an unsalted table, sent next to
 * ordinary prompts of the same size. With the salted buckets of
 * prefix_table.ts both cost the same; unsalted, every request (the attacker's
 * and everyone else's) walked one chain as long as the table.
 */
export async function hashFlood(o: { entriesPerEndpoint: number }): Promise<FloodReport> {
  const fm = FuzzModule.load();
  const e = fm.exports;
  const cap = o.entriesPerEndpoint;
  const entriesPerRequest = 64;
  const indexStride = DEFAULT_INDEX_STRIDE; // given explicitly below: the ground blocks must be the entries
  let bits = 0;
  while (1 << bits < 2 * cap + 1) bits++;
  const mask = BigInt((1 << bits) - 1);
  const target = 0x2a5n & mask;
  const model = Buffer.from("m");
  const modelHash = e.fuzz_xxh64(fm.place(model), model.length, 0n) as bigint;
  const t0 = performance.now();
  let ground = 0;
  const prompt = (id: number, grind: boolean): string => {
    e.fuzz_chain_start(modelHash);
    const parts: string[] = [];
    for (let j = 0; j < entriesPerRequest; j++) {
      for (let b = 0; b < indexStride; b++) {
        const block = Buffer.from(`r${id}e${j}b${b}`.padEnd(56, ".") + ((id * 131 + j) >>> 0).toString(16).padStart(8, "0"));
        const ptr = fm.place(block);
        if (b === indexStride - 1 && grind) {
          if (e.fuzz_chain_grind(ptr, 64, 56, mask, target, 1 << 30) === 0n) throw new Error("no counter gave the target bits");
          ground++;
        } else {
          e.fuzz_chain_next(ptr, 64);
        }
        parts.push(Buffer.from(fm.read(ptr, 64)).toString("latin1"));
      }
    }
    return parts.join("");
  };
  const rounds = Math.ceil((2 * cap) / entriesPerRequest) + 16;
  const attack: string[] = [];
  const control: string[] = [];
  for (let i = 0; i < rounds; i++) {
    attack.push(JSON.stringify({ model: "m", prompt: prompt(i, true) }));
    control.push(JSON.stringify({ model: "m", prompt: prompt(1e6 + i, false) }));
  }
  const grindSeconds = (performance.now() - t0) / 1000;
  const gw = await gateway({ endpoints: 2, vms: 1, config: { indexStride, lruCapacityPerServer: cap * indexStride, maxPrefixBlocks: entriesPerRequest * indexStride } });
  const vm = gw.plugin.vm(0)!;
  vm.profileTime = true;
  const time = (body: string) => {
    const before = vm.moduleMs();
    const s = send(gw, body, { path: "/v1/completions" });
    const t = (vm.moduleMs() - before) * 1000;
    finish(s.stream);
    return t;
  };
  const ta: number[] = [];
  const tc: number[] = [];
  for (let i = 0; i < rounds; i++) {
    ta.push(time(attack[i]));
    tc.push(time(control[i]));
  }
  const median = (xs: number[]) => xs.slice(-16).sort((a, b) => a - b)[8];
  const r: FloodReport = {
    entriesPerEndpoint: cap, collidingBits: bits, groundEntries: ground, grindSeconds,
    attackMicros: Math.round(median(ta)), controlMicros: Math.round(median(tc)), ratio: 0, problems: [],
  };
  r.ratio = r.attackMicros / Math.max(1, r.controlMicros);
  if (r.ratio > 3) r.problems.push(`colliding prompts cost ${r.ratio.toFixed(1)}× ordinary ones`);
  gw.envoy.shutdown();
  return r;
}

// ---------------------------------------------------------------------------

export interface SmuggleReport {
  configsTried: number;
  configsAccepted: string[];
  metricsPagesServed: number;
  requestsAfter: number;
  badDestinations: number;
  vmFailures: number;
  problems: string[];
}

/** Endpoint addresses in configurations (must be refused) and in metrics labels (must be ignored). */
export async function smuggledAddresses(): Promise<SmuggleReport> {
  const wasm = routerWasm();
  const r: SmuggleReport = { configsTried: 0, configsAccepted: [], metricsPagesServed: 0, requestsAfter: 0, badDestinations: 0, vmFailures: 0, problems: [] };
  for (const [address, why] of SMUGGLED_ADDRESSES) {
    for (const field of ["address", "metricsAddress"]) {
      const entry = field === "address" ? { address } : { address: "10.0.0.1:8000", metricsAddress: address };
      const envoy = new Envoy({ clock: new VirtualClock(), logLevel: "critical", recordLogs: false });
      r.configsTried++;
      try {
        await envoy.addHttpFilter({ name: "p", rootId: "prefix_router", vmId: "v", wasm, configuration: JSON.stringify({ endpoints: [entry] }), allowOnHeadersStopIteration: true });
        r.configsAccepted.push(`${field} ${JSON.stringify(address)} (${why})`);
      } catch (e) {
        if (!(e instanceof ConfigRejectedError)) r.problems.push(`${JSON.stringify(address)}: ${String(e)}`);
      } finally {
        envoy.shutdown();
      }
    }
  }
  for (const a of r.configsAccepted) r.problems.push(`configuration accepted ${a}`);
  // A model server whose page names other addresses, in every label the dialect reads and more.
  const evil = "169.254.169.254:80";
  const page = [
    `vllm:num_requests_waiting{engine="0",endpoint="${evil}",x_gateway_destination_endpoint="${evil}",address="${evil}"} 0`,
    `vllm:kv_cache_usage_perc{engine="0",instance="${evil}"} 0.1`,
    `vllm:lora_requests_info{max_lora="4",running_lora_adapters="${evil},10.0.0.1:8000\\nx-injected: 1,m",waiting_lora_adapters="${evil}"} 1.7e9`,
    `vllm:cache_config_info{block_size="16",num_gpu_blocks="1000",host="${evil}"} 1`,
    "",
  ].join("\n");
  const gw: Gateway = await gateway({
    endpointEntries: addresses(4).map((address, i) => ({ address, metricsAddress: `127.0.0.${i + 2}:9000` })),
    vms: 2,
    clusters: { metrics: { type: "handler", handle: () => ((r.metricsPagesServed++), { status: 200, body: page }) } },
    config: { metrics: { cluster: "metrics", intervalMs: 100 } },
  });
  const configured = new Set(gw.endpoints);
  for (let i = 0; i < 50; i++) {
    advance(gw, 100);
    await gw.envoy.settle();
    // Models named like the addresses and adapters the page mentions.
    for (const model of ["m", evil, "10.0.0.1:8000\nx-injected: 1", "lora-0"]) {
      const sent = send(gw, chatBody([["user", filler(i, 200)]], model));
      r.requestsAfter++;
      if (sent.listed.some((d) => !configured.has(d)) || sent.destinations.length > 1) r.badDestinations++;
      finish(sent.stream);
    }
  }
  r.vmFailures = gw.plugin.allVms().filter((vm) => vm.failed).length;
  gw.envoy.shutdown();
  if (r.badDestinations > 0) r.problems.push(`${r.badDestinations} requests sent outside the configuration`);
  if (r.vmFailures > 0) r.problems.push(`${r.vmFailures} VMs failed`);
  return r;
}

// ---------------------------------------------------------------------------

export interface FailOpenReport {
  policy: string;
  /** After the VM failed: did a client-sent destination header reach upstream? */
  clientHeaderReachedUpstream: boolean;
  status: number | null;
}

/**
 * The failure policies with a failed VM: FAIL_OPEN takes the filter out of
 * the chain, and with it the removal of client-sent destination headers.
 * Shown, not asserted: it is Envoy's behaviour, and the README says what to do.
 */
export async function failOpenHeader(): Promise<FailOpenReport[]> {
  const out: FailOpenReport[] = [];
  for (const policy of ["FAIL_OPEN", "FAIL_CLOSED", "FAIL_RELOAD"] as const) {
    const gw = await gateway({ endpoints: 4, vms: 1, failurePolicy: policy, reloadBackoffMs: 60000 });
    const vm = gw.plugin.vm(0)!;
    vm.beforeGuestCall = (fn) => {
      if (fn !== "proxy_on_request_body") return;
      vm.beforeGuestCall = undefined;
      throw new WebAssembly.RuntimeError("unreachable (injected)");
    };
    finish(send(gw, chatBody([["user", "trap"]])).stream);
    const sent = send(gw, chatBody([["user", "after"]]), { headers: [[DEST, "10.0.0.3:8000"]] });
    out.push({ policy, clientHeaderReachedUpstream: upstreamDestinations(sent.stream).includes("10.0.0.3:8000"), status: sent.stream.localResponse?.status ?? sent.stream.downstreamResponse?.status ?? null });
    finish(sent.stream);
    gw.envoy.shutdown();
  }
  return out;
}
