// build/fuzz.wasm (assembly/fuzz.ts) driven from Node: each input is written so
// that it ends exactly at the end of linear memory, in pages this driver grew
// itself and the module's allocator never manages, so a read past the input is
// an out-of-bounds trap instead of a silent read of whatever lies beyond. It
// also keeps the books on linear memory (which pages are the heap's and which
// are the driver's) to report the heap in use, and turns a trap into a result
// instead of an exception, re-instantiating the module afterwards.
//
// It does not generate inputs or judge results (fuzz.ts does).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";

export const FUZZ_WASM = new URL("../../build/fuzz.wasm", import.meta.url).pathname;
const ROOT_DIR = new URL("../../", import.meta.url).pathname;
const PAGE = 65536;
/** Bytes before each input that belong to the driver (used to detect reads before the input). */
export const GUARD_BYTES = 64;
// TLSF (~lib/rt/tlsf.ts, wasm32): the root sits at __heap_base rounded to 16 and
// is ROOT_SIZE bytes; a memory segment loses its alignment and the tail's header.
const ROOT_SIZE = 96 + 23 * 16 * 4 + 4;
const BLOCK_OVERHEAD = 4;

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourcesUnder(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : []);
}

/**
 * build/fuzz.wasm, rebuilt with `asc assembly/fuzz.ts --target fuzz` when
 * missing or older than assembly/. Test files run in parallel may all find it
 * stale: each builds to its own file and renames it into place, so no one
 * reads a half-written module.
 */
export function fuzzWasmPath(): string {
  const newest = Math.max(...sourcesUnder(join(ROOT_DIR, "assembly")).map((f) => statSync(f).mtimeMs), statSync(join(ROOT_DIR, "asconfig.json")).mtimeMs);
  if (!existsSync(FUZZ_WASM) || statSync(FUZZ_WASM).mtimeMs < newest) {
    const staging = `${FUZZ_WASM}.${process.pid}.tmp`;
    execFileSync("npx", ["asc", "assembly/fuzz.ts", "--target", "fuzz", "--outFile", staging], { cwd: ROOT_DIR, stdio: ["ignore", "ignore", "inherit"] });
    renameSync(staging, FUZZ_WASM);
  }
  return FUZZ_WASM;
}

interface Exports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  [name: string]: any;
}

/** A trap (with the abort message the module logged first, if any). */
export class Trap {
  constructor(readonly message: string, readonly logged: string[]) {}
  toString(): string {
    return this.logged.length > 0 ? `${this.message} (${this.logged.join("; ")})` : this.message;
  }
}

export interface HeapFigures {
  /** Linear memory in bytes, the driver's pages included. */
  memoryBytes: number;
  /** Bytes the allocator manages (memory minus the driver's pages and static data). */
  heapBytes: number;
  /** Of those, bytes in use after a full collection. */
  usedBytes: number;
}

export class FuzzModule {
  private e!: Exports;
  private view!: Uint8Array;
  /** Memory size the driver last saw: growth beyond it was the allocator's. */
  private knownBytes = 0;
  /** The driver's region: [regionStart, knownBytes) when it is at the end of memory. */
  private regionStart = 0;
  private regionAtEnd = false;
  /** Heap segments the allocator manages: [start, end) pairs. */
  private segments: Array<[number, number]> = [];
  private logged: string[] = [];
  /** Instances created (1 + traps recovered from). */
  instances = 0;

  private constructor(private readonly module: WebAssembly.Module) {
    this.instantiate();
  }

  static load(path = fuzzWasmPath()): FuzzModule {
    return new FuzzModule(new WebAssembly.Module(readFileSync(path)));
  }

  private instantiate(): void {
    const logged: string[] = [];
    this.logged = logged;
    const instance = new WebAssembly.Instance(this.module, {
      env: {
        proxy_log: (_level: number, ptr: number, size: number) => {
          logged.push(Buffer.from(new Uint8Array(this.e.memory.buffer, ptr, size)).toString("utf8"));
          return 0;
        },
      },
    });
    this.e = instance.exports as unknown as Exports;
    this.e._initialize();
    this.instances++;
    this.knownBytes = this.e.memory.buffer.byteLength;
    this.regionAtEnd = false;
    const root = (this.e.fuzz_heap_base() + 15) & ~15;
    this.segments = [[alignSegmentStart(root + ROOT_SIZE), this.knownBytes & ~15]];
    this.view = new Uint8Array(this.e.memory.buffer);
  }

