/**
 * uvu has no time-outs: a hung await would hang the whole run. Every await on the network in tests
 * goes through {@link within}, which fails the test after a deadline instead.
 */

/**
 * The deadline for a child process or worker that compiles AssemblyScript, meters plugins (binaryen
 * loads first) or starts a host: seconds on an idle machine, more than a minute on a loaded 2-core
 * one (a cold compile of a plugin took 55 s there). It only stops a hang, so it is generous.
 */
export const CHILD_PROCESS_MS = 300_000;

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
