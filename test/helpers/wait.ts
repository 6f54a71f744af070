/**
 * Waiting for a condition instead of for time. A test that sleeps "long enough" passes on an idle
 * machine and fails on a loaded one (or passes for the wrong reason); these helpers wait until what
 * the test needs has actually happened, under the same generous deadline as {@link within}.
 */
import type { KvTable } from '../../host/storage/lmdb.ts';
import { within } from './deadline.ts';

/** Polls `probe` until it returns true; fails after the deadline naming `what`. */
export async function eventually(probe: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  await within(
    (async () => {
      while (!(await probe())) await new Promise((resolve) => setTimeout(resolve, 10));
    })(),
    what,
    ms,
  );
}

/**
 * Polls `read` until `check` accepts its value, and returns that value; fails after the deadline
 * naming `what`.
 */
export async function eventuallyValue<T>(read: () => T | Promise<T>, check: (value: T) => boolean, what: string, ms = 10_000): Promise<T> {
  return within(
    (async () => {
      for (;;) {
        const value = await read();
        if (check(value)) return value;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })(),
    what,
    ms,
  );
}

/** A key no table ever holds: removing it changes nothing. */
const BARRIER_KEY = '\u0000test-barrier';

/**
 * Resolves once every asynchronous write (`putLater` / `removeLater`) issued on `table`'s
 * environment before this call has landed, and the callbacks those writes' promises carry have run.
 * lmdb-js commits asynchronous writes in the order they were issued and settles their promises in
 * that order, so a remove queued now (of a key that never exists) settles after all of them. Only
 * writes already issued are covered: one that a later callback issues needs another barrier.
 */
export async function writesLanded(table: Pick<KvTable<unknown>, 'removeLater'>): Promise<void> {
  await within(table.removeLater(BARRIER_KEY), 'the pending asynchronous writes');
}
