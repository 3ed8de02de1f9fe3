import { Config } from "../../assembly/router/config";
import { InFlightLedger } from "../../assembly/router/inflight";
import { LoadView } from "../../assembly/router/load";
import { Scorer } from "../../assembly/router/scorer";
import { WorkLedger } from "../../assembly/router/work";
import { mix64 } from "../../assembly/router/hash";
import { keys } from "./fixtures/endpoints";

function zeros(n: i32): StaticArray<i32> {
  return new StaticArray<i32>(n);
}

function workConfig(): Config {
  const c = new Config();
  c.workScoring = true;
  c.prefillTokensPerSecond = 10000; // 10 tokens per ms
  c.decodeWeight = 0.1;
  c.affinity = 1;
  c.matchBandMs = 0; // the estimates alone decide (the band has its own test)
  c.indexStride = 4; // entries of 4 blocks × 64 characters = 64 tokens, so that small matches cover part of a prompt
  return c;
}

describe("WorkLedger", () => {
  it("drains each endpoint's backlog at its rate, never below zero", () => {
    const w = new WorkLedger(2, 10);
    w.addRemote(0, 1000, 1000, 0);
    expect<f64>(w.backlogAt(0, 0)).toBe(1000);
    expect<f64>(w.backlogAt(0, 40)).toBe(600);
    expect<f64>(w.backlogAt(0, 500)).toBe(0);
    expect<f64>(w.backlogAt(1, 40)).toBe(0);
    // Measured rates scale the assumed one by each server's speed relative to the others'.
    w.measuredRate[0] = 30;
    w.measuredRate[1] = 10;
    w.updateSpeeds();
    expect<f64>(w.rate(0)).toBe(15);
    expect<f64>(w.rate(1)).toBe(5);
    w.measuredRate[0] = 1000;
    w.measuredRate[1] = 1;
    w.updateSpeeds();
    expect<f64>(w.rate(1)).toBe(2.5); // bounded at a quarter of the assumed rate
  });

  it("never counts more remote backlog than the prefill of other VMs' requests still in flight", () => {
    const w = new WorkLedger(1, 10);
    // A journal replayed at one instant: three picks, then two of them ended.
    w.addRemote(0, 600, 600, 0);
    w.addRemote(0, 300, 300, 0);
    w.addRemote(0, 300, 300, 0);
    expect<f64>(w.backlogAt(0, 0)).toBe(1200);
    w.releaseRemote(0);
    w.releaseRemote(0);
    expect<f64>(w.backlogAt(0, 0)).toBe(400); // the mean of the three left in flight
    w.releaseRemote(0);
    expect<f64>(w.backlogAt(0, 0)).toBe(0);
    w.releaseRemote(0); // a release whose pick came before this VM read the journal
    w.addRemote(0, 100, 100, 0);
    expect<f64>(w.backlogAt(0, 0)).toBe(100);
  });

  it("counts this VM's prefill exactly until its first token, others' as drained", () => {
    const w = new WorkLedger(1, 10);
    w.addOwn(0, 1000, 1000);
    w.addOwn(0, 500, 500);
    w.addRemote(0, 300, 300, 0);
    expect<f64>(w.ahead(0, 10)).toBe(1700);
    w.prefillDone(0, 1000);
    expect<f64>(w.ahead(0, 30)).toBe(500);
  });

  it("counts other Envoy replicas' picks as work ahead that drains at the rate, with no release to wait for", () => {
    const w = new WorkLedger(2, 10, true);
    w.addPeer(0, 1000, 0);
    w.addPeer(0, 500, 20); // 800 left of the first, then 500 more
    expect<f64>(w.ahead(0, 20)).toBe(1300);
    expect<f64>(w.ahead(0, 70)).toBe(800);
    expect<f64>(w.ahead(0, 500)).toBe(0);
    expect<f64>(w.ahead(1, 20)).toBe(0);
    // Beside this VM's own and other VMs' work, not instead of it; a slot that starts over forgets it.
    w.addOwn(0, 100, 100);
    w.addRemote(0, 200, 200, 500);
    w.addPeer(0, 300, 500);
    expect<f64>(w.ahead(0, 500)).toBe(600);
    w.reset(0);
    expect<f64>(w.ahead(0, 500)).toBe(0);
    // A filter without peers keeps nothing for them.
    const alone = new WorkLedger(1, 10);
    alone.addPeer(0, 1000, 0);
    expect<f64>(alone.ahead(0, 0)).toBe(0);
  });

  it("estimates TTFT as the work ahead plus the request's own prefill and the decode it shares steps with, at the rate", () => {
    const w = new WorkLedger(1, 10);
    w.addOwn(0, 2000, 3000);
    // (2000 ahead + 500 own + 0.1 × 3000 context) / 10 per ms
    expect<f64>(w.estimateMs(0, 500, NaN, 0.1, 0)).toBe(280);
    // A reported queue of 3 requests of the mean uncached size (2000) is more than the backlog.
    expect<f64>(w.estimateMs(0, 500, 3, 0.1, 0)).toBe((6000 + 500 + 300) / 10);
    w.release(0, 3000);
    expect<f64>(w.estimateMs(0, 500, NaN, 0.1, 0)).toBe(250);
  });
});

