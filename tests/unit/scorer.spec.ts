import { Config } from "../../assembly/router/config";
import { InFlightLedger } from "../../assembly/router/inflight";
import { LoadView } from "../../assembly/router/load";
import { Scorer } from "../../assembly/router/scorer";
import { mix64 } from "../../assembly/router/hash";
import { keys } from "./fixtures/endpoints";

/** These tests are about the weighted scoring ("scoring": "weights"); work scoring has its own (work.spec.ts). */
function weightsConfig(): Config {
  const c = new Config();
  c.workScoring = false;
  return c;
}

function matches(values: i32[]): StaticArray<i32> {
  const m = new StaticArray<i32>(values.length);
  for (let i = 0; i < values.length; i++) m[i] = values[i];
  return m;
}

describe("Scorer", () => {
  it("prefers the endpoint with the longest match at equal load", () => {
    const c = weightsConfig();
    const ledger = new InFlightLedger(3);
    const s = new Scorer(c, keys(3));
    expect<i32>(s.pick(matches([2, 8, 4]), 10, new LoadView(ledger), 7)).toBe(1);
    expect<bool>(s.lastWasRendezvous).toBe(false);
  });

  it("counts minMatchBlocks in blocks: with indexStride 4, 8 blocks need 2 index entries", () => {
    const c = weightsConfig();
    c.indexStride = 4;
    c.minMatchBlocks = 8;
    const s = new Scorer(c, keys(3));
    const loads = new LoadView(new InFlightLedger(3));
    // One entry is 4 blocks: below the threshold, the match is ignored (rendezvous).
    s.pick(matches([0, 1, 0]), 10, loads, 7);
    expect<bool>(s.lastWasRendezvous).toBe(true);
    expect<i32>(s.pick(matches([0, 2, 0]), 10, loads, 7)).toBe(1);
    expect<bool>(s.lastWasRendezvous).toBe(false);
    // 5 blocks round up to 2 entries as well; 4 blocks are 1 entry.
    c.minMatchBlocks = 5;
    const s5 = new Scorer(c, keys(3));
    s5.pick(matches([0, 1, 0]), 10, loads, 7);
    expect<bool>(s5.lastWasRendezvous).toBe(true);
    c.minMatchBlocks = 4;
    const s4 = new Scorer(c, keys(3));
    expect<i32>(s4.pick(matches([0, 1, 0]), 10, loads, 7)).toBe(1);
    expect<bool>(s4.lastWasRendezvous).toBe(false);
  });

  it("ranks the runners-up by the same score, best first, up to fallbackHosts", () => {
    const c = weightsConfig();
    const s = new Scorer(c, keys(5));
    const loads = new LoadView(new InFlightLedger(5));
    expect<i32>(s.pick(matches([2, 8, 4, 0, 6]), 10, loads, 7)).toBe(1);
    expect<i32>(s.rankedCount).toBe(3);
    expect<i32>(s.ranked[0]).toBe(1);
    expect<i32>(s.ranked[1]).toBe(4);
    expect<i32>(s.ranked[2]).toBe(2);
    c.fallbackHosts = 3;
    const s3 = new Scorer(c, keys(5));
    s3.pick(matches([2, 8, 4, 0, 6]), 10, loads, 7);
    expect<i32>(s3.rankedCount).toBe(4);
    expect<i32>(s3.ranked[3]).toBe(0);
    c.fallbackHosts = 0;
    const s0 = new Scorer(c, keys(5));
    expect<i32>(s0.pick(matches([2, 8, 4, 0, 6]), 10, loads, 7)).toBe(1);
    expect<i32>(s0.rankedCount).toBe(1);
  });

  it("lists no endpoint twice and only eligible ones", () => {
    const c = weightsConfig();
    c.guardSlack = 0;
    c.guardLoadFactor = 1.0;
    const ledger = new InFlightLedger(3);
    for (let i = 0; i < 10; i++) ledger.pickOwn(2);
    const s = new Scorer(c, keys(3));
    s.pick(matches([0, 0, 9]), 10, new LoadView(ledger), 7);
    expect<i32>(s.rankedCount).toBe(2);
    expect<bool>(s.ranked[0] != 2 && s.ranked[1] != 2 && s.ranked[0] != s.ranked[1]).toBe(true);
  });

  it("ranks unmatched prefixes by rendezvous weight, the pick unchanged by the ranking", () => {
    const c = weightsConfig();
    c.coldBand = 1; // every eligible endpoint in the band: pure rendezvous order
    const n = 6;
    const endpoints = keys(n);
    const k = endpoints.keys.keys;
    const s = new Scorer(c, endpoints);
    const loads = new LoadView(new InFlightLedger(n));
    for (let key: u64 = 1; key <= 100; key++) {
      const placement = mix64(key);
      const e = s.pick(matches([0, 0, 0, 0, 0, 0]), 10, loads, placement);
      expect<i32>(s.ranked[0]).toBe(e);
      // Each runner-up has a lower weight than the one before it, and no other endpoint beats it.
      for (let i = 1; i < s.rankedCount; i++) {
        const w = mix64(placement ^ k[s.ranked[i]]);
        expect<bool>(w < mix64(placement ^ k[s.ranked[i - 1]])).toBe(true);
        for (let x = 0; x < n; x++) {
          let listed = false;
          for (let j = 0; j < i; j++) if (s.ranked[j] == x) listed = true;
          if (!listed && x != s.ranked[i]) expect<bool>(mix64(placement ^ k[x]) <= w).toBe(true);
        }
      }
    }
  });

  it("places unmatched prefixes by rendezvous hashing, the same for the same key", () => {
    const c = weightsConfig();
    const s = new Scorer(c, keys(4));
    const loads = new LoadView(new InFlightLedger(4));
    const seen = new StaticArray<i32>(4);
    for (let key: u64 = 1; key <= 400; key++) {
      const e = s.pick(matches([0, 0, 0, 0]), 10, loads, mix64(key));
      expect<bool>(s.lastWasRendezvous).toBe(true);
      expect<i32>(s.pick(matches([0, 0, 0, 0]), 10, loads, mix64(key))).toBe(e);
      seen[e]++;
    }
    // Uniform placement: 100 expected per endpoint.
    for (let e = 0; e < 4; e++) expect<bool>(seen[e] > 60 && seen[e] < 140).toBe(true);
  });

  it("rendezvous keeps other keys in place when an endpoint is removed from eligibility", () => {
    const c = weightsConfig();
    c.guardSlack = 0;
    c.guardLoadFactor = 1.0;
    const ledger = new InFlightLedger(4);
    const s = new Scorer(c, keys(4));
    const before = new StaticArray<i32>(200);
    for (let k = 0; k < 200; k++) before[k] = s.pick(matches([0, 0, 0, 0]), 1, new LoadView(ledger), mix64(<u64>k + 1000));
    // Load endpoint 2 so the guard excludes it; keys that were not on 2 stay put.
    for (let i = 0; i < 10; i++) ledger.pickOwn(2);
    const loads = new LoadView(ledger);
    for (let k = 0; k < 200; k++) {
      const now = s.pick(matches([0, 0, 0, 0]), 1, loads, mix64(<u64>k + 1000));
      expect<bool>(now != 2).toBe(true);
      if (before[k] != 2) expect<i32>(now).toBe(before[k]);
    }
  });

  it("diverts a hot prefix once its endpoint's load passes the guard", () => {
    const c = weightsConfig();
    c.guardLoadFactor = 1.25;
    c.guardSlack = 8;
    const ledger = new InFlightLedger(4);
    const s = new Scorer(c, keys(4));
    const m = matches([10, 0, 0, 0]);
    let picks = 0;
    while (picks < 100) {
      const e = s.pick(m, 10, new LoadView(ledger), 42);
      if (e != 0) break;
      ledger.pickOwn(0);
      picks++;
    }
    // mean with the request = (picks + 1) / 4; cap = max(1.25·mean, mean + 8).
    // Endpoint 0 takes requests while picks + 1 <= cap, i.e. the first 10.
    expect<i32>(picks).toBe(10);
    expect<bool>(s.lastDiverted).toBe(true);
  });

  it("avoids unhealthy endpoints unless all are unhealthy", () => {
    const c = weightsConfig();
    const ledger = new InFlightLedger(2);
    const loads = new LoadView(ledger);
    const s = new Scorer(c, keys(2));
    loads.healthy[1] = false;
    expect<i32>(s.pick(matches([0, 10]), 10, loads, 1)).toBe(0);
    loads.healthy[0] = false;
    expect<i32>(s.pick(matches([0, 10]), 10, loads, 1)).toBe(1);
  });

  it("weighs queue and KV usage against the prefix match", () => {
    const c = weightsConfig();
    c.queueSaturation = 5;
    const ledger = new InFlightLedger(2);
    const loads = new LoadView(ledger);
    const s = new Scorer(c, keys(2));
    // Equal half matches; endpoint 0 is saturated on queue and KV.
    loads.queueDepth[0] = 10;
    loads.kvUsage[0] = 0.95;
    loads.queueDepth[1] = 0;
    loads.kvUsage[1] = 0.1;
    expect<i32>(s.pick(matches([5, 5]), 10, loads, 1)).toBe(1);
    // A full match on 0 against nothing on 1: 3 < 2 + 2·0.9, still 1.
    expect<i32>(s.pick(matches([10, 0]), 10, loads, 1)).toBe(1);
    loads.queueDepth[0] = 1;
    loads.kvUsage[0] = 0.3;
    expect<i32>(s.pick(matches([10, 0]), 10, loads, 1)).toBe(0);
  });
});

