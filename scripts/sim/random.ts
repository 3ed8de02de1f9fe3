// Seeded pseudo-random draws for the simulator, the workloads and the
// baseline policies. Owns: the draws the evaluation needs (uniform, integer,
// exponential, Zipf, shuffle) and named sub-streams, on top of the host
// emulator's seeded generator (scripts/host/random.ts), so the whole Node side
// shares one source of randomness. Must not: read Math.random, the clock or any
// other ambient source; the same seed draws the same numbers everywhere.

import { SeededRandom } from "../host/random.ts";

/** FNV-1a over a label, so streams can be derived by name ("arrivals", "policy:random"). */
export function labelSeed(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Rng {
  private readonly src: SeededRandom;
  private readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.src = new SeededRandom(this.seed);
  }

  /** An independent stream for a named purpose; does not advance this one. */
  fork(label: string): Rng {
    return new Rng((this.seed ^ Math.imul(labelSeed(label), 0x9e3779b1)) >>> 0);
  }

  u32(): number {
    return this.src.nextU32();
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Exponential with the given mean (inter-arrival times of a Poisson process). */
  exp(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }

  /** Zipf-like rank in [0, n): P(k) ∝ 1/(k+1)^s, by inversion over the cumulative weights. */
  zipf(n: number, s: number): number {
    let total = 0;
    for (let k = 0; k < n; k++) total += 1 / Math.pow(k + 1, s);
    let x = this.float() * total;
    for (let k = 0; k < n; k++) {
      x -= 1 / Math.pow(k + 1, s);
      if (x < 0) return k;
    }
    return n - 1;
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}