  get exports(): Exports {
    return this.e;
  }

  /** Notices memory the allocator grew since the last look. */
  private account(): void {
    const now = this.e.memory.buffer.byteLength;
    if (now !== this.knownBytes) {
      // Growth right after the allocator's own last segment merges with it (addMemory).
      const last = this.segments[this.segments.length - 1];
      if (!this.regionAtEnd && last[1] === this.knownBytes) last[1] = now & ~15;
      else this.segments.push([alignSegmentStart(this.knownBytes), now & ~15]);
      this.knownBytes = now;
      this.regionAtEnd = false;
      this.view = new Uint8Array(this.e.memory.buffer);
    }
  }

  /** Writes `bytes` so they end at the end of memory; returns their address. */
  place(bytes: Uint8Array): number {
    this.account();
    const need = bytes.length + GUARD_BYTES;
    if (!this.regionAtEnd || this.knownBytes - this.regionStart < need) {
      const pages = Math.ceil(Math.max(need, 4 * PAGE) / PAGE);
      const before = this.e.memory.grow(pages);
      this.regionStart = before * PAGE;
      this.knownBytes = this.e.memory.buffer.byteLength;
      this.regionAtEnd = true;
      this.view = new Uint8Array(this.e.memory.buffer);
    }
    const ptr = this.knownBytes - bytes.length;
    this.view.set(bytes, ptr);
    return ptr;
  }

  /** Fills the guard bytes just before an input placed at `ptr`. */
  fillGuard(ptr: number, byte: number): void {
    this.view.fill(byte, ptr - GUARD_BYTES, ptr);
  }

  /**
   * Runs `fn` against the module; a trap re-instantiates it and comes back as
   * a Trap. Anything else thrown is a driver bug and propagates.
   */
  call<T>(fn: (e: Exports) => T): T | Trap {
    this.logged.length = 0;
    try {
      return fn(this.e);
    } catch (error) {
      // A stack overflow inside the module is a RangeError with wasm frames.
      const wasmRangeError = error instanceof RangeError && /wasm:\/\//.test(error.stack ?? "");
      if (!(error instanceof WebAssembly.RuntimeError || wasmRangeError)) throw error;
      const trap = new Trap(String((error as Error).message), [...this.logged]);
      this.instantiate();
      return trap;
    }
  }

  /** Bytes [ptr, ptr+len) of linear memory, copied. */
  read(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.e.memory.buffer, ptr, len).slice();
  }

  /** Whether bytes [ptr, ptr+len) of linear memory equal `expected` (no copy). */
  equals(ptr: number, len: number, expected: Uint8Array): boolean {
    return len === expected.length && Buffer.compare(Buffer.from(this.e.memory.buffer, ptr, len), expected) === 0;
  }

  /** The string a fuzz_config_* getter just handed out. */
  handedOut(ptr: number): string {
    return Buffer.from(new Uint8Array(this.e.memory.buffer, ptr, this.e.fuzz_string_len())).toString("utf8");
  }

  /** Collects garbage and measures the heap (release the exports' own references first). */
  heap(): HeapFigures {
    this.e.fuzz_release();
    const free = this.e.fuzz_heap_free() >>> 0;
    this.account();
    const heapBytes = this.segments.reduce((sum, [s, e]) => sum + (e - s), 0);
    // Each segment ends in a zero-size tail block whose header is never free.
    return { memoryBytes: this.knownBytes, heapBytes, usedBytes: heapBytes - free - BLOCK_OVERHEAD * this.segments.length };
  }

  /** Heap segments so far (a leak-free run adds none after warm-up). */
  get heapSegments(): number {
    return this.segments.length;
  }
}

/** Where TLSF puts a segment's first block header (addMemory's rounding). */
function alignSegmentStart(start: number): number {
  return ((start + BLOCK_OVERHEAD + 15) & ~15) - BLOCK_OVERHEAD;
}