describe("Scorer saturation guard", () => {
  it("skips endpoints over the saturation points unless all are", () => {
    const c = weightsConfig();
    c.kvSaturation = 0.8;
    c.queueSaturation = 5;
    const ledger = new InFlightLedger(3);
    const loads = new LoadView(ledger);
    const s = new Scorer(c, keys(3));
    loads.queueDepth[0] = 0;
    loads.kvUsage[0] = 0.9;
    loads.queueDepth[1] = 7;
    loads.queueDepth[2] = 1;
    loads.kvUsage[2] = 0.5;
    expect<i32>(s.pick(matches([10, 10, 0]), 10, loads, 1)).toBe(2);
    loads.kvUsage[2] = 0.85;
    // Everyone saturated: the guard fails open and the prefix decides.
    const e = s.pick(matches([10, 0, 0]), 10, loads, 1);
    expect<i32>(e).toBe(0);
  });
});

describe("Scorer saturation off", () => {
  it("kvSaturation 1 cuts no endpoint off, not even one reporting its cache exactly full", () => {
    const c = weightsConfig();
    c.kvSaturation = 1;
    const loads = new LoadView(new InFlightLedger(2));
    const s = new Scorer(c, keys(2));
    loads.queueDepth[0] = 0;
    loads.queueDepth[1] = 0;
    loads.kvUsage[0] = 1.0;
    loads.kvUsage[1] = 0.5;
    // The full match outweighs the KV term (3 against 2 × 0.5): endpoint 0, if it is eligible.
    expect<i32>(s.pick(matches([10, 0]), 10, loads, 1)).toBe(0);
  });
});