describe("Scorer by work", () => {
  it("spreads cold misses by their keys when every endpoint is idle (no herding)", () => {
    const c = workConfig();
    const s = new Scorer(c, keys(4));
    const loads = new LoadView(new InFlightLedger(4), 10);
    const seen = new StaticArray<i32>(4);
    for (let k = 0; k < 64; k++) {
      const e = s.pick(zeros(4), 8, loads, mix64(<u64>(k + 100)), 0, 2000);
      expect<bool>(s.lastWasRendezvous).toBe(true);
      seen[e]++;
    }
    for (let e = 0; e < 4; e++) expect<i32>(seen[e]).toBeGreaterThan(4);
  });

  it("a burst of cold misses does not pile onto one endpoint: each pick's work counts at once", () => {
    const c = workConfig();
    c.coldBandMs = 0;
    const s = new Scorer(c, keys(4));
    const loads = new LoadView(new InFlightLedger(4), 10);
    const used = new StaticArray<i32>(4);
    for (let k = 0; k < 4; k++) {
      // The same placement key every time: only the added work moves the pick.
      const e = s.pick(zeros(4), 8, loads, 42, 0, 2000);
      loads.work.addOwn(e, 2000, 2000);
      used[e]++;
    }
    for (let e = 0; e < 4; e++) expect<i32>(used[e]).toBe(1);
  });

  it("follows the prefix while the holder's backlog costs less than the prefill it saves, and leaves it after", () => {
    const c = workConfig();
    const s = new Scorer(c, keys(2));
    const loads = new LoadView(new InFlightLedger(2), 10);
    // 8 entries of 4 blocks × 64 characters = 512 tokens; endpoint 1 holds all of them.
    const match = zeros(2);
    match[1] = 8;
    loads.work.addOwn(1, 400, 0);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(1);
    expect<bool>(s.lastWasRendezvous).toBe(false);
    loads.work.addOwn(1, 200, 0); // 600 tokens ahead > the 512 it saves
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(0);
  });

  it("counts a reported queue from the first request, before any mean is known", () => {
    const c = workConfig();
    const s = new Scorer(c, keys(2));
    const loads = new LoadView(new InFlightLedger(2), 10);
    loads.queueDepth[0] = 40;
    loads.queueDepth[1] = 0;
    // No request routed yet: 40 queued requests as long as this one (512 tokens) put endpoint 0
    // two seconds behind, far outside the cold band, whatever the placement key.
    for (let key: u64 = 1; key <= 32; key++) expect<i32>(s.pick(zeros(2), 8, loads, key, 0, 512)).toBe(1);
  });

  it("within matchBandMs of the best estimate, the longest match wins, then the rendezvous weight", () => {
    const c = workConfig();
    c.matchBandMs = 100;
    const s = new Scorer(c, keys(3));
    const loads = new LoadView(new InFlightLedger(3), 10);
    // A 512-token prompt: endpoint 1 holds all of it, endpoint 2 half.
    const match = zeros(3);
    match[1] = 8;
    match[2] = 4;
    // Estimates at 10 tokens per ms: endpoint 0 51 ms, endpoint 2 26 ms (the
    // best). 600 tokens waiting at endpoint 1 make its 60 ms, 34 above the best:
    // within the band, and its match is the longest.
    loads.work.addOwn(1, 600, 0);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(1);
    // 1800 tokens: 180 ms, out of the band; of the two in it, endpoint 2 holds more.
    loads.work.addOwn(1, 1200, 0);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(2);
    // Equal matches within the band: the rendezvous weight decides, the same for any load inside it.
    match[1] = 4;
    loads.work.prefillDone(1, 1800);
    const first = s.pick(match, 8, loads, 7, 0, 512);
    expect<bool>(first == 1 || first == 2).toBe(true);
    loads.work.addOwn(first, 300, 0);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(first);
    // With the band off, that load moves it.
    c.matchBandMs = 0;
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(first == 1 ? 2 : 1);
  });

  it("counts cached tokens affinity times once no eligible endpoint is free, twice while one is", () => {
    const c = workConfig();
    c.affinity = 16;
    const s = new Scorer(c, keys(2));
    const loads = new LoadView(new InFlightLedger(2), 10);
    const match = zeros(2);
    match[1] = 8; // endpoint 1 holds the whole 512-token prompt
    // 1600 tokens wait at the holder, none at endpoint 0: the 512 tokens it
    // saves count twice (102 ms), less than its 160 ms backlog: endpoint 0.
    loads.work.addOwn(1, 1600, 0);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(0);
    // A smaller backlog (900 tokens, 90 ms) is worth keeping the prefix for.
    loads.work.prefillDone(1, 700);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(1);
    // 4000 tokens at the holder, and endpoint 0 busy too (1700 tokens, 0.8 of
    // the mean request): counted twice, the saving would not cover the 2300
    // extra tokens (230 ms); counted 1 + 15 × 0.8 = 13 times (666 ms), it does.
    loads.work.addOwn(1, 3100, 0);
    loads.work.addOwn(0, 1700, 0);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(1);
  });
});

