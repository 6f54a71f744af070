/**
 * Small statistics and printing helpers for the benchmarks: percentiles over samples and one
 * aligned table line per figure, so every run prints in the same shape.
 */

/** The p-th percentile (0..100) of samples, nearest-rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Summary of latency samples in milliseconds. */
export interface LatencySummary {
  p50: number;
  p99: number;
  mean: number;
  n: number;
}

/** Summarises samples (ms). */
export function summarise(samples: readonly number[]): LatencySummary {
  const mean = samples.reduce((sum, value) => sum + value, 0) / Math.max(1, samples.length);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), mean, n: samples.length };
}

/** Formats milliseconds with a unit that keeps three significant digits. */
export function ms(value: number): string {
  if (value < 1) return `${(value * 1000).toFixed(1)} µs`;
  return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
}

/** Prints one figure: name, value, and an optional target verdict. */
export function line(name: string, value: string, note = ''): void {
  process.stdout.write(`  ${name.padEnd(58)} ${value.padEnd(28)} ${note}\n`);
}

/** Prints a section heading. */
export function heading(title: string): void {
  process.stdout.write(`\n${title}\n`);
}

/** "meets target" / "misses target" for a figure against a bound. */
export function verdict(value: number, bound: number): string {
  return value <= bound ? `target <= ${bound}: met` : `target <= ${bound}: MISSED`;
}
