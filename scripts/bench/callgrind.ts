// Reading what npm run bench:icount (icount.ts) gets from its runs: V8's
// perf map of code addresses and callgrind's per-address instruction counts.
// Owns: the parsing, and which addresses are the module's. Must not: run
// anything (icount.ts starts valgrind and callgrind_annotate).

/** A code range from V8's perf map (/tmp/perf-<pid>.map, written with --perf-basic-prof): [start, end). */
export interface CodeRange { start: number; end: number; name: string }

/** The map's lines, "start size name" with start and size in hex. */
export function parsePerfMap(text: string): CodeRange[] {
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => {
    const [start, size, ...name] = line.trim().split(" ");
    const from = parseInt(start, 16);
    return { start: from, end: from + parseInt(size, 16), name: name.join(" ") };
  });
}

/** How far below the module's first function its code space may start: V8 puts the jump table there, every call's target. */
const JUMP_TABLE_REACH = 1 << 20;

/**
 * The module's code space, [low, high): from below its first function to the
 * end of its last, and no JavaScript code inside it. Callgrind charges a
 * function's instructions to the address it was called at, which for a Wasm
 * function is its jump-table slot below the code. Addresses stay below 2^53
 * in user space, so plain numbers hold them.
 */
export function moduleCodeSpace(ranges: CodeRange[]): { low: number; high: number } {
  const isModule = (r: CodeRange) => /wasm-function\[|wasm-to-js:/.test(r.name);
  const own = ranges.filter(isModule);
  if (own.length === 0) throw new Error("no module code in the perf map: was the module compiled?");
  const first = Math.min(...own.map((r) => r.start));
  const high = Math.max(...own.map((r) => r.end));
  let low = first - JUMP_TABLE_REACH;
  for (const r of ranges) {
    if (isModule(r)) continue;
    if (r.end <= first && r.end > low) low = r.end; // other code just below: the space starts after it
    else if (r.start < high && r.end > first) throw new Error(`${r.name} lies inside the module's code space`);
  }
  return { low, high };
}

/**
 * Instructions callgrind_annotate's listing charges to unnamed code ("???")
 * at addresses inside `space`. Lines look like
 * "  28,518,048 ( 0.78%)  ???:0x00002e503f7036d9 [???]".
 */
export function instructionsInSpace(listing: string, space: { low: number; high: number }): number {
  let total = 0;
  for (const line of listing.split("\n")) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+\?\?\?:0x([0-9a-f]+)/.exec(line);
    if (m === null) continue;
    const address = parseInt(m[2], 16);
    if (address >= space.low && address < space.high) total += Number(m[1].replaceAll(",", ""));
  }
  return total;
}
