// The dev gateway's override_host: the list walked one entry per attempt,
// unknown entries skipped, then round robin avoiding hosts already tried.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OverrideHostSelection, RoundRobin } from "../../scripts/gateway/override-host.ts";

const HOSTS = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"];
const CLUSTER = new Set(HOSTS);

test("each attempt takes the next listed host that is in the cluster, entries trimmed, unknown ones skipped", () => {
  const s = new OverrideHostSelection(` 10.0.0.3:8000 ,10.9.9.9:1, ,10.0.0.1:8000`, CLUSTER, new RoundRobin(HOSTS));
  assert.deepEqual([s.next(), s.next()], ["10.0.0.3:8000", "10.0.0.1:8000"]);
});

test("with no header, or the list used up, round robin picks, passing over hosts this request tried", () => {
  const rr = new RoundRobin(HOSTS);
  assert.equal(new OverrideHostSelection(undefined, CLUSTER, rr).next(), HOSTS[0]);
  // The cursor is at HOSTS[1]; this request tried it: round robin moves on to HOSTS[2].
  const s = new OverrideHostSelection("10.0.0.2:8000", CLUSTER, rr);
  assert.equal(s.next(), "10.0.0.2:8000");
  assert.equal(s.next(), "10.0.0.3:8000");
});

test("round robin gives up avoiding tried hosts after three picks, as host_selection_retry_max_attempts says", () => {
  const one = ["10.0.0.1:8000"];
  const s = new OverrideHostSelection("10.0.0.1:8000", new Set(one), new RoundRobin(one));
  assert.equal(s.next(), "10.0.0.1:8000");
  assert.equal(s.next(), "10.0.0.1:8000");
});
