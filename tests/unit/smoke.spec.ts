describe("as-pect", () => {
  it("runs on AssemblyScript 0.28", () => {
    expect<i32>(1 + 1).toBe(2);
  });
});
