// npm run bench:icount's reading of V8's perf map and callgrind's listing
// (scripts/bench/callgrind.ts): which addresses count as the module's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { instructionsInSpace, moduleCodeSpace, parsePerfMap } from "../../scripts/bench/callgrind.ts";

// Shaped as a real map and listing (Node 20, --no-liftoff --perf-basic-prof): the module's
// functions and its calls out to JavaScript, JavaScript code elsewhere, builtins in node's binary.
const MAP = [
  "2e503f6f0000 400 JS:*readModuleInfo file:///work/main/scripts/host/wasm-binary.ts:1:1177",
  "2e503f7065c0 100 JS:wasm-to-js:il:i-9-turbofan",
  "2e503f707500 5c0 JS:wasm-function[293]-293-turbofan",
  "2e503f707ac0 440 JS:wasm-function[301]-301-turbofan",
  "34d7c82ea1a6 d2 Script:~ file:///work/main/scripts/host/vm.ts:1:1",
  "",
].join("\n");

test("the module's code space runs from after the code below it to the end of its last function", () => {
  const space = moduleCodeSpace(parsePerfMap(MAP));
  assert.equal(space.low, 0x2e503f6f0400);
  assert.equal(space.high, 0x2e503f707f00);
});

test("the space reaches at most 1 MiB below the first function when no code lies below it", () => {
  const space = moduleCodeSpace(parsePerfMap(MAP.split("\n").slice(1).join("\n")));
  assert.equal(space.low, 0x2e503f6065c0);
});

test("JavaScript code inside the module's space is refused, not counted", () => {
  const inside = MAP + "2e503f707a00 20 JS:*copyToPointerSize file:///work/main/scripts/host/vm.ts:1:6890\n";
  assert.throws(() => moduleCodeSpace(parsePerfMap(inside)), /copyToPointerSize .* lies inside the module's code space/);
});

test("a map without module code is an error: nothing to count", () => {
  assert.throws(() => moduleCodeSpace(parsePerfMap(MAP.split("\n").filter((l) => !l.includes("wasm-")).join("\n"))), /no module code/);
});

test("only unnamed code inside the space is summed: jump-table slots, functions; not builtins or named code", () => {
  const listing = [
    "--------------------------------------------------------------------------------",
    "6,540,661,268 (100.0%)  PROGRAM TOTALS",
    "--------------------------------------------------------------------------------",
    "28,518,048 ( 0.44%)  ???:0x00002e503f7036d9 [???]",
    " 1,000,000 ( 0.02%)  ???:0x00002e503f707600 [???]",
    " 9,178,808 ( 0.14%)  ???:0x000000000d0ab300 [???]",
    "   500,000 ( 0.01%)  ???:0x00002e503f6f0100 [???]",
    "902,190,725 (13.79%)  ???:v8::internal::JsonStringifier::SerializeString(v8::internal::Handle<v8::internal::String>) [/usr/bin/node]",
  ].join("\n");
  assert.equal(instructionsInSpace(listing, moduleCodeSpace(parsePerfMap(MAP))), 29_518_048);
});
