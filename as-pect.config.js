// as-pect: AssemblyScript unit tests for the pure modules under assembly/
// (parsing, hashing, the index, scoring). Files that import assembly/abi/ are
// exercised through the host emulator instead (tests/*.test.ts).
export default {
  entries: ["tests/unit/**/*.spec.ts"],
  include: ["tests/unit/**/*.include.ts"],
  disclude: [/node_modules/],
  async instantiate(memory, createImports, instantiate, binary) {
    return instantiate(binary, createImports({ env: { memory } }));
  },
  outputBinary: false,
};
