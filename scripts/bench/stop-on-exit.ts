// Stops what a benchmark started (Envoy, the upstream process) however the
// benchmark ends: normally, by an error, or by Ctrl-C / SIGTERM. A child
// process is not ended with its parent by default, so without this an
// interrupted run would leave Envoy listening. Owns: the list of stop functions.
export class StopOnExit {
  private readonly stops = new Set<() => Promise<void>>();

  constructor() {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        process.stderr.write(`${signal}: stopping what the benchmark started\n`);
        void this.stopAll().finally(() => process.exit(130));
      });
    }
  }

  /** Registers `stop`; the returned function stops it now and forgets it. */
  add(stop: () => Promise<void>): () => Promise<void> {
    this.stops.add(stop);
    return async () => {
      this.stops.delete(stop);
      await stop();
    };
  }

  async stopAll(): Promise<void> {
    const stops = [...this.stops].reverse();
    this.stops.clear();
    for (const stop of stops) await stop().catch((e: unknown) => process.stderr.write(`stopping: ${(e as Error).message}\n`));
  }
}
