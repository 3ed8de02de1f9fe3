// Loading a module the way Envoy's cpp-host does before any VM runs: ABI marker
// (src/bytecode_util.cc getAbiVersion), compilation, strict linking of every
// import by "module.name" against the host functions of that ABI
// (src/v8/v8.cc link), and type checks of the exports cpp-host looks up
// (src/v8/v8.cc getModuleFunctionImpl, src/wasm.cc getFunctions). Problems carry
// cpp-host's own messages. The same checks serve tests that inspect a module's
// shape without running it (inspectModule).
import type { AbiVersion } from "./enums.ts";
import { ABI_MARKERS, hostFunctionsFor, moduleExportsFor } from "./abi/signatures.ts";
import { printValTypes, readModuleInfo, type ImportEntry, type Limits, type ModuleInfo } from "./wasm-binary.ts";

export interface InspectedModule {
  info: ModuleInfo | null;
  abiVersion: AbiVersion | null;
  /** Load problems in the order cpp-host reports them; empty when Envoy would load it. */
  problems: string[];
}

export interface LoadedModule {
  bytes: Uint8Array;
  compiled: WebAssembly.Module;
  abiVersion: AbiVersion;
  info: ModuleInfo;
  /** The memory import to satisfy (V8 creates one from the import's limits), if any. */
  memoryImport: { module: string; name: string; limits: Limits } | null;
  /** Table imports to satisfy, likewise. */
  tableImports: { module: string; name: string; limits: Limits }[];
}

export class ModuleLoadError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "ModuleLoadError";
  }
}

function sameTypes(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

/** src/bytecode_util.cc getAbiVersion: the first ABI marker in export order wins. */
function abiVersionOf(info: ModuleInfo): AbiVersion | null {
  for (const e of info.exports) {
    if (e.kind === "function" && e.name in ABI_MARKERS) return ABI_MARKERS[e.name];
  }
  return null;
}

/** src/v8/v8.cc link: the first import Envoy cannot satisfy stops linking. */
function linkProblem(imports: readonly ImportEntry[], abi: AbiVersion): string | null {
  const host = hostFunctionsFor(abi);
  for (const imp of imports) {
    const key = `${imp.module}.${imp.name}`;
    if (imp.kind === "global") return `Failed to load Wasm module due to a missing import: ${key}`;
    if (imp.kind !== "function") continue;
    const spec = host.get(key);
    if (spec === undefined) return `Failed to load Wasm module due to a missing import: ${key}`;
    if (!sameTypes(imp.type.params, spec.sig.params) || !sameTypes(imp.type.results, spec.sig.results)) {
      return (
        `Failed to load Wasm module due to an import type mismatch: ${key}, ` +
        `want: ${printValTypes(imp.type.params)} -> ${printValTypes(imp.type.results)}, ` +
        `but host exports: ${printValTypes(spec.sig.params)} -> ${printValTypes(spec.sig.results)}`
      );
    }
  }
  return null;
}

/** src/wasm.cc getFunctions + src/v8/v8.cc getModuleFunctionImpl: every bad signature is reported. */
function exportProblems(info: ModuleInfo, abi: AbiVersion): string[] {
  const problems: string[] = [];
  const functions = new Map(info.exports.flatMap((e) => (e.kind === "function" ? [[e.name, e.type] as const] : [])));
  const resolved = new Set<string>();
  for (const spec of moduleExportsFor(abi)) {
    if (spec.when?.present !== undefined && !resolved.has(spec.when.present)) continue;
    if (spec.when?.absent !== undefined && resolved.has(spec.when.absent)) continue;
    const type = functions.get(spec.name);
    if (type === undefined) continue;
    if (sameTypes(type.params, spec.sig.params) && sameTypes(type.results, spec.sig.results)) {
      resolved.add(spec.name);
    } else {
      problems.push(
        `Bad function signature for: ${spec.name}, want: ${printValTypes(spec.sig.params)} -> ` +
          `${printValTypes(spec.sig.results)}, but the module exports: ${printValTypes(type.params)} -> ` +
          `${printValTypes(type.results)}`,
      );
    }
  }
  if (!resolved.has("malloc") && !resolved.has("proxy_on_memory_allocate")) {
    problems.push("Wasm module is missing malloc function.");
  }
  return problems;
}

function hasMemory(info: ModuleInfo): boolean {
  return info.definedMemories.length > 0 || info.imports.some((i) => i.kind === "memory");
}

/** Everything Envoy checks before running the module, without compiling it. */
export function inspectModule(bytes: Uint8Array): InspectedModule {
  let info: ModuleInfo;
  try {
    info = readModuleInfo(bytes);
  } catch {
    return { info: null, abiVersion: null, problems: ["Failed to parse corrupted Wasm module"] };
  }
  const abiVersion = abiVersionOf(info);
  if (abiVersion === null) return { info, abiVersion, problems: ["Missing or unknown Proxy-Wasm ABI version"] };
  const link = linkProblem(info.imports, abiVersion);
  if (link !== null) return { info, abiVersion, problems: [link] };
  const problems = exportProblems(info, abiVersion);
  if (!hasMemory(info)) problems.push("Wasm module exports no memory (Envoy's V8 backend would abort on first access)");
  return { info, abiVersion, problems };
}

/** Compiles and validates; throws ModuleLoadError with cpp-host's messages. */
export async function loadModule(bytes: Uint8Array): Promise<LoadedModule> {
  let info: ModuleInfo;
  try {
    info = readModuleInfo(bytes);
  } catch {
    throw new ModuleLoadError(["Failed to parse corrupted Wasm module"]);
  }
  const abiVersion = abiVersionOf(info);
  if (abiVersion === null) throw new ModuleLoadError(["Missing or unknown Proxy-Wasm ABI version"]);
  let compiled: WebAssembly.Module;
  try {
    compiled = await WebAssembly.compile(bytes.slice());
  } catch (e) {
    throw new ModuleLoadError([`Failed to load Wasm bytecode (${(e as Error).message})`]);
  }
  const { problems } = inspectModule(bytes);
  if (problems.length > 0) throw new ModuleLoadError(problems);
  const memoryImport = info.imports.find((i) => i.kind === "memory");
  return {
    bytes,
    compiled,
    abiVersion,
    info,
    memoryImport: memoryImport?.kind === "memory" ? { module: memoryImport.module, name: memoryImport.name, limits: memoryImport.limits } : null,
    tableImports: info.imports.flatMap((i) => (i.kind === "table" ? [{ module: i.module, name: i.name, limits: i.limits }] : [])),
  };
}
