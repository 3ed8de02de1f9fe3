// A progress bar on stderr for long runs. Owns: rendering and throttling. Must
// not: write to stdout (reports and piped output stay clean) or slow the run:
// it redraws at most every 100 ms on a terminal, and prints a line per 10%
// otherwise (CI logs).

import { performance } from "node:perf_hooks";

export class Progress {
  private last = -Infinity;
  private lastDecile = -1;
  private readonly start = performance.now();
  private readonly tty: boolean;

  constructor(private readonly label: string, private readonly stream: NodeJS.WriteStream = process.stderr, enabled = true) {
    this.tty = enabled && Boolean(stream.isTTY);
    if (!enabled) this.lastDecile = Infinity;
  }

  update(done: number, total: number): void {
    const f = total > 0 ? done / total : 1;
    if (this.tty) {
      const now = performance.now();
      if (now - this.last < 100 && done < total) return;
      this.last = now;
      const width = 30;
      const fill = Math.round(f * width);
      const elapsed = (now - this.start) / 1000;
      const eta = f > 0 && f < 1 ? ` eta ${((elapsed * (1 - f)) / f).toFixed(0)}s` : "";
      this.stream.write(`\r${this.label} [${"#".repeat(fill)}${".".repeat(width - fill)}] ${(f * 100).toFixed(0).padStart(3)}%${eta}   `);
    } else {
      const decile = Math.floor(f * 10);
      if (decile > this.lastDecile && this.lastDecile !== Infinity) {
        this.lastDecile = decile;
        this.stream.write(`${this.label} ${decile * 10}%\n`);
      }
    }
  }

  finish(note = ""): void {
    const s = ((performance.now() - this.start) / 1000).toFixed(1);
    if (this.tty) this.stream.write(`\r${this.label} done in ${s}s ${note}${" ".repeat(40)}\n`);
    else if (this.lastDecile !== Infinity) this.stream.write(`${this.label} done in ${s}s ${note}\n`);
  }
}
