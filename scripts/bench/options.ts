// Command-line numbers the benchmark scripts share. Owns: their checks.
// Must not: parse the command line itself (each script's parseArgs does).

/** `text` as a positive whole number, or an error naming the option. */
export function positiveInteger(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: "${text}" is not a positive whole number`);
  return n;
}
