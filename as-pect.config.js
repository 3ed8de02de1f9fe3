// as-pect: AssemblyScript unit tests for the pure modules under assembly/
// (parsing, hashing, the index, scoring). Files that import assembly/abi/ are
// exercised through the host emulator instead (tests/*.test.ts), except what
// needs only shared data (the journal), which tests/unit/shared-data-shim.js
// provides.
import { sharedDataImports } from "./tests/unit/shared-data-shim.js";

export default {
  entries: ["tests/unit/**/*.spec.ts"],
  include: ["tests/unit/**/*.include.ts"],
  disclude: [/node_modules/],
  async instantiate(memory, createImports, instantiate, binary) {
    let raw = null;
    const shared = sharedDataImports(() => raw);
    const module = await instantiate(binary, createImports({ env: { memory, ...shared } }));
    raw = module.instance.exports;
    return module;
  },
  outputBinary: false,
};
