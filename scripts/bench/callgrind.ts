// Reading what npm run bench:icount (icount.ts) gets from its runs: V8's
// perf map of code addresses and callgrind's per-instruction counts. Owns:
// the parsing, which addresses are the module's, and which function holds
// each. Must not: run anything (icount.ts starts valgrind).

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

/**
 * A Wasm function's or wrapper's entry in the map: Node 20's V8 names them
 * "JS:<name>-<function index>-turbofan" (the name from the module's name
 * section, else wasm-function[<index>]), its calls out to JavaScript
 * "JS:wasm-to-js:<signature>-<index>-turbofan". JavaScript code carries a
 * file: URL, or none and no index.
 */
const MODULE_CODE = /^JS:(?!.* file:).*-\d+-(turbofan|liftoff)$/;

/** A function's name as the map gives it, without V8's prefix and tier suffix. */
export function functionName(entry: string): string {
  return entry.replace(/^JS:~?/, "").replace(/-\d+-(turbofan|liftoff)$/, "");
}

/** How far below the module's first function its code space may start: V8 puts the jump table there, every call's target. */
const JUMP_TABLE_REACH = 1 << 20;

/**
 * The module's code space, [low, high), and its functions in address order:
 * from below its first function to the end of its last, and no JavaScript
 * code inside it. A call to a Wasm function goes to its jump-table slot below
 * the code, so the space reaches below the first function. Addresses stay
 * below 2^53 in user space, so plain numbers hold them.
 *
 * Another Wasm module in the process has its own code space elsewhere (tsx
 * compiles es-module-lexer's when a module it loads imports a CommonJS
 * package): its functions, apart from ours by more than JUMP_TABLE_REACH, are
 * left out by their names. Ours come from AssemblyScript's name section
 * ("assembly/…", "~lib/…"); a build without one cannot be told apart, and is
 * refused then.
 */
export function moduleCodeSpace(ranges: CodeRange[]): { low: number; high: number; functions: CodeRange[] } {
  const isModule = (r: CodeRange) => MODULE_CODE.test(r.name);
  const spaces = codeSpaces(ranges.filter(isModule).sort((a, b) => a.start - b.start));
  if (spaces.length === 0) throw new Error("no module code in the perf map: was the module compiled?");
  const ours = spaces.length === 1 ? spaces : spaces.filter((fs) => fs.some((r) => AS_NAME.test(functionName(r.name))));
  if (ours.length !== 1) {
    throw new Error(`${spaces.length} Wasm modules' code in the perf map, ${ours.length} with AssemblyScript's names: cannot tell which is the module counted`);
  }
  const functions = ours[0];
  const first = functions[0].start;
  const high = functions[functions.length - 1].end;
  let low = first - JUMP_TABLE_REACH;
  for (const r of ranges) {
    if (isModule(r)) continue;
    if (r.end <= first && r.end > low) low = r.end; // other code just below: the space starts after it
    else if (r.start < high && r.end > first) throw new Error(`${r.name} lies inside the module's code space`);
  }
  return { low, high, functions };
}

/** A function name from an AssemblyScript build's name section. */
const AS_NAME = /^(assembly\/|~lib\/)/;

/** Wasm code in address order, split where more than JUMP_TABLE_REACH lies between two functions: one run per module. */
function codeSpaces(functions: CodeRange[]): CodeRange[][] {
  const spaces: CodeRange[][] = [];
  for (const r of functions) {
    const last = spaces.at(-1);
    if (last !== undefined && r.start - last[last.length - 1].end <= JUMP_TABLE_REACH) last.push(r);
    else spaces.push([r]);
  }
  return spaces;
}

/** What the space's instructions outside any function are: the jump table, and V8's stubs between functions. */
export const OUTSIDE_FUNCTIONS = "(jump table, stubs)";

/**
 * The instructions executed at addresses inside `space`, from a callgrind
 * output file written with --dump-instr=yes ("positions: instr line", one Ir
 * event): in all, and by the function (functionName) whose code holds them.
 * Each cost line is an instruction address and its count; an address is
 * absolute (0x…), relative to the previous line's (+n, -n) or the same (*).
 * The cost line after a calls= line is the call's inclusive cost, charged to
 * its callee's own lines as well, so it is skipped (callgrind's format
 * reference, "Cost lines" and "calls=").
 */
export function instructionsInSpace(callgrindOut: string, space: { low: number; high: number; functions: CodeRange[] }): { total: number; byFunction: Map<string, number> } {
  const { low, high, functions } = space;
  const names = functions.map((f) => functionName(f.name));
  const byIndex = new Float64Array(functions.length);
  let outside = 0;
  let previous = 0;
  let callCost = false;
  let header = true;
  for (const line of callgrindOut.split("\n")) {
    if (header) {
      if (line.startsWith("positions:") && line.trim() !== "positions: instr line") throw new Error(`callgrind output has "${line}": run it with --dump-instr=yes`);
      if (line.startsWith("events:") && line.trim() !== "events: Ir") throw new Error(`callgrind output has "${line}": only Ir is read`);
      if (line.startsWith("fn=")) header = false;
      else continue;
    }
    const c = line.charCodeAt(0);
    // 0x…, +n, -n, *: a cost line. Anything else (fn=, ob=, calls= …) is a specification line.
    if (!(c === 0x30 || c === 0x2B || c === 0x2D || c === 0x2A)) {
      if (line.startsWith("calls=")) callCost = true;
      continue;
    }
    const space1 = line.indexOf(" ");
    const position = line.slice(0, space1);
    const address = c === 0x30 ? parseInt(position, 16) : c === 0x2B ? previous + parseInt(position.slice(1), 16) : c === 0x2D ? previous - parseInt(position.slice(1), 16) : previous;
    previous = address;
    if (callCost) {
      callCost = false;
      continue;
    }
    if (address < low || address >= high) continue;
    const count = Number(line.slice(line.lastIndexOf(" ") + 1));
    // The last function starting at or below the address.
    let lo = 0;
    let hi = functions.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (functions[mid].start <= address) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (at >= 0 && address < functions[at].end) byIndex[at] += count;
    else outside += count;
  }
  const byFunction = new Map<string, number>();
  let total = outside;
  if (outside > 0) byFunction.set(OUTSIDE_FUNCTIONS, outside);
  byIndex.forEach((n, i) => {
    if (n === 0) return;
    total += n;
    byFunction.set(names[i], (byFunction.get(names[i]) ?? 0) + n);
  });
  return { total, byFunction };
}
