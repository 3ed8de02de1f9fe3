// npm run bench:icount's reading of V8's perf map and callgrind's output
// (scripts/bench/callgrind.ts): which addresses count as the module's, and
// which function each belongs to.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OUTSIDE_FUNCTIONS, functionName, instructionsInSpace, moduleCodeSpace, parsePerfMap } from "../../scripts/bench/callgrind.ts";

// Shaped as a real map and listing (Node 20, --no-liftoff --perf-basic-prof): the module's
// functions and its calls out to JavaScript, JavaScript code elsewhere, builtins in node's binary.
const MAP = [
  "2e503f6f0000 400 JS:*readModuleInfo file:///work/main/scripts/host/wasm-binary.ts:1:1177",
  "2e503f7065c0 100 JS:wasm-to-js:il:i-9-turbofan",
  "2e503f707500 5c0 JS:wasm-function[293]-293-turbofan",
  "2e503f707ac0 440 JS:assembly/router/json/JsonReader#scanStringBody-301-turbofan",
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

// Another module's code space, as tsx's es-module-lexer leaves in the map: far from ours, no names.
const LEXER = ["21588f3f4c40 c0 JS:wasm-function[0]-0-turbofan", "21588f3f4d00 e40 JS:wasm-function[20]-20-turbofan", ""].join("\n");

test("another Wasm module's code elsewhere is left out: ours is the space with AssemblyScript's names", () => {
  const space = moduleCodeSpace(parsePerfMap(LEXER + MAP));
  assert.equal(space.low, 0x2e503f6f0400);
  assert.equal(space.high, 0x2e503f707f00);
  assert.deepEqual(space.functions.map((f) => f.start), [0x2e503f7065c0, 0x2e503f707500, 0x2e503f707ac0]);
});

test("two modules without names cannot be told apart: refused", () => {
  const unnamed = MAP.replace("assembly/router/json/JsonReader#scanStringBody", "wasm-function[301]");
  assert.throws(() => moduleCodeSpace(parsePerfMap(LEXER + unnamed)), /2 Wasm modules' code in the perf map, 0 with AssemblyScript's names/);
});

test("a map without module code is an error: nothing to count", () => {
  assert.throws(() => moduleCodeSpace(parsePerfMap(MAP.split("\n").filter((l) => !l.includes("-turbofan")).join("\n"))), /no module code/);
});

test("a function's name drops V8's prefix and tier: the module's name, or wasm-function[n] without a name section", () => {
  assert.equal(functionName("JS:assembly/router/json/JsonReader#scanStringBody-301-turbofan"), "assembly/router/json/JsonReader#scanStringBody");
  assert.equal(functionName("JS:~lib/rt/tlsf/insertBlock-97-turbofan"), "lib/rt/tlsf/insertBlock");
  assert.equal(functionName("JS:wasm-function[293]-293-turbofan"), "wasm-function[293]");
});

// Shaped as callgrind --dump-instr=yes writes it: absolute, relative and repeated
// addresses, and a call whose inclusive cost line must not be counted again.
const OUT = [
  "# callgrind format",
  "version: 1",
  "positions: instr line",
  "events: Ir",
  "summary: 9999",
  "",
  "ob=(1) /usr/bin/node",
  "fl=(1) ???",
  "fn=(1) 0x00002e503f7036d9",
  "0x2e503f7036d9 0 2", //     jump table: 2
  "fn=(2) 0x00002e503f707500",
  "0x2e503f707500 0 10", //    wasm-function[293]: 10
  "+4 0 5", //                 0x…504: 5
  "* 0 1", //                  0x…504 again: 1
  "cfn=(3) 0x00002e503f707ac0",
  "calls=3 0x2e503f707ac0 0",
  "+2 0 700", //               0x…506, the call's inclusive cost: not counted
  "-6 0 3", //                 0x…500: 3
  "fn=(3) 0x00002e503f707ac0",
  "0x2e503f707ac0 0 600", //   scanStringBody: 600
  "+1000 0 7", //              past the space's end: not the module's
  "fn=(4) builtin",
  "0xd0ab300 0 50", //         node's own code
  "",
].join("\n");

test("instructions inside the space are summed and charged to the function holding them; a call's inclusive cost is not", () => {
  const { total, byFunction } = instructionsInSpace(OUT, moduleCodeSpace(parsePerfMap(MAP)));
  assert.equal(total, 2 + 10 + 5 + 1 + 3 + 600);
  assert.deepEqual(Object.fromEntries(byFunction), {
    [OUTSIDE_FUNCTIONS]: 2,
    "wasm-function[293]": 19,
    "assembly/router/json/JsonReader#scanStringBody": 600,
  });
});

test("an output without per-instruction positions is refused, not misread", () => {
  assert.throws(() => instructionsInSpace(OUT.replace("positions: instr line", "positions: line"), moduleCodeSpace(parsePerfMap(MAP))), /--dump-instr=yes/);
});
