/**
 * Plugin instances: fresh state per instance, failures latch, the one-call-at-a-time queue,
 * close, and load-time refusals. Real Extism, real compiled fixtures.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { createPluginInstance, type RetrievalPluginInstance } from '../../host/sandbox/instance.ts';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { assertHostError, builtinPlugin, fixturePlugin, memoryTenant, withDeadline } from './harness.ts';

const ask = (query: string) => ({ query, k: 2, history: [] });

test('a fresh instance starts from the module initial state; kv persists through capabilities', async () => {
  const tenant = memoryTenant();
  const wasm = await fixturePlugin('fresh-state');
  const first = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: tenant.capabilities });
  const ids = async (instance: typeof first) => (await instance.retrieve(ask('q'))).map((chunk) => chunk.chunkId);
  try {
    assert.equal(await ids(first), ['global=1', 'kv=1']);
    assert.equal(await ids(first), ['global=2', 'kv=2'], 'within one instance (one session) state carries over');
  } finally {
    await first.close();
  }
  const second = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    assert.equal(await ids(second), ['global=1', 'kv=3'], 'the global is back at its initial value; kv went through the tenant store');
    assert.equal(new TextDecoder().decode(tenant.kv.get('calls')), '3');
  } finally {
    await second.close();
  }
  const otherTenant = memoryTenant();
  const third = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: otherTenant.capabilities });
  try {
    assert.equal(await ids(third), ['global=1', 'kv=1'], "another tenant's capabilities see none of the first tenant's kv");
  } finally {
    await third.close();
  }
});

test('a trap (unreachable) fails with PLUGIN_FAILED; the instance is then unusable and a new one works', async () => {
  const tenant = memoryTenant();
  const wasm = await fixturePlugin('failures');
  const instance = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: tenant.capabilities });
  await assertHostError(instance.retrieve(ask('unreachable')), 'PLUGIN_FAILED', 'retrieve trapped: RuntimeError: unreachable');
  await assertHostError(
    instance.retrieve(ask('fine')),
    'PLUGIN_FAILED',
    'the retrieval plugin instance failed earlier (PLUGIN_FAILED) and cannot be used again; create a new instance',
  );
  await instance.close();
  const fresh = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    assert.equal(await fresh.retrieve(ask('fine')), [{ chunkId: 'ok', score: 1 }]);
  } finally {
    await fresh.close();
  }
});

test('an AssemblyScript abort traps through the SDK and logs why', async () => {
  const tenant = memoryTenant();
  const instance = await createPluginInstance(await fixturePlugin('failures'), { slot: 'retrieval', capabilities: tenant.capabilities });
  await assertHostError(instance.retrieve(ask('abort')), 'PLUGIN_FAILED', 'retrieve trapped: RuntimeError: unreachable');
  assert.ok(tenant.logs.some((line) => line.level === 'error' && line.message.startsWith('the fixture aborted on purpose at test/fixtures/plugins/failures.ts:')));
  await instance.close();
});

test('an error reported with error_set fails with PLUGIN_FAILED; its text goes to the plugin log, not the error', async () => {
  const tenant = memoryTenant();
  const instance = await createPluginInstance(await fixturePlugin('failures'), { slot: 'retrieval', capabilities: tenant.capabilities });
  const error = await assertHostError(instance.retrieve(ask('error')), 'PLUGIN_FAILED', 'retrieve reported an error (see the plugin log)');
  assert.not.ok(error.message.includes('secret'));
  assert.equal(tenant.logs.at(-1), { level: 'error', message: 'retrieve reported an error: secret tenant text in a plugin error' });
  await instance.close();
});

test('unbounded recursion fails with PLUGIN_FAILED (stack overflow)', async () => {
  const tenant = memoryTenant();
  const instance = await createPluginInstance(await fixturePlugin('failures'), { slot: 'retrieval', capabilities: tenant.capabilities });
  await assertHostError(instance.retrieve(ask('recurse')), 'PLUGIN_FAILED', /^retrieve trapped: RangeError: Maximum call stack size exceeded$/);
  await instance.close();
});

test('concurrent calls on one instance run one at a time, in order', async () => {
  const tenant = memoryTenant();
  const instance = await createPluginInstance(await fixturePlugin('probe'), { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    const calls = [1, 2, 3].map((n) => instance.retrieve(ask(`trace:${n}`)));
    const results = await withDeadline(Promise.all(calls));
    assert.equal(results.map((ranked) => ranked[0]?.chunkId), ['call 1', 'call 2', 'call 3']);
    assert.equal(tenant.kvWrites, ['trace=start 1', 'trace=end 1', 'trace=start 2', 'trace=end 2', 'trace=start 3', 'trace=end 3']);
  } finally {
    await instance.close();
  }
});

test('the queue holds queueDepthMax calls (at the limit passes); one more is PLUGIN_BUSY', async () => {
  const tenant = memoryTenant();
  const instance = await createPluginInstance(await fixturePlugin('probe'), { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    const depth = LIMITS.asksInFlightPerSessionMax;
    const accepted = Array.from({ length: depth }, (_, n) => instance.retrieve(ask(`trace:${n}`)));
    await assertHostError(
      instance.retrieve(ask('trace:99')),
      'PLUGIN_BUSY',
      `the retrieval plugin already has ${depth} calls queued or running, the limit is ${depth}`,
    );
    assert.is((await Promise.all(accepted)).length, depth);
    assert.equal(await instance.retrieve(ask('trace:7')), [{ chunkId: 'call 7', score: 1 }], 'the queue drains and accepts calls again');
  } finally {
    await instance.close();
  }
});

test('calls queued behind a failing call are refused, not run on a broken instance', async () => {
  const tenant = memoryTenant();
  const instance = await createPluginInstance(await fixturePlugin('failures'), { slot: 'retrieval', capabilities: tenant.capabilities });
  const failing = instance.retrieve(ask('unreachable'));
  const queued = instance.retrieve(ask('fine'));
  await assertHostError(failing, 'PLUGIN_FAILED', 'retrieve trapped');
  await assertHostError(queued, 'PLUGIN_FAILED', 'failed earlier (PLUGIN_FAILED)');
  await instance.close();
});

test('close during a call lets that call finish, refuses queued and later calls, and is idempotent', async () => {
  const tenant = memoryTenant();
  let closing: Promise<void> | undefined;
  let instance: RetrievalPluginInstance | undefined;
  const capabilities = {
    ...tenant.capabilities,
    // Closing from inside a host function is the only way to close while wasm is running.
    kvSet: (key: string, value: Uint8Array) => {
      closing ??= instance?.close();
      tenant.capabilities.kvSet(key, value);
    },
  };
  instance = await createPluginInstance(await fixturePlugin('probe'), { slot: 'retrieval', capabilities });
  const running = instance.retrieve(ask('trace:1'));
  const queued = assertHostError(instance.retrieve(ask('trace:2')), 'PLUGIN_FAILED', 'the retrieval plugin instance is closed');
  assert.equal(await running, [{ chunkId: 'call 1', score: 1 }]);
  assert.equal(tenant.kvWrites, ['trace=start 1', 'trace=end 1']);
  await closing;
  await queued;
  await instance.close();
  await assertHostError(instance.retrieve(ask('trace:3')), 'PLUGIN_FAILED', 'the retrieval plugin instance is closed');
});

test('load refusals: not wasm, a missing slot export, a forbidden import, a trapping start', async () => {
  const tenant = memoryTenant();
  const options = { slot: 'retrieval', capabilities: tenant.capabilities } as const;
  await assertHostError(createPluginInstance(new TextEncoder().encode('not wasm'), options), 'PLUGIN_LOAD_FAILED', 'the plugin is not a valid WebAssembly module: ');
  await assertHostError(
    createPluginInstance(await builtinPlugin('prompt'), options),
    'PLUGIN_LOAD_FAILED',
    'a retrieval plugin must export a function "retrieve"; this one does not',
  );
  // (module (import "env" "abort" (func)) (func (export "retrieve")))
  const importsAbort = Uint8Array.from([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 13, 1, 3, 101, 110, 118, 5, 97, 98, 111, 114, 116, 0, 0, 3, 2, 1, 0, 7, 12, 1, 8, 114,
    101, 116, 114, 105, 101, 118, 101, 0, 1, 10, 4, 1, 2, 0, 11,
  ]);
  await assertHostError(
    createPluginInstance(importsAbort, options),
    'PLUGIN_LOAD_FAILED',
    'the plugin imports function "env" "abort"; plugins may import only functions of extism:host/env (no HTTP) and ctx:host/v1',
  );
  // (module (func $start unreachable) (start $start) (func (export "retrieve")))
  const trapsAtStart = Uint8Array.from([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 3, 2, 0, 0, 7, 12, 1, 8, 114, 101, 116, 114, 105, 101, 118, 101, 0, 1, 8, 1, 0, 10, 9, 2,
    3, 0, 0, 11, 3, 0, 0, 11,
  ]);
  await assertHostError(
    createPluginInstance(trapsAtStart, options),
    'PLUGIN_LOAD_FAILED',
    'the retrieval plugin could not be instantiated: RuntimeError: unreachable',
  );
});

test('a module is compiled once per sha256 and instances of it are independent', async () => {
  const wasm = await fixturePlugin('fresh-state');
  const compiled = await compilePlugin(wasm);
  assert.is(await compilePlugin(Uint8Array.from(wasm)), compiled, 'equal bytes hit the cache');
  const a = await createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
  const b = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
  try {
    assert.is(a.sha256, b.sha256);
    await a.retrieve(ask('q'));
    assert.equal((await b.retrieve(ask('q')))[0]?.chunkId, 'global=1', 'b does not see a’s global');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test.run();