describe("LoadView.visibleShare", () => {
  it("is the ratio of this proxy's requests in flight to the servers' running and waiting ones, averaged over rounds of scrapes", () => {
    const loads = new LoadView(new InFlightLedger(2), 10);
    expect<f64>(loads.visibleShare).toBe(1);
    loads.noteServerLoad(1, 3); // 3 requests at the servers: too few to tell
    expect<f64>(loads.visibleShare).toBe(1);
    // One of four replicas: known from the first busy round, since both averages start at 0.
    const fresh = new LoadView(new InFlightLedger(2), 10);
    fresh.noteServerLoad(10, 40);
    expect<f64>(fresh.visibleShare).toBeCloseTo(0.25, 6);
    expect<i32>(fresh.replicas()).toBe(4);
    // A busy round counts for more than a quiet one: 10 of 40, then 2 of 4, is 2 of 7.2 on average
    // (averaging the ratios instead would give 0.30, three replicas).
    fresh.noteServerLoad(2, 4);
    expect<f64>(fresh.visibleShare).toBeCloseTo(2.0 / 7.2, 6);
    expect<i32>(fresh.replicas()).toBe(4);
    // More in flight than the servers report (a lagging scrape): a share of 1, alone.
    for (let i = 0; i < 60; i++) fresh.noteServerLoad(50, 40);
    expect<f64>(fresh.visibleShare).toBe(1);
    expect<i32>(fresh.replicas()).toBe(1);
    // Floored at 1/16: 16 replicas or more are treated as 16.
    for (let i = 0; i < 60; i++) fresh.noteServerLoad(0, 400);
    expect<f64>(fresh.visibleShare).toBe(1.0 / 16);
    expect<i32>(fresh.replicas()).toBe(16);
    // A round the servers did not report (NaN) changes nothing.
    fresh.noteServerLoad(10, NaN);
    expect<f64>(fresh.visibleShare).toBe(1.0 / 16);
  });
});

