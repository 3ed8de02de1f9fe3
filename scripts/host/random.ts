// A small seeded PRNG (mulberry32) so that every source of randomness in the
// emulated Envoy (WASI random_get, reload backoff jitter) repeats run to run.
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniformly distributed u32. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  fill(out: Uint8Array): void {
    for (let i = 0; i < out.length; i += 4) {
      const r = this.nextU32();
      for (let j = 0; j < 4 && i + j < out.length; j++) out[i + j] = (r >>> (8 * j)) & 0xff;
    }
  }
}
