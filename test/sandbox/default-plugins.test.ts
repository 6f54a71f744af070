/**
 * The built-in plugins end to end: compiled from source, run by real Extism through
 * createPluginInstance, against an in-memory tenant.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPluginInstance } from '../../host/sandbox/instance.ts';
import type { ContextChunk } from '../../host/sandbox/slots.ts';
import { addChunk, builtinPlugin, memoryTenant, withDeadline } from './harness.ts';

const rrf = (...ranks: number[]): number => ranks.reduce((sum, rank) => sum + 1 / (60 + rank), 0);

test('retrieval: fuses the vector and lexical rankings by RRF and returns the top k', async () => {
  const tenant = memoryTenant();
  tenant.ranking.vector = ['a#0', 'b#0', 'c#0', 'd#0'];
  tenant.ranking.lexical = ['c#0', 'a#0', 'e#0'];
  const retrieval = await createPluginInstance(await builtinPlugin('retrieval'), { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    const ranked = await withDeadline(retrieval.retrieve({ query: 'refund policy', k: 3, history: [] }));
    assert.equal(ranked.map((chunk) => chunk.chunkId), ['a#0', 'c#0', 'b#0']);
    assert.ok(Math.abs((ranked[0]?.score ?? 0) - rrf(1, 2)) < 1e-6, 'a: rank 1 vector + rank 2 lexical');
    assert.ok(Math.abs((ranked[1]?.score ?? 0) - rrf(3, 1)) < 1e-6, 'c: rank 3 vector + rank 1 lexical');
    assert.ok(Math.abs((ranked[2]?.score ?? 0) - rrf(2)) < 1e-6, 'b: rank 2 vector only');
    assert.equal(tenant.searches.map((search) => [search.query, search.k, search.mode.vector, search.mode.lexical, search.vector]), [
      ['refund policy', 6, true, false, null],
      ['refund policy', 6, false, true, null],
    ]);
  } finally {
    await retrieval.close();
  }
});

test('retrieval: de-duplicates by chunk id and caps each search at searchHitsMax', async () => {
  const tenant = memoryTenant();
  tenant.ranking.vector = ['a#0', 'a#0', 'b#0'];
  tenant.ranking.lexical = ['b#0', 'a#0'];
  const retrieval = await createPluginInstance(await builtinPlugin('retrieval'), { slot: 'retrieval', capabilities: tenant.capabilities });
  try {
    const ranked = await retrieval.retrieve({ query: 'q', k: 32, history: [{ role: 'user', content: 'earlier' }] });
    assert.equal(ranked.map((chunk) => chunk.chunkId), ['a#0', 'b#0']);
    assert.equal(tenant.searches.map((search) => search.k), [64, 64]);
  } finally {
    await retrieval.close();
  }
});

test('retrieval: one failing index degrades to the other and logs a warning', async () => {
  const tenant = memoryTenant();
  tenant.ranking.lexical = ['x#0'];
  const { capabilities } = tenant;
  const retrieval = await createPluginInstance(await builtinPlugin('retrieval'), {
    slot: 'retrieval',
    capabilities: {
      ...capabilities,
      indexSearch: (request) => {
        if (request.mode.vector) throw new Error('vector index offline');
        return capabilities.indexSearch(request);
      },
    },
  });
  try {
    const ranked = await retrieval.retrieve({ query: 'q', k: 2, history: [] });
    assert.equal(ranked.map((chunk) => chunk.chunkId), ['x#0']);
    assert.ok(tenant.logs.some((line) => line.level === 'warn' && line.message === 'vector search failed: index_search: internal error'));
    assert.ok(tenant.logs.some((line) => line.level === 'error' && line.message.includes('vector index offline')), 'the host-side fault is logged');
  } finally {
    await retrieval.close();
  }
});

function contextChunk(chunkId: string, title: string, text: string, score: number): ContextChunk {
  return { chunkId, docId: chunkId.split('#')[0] ?? chunkId, title, text, score };
}

const utf8Bytes = (text: string): number => new TextEncoder().encode(text).byteLength;

test('prompt: system + context blocks as chunk references, then history, then the question', async () => {
  const tenant = memoryTenant();
  addChunk(tenant, 'a#0', 'Refunds', 'Refunds take 5 days.');
  const prompt = await createPluginInstance(await builtinPlugin('prompt'), { slot: 'prompt', capabilities: tenant.capabilities });
  try {
    const output = await prompt.assemble({
      systemPrompt: 'You are helpful.',
      query: 'How long do refunds take?',
      tokenBudget: 10_000,
      history: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
      chunks: [contextChunk('b#0', '', 'Shipping is free.', 0.2), contextChunk('a#0', 'Refunds', 'Refunds take 5 days.', 0.9)],
    });
    assert.is(output.cacheable, false, 'a turn with history is not cacheable');
    assert.equal(output.messages.map((message) => message.role), ['system', 'user', 'assistant', 'user']);
    const system = output.messages[0]?.parts ?? [];
    assert.is(system[0]?.kind, 'text');
    assert.ok(system[0]?.value.startsWith('You are helpful.\n\nAnswer only from the context below.'));
    assert.ok(system[0]?.value.includes('Cite the sources you used as [chunkId].'));
    assert.equal(system.slice(1), [
      { kind: 'text', value: '[a#0] Refunds:\n' },
      { kind: 'chunk', value: 'a#0' },
      { kind: 'text', value: '\n\n' },
      { kind: 'text', value: '[b#0]:\n' },
      { kind: 'chunk', value: 'b#0' },
      { kind: 'text', value: '\n\n' },
    ]);
    assert.equal(output.messages.slice(1).map((message) => message.parts), [
      [{ kind: 'text', value: 'hi' }],
      [{ kind: 'text', value: 'hello' }],
      [{ kind: 'text', value: 'How long do refunds take?' }],
    ]);
  } finally {
    await prompt.close();
  }
});

test('prompt: adds chunks while the estimated tokens fit the budget (at the budget passes, one under drops it)', async () => {
  const tenant = memoryTenant();
  const prompt = await createPluginInstance(await builtinPlugin('prompt'), { slot: 'prompt', capabilities: tenant.capabilities });
  try {
    const chunks = [contextChunk('a#0', 'A', 'x'.repeat(400), 0.9), contextChunk('b#0', 'B', 'y'.repeat(400), 0.5)];
    const base = { systemPrompt: '', query: 'q?', history: [], chunks };
    const none = await prompt.assemble({ ...base, tokenBudget: 0 });
    assert.is(none.cacheable, true, 'a first turn is cacheable');
    const fixedText = none.messages[0]?.parts[0]?.value ?? '';
    const fixedBytes = utf8Bytes(fixedText) + utf8Bytes('q?');
    const blockBytes = utf8Bytes('[a#0] A:\n') + 400 + 2;
    const exactBudget = Math.ceil((fixedBytes + blockBytes) / 4);
    const refs = async (tokenBudget: number) =>
      (await prompt.assemble({ ...base, tokenBudget })).messages[0]?.parts.filter((part) => part.kind === 'chunk').map((part) => part.value);
    assert.equal(await refs(exactBudget), ['a#0']);
    assert.equal(await refs(exactBudget - 1), []);
    assert.equal(await refs(exactBudget + Math.ceil(blockBytes / 4)), ['a#0', 'b#0']);
  } finally {
    await prompt.close();
  }
});

test.run();
