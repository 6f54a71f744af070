/**
 * Every limit the sandbox enforces, on both sides: at the limit passes, one over fails with its
 * code (or, for host function arguments the plugin can recover from, its error status).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { ALLOC_OVERHEAD_BYTES } from '../../host/sandbox/extism.ts';
import { createPluginInstance, type RetrievalPluginInstance } from '../../host/sandbox/instance.ts';
import { assertHostError, assertProgrammerError, fixturePlugin, memoryTenant, type MemoryTenant } from './harness.ts';

/** Runs one probe instruction on a fresh instance and hands it to `check`. */
async function probe(check: (instance: RetrievalPluginInstance, tenant: MemoryTenant) => Promise<void>): Promise<void> {
  const tenant = memoryTenant();
  tenant.ranking.vector = ['a#0'];
  const instance = await createPluginInstance(await fixturePlugin('probe'), { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    await check(instance, tenant);
  } finally {
    await instance.close();
  }
}

/** The probe's report: its single chunk id, "status=<n> <message>". */
async function report(query: string): Promise<string> {
  let result = '';
  await probe(async (instance) => {
    result = (await instance.retrieve({ query, k: 1, history: [] }))[0]?.chunkId ?? '';
  });
  return result;
}

const KIB = 1024;

test('pluginOutputBytesMax: output of exactly the limit passes; one byte more is PLUGIN_OUTPUT_LIMIT', async () => {
  // The probe's output is the chunk id plus 12 bytes of framing.
  const idBytes = LIMITS.pluginOutputBytesMax - 12;
  await probe(async (instance) => {
    const ranked = await instance.retrieve({ query: `output:${idBytes}`, k: 1, history: [] });
    assert.is(ranked[0]?.chunkId.length, idBytes);
  });
  await probe(async (instance) => {
    await assertHostError(
      instance.retrieve({ query: `output:${idBytes + 1}`, k: 1, history: [] }),
      'PLUGIN_OUTPUT_LIMIT',
      `retrieve returned ${LIMITS.pluginOutputBytesMax + 1} bytes, over the limit of ${LIMITS.pluginOutputBytesMax}`,
    );
  });
});

test('hostCallsPerPluginCallMax: exactly the limit passes; one more is PLUGIN_HOST_CALL_LIMIT even if the plugin ignores the error', async () => {
  const max = LIMITS.hostCallsPerPluginCallMax;
  await probe(async (instance) => {
    assert.equal(await instance.retrieve({ query: `hostcalls:${max}`, k: 1, history: [] }), []);
    assert.equal(await instance.retrieve({ query: `hostcalls:${max}`, k: 1, history: [] }), [], 'the count is per call');
    await assertHostError(
      instance.retrieve({ query: `hostcalls:${max + 1}`, k: 1, history: [] }),
      'PLUGIN_HOST_CALL_LIMIT',
      `the plugin made more than ${max} host function calls in one call (call ${max + 1} was kv_get)`,
    );
  });
});

test('extismHostPagesMax: allocating up to the per-call budget passes; one byte more is PLUGIN_MEMORY_LIMIT', async () => {
  const budget = LIMITS.extismHostPagesMax * 64 * KIB;
  // The probe allocates n bytes, then 4 bytes for its (empty) output; each allocation costs an overhead.
  const atLimit = budget - 4 - 2 * ALLOC_OVERHEAD_BYTES;
  await probe(async (instance) => {
    assert.equal(await instance.retrieve({ query: `alloc:${atLimit}`, k: 1, history: [] }), []);
    assert.equal(await instance.retrieve({ query: `alloc:${atLimit}`, k: 1, history: [] }), [], 'the budget is per call');
    await assertHostError(
      instance.retrieve({ query: `alloc:${atLimit + 1}`, k: 1, history: [] }),
      'PLUGIN_MEMORY_LIMIT',
      `retrieve: the plugin allocated more than ${budget} bytes of host memory in one call (asked for 4 more with ${atLimit + 1 + ALLOC_OVERHEAD_BYTES} used)`,
    );
  });
});

test('pluginLogLinesPerCallMax: the limit is delivered; lines over it are dropped and counted', async () => {
  const max = LIMITS.pluginLogLinesPerCallMax;
  await probe(async (instance, tenant) => {
    await instance.retrieve({ query: `logs:${max}`, k: 1, history: [] });
    assert.is(tenant.logs.length, max);
    assert.equal(tenant.logs.at(-1), { level: 'info', message: `line ${max - 1}` });
    tenant.logs.length = 0;
    await instance.retrieve({ query: `logs:${max + 1}`, k: 1, history: [] });
    assert.is(tenant.logs.length, max + 1);
    assert.equal(tenant.logs.at(-2), { level: 'info', message: `line ${max - 1}` });
    assert.equal(tenant.logs.at(-1), { level: 'warn', message: `plugin log: 1 lines dropped, the limit is ${max} per call` });
  });
});

test('hostCallInputBytesMax: a request of exactly the limit is served; one byte more gets status 3', async () => {
  const max = LIMITS.hostCallInputBytesMax;
  assert.is(await report(`request:${max}`), 'status=0 hits 1');
  assert.is(await report(`request:${max + 1}`), `status=3 index_search: the request is ${max + 1} bytes, over the limit of ${max}`);
});

test('kvKeyBytesMax: a key of the limit is stored; one byte more gets status 1', async () => {
  const max = LIMITS.kvKeyBytesMax;
  assert.is(await report(`kvkey:${max}`), 'status=0 stored');
  assert.is(await report(`kvkey:${max + 1}`), `status=1 kv_set: key: ${max + 1} bytes, over the limit of ${max}`);
});

test('kvValueBytesMax: a value of the limit is stored; one byte more gets status 1', async () => {
  const max = LIMITS.kvValueBytesMax;
  assert.is(await report(`kvvalue:${max}`), 'status=0 stored');
  assert.is(await report(`kvvalue:${max + 1}`), `status=1 kv_set: value: ${max + 1} bytes, over the limit of ${max}`);
});

test('embedTextCharsMax: text of the limit is embedded; one character more gets status 3', async () => {
  const max = LIMITS.embedTextCharsMax;
  assert.is(await report(`embed:${max}`), 'status=0 dim 3');
  assert.is(await report(`embed:${max + 1}`), `status=3 embed: text: ${max + 1} characters, over the limit of ${max}`);
});

test('searchHitsMax: k of the limit is searched; one more gets status 1', async () => {
  const max = LIMITS.searchHitsMax;
  assert.is(await report(`searchk:${max}`), 'status=0 hits 1');
  assert.is(await report(`searchk:${max + 1}`), `status=1 index_search: k: ${max + 1}, must be 1..${max}`);
});

test('metadataEntriesMax: a filter of the limit is searched; one entry more gets status 1', async () => {
  const max = LIMITS.metadataEntriesMax;
  assert.is(await report(`filters:${max}`), 'status=0 hits 1');
  assert.is(await report(`filters:${max + 1}`), `status=1 index_search: filterCount: ${max + 1}, over the limit of ${max}`);
});

test('retrievedChunksMax and output count: n ≤ k passes; n > k is PLUGIN_BAD_OUTPUT; k over the limit is a host bug', async () => {
  const tenant = memoryTenant();
  tenant.ranking.vector = Array.from({ length: 40 }, (_, i) => `c${i}#0`);
  const instance = await createPluginInstance(await fixturePlugin('malformed'), { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    await assertHostError(
      instance.retrieve({ query: 'count', k: LIMITS.retrievedChunksMax, history: [] }),
      'PLUGIN_BAD_OUTPUT',
      `retrieve output: chunkCount: 1000, over the limit of ${LIMITS.retrievedChunksMax}`,
    );
  } finally {
    await instance.close();
  }
  const retrieval = await createPluginInstance(await fixturePlugin('probe'), { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    assert.equal(await retrieval.retrieve({ query: 'none:0', k: LIMITS.retrievedChunksMax, history: [] }), []);
    await assertProgrammerError(retrieval.retrieve({ query: 'none:0', k: LIMITS.retrievedChunksMax + 1, history: [] }), /^k 33 is outside 1\.\.32$/);
  } finally {
    await retrieval.close();
  }
});

test('historyTurnsMax: a full history (user and assistant per turn) is passed; more is a host bug', async () => {
  const turns = (count: number) => Array.from({ length: count }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `t${i}` }) as const);
  await probe(async (instance) => {
    assert.equal(await instance.retrieve({ query: 'none:0', k: 1, history: turns(LIMITS.historyTurnsMax * 2) }), []);
    await assertProgrammerError(
      instance.retrieve({ query: 'none:0', k: 1, history: turns(LIMITS.historyTurnsMax * 2 + 1) }),
      new RegExp(`^history has ${LIMITS.historyTurnsMax * 2 + 1} turns, over twice LIMITS.historyTurnsMax$`),
    );
  });
});

test('promptMessagesMax: the limit of messages passes; one more is PLUGIN_BAD_OUTPUT', async () => {
  const tenant = memoryTenant();
  const max = LIMITS.promptMessagesMax;
  const prompt = await createPluginInstance(await fixturePlugin('malformed'), { slot: 'prompt', capabilities: tenant.capabilities });
  const input = (query: string) => ({ systemPrompt: '', query, tokenBudget: 100, history: [], chunks: [] });
  try {
    assert.is((await prompt.assemble(input(`messages:${max}`))).messages.length, max);
    await assertHostError(prompt.assemble(input(`messages:${max + 1}`)), 'PLUGIN_BAD_OUTPUT', `assemble output: messageCount: ${max + 1}, over the limit of ${max}`);
  } finally {
    await prompt.close();
  }
});

test('instance options may lower a limit but never raise it, and unknown options are refused', async () => {
  const tenant = memoryTenant();
  const wasm = await fixturePlugin('probe');
  const lowered = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: tenant.capabilities, hostCallsPerCallMax: 2 });
  try {
    assert.equal(await lowered.retrieve({ query: 'hostcalls:2', k: 1, history: [] }), []);
    await assertHostError(lowered.retrieve({ query: 'hostcalls:3', k: 1, history: [] }), 'PLUGIN_HOST_CALL_LIMIT', 'more than 2 host function calls');
  } finally {
    await lowered.close();
  }
  const raised = LIMITS.hostCallsPerPluginCallMax + 1;
  await assertProgrammerError(
    createPluginInstance(wasm, { slot: 'retrieval', capabilities: tenant.capabilities, hostCallsPerCallMax: raised }),
    new RegExp(`^hostCallsPerCallMax ${raised} must be an integer in 1\\.\\.${LIMITS.hostCallsPerPluginCallMax}$`),
  );
  const unknown = { slot: 'retrieval', capabilities: tenant.capabilities, timeoutMs: 5 } as unknown as Parameters<typeof createPluginInstance>[1];
  await assertProgrammerError(createPluginInstance(wasm, unknown), /^unknown plugin instance option "timeoutMs"$/);
});

test.run();
