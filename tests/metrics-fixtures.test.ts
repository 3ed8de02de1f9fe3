// The as-pect tests parse tests/unit/fixtures/metrics_pages.ts, generated from
// tests/fixtures/metrics/*.prom (as-pect cannot read files). This keeps the
// two from drifting: edit a .prom file, then run
// node scripts/fixtures/embed-metrics-pages.mjs.
import { test } from "node:test";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

test("tests/unit/fixtures/metrics_pages.ts is generated from the current .prom fixtures", () => {
  const script = fileURLToPath(new URL("../scripts/fixtures/embed-metrics-pages.mjs", import.meta.url));
  execFileSync(process.execPath, [script, "--check"], { stdio: "pipe" });
});