describe("Scorer by work, one of several replicas", () => {
  it("places a cold request by rendezvous weight alone once it takes itself for one of several replicas", () => {
    const c = workConfig();
    c.coldBandMs = 50;
    const s = new Scorer(c, keys(2));
    const loads = new LoadView(new InFlightLedger(2), 10);
    // A cold request whose rendezvous choice differs from the least loaded endpoint: find a key for each.
    let keyForOne: u64 = 0;
    for (let key: u64 = 1; key < 64 && keyForOne == 0; key++) if (s.pick(zeros(2), 8, loads, key, 0, 512) == 1) keyForOne = key;
    expect<u64>(keyForOne).toBeGreaterThan(0);
    // 100 ms of this proxy's own work at endpoint 1: outside the 50 ms band, so the request goes to 0.
    loads.work.addOwn(1, 1000, 0);
    expect<i32>(s.pick(zeros(2), 8, loads, keyForOne, 0, 512)).toBe(0);
    // A proxy alone in front of its servers (a share above 2/3: one replica) keeps its band.
    loads.visibleShare = 0.7;
    expect<i32>(loads.replicas()).toBe(1);
    expect<i32>(s.pick(zeros(2), 8, loads, keyForOne, 0, 512)).toBe(0);
    // One of four replicas: the cold band is 50 × 15 × 4 = 3 s, and the request goes where the rendezvous weight puts it.
    loads.visibleShare = 0.25;
    expect<i32>(loads.replicas()).toBe(4);
    expect<i32>(s.pick(zeros(2), 8, loads, keyForOne, 0, 512)).toBe(1);
    expect<bool>(s.lastWasRendezvous).toBe(true);
    // Even a second behind (10,000 tokens at 10 a ms): within 3 s, where another replica may have put it.
    loads.work.addOwn(1, 9000, 0);
    expect<i32>(s.pick(zeros(2), 8, loads, keyForOne, 0, 512)).toBe(1);
    // Not 4 s behind.
    loads.work.addOwn(1, 30000, 0);
    expect<i32>(s.pick(zeros(2), 8, loads, keyForOne, 0, 512)).toBe(0);
    // Told it is alone (replicas 1), it keeps its own band whatever the scrapes say.
    loads.work.prefillDone(1, 39000);
    c.replicas = 1;
    expect<i32>(s.pick(zeros(2), 8, loads, keyForOne, 0, 512)).toBe(0);
    c.replicas = 4;
    loads.visibleShare = 1;
    expect<i32>(s.pick(zeros(2), 8, loads, keyForOne, 0, 512)).toBe(1);
  });

  it("widens the match band to 0.75 × the replicas it takes itself to be one of", () => {
    const c = workConfig();
    c.matchBandMs = 50;
    const s = new Scorer(c, keys(2));
    const loads = new LoadView(new InFlightLedger(2), 10);
    const match = zeros(2);
    match[1] = 2; // endpoint 1 holds the first 128 of 512 tokens
    // Endpoint 1 is 100 ms behind, less 12.8 ms for what it holds: outside a 50 ms band.
    loads.work.addOwn(1, 1000, 0);
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(0);
    loads.visibleShare = 0.5; // two replicas: a band of 75 ms
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(0);
    loads.visibleShare = 0.27; // four replicas: a band of 150 ms, and the longest match within it wins
    expect<i32>(s.pick(match, 8, loads, 7, 0, 512)).toBe(1);
  });
});
