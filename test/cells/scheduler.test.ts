/**
 * The cell scheduler: with nothing waiting a slice runs at once; when tenants wait, the one that
 * used the least CPU goes first, a tenant that spends its whole budget is charged double and falls
 * behind, a burner is reported once per window, and failures reach the caller.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createScheduler } from '../../host/cells/scheduler.ts';
import { HostError } from '../../host/errors.ts';

/** A scheduler on a fake clock: each slice advances it by the milliseconds it names. */
function fakeScheduler() {
  let now = 0;
  const clock = { advance: (ms: number) => (now += ms) };
  const burners: string[] = [];
  const scheduler = createScheduler({
    burnerExhaustionsMin: 3,
    burnerWindowMs: 1_000,
    burnerDutyShare: 0.25,
    onBurner: (tenantId) => burners.push(tenantId),
    verdictOf: (error) => (error instanceof HostError && error.code === 'PLUGIN_FUEL_EXHAUSTED' ? 'exhausted' : 'ok'),
    now: () => now,
  });
  // Like a plugin call: the work happens when the slice starts, the result settles a tick later.
  const work = (ms: number, order: string[], name: string) => async () => {
    now += ms;
    order.push(name);
    await Promise.resolve();
    return name;
  };
  const burn = (ms: number, order: string[], name: string) => async () => {
    now += ms;
    order.push(name);
    await Promise.resolve();
    throw new HostError('PLUGIN_FUEL_EXHAUSTED', 'spent');
  };
  return { scheduler, work, burn, burners, clock };
}

test('with nothing waiting, a slice runs at once and its value comes back', async () => {
  const { scheduler, work } = fakeScheduler();
  const order: string[] = [];
  const running = scheduler.run('a', work(1, order, 'a1'));
  assert.equal(order, ['a1'], 'ran in the same turn');
  assert.is(await running, 'a1');
  assert.is(scheduler.waiting, 0);
});

test("one tenant's slices that follow one another let the loop turn between them (an ingest cannot starve sockets)", async () => {
  const { scheduler, work } = fakeScheduler();
  const order: string[] = [];
  const ingest = (async () => {
    for (let step = 0; step < 3; step += 1) await scheduler.run('writer', work(1, order, `step${step}`));
  })();
  // Queued after the first step began, as a socket's read would be: it must come before the last.
  setImmediate(() => order.push('turn'));
  await ingest;
  assert.ok(order.indexOf('turn') > 0 && order.indexOf('turn') < order.indexOf('step2'), `the loop turned between steps: ${order.join(' ')}`);
});

test('waiting tenants take turns by CPU used: a tenant with a backlog does not hold the others off', async () => {
  const { scheduler, work } = fakeScheduler();
  const order: string[] = [];
  const all: Promise<unknown>[] = [];
  // The first slice of the hog runs at once; its next four wait with the calm tenant's one.
  for (let i = 0; i < 5; i += 1) all.push(scheduler.run('hog', work(10, order, `hog${i}`)));
  all.push(scheduler.run('calm', work(1, order, 'calm0')));
  await Promise.all(all);
  assert.is(order.indexOf('calm0'), 1, `the calm tenant goes right after the slice that was running: ${order.join(' ')}`);
});

test('a tenant that spends its whole budget is charged double and reported as a burner once per window', async () => {
  const { scheduler, work, burn, burners, clock } = fakeScheduler();
  const order: string[] = [];
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 4; i += 1) all.push(scheduler.run('burner', burn(10, order, `b${i}`)).catch(() => undefined));
  const fair: Promise<unknown>[] = [];
  for (let i = 0; i < 4; i += 1) fair.push(scheduler.run('fair', work(10, order, `f${i}`)));
  await Promise.all(fair);
  // The third exhaustion makes it a burner: its last slice waits out its pause (on the fake clock).
  while (!order.includes('b2')) await new Promise((resolve) => setImmediate(resolve));
  assert.not.ok(order.includes('b3'), 'paused');
  clock.advance(100);
  await Promise.all(all);
  // After the first burn (20 of virtual time against 10 a fair slice) the fair tenant runs twice per
  // burn, and first on a tie (it has spent its budget less often).
  assert.equal(order, ['b0', 'f0', 'f1', 'f2', 'b1', 'f3', 'b2', 'b3']);
  assert.equal(burners, ['burner'], 'reported once: three exhaustions within the window');
});

test('a burner is paused after each slice: with a quarter of the loop, 10 ms of burning buys 30 ms of waiting', async () => {
  const { scheduler, burn, burners, clock } = fakeScheduler();
  const order: string[] = [];
  for (let i = 0; i < 3; i += 1) await scheduler.run('burner', burn(10, order, `b${i}`)).catch(() => undefined);
  assert.equal(burners, ['burner']);
  const paused = scheduler.run('burner', burn(10, order, 'b3')).catch(() => undefined);
  assert.equal(order, ['b0', 'b1', 'b2'], 'the fourth slice waits');
  assert.is(scheduler.waiting, 1);
  clock.advance(30);
  await paused;
  assert.equal(order, ['b0', 'b1', 'b2', 'b3'], 'and runs once its pause is over');
});

test('a failing slice rejects with its error, and the next one still runs', async () => {
  const { scheduler, work, burn } = fakeScheduler();
  const order: string[] = [];
  const failed = scheduler.run('a', burn(1, order, 'x')).then(
    () => undefined,
    (error: unknown) => error,
  );
  const next = scheduler.run('a', work(1, order, 'y'));
  assert.instance(await failed, HostError);
  assert.is(await next, 'y');
});

test.run();
