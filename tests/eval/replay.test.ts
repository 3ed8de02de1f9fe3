// The driver's contract with a policy, as a wrapped filter will rely on it:
// the shared virtual clock and its timers, scrapes at the policy's interval,
// metric pages on demand, one completion per request to the endpoint it was
// sent to.
import assert from "node:assert/strict";
import { test } from "node:test";
import { readVllmPage } from "../../scripts/sim/metrics.ts";
import { DEFAULT_SIM_PARAMS } from "../../scripts/sim/params.ts";
import { sharedPrefix } from "../../scripts/eval/generators.ts";
import type { PolicyFactory, RouteRequest } from "../../scripts/eval/policy.ts";
import { DEFAULT_LATENCIES, NO_LATENCIES, replay, replayEndpoints, requestOverheadMs } from "../../scripts/eval/replay.ts";

test("endpoints are ip:port strings", async () => {
  assert.deepEqual(replayEndpoints(3), ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"]);
  assert.equal(new Set(replayEndpoints(300)).size, 300);
});

test("a policy sees the clock at arrival, fresh scrapes, live pages, and each completion once", async () => {
  const w = sharedPrefix({ seed: 1, model: DEFAULT_SIM_PARAMS.model, requests: 120, ratePerS: 60 });
  const seen = new Map<string, string>();
  const completions = new Map<string, number>();
  let ticks = 0;
  const tickTimes: number[] = [];
  let scrapeChecks = 0;
  const probe: PolicyFactory = {
    name: "probe",
    description: "checks the driver contract",
    scrapeIntervalMs: 100,
    create(ctx) {
      // A filter's tick: a timer that re-arms itself, as the emulator's tick timer does.
      const tick = (): void => {
        ticks++;
        tickTimes.push(ctx.clock.now() - ctx.startMs);
        ctx.clock.setTimer(250, tick);
      };
      ctx.clock.setTimer(250, tick);
      let n = 0;
      return {
        pick(req: RouteRequest) {
          assert.ok(Math.abs(req.arrivalMs - (ctx.clock.now() - ctx.startMs)) < 1e-3, "the clock reads the arrival time");
          assert.ok(req.body().includes('"messages"'));
          assert.ok(req.promptText().startsWith("<|begin_of_text|>"));
          const e = ctx.endpoints[n++ % ctx.endpoints.length];
          const s = ctx.scraped(e);
          const now = ctx.clock.now() - ctx.startMs;
          assert.ok(s.atMs <= now + 1e-3 && now - s.atMs <= 100 + 1e-3, "scraped within the interval");
          const live = readVllmPage(ctx.metricsText(e));
          assert.equal(live.numGpuBlocks, DEFAULT_SIM_PARAMS.numGpuBlocks);
          scrapeChecks++;
          seen.set(req.id, e);
          return e;
        },
        onComplete(req, endpoint) {
          assert.equal(endpoint, seen.get(req.id));
          completions.set(req.id, (completions.get(req.id) ?? 0) + 1);
        },
      };
    },
  };
  const rec = await replay(w, probe, { servers: 3, latencies: NO_LATENCIES });
  assert.equal(scrapeChecks, 120);
  assert.equal(completions.size, 120);
  for (const c of completions.values()) assert.equal(c, 1);
  const last = Math.max(...rec.completeMs);
  assert.ok(ticks >= Math.floor(w.requests[w.requests.length - 1].arrivalMs / 250), `ticks ${ticks}`);
  tickTimes.forEach((t, i) => assert.ok(Math.abs(t - 250 * (i + 1)) < 1e-3, `tick ${i} at ${t}`));
  assert.ok(last > 0);
});

test("the time scale stretches arrivals", async () => {
  const w = sharedPrefix({ seed: 1, model: DEFAULT_SIM_PARAMS.model, requests: 30 });
  const rr: PolicyFactory = { name: "first", description: "", scrapeIntervalMs: 0, create: (ctx) => ({ pick: () => ctx.endpoints[0] }) };
  const a = await replay(w, rr, { servers: 1, timeScale: 1 });
  const b = await replay(w, rr, { servers: 1, timeScale: 0.5 });
  for (let i = 0; i < 30; i++) assert.ok(Math.abs(b.arrivalMs[i] - a.arrivalMs[i] * 0.5) < 1e-9);
});

test("an asynchronous policy: async create, and replies started by a timer land before the next event", async () => {
  const w = sharedPrefix({ seed: 2, model: DEFAULT_SIM_PARAMS.model, requests: 60, ratePerS: 30 });
  let lastReplyAt = -1;
  let ticks = 0;
  const asyncProbe: PolicyFactory = {
    name: "async-probe",
    description: "a scrape callout answered on a promise, like the emulator's handler clusters",
    scrapeIntervalMs: 0,
    async create(ctx) {
      await Promise.resolve(); // e.g. compiling the .wasm
      const inflight = new Set<Promise<void>>();
      const tick = (): void => {
        ticks++;
        const firedAt = ctx.clock.now();
        const p = Promise.resolve().then(() => {
          assert.equal(ctx.clock.now(), firedAt, "the reply lands before time moves on");
          lastReplyAt = firedAt;
        });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        ctx.clock.setTimer(100, tick);
      };
      ctx.clock.setTimer(100, tick);
      return {
        pick(req) {
          if (req.arrivalMs >= 100) assert.ok(ctx.clock.now() - lastReplyAt <= 100 + 1e-3, "the latest tick's reply has landed");
          return ctx.endpoints[0];
        },
        async settle() {
          while (inflight.size > 0) await Promise.all(inflight);
        },
      };
    },
  };
  const rec = await replay(w, asyncProbe, { servers: 2 });
  assert.ok(ticks > 10);
  assert.ok(rec.completeMs.every((t) => t > 0));
});

test("latencies: a scrape shows the state metricsAgeMs old and lands scrapeLatencyMs later; requests reach the engine after the overheads", async () => {
  const w = sharedPrefix({ seed: 4, model: DEFAULT_SIM_PARAMS.model, requests: 80, ratePerS: 40 });
  const lat = { ...DEFAULT_LATENCIES, metricsAgeMs: 30, scrapeLatencyMs: 20, decisionCalloutMs: 7 };
  const views: { now: number; atMs: number; waiting: number; running: number }[] = [];
  const pages: { now: number; running: number }[] = [];
  const probe = (name: string): PolicyFactory => ({
    name,
    description: "records what it sees",
    scrapeIntervalMs: 100,
    create(ctx) {
      return {
        pick(req) {
          const now = ctx.clock.now() - ctx.startMs;
          const s = ctx.scraped(ctx.endpoints[0]);
          views.push({ now, atMs: s.atMs, waiting: s.waiting, running: s.running });
          pages.push({ now, running: readVllmPage(ctx.metricsText(ctx.endpoints[0])).running });
          return ctx.endpoints[0];
        },
      };
    },
  });
  const rec = await replay(w, probe("in-process"), { servers: 1, latencies: lat });
  // The view in force at `now` came from a scrape asked at least scrapeLatencyMs before.
  for (const v of views) if (v.atMs >= 0) assert.ok(v.now - v.atMs >= lat.scrapeLatencyMs - 1e-9 && v.now - v.atMs <= 100 + lat.scrapeLatencyMs + 1e-9, `${v.now} ${v.atMs}`);
  // The engine starts work on a request only after its intake overhead: TTFT ≥ overhead.
  for (let i = 0; i < 80; i++) {
    assert.ok(rec.firstTokenMs[i] - rec.arrivalMs[i] >= requestOverheadMs(lat, rec.promptTokens[i]) - 1e-9, `request ${i}`);
  }
  // The first request's page, read at its own arrival, cannot show it yet.
  assert.equal(pages[0].running, 0);
  // An out-of-process policy's requests wait one more round trip.
  const ext = await replay(w, probe("gaie-approx"), { servers: 1, latencies: lat });
  assert.ok(ext.firstTokenMs[0] - rec.firstTokenMs[0] >= lat.decisionCalloutMs - 1e-9);
  // With no latencies the page is live.
  const none = await replay(w, probe("in-process"), { servers: 1, latencies: NO_LATENCIES });
  assert.ok(none.firstTokenMs[0] < rec.firstTokenMs[0]);
});
