/**
 * uvu has no time-outs: a hung await would hang the whole run. Every await on the network in tests
 * goes through {@link within}, which fails the test after a deadline instead.
 */

/** Resolves like `promise`, or rejects after `ms` milliseconds naming `what`. */
export async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline: ${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
