/**
 * The embedding cache pays only for costly embedders: the local embedder never touches it; a costly
 * one is asked once per distinct text per tenant and embedder (asks, ingestion, re-embedding after
 * an embedder change), and its synchronous path is served from the cache alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { embedCached, embedTexts, prepareIndexVectors } from '../../host/cache/embedding-cache.ts';
import { HostError } from '../../host/errors.ts';
import { createLocalEmbedder, type Embedder } from '../../host/retrieval/embedder.ts';
import { ingestDocuments } from '../../host/retrieval/ingest.ts';
import { TenantIndex } from '../../host/retrieval/tenant-index.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { parseMasterKey } from '../../host/storage/keys.ts';
import { Registry } from '../../host/storage/registry.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantScope } from '../../host/tenants/scope.ts';
import { writesLanded } from '../helpers/wait.ts';

const MASTER = parseMasterKey('44'.repeat(32), 'test');

/** A costly embedder in-process: the local embedder's vectors, asynchronous only, counting what it is asked. */
function countingEmbedder(id = 'test-remote@256'): Embedder & { batches: string[][] } {
  const local = createLocalEmbedder();
  const batches: string[][] = [];
  return {
    id,
    dim: local.dim,
    costly: true,
    batches,
    embed: () => {
      throw new HostError('EMBED_FAILED', 'asynchronous only');
    },
    embedBatch: async (texts) => {
      batches.push([...texts]);
      return texts.map((text) => local.embed(text));
    },
  };
}

async function withScope(run: (scope: TenantScope) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-embed-'));
  const registry = Registry.open(dir, MASTER);
  const environments = new TenantEnvironments({ dataDir: dir, registry, openMax: 4 });
  const authority = { registry, environments };
  const { apiKey } = createTenant(authority, operatorFromLocalAccess(), 'Embed');
  const scope = mintScopeFromApiKey(authority, apiKey);
  try {
    await run(scope);
  } finally {
    scope.release();
    await environments.close();
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The cache writes asynchronously: wait until what was written so far is on disk. */
const landed = (scope: TenantScope): Promise<void> => writesLanded(scope.store.embeddingCache);

test('the local embedder never writes the embedding cache: an LMDB write costs more than its embed', async () => {
  await withScope(async (scope) => {
    const embedder = createLocalEmbedder();
    await ingestDocuments(scope, embedder, [{ id: 'd', text: 'Some text worth indexing for the test.' }]);
    embedCached(scope, embedder, 'a question');
    await embedTexts(scope, embedder, ['a question', 'another']);
    await landed(scope);
    assert.is(scope.store.embeddingCache.count(), 0);
  });
});

test('a costly embedder is asked once per distinct text; repeats and later asks come from the cache', async () => {
  await withScope(async (scope) => {
    const embedder = countingEmbedder();
    const first = await embedTexts(scope, embedder, ['alpha', 'beta', 'alpha']);
    assert.equal(embedder.batches, [['alpha', 'beta']]);
    assert.equal(Array.from(first[0]!), Array.from(first[2]!));
    await landed(scope);
    await embedTexts(scope, embedder, ['beta', 'gamma']);
    assert.equal(embedder.batches, [['alpha', 'beta'], ['gamma']]);
    await landed(scope);
    assert.equal(Array.from(embedCached(scope, embedder, 'gamma')), Array.from(createLocalEmbedder().embed('gamma')), 'the synchronous path reads the cache');
    try {
      embedCached(scope, embedder, 'never embedded');
      assert.unreachable();
    } catch (error) {
      assert.instance(error, HostError);
      assert.is((error as HostError).code, 'EMBED_FAILED');
    }
  });
});

test('the cache is keyed by embedder id: another embedder never gets these vectors', async () => {
  await withScope(async (scope) => {
    await embedTexts(scope, countingEmbedder('one@256'), ['alpha']);
    await landed(scope);
    assert.is(scope.store.embeddingCache.count(), 1, "the first embedder's vector is stored");
    const other = countingEmbedder('two@256');
    await embedTexts(scope, other, ['alpha']);
    assert.equal(other.batches, [['alpha']]);
  });
});

test('ingestion with a costly embedder embeds changed documents in one batch, unchanged ones not at all', async () => {
  await withScope(async (scope) => {
    const embedder = countingEmbedder();
    const documents = [
      { id: 'a', title: 'A', text: 'First document text.' },
      { id: 'b', title: 'B', text: 'Second document text.' },
    ];
    const result = await ingestDocuments(scope, embedder, documents);
    assert.is(result.inserted, 2);
    assert.equal(embedder.batches, [['A\nFirst document text.', 'B\nSecond document text.']]);
    await ingestDocuments(scope, embedder, documents);
    assert.is(embedder.batches.length, 1, 'unchanged: nothing to embed');
    const query = createLocalEmbedder().embed('Second document');
    const hits = TenantIndex.of(scope.store, embedder).search({ query: 'second', k: 1, mode: { vector: true, lexical: false }, vector: null, filter: {} }, query);
    assert.is(hits[0]?.chunkId, 'b#0');
  });
});

test('after an embedder change, a costly embedder re-embeds every chunk before the index loads', async () => {
  await withScope(async (scope) => {
    await ingestDocuments(scope, createLocalEmbedder(), [{ id: 'a', title: 'A', text: 'Apples are red.' }, { id: 'b', title: 'B', text: 'Bananas are yellow.' }]);
    const embedder = countingEmbedder();
    await Promise.all([prepareIndexVectors(scope, embedder), prepareIndexVectors(scope, embedder)]);
    assert.equal(embedder.batches, [['A\nApples are red.', 'B\nBananas are yellow.']], 'one run shared by concurrent callers');
    assert.is(scope.store.meta.get('embedderId'), embedder.id);
    // Loading the index now needs no synchronous embed (which this embedder refuses).
    assert.is(TenantIndex.of(scope.store, embedder).size, 2);
    await prepareIndexVectors(scope, embedder);
    assert.is(embedder.batches.length, 1, 'done once per open environment');
  });
});

test.run();
