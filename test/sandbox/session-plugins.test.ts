/**
 * A session's pair of plugin instances over the built-in modules.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadBuiltinModules, openSessionPlugins } from '../../host/sandbox/session-plugins.ts';
import { assertHostError, builtinPlugin, memoryTenant } from './harness.ts';

test('opens both built-in plugins for one session, runs an ask through them, and closes them', async () => {
  await builtinPlugin('retrieval');
  await builtinPlugin('prompt');
  const modules = await loadBuiltinModules();
  assert.match(modules.retrieval.sha256, /^[0-9a-f]{64}$/);
  const retrievalTenant = memoryTenant();
  retrievalTenant.ranking.vector = ['a#0'];
  retrievalTenant.ranking.lexical = ['a#0'];
  const plugins = await openSessionPlugins(modules, { retrieval: retrievalTenant.capabilities, prompt: memoryTenant().capabilities });
  try {
    const ranked = await plugins.retrieve({ query: 'q', k: 1, history: [] });
    assert.equal(ranked.map((chunk) => chunk.chunkId), ['a#0']);
    const output = await plugins.assemble({
      systemPrompt: 'S',
      query: 'q',
      tokenBudget: 1000,
      history: [],
      chunks: [{ chunkId: 'a#0', docId: 'a', title: 'A', text: 'alpha', score: ranked[0]?.score ?? 0 }],
    });
    assert.ok(output.messages[0]?.parts.some((part) => part.kind === 'chunk' && part.value === 'a#0'));
  } finally {
    await plugins.close();
  }
  await assertHostError(plugins.retrieve({ query: 'q', k: 1, history: [] }), 'PLUGIN_FAILED', 'the retrieval plugin instance is closed');
});

test('a missing built-in module is PLUGIN_LOAD_FAILED telling how to build it', async () => {
  const dir = join(tmpdir(), 'ctx-host-no-plugins');
  await assertHostError(
    loadBuiltinModules(dir),
    'PLUGIN_LOAD_FAILED',
    `the built-in retrieval plugin is missing at ${join(dir, 'retrieval.wasm')}; run \`npm run build\``,
  );
});

test.run();
