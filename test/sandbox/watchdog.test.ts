/**
 * The watchdog (watchdog.ts), exercised through the test-only unmetered path: a module compiled
 * without metering loops forever in the foreground, and only the watchdog thread can stop it.
 * Under the limit a call passes; past it the call is PLUGIN_TIMEOUT, the instance is refused, the
 * event loop runs again and a fresh instance works.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { createPluginInstance } from '../../host/sandbox/instance.ts';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { runWatched } from '../../host/sandbox/watchdog.ts';
import { eventually } from '../helpers/wait.ts';
import { assertHostError, assertProgrammerError, fixturePlugin, memoryTenant, withDeadline } from './harness.ts';

const ask = (query: string) => ({ query, k: 1, history: [] });
const WATCHDOG_MS = 300;

test('an unmetered endless loop is stopped by the watchdog with PLUGIN_TIMEOUT; the host carries on', async () => {
  const unmetered = await compilePlugin(await fixturePlugin('cpu-and-memory'));
  assert.not.ok(unmetered.metered);
  const instance = await createPluginInstance(unmetered, { slot: 'retrieval', capabilities: memoryTenant().capabilities, watchdogMs: WATCHDOG_MS });
  assert.equal(await instance.retrieve(ask('work:1000')), [{ chunkId: 'work done', score: 1 }], 'a call under the limit passes');
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 10);
  const started = performance.now();
  await assertHostError(
    withDeadline(instance.retrieve(ask('spin')), 10_000),
    'PLUGIN_TIMEOUT',
    `retrieve was still running after ${WATCHDOG_MS} ms; the watchdog stopped it; the instance is discarded`,
  );
  // Not before its limit. No upper bound: a loaded machine starts the watchdog thread late, and the
  // loop is endless, so returning at all shows the watchdog stopped it.
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= WATCHDOG_MS, `stopped after ${elapsed.toFixed(0)} ms, before the limit`);
  await eventually(() => ticks >= 1, 'a timer firing once the loop is stopped');
  clearInterval(timer);
  await assertHostError(instance.retrieve(ask('hello')), 'PLUGIN_FAILED', 'failed earlier (PLUGIN_TIMEOUT)');
  await instance.close();
  const fresh = await createPluginInstance(unmetered, { slot: 'retrieval', capabilities: memoryTenant().capabilities, watchdogMs: WATCHDOG_MS });
  assert.equal(await fresh.retrieve(ask('hello')), [{ chunkId: 'hello done', score: 1 }]);
  await fresh.close();
});

test('runWatched passes results and errors through, and null runs without a watchdog', () => {
  assert.equal(runWatched(() => 42, 1_000), { ok: true, value: 42 });
  assert.equal(runWatched(() => 'direct', null), { ok: true, value: 'direct' });
  assert.throws(() => runWatched(() => { throw new RangeError('plugin trap'); }, 1_000), /plugin trap/);
});

test('watchdogMs may be lowered or switched off, never raised', async () => {
  const wasm = await fixturePlugin('cpu-and-memory');
  const raised = LIMITS.pluginCallWallMsMax + 1;
  await assertProgrammerError(
    createPluginInstance(wasm, { slot: 'retrieval', capabilities: memoryTenant().capabilities, watchdogMs: raised }),
    new RegExp(`^watchdogMs ${raised} must be an integer in 1\\.\\.${LIMITS.pluginCallWallMsMax}$`),
  );
  const off = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: memoryTenant().capabilities, watchdogMs: null });
  assert.equal(await off.retrieve(ask('hello')), [{ chunkId: 'hello done', score: 1 }]);
  await off.close();
});

test.run();
