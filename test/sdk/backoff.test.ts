/**
 * Reconnect delays: each drawn from the upper half of an exponentially growing window, capped.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKOFF_DEFAULTS, backoffDelayMs } from '../../sdk/client/backoff.ts';

test('the window doubles per attempt from delayMsInitial and stops at delayMsMax', () => {
  const high = (attempt: number): number => backoffDelayMs(attempt, { random: () => 0.999_999 });
  const low = (attempt: number): number => backoffDelayMs(attempt, { random: () => 0 });
  assert.equal([1, 2, 3, 4].map(high), [500, 1_000, 2_000, 4_000]);
  assert.equal([1, 2, 3, 4].map(low), [250, 500, 1_000, 2_000]);
  assert.is(high(7), 30_000, 'attempt 7 would be 32 s: capped');
  assert.is(low(30), 15_000);
  assert.is(BACKOFF_DEFAULTS.delayMsMax, 30_000);
});

test('jitter: draws spread over the upper half of the window, never below it', () => {
  const draws = Array.from({ length: 2_000 }, () => backoffDelayMs(3, { delayMsInitial: 1_000 }));
  assert.ok(draws.every((ms) => ms >= 2_000 && ms <= 4_000), 'every draw within [2000, 4000]');
  const mean = draws.reduce((sum, ms) => sum + ms, 0) / draws.length;
  assert.ok(Math.abs(mean - 3_000) < 100, `mean ${mean} near 3000`);
  assert.ok(new Set(draws).size > 500, 'clients that dropped together come back apart');
});

test('options: factor and a custom initial window', () => {
  assert.is(backoffDelayMs(3, { delayMsInitial: 10, factor: 3, random: () => 0.5 }), 68);
  assert.is(backoffDelayMs(0, { delayMsInitial: 100, random: () => 0 }), 50, 'attempt 0 is treated as the first');
});

test.run();