describe("Scorer under overload", () => {
  it("skips a queue much longer than the shortest, however long all queues are", () => {
    const c = weightsConfig();
    c.queueSaturation = 20;
    const loads = new LoadView(new InFlightLedger(3));
    const s = new Scorer(c, keys(3));
    // Every queue is past the scale; only endpoint 1 is far behind the shortest.
    loads.queueDepth[0] = 40;
    loads.queueDepth[1] = 61;
    loads.queueDepth[2] = 45;
    expect<i32>(s.pick(matches([0, 10, 0]), 10, loads, 1)).not.toBe(1);
    // Within the scale of the shortest, the full match wins again.
    loads.queueDepth[1] = 50;
    expect<i32>(s.pick(matches([0, 10, 0]), 10, loads, 1)).toBe(1);
  });

  it("keeps ranking queues past the queue scale", () => {
    const c = weightsConfig();
    c.queueSaturation = 20;
    const loads = new LoadView(new InFlightLedger(2));
    const s = new Scorer(c, keys(2));
    // Equal matches, both queues past 20: a capped term would tie them and
    // leave the choice to the tie-break hash; the shorter queue must win
    // whichever side it is on.
    loads.queueDepth[0] = 30;
    loads.queueDepth[1] = 25;
    expect<i32>(s.pick(matches([5, 5]), 10, loads, 1)).toBe(1);
    loads.queueDepth[0] = 25;
    loads.queueDepth[1] = 30;
    expect<i32>(s.pick(matches([5, 5]), 10, loads, 1)).toBe(0);
  });
});

describe("Scorer without fresh metrics for some endpoints", () => {
  it("assumes them as loaded as the average, not idle", () => {
    const c = weightsConfig();
    const loads = new LoadView(new InFlightLedger(3));
    const s = new Scorer(c, keys(3));
    // Endpoint 2's metrics are missing; 0 and 1 report queues of 2 and 10.
    loads.queueDepth[0] = 2;
    loads.kvUsage[0] = 0.5;
    loads.queueDepth[1] = 10;
    loads.kvUsage[1] = 0.5;
    // Equal matches: assumed at queue 6, endpoint 2 loses to endpoint 0
    // (taken as idle it would have won).
    expect<i32>(s.pick(matches([5, 5, 5]), 10, loads, 1)).toBe(0);
    // ...and beats endpoint 1.
    expect<i32>(s.pick(matches([0, 5, 5]), 10, loads, 1)).toBe(2);
    // With no fresh metrics anywhere, the prefix decides.
    loads.queueDepth[0] = NaN;
    loads.queueDepth[1] = NaN;
    loads.kvUsage[0] = NaN;
    loads.kvUsage[1] = NaN;
    expect<i32>(s.pick(matches([3, 4, 5]), 10, loads, 1)).toBe(2);
    expect<i32>(s.pick(matches([5, 4, 3]), 10, loads, 1)).toBe(0);
  });
});

