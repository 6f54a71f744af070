/**
 * Reconnect delays: exponential growth with jitter. After a host restart every client drops at the
 * same instant; without jitter they would all come back in the same instant too, and again at
 * every retry. "Equal jitter" draws each delay from the upper half of its exponential window, so
 * clients spread over the window while every delay still grows (a client never retries almost
 * immediately, as full jitter's draws near zero would).
 */

/** Reconnect timing. All durations in milliseconds. */
export interface BackoffOptions {
  /** Upper end of the first delay's window (default 500). */
  delayMsInitial?: number;
  /** Largest window (default 30,000). */
  delayMsMax?: number;
  /** Growth of the window per attempt (default 2). */
  factor?: number;
  /** Uniform random numbers in [0, 1); tests pass a fixed sequence. */
  random?: () => number;
}

/** The defaults of {@link BackoffOptions}. */
export const BACKOFF_DEFAULTS = { delayMsInitial: 500, delayMsMax: 30_000, factor: 2 } as const;

/**
 * The delay before reconnect attempt `attempt` (1 = the first after a drop): a draw from
 * [window / 2, window), window = min(delayMsMax, delayMsInitial × factor^(attempt − 1)).
 *
 * @example
 * ```ts
 * backoffDelayMs(1); // 250..500
 * backoffDelayMs(4); // 2000..4000
 * ```
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.delayMsInitial ?? BACKOFF_DEFAULTS.delayMsInitial;
  const max = options.delayMsMax ?? BACKOFF_DEFAULTS.delayMsMax;
  const factor = options.factor ?? BACKOFF_DEFAULTS.factor;
  const random = options.random ?? Math.random;
  const window = Math.min(max, initial * factor ** Math.max(0, attempt - 1));
  return Math.round(window / 2 + random() * (window / 2));
}
