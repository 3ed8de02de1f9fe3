// What the real-Envoy tests that change Envoy under load share: a bounded loop
// of chat requests on loopback (each on its own connection, a fresh prompt each
// time, so the filter places every one by rendezvous over all the endpoints it
// knows), reading counters from the admin API, and waiting for a condition
// with a deadline instead of sleeping for a guessed time (the machine is
// shared; only deadlines, never durations, are asserted). Owns: those helpers.
import { http, text, type Reply } from "./scenarios.ts";

export interface Outcome {
  /** 0 when the request failed without a response (reset, refused, timeout). */
  status: number;
  servedBy: string;
  error: string;
}

export interface Traffic {
  outcomes: Outcome[];
  /** Stops after the request in flight; resolves when the loop has ended. */
  stop(): Promise<Outcome[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function chatBody(model: string, seed: number): string {
  return JSON.stringify({
    model,
    messages: [
      { role: "system", content: `Live ${seed}. ${text(seed, 400)}` },
      { role: "user", content: `question ${seed}` },
    ],
    max_tokens: 2,
  });
}

export function postChat(url: string, model: string, seed: number, headers: Record<string, string> = {}): Promise<Reply> {
  return http(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: chatBody(model, seed) });
}

/**
 * Sends chat requests one after another until stopped or `max` have been sent,
 * pausing `gapMs` between them so the loop does not take a shared core.
 */
export function startTraffic(url: string, options: { model: string; seedBase: number; max: number; gapMs?: number }): Traffic {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; i < options.max && !stopped; i++) {
      try {
        const r = await postChat(url, options.model, options.seedBase + i);
        outcomes.push({ status: r.status, servedBy: r.servedBy, error: r.status === 200 ? "" : r.body.slice(0, 200) });
      } catch (e) {
        outcomes.push({ status: 0, servedBy: "", error: (e as Error).message });
      }
      await sleep(options.gapMs ?? 15);
    }
  })();
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await loop;
      return outcomes;
    },
  };
}

/** Polls `check` every 100 ms until it returns true; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Every counter and gauge from /stats as name → value (histograms left out). */
export async function stats(adminUrl: string): Promise<Map<string, number>> {
  const r = await http(`${adminUrl}/stats`);
  const out = new Map<string, number>();
  for (const line of r.body.split("\n")) {
    const m = /^(\S+): (\d+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** One stat's value, 0 when Envoy does not list it (yet). */
export async function stat(adminUrl: string, name: string): Promise<number> {
  return (await stats(adminUrl)).get(name) ?? 0;
}
