// A minimal reader for the WebAssembly binary sections the loader needs and the
// JS API does not expose: function types of imports and exports, memory limits,
// and the order of exports (cpp-host src/bytecode_util.cc getAbiVersion takes
// the first ABI marker in the export section). It validates nothing beyond what
// it reads; WebAssembly.compile() is the real validator.

export type WasmValType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";

export interface FuncType {
  params: WasmValType[];
  results: WasmValType[];
}

export interface Limits {
  min: number;
  max?: number;
}

export type ImportEntry =
  | { module: string; name: string; kind: "function"; type: FuncType }
  | { module: string; name: string; kind: "table"; limits: Limits }
  | { module: string; name: string; kind: "memory"; limits: Limits }
  | { module: string; name: string; kind: "global" };

export type ExportEntry =
  | { name: string; kind: "function"; type: FuncType }
  | { name: string; kind: "table" | "memory" | "global"; index: number };

export interface ModuleInfo {
  imports: ImportEntry[];
  /** In export-section order. */
  exports: ExportEntry[];
  /** Memories defined by the module itself (not imported). */
  definedMemories: Limits[];
}

const VAL_TYPES: Record<number, WasmValType> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

export class WasmBinaryError extends Error {}

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly end = bytes.length) {}

  byte(): number {
    if (this.pos >= this.end) throw new WasmBinaryError("unexpected end of section");
    return this.bytes[this.pos++];
  }

  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new WasmBinaryError("varint too long");
    }
  }

  name(): string {
    const len = this.u32();
    if (this.pos + len > this.end) throw new WasmBinaryError("name overruns section");
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  valType(): WasmValType {
    const b = this.byte();
    const t = VAL_TYPES[b];
    if (t === undefined) throw new WasmBinaryError(`unsupported value type 0x${b.toString(16)}`);
    return t;
  }

  limits(): Limits {
    const flags = this.byte();
    const min = this.u32();
    return flags & 1 ? { min, max: this.u32() } : { min };
  }
}

export function readModuleInfo(bytes: Uint8Array): ModuleInfo {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmBinaryError("not a WebAssembly module (bad magic)");
  }
  const types: FuncType[] = [];
  const imports: ImportEntry[] = [];
  const importedFuncTypes: FuncType[] = [];
  const definedFuncTypes: FuncType[] = [];
  const rawExports: { name: string; kind: number; index: number }[] = [];
  const definedMemories: Limits[] = [];

  const top = new Reader(bytes);
  top.pos = 8;
  while (top.pos < bytes.length) {
    const id = top.byte();
    const size = top.u32();
    const start = top.pos;
    if (start + size > bytes.length) throw new WasmBinaryError("section overruns module");
    const r = new Reader(bytes, start + size);
    r.pos = start;
    switch (id) {
      case 1: {
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const form = r.byte();
          if (form !== 0x60) throw new WasmBinaryError(`unsupported type form 0x${form.toString(16)}`);
          const params = Array.from({ length: r.u32() }, () => r.valType());
          const results = Array.from({ length: r.u32() }, () => r.valType());
          types.push({ params, results });
        }
        break;
      }
      case 2: {
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const module = r.name();
          const name = r.name();
          const kind = r.byte();
          if (kind === 0) {
            const type = types[r.u32()];
            if (type === undefined) throw new WasmBinaryError("import type index out of range");
            importedFuncTypes.push(type);
            imports.push({ module, name, kind: "function", type });
          } else if (kind === 1) {
            r.byte();
            imports.push({ module, name, kind: "table", limits: r.limits() });
          } else if (kind === 2) {
            imports.push({ module, name, kind: "memory", limits: r.limits() });
          } else if (kind === 3) {
            r.valType();
            r.byte();
            imports.push({ module, name, kind: "global" });
          } else {
            throw new WasmBinaryError(`unsupported import kind ${kind}`);
          }
        }
        break;
      }
      case 3: {
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const type = types[r.u32()];
          if (type === undefined) throw new WasmBinaryError("function type index out of range");
          definedFuncTypes.push(type);
        }
        break;
      }
      case 5: {
        const n = r.u32();
        for (let i = 0; i < n; i++) definedMemories.push(r.limits());
        break;
      }
      case 7: {
        const n = r.u32();
        for (let i = 0; i < n; i++) rawExports.push({ name: r.name(), kind: r.byte(), index: r.u32() });
        break;
      }
      default:
        break;
    }
    top.pos = start + size;
  }

  const funcTypes = [...importedFuncTypes, ...definedFuncTypes];
  const kinds = ["function", "table", "memory", "global"] as const;
  const exports: ExportEntry[] = rawExports.map(({ name, kind, index }) => {
    const k = kinds[kind];
    if (k === undefined) throw new WasmBinaryError(`unsupported export kind ${kind}`);
    if (k === "function") {
      const type = funcTypes[index];
      if (type === undefined) throw new WasmBinaryError(`export ${name}: function index out of range`);
      return { name, kind: "function", type };
    }
    return { name, kind: k, index };
  });
  return { imports, exports, definedMemories };
}

/** cpp-host src/v8/v8.cc printValTypes: "i32 i64", or "void" when empty. */
export function printValTypes(types: readonly string[]): string {
  return types.length === 0 ? "void" : types.join(" ");
}