describe("LoadView queue estimate", () => {
  it("adds requests sent since the report and subtracts those that ended, never below 0", () => {
    const loads = new LoadView(new InFlightLedger(1));
    expect<bool>(isNaN(loads.queue(0))).toBe(true);
    loads.noteSent(0);
    expect<bool>(isNaN(loads.queue(0))).toBe(true);
    loads.report(0, 1000, 3, 0.5);
    expect<f64>(loads.queue(0)).toBe(3);
    loads.noteSent(0);
    loads.noteSent(0);
    loads.noteDone(0);
    expect<f64>(loads.queue(0)).toBe(4);
    for (let i = 0; i < 6; i++) loads.noteDone(0);
    expect<f64>(loads.queue(0)).toBe(0);
    // The same report again changes nothing; a newer one starts afresh.
    loads.report(0, 1000, 3, 0.5);
    expect<f64>(loads.queue(0)).toBe(0);
    loads.report(0, 1200, 2, 0.5);
    expect<f64>(loads.queue(0)).toBe(2);
  });
});

describe("Scorer LoRA affinity", () => {
  it("prefers endpoints running the adapter, unless one with room holds more of the prompt", () => {
    const c = weightsConfig();
    const ledger = new InFlightLedger(3);
    const loads = new LoadView(ledger);
    const s = new Scorer(c, keys(3));
    const adapter: u64 = 0xABCDEF;
    const other: u64 = 0x123456;
    const list = heap.alloc(16);
    store<u64>(list, adapter);
    store<u64>(list, other, 8);
    loads.setAdapters(0, list + 8, 1, 1); // runs `other`, full (max_lora 1)
    loads.setAdapters(1, list, 1, 4);     // runs `adapter`
    loads.setAdapters(2, list, 0, 4);     // room for 4
    // A prompt no endpoint running the adapter holds goes to the one running it...
    expect<i32>(s.pick(matches([0, 0, 0]), 10, loads, 5, adapter)).toBe(1);
    // ...and so does one it holds at least as much of as the endpoint with room.
    expect<i32>(s.pick(matches([0, 4, 4]), 10, loads, 5, adapter)).toBe(1);
    // A longer match on an endpoint with room keeps the prompt there.
    expect<i32>(s.pick(matches([0, 2, 10]), 10, loads, 5, adapter)).toBe(2);
    // Never where max_lora is reached by other adapters, whatever it holds.
    expect<i32>(s.pick(matches([10, 0, 0]), 10, loads, 5, adapter)).toBe(1);
    // Where nobody runs it, only endpoints with room qualify.
    loads.setAdapters(1, list, 0, 0);
    expect<i32>(s.pick(matches([10, 0, 0]), 10, loads, 5, adapter)).toBe(2);
    // A model never seen as an adapter is routed on prefix alone.
    expect<i32>(s.pick(matches([10, 0, 0]), 10, loads, 5, 0x777)).toBe(0);
  });
});

describe("InFlightLedger", () => {
  it("counts own and remote picks and clamps releases per source", () => {
    const l = new InFlightLedger(2);
    l.pickOwn(0);
    l.pickRemote(7, 0, 0);
    expect<i32>(l.load(0)).toBe(2);
    l.releaseRemote(7, 0, 0);
    l.releaseRemote(7, 0, 0); // a release whose pick this VM never saw
    expect<i32>(l.load(0)).toBe(1);
    l.releaseOwn(0);
    l.releaseOwn(0);
    expect<i32>(l.load(0)).toBe(0);
  });

  it("forgets a silent VM's requests", () => {
    const l = new InFlightLedger(1);
    l.pickRemote(9, 0, 1000);
    l.pickRemote(9, 0, 1000);
    expect<i32>(l.expire(3000, 5000)).toBe(0);
    expect<i32>(l.load(0)).toBe(2);
    expect<i32>(l.expire(7000, 5000)).toBe(1);
    expect<i32>(l.load(0)).toBe(0);
  });
});
