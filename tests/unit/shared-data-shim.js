// proxy-wasm shared data for as-pect specs of modules that keep their state
// there (journal.spec.ts: the journal ring), so that they can be unit tested
// without the host emulator. The semantics are the emulator's
// (scripts/host/shared-data.ts, after cpp-host src/shared_data.cc): a missing
// key is NotFound; cas 0 writes unconditionally, a nonzero cas that differs
// from the stored one is CasMismatch; every write takes the next cas (from 1,
// skipping 0). Values are copied into memory from the module's exported
// `malloc` (a spec that reads shared data exports it: `export { malloc } from
// "../../assembly/abi/memory"`), as cpp-host copyToPointerSize does.
// One store per spec file (per instantiation): specs keep tests apart by key prefix.
const OK = 0;
const NOT_FOUND = 1;
const INVALID_MEMORY_ACCESS = 6;
const CAS_MISMATCH = 8;

/** The two imports, reading the module's exports through `exportsOf` once it is instantiated. */
export function sharedDataImports(exportsOf) {
  const store = new Map();
  let nextCas = 1;
  const memory = () => new Uint8Array(exportsOf().memory.buffer);
  const view = () => new DataView(exportsOf().memory.buffer);
  const key = (ptr, len) => Buffer.from(memory().subarray(ptr, ptr + len)).toString("latin1");
  return {
    proxy_get_shared_data(keyPtr, keyLen, valuePtrPtr, valueSizePtr, casPtr) {
      const entry = store.get(key(keyPtr, keyLen));
      if (entry === undefined) return NOT_FOUND;
      const exports = exportsOf();
      if (typeof exports.malloc !== "function") return INVALID_MEMORY_ACCESS;
      let p = 0;
      if (entry.value.length > 0) {
        p = exports.malloc(entry.value.length) >>> 0;
        memory().set(entry.value, p);
      }
      const v = view();
      v.setUint32(valuePtrPtr, p, true);
      v.setUint32(valueSizePtr, entry.value.length, true);
      v.setUint32(casPtr, entry.cas, true);
      return OK;
    },
    proxy_set_shared_data(keyPtr, keyLen, valuePtr, valueLen, cas) {
      const k = key(keyPtr, keyLen);
      const existing = store.get(k);
      if (existing !== undefined && cas !== 0 && cas !== existing.cas) return CAS_MISMATCH;
      store.set(k, { value: memory().slice(valuePtr, valuePtr + valueLen), cas: nextCas });
      nextCas = (nextCas + 1) >>> 0 || 1;
      return OK;
    },
  };
}
