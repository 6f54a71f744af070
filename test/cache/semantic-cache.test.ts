/**
 * One tenant's semantic cache on a real (encrypted, temp-dir) tenant environment: both lookup
 * paths and their edges, the verifier on the similarity path, expiry, quota and entry-count
 * eviction by recency, invalidation by the generation, re-validation of sources on every hit,
 * reload from disk, clearing, and the namespace memo.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cacheEntryKey, cacheNamespace, type CacheNamespace, type NamespaceParts } from '../../host/cache/namespace.ts';
import { SemanticCache, type CachedSource, type CachePolicy } from '../../host/cache/semantic-cache.ts';
import { LIMITS } from '../../host/limits.ts';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { ingestDocuments } from '../../host/retrieval/ingest.ts';
import { TenantIndex } from '../../host/retrieval/tenant-index.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { parseMasterKey } from '../../host/storage/keys.ts';
import { Registry } from '../../host/storage/registry.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantAuthority, type TenantScope } from '../../host/tenants/scope.ts';
import { writesLanded } from '../helpers/wait.ts';

const MASTER = parseMasterKey('33'.repeat(32), 'test');
const embedder = createLocalEmbedder();
const DAY_MS = 86_400_000;
const T0 = Date.UTC(2030, 0, 1);

interface Fixture {
  authority: TenantAuthority;
  apiKey: string;
  scope: TenantScope;
  cache: SemanticCache;
  sources: CachedSource[];
  /** Closes and reopens the environment; `beforeLoad` runs on the store before the cache loads. */
  reopen(beforeLoad?: (scope: TenantScope) => void): Promise<void>;
  close(): Promise<void>;
}

async function setup(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-cache-'));
  const registry = Registry.open(dir, MASTER);
  let environments = new TenantEnvironments({ dataDir: dir, registry, openMax: 4 });
  const authority: TenantAuthority = { registry, environments };
  const { apiKey } = createTenant(authority, operatorFromLocalAccess(), 'Cache');
  const fixture = { authority, apiKey } as Fixture;
  const open = (beforeLoad?: (scope: TenantScope) => void): void => {
    fixture.scope = mintScopeFromApiKey(fixture.authority, apiKey);
    beforeLoad?.(fixture.scope);
    fixture.cache = SemanticCache.of(fixture.scope.store, embedder);
  };
  open();
  await ingestDocuments(fixture.scope, embedder, [{ id: 'ship', title: 'Shipping', text: 'Express delivery costs 15 euros and arrives the next day.' }]);
  const chunk = fixture.scope.store.chunks.get(fixture.scope.store.chunkRows.get('ship#0') as number)!;
  fixture.sources = [{ docId: 'ship', chunkId: 'ship#0', score: 0.5, title: 'Shipping', tag: chunk.tag }];
  fixture.reopen = async (beforeLoad) => {
    fixture.scope.release();
    await environments.close();
    environments = new TenantEnvironments({ dataDir: dir, registry, openMax: 4 });
    fixture.authority = { registry, environments };
    open(beforeLoad);
  };
  fixture.close = async () => {
    fixture.scope.release();
    await environments.close();
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return fixture;
}

function namespaceOf(fixture: Fixture, overrides: { systemPrompt?: string; endUser?: string } = {}): CacheNamespace {
  const namespace = cacheNamespace({
    tenantId: fixture.scope.tenantId,
    modelId: 'local:test',
    embedderId: embedder.id,
    plugins: { retrieval: 'a'.repeat(64), prompt: 'b'.repeat(64) },
    prompt: { systemPrompt: overrides.systemPrompt ?? 'Be brief.', topK: 8, tokenBudget: 1500 },
    generation: fixture.scope.store.counters().generation,
    scope: overrides.endUser === undefined ? 'tenant' : 'user',
    endUser: overrides.endUser,
  });
  assert.ok(namespace !== undefined);
  return namespace;
}

const policy = (now: number, overrides: Partial<CachePolicy> = {}): CachePolicy => ({ threshold: 0.92, ttlMs: 7 * DAY_MS, quotaBytes: 1 << 20, now, ...overrides });

function put(fixture: Fixture, namespace: CacheNamespace, question: string, answer: string, now = T0, overrides: Partial<CachePolicy> = {}): boolean {
  return fixture.cache.store({ namespace, question, vector: embedder.embed(question), answer, sources: fixture.sources }, policy(now, overrides));
}

/** The similarity path's view of an asked question: its text and its vector. */
function asked(question: string): { question: string; vector: Float32Array } {
  return { question, vector: embedder.embed(question) };
}

function cosine(a: string, b: string): number {
  const x = embedder.embed(a);
  const y = embedder.embed(b);
  return x.reduce((sum, value, i) => sum + value * (y[i] as number), 0);
}

test('exact path: normalised text in the same namespace hits with the original answer and sources', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    assert.ok(put(fixture, namespace, 'How much is express delivery?', 'It costs 15 euros. [ship#0]'));
    const hit = fixture.cache.lookupExact(namespace, '  how much is EXPRESS delivery? ', policy(T0 + 1));
    assert.equal(hit && { answer: hit.answer, similarity: hit.similarity, match: hit.match, sources: hit.sources }, {
      answer: 'It costs 15 euros. [ship#0]',
      similarity: 1,
      match: 'exact',
      sources: [{ docId: 'ship', chunkId: 'ship#0', score: 0.5, title: 'Shipping' }],
    });
    assert.is(fixture.cache.lookupExact(namespaceOf(fixture, { systemPrompt: 'Other.' }), 'How much is express delivery?', policy(T0)), undefined, 'another namespace');
    assert.equal(fixture.cache.stats().exactHits, 1);
  } finally {
    await fixture.close();
  }
});

test('similarity path: a hit at exactly the threshold, a miss just above it, never across namespaces', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    const cached = 'How much does express delivery cost?';
    const question = 'How much does the express delivery cost?';
    const score = cosine(cached, question);
    put(fixture, namespace, cached, 'Fifteen euros.');
    const hit = fixture.cache.lookupSimilar(namespace, asked(question), policy(T0, { threshold: score }));
    assert.is(hit?.match, 'semantic');
    assert.ok(Math.abs((hit?.similarity ?? 0) - score) < 1e-5, `similarity ${hit?.similarity} vs ${score}`);
    assert.is(fixture.cache.lookupSimilar(namespace, asked(question), policy(T0, { threshold: score + 0.001 })), undefined);
    const other = namespaceOf(fixture, { endUser: 'mallory' });
    assert.is(fixture.cache.lookupSimilar(other, asked(cached), policy(T0, { threshold: 0.5 })), undefined, 'the identical question in another namespace');
    assert.is(fixture.cache.stats().misses, 2);
  } finally {
    await fixture.close();
  }
});

test('threshold 1 still matches an identical vector (float rounding slack)', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    put(fixture, namespace, 'Express cost?', 'Fifteen euros.');
    // Punctuation is not a term, so this is the same vector and a different exact key.
    assert.is(fixture.cache.lookupSimilar(namespace, asked('express cost'), policy(T0, { threshold: 1 }))?.match, 'semantic');
  } finally {
    await fixture.close();
  }
});

test('verifier: a similar question about another number is refused and counted; the entry stays; a paraphrase hits', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    const cached = 'How much does express delivery cost for 3 bikes?';
    const other = 'How much does express delivery cost for 4 bikes?';
    assert.ok(cosine(cached, other) >= 0.92, `precondition: the embedding alone would serve it (${cosine(cached, other)})`);
    put(fixture, namespace, cached, 'Twenty euros.');
    assert.is(fixture.cache.lookupSimilar(namespace, asked(other), policy(T0)), undefined);
    assert.equal({ vetoed: fixture.cache.stats().vetoed, misses: fixture.cache.stats().misses, entries: fixture.cache.stats().entries }, { vetoed: 1, misses: 1, entries: 1 });
    assert.is(fixture.cache.lookupExact(namespace, cached, policy(T0))?.answer, 'Twenty euros.', 'the entry is right for its own question');
    const hit = fixture.cache.lookupSimilar(namespace, asked('How much does the express delivery cost for 3 bikes?'), policy(T0));
    assert.equal(hit && { answer: hit.answer, match: hit.match }, { answer: 'Twenty euros.', match: 'semantic' });
  } finally {
    await fixture.close();
  }
});

test('verifier: a refused candidate gives way to the next similar one that passes', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    const question = 'Express delivery cost for 3 bikes?';
    const refused = 'Express delivery cost for 4 bikes?';
    const accepted = 'What is the express delivery cost for 3 bikes?';
    assert.ok(cosine(question, refused) > cosine(question, accepted), 'precondition: the refused entry is the most similar');
    put(fixture, namespace, refused, 'Four bikes: twenty-five euros.');
    put(fixture, namespace, accepted, 'Three bikes: twenty euros.');
    const hit = fixture.cache.lookupSimilar(namespace, asked(question), policy(T0, { threshold: 0.5 }));
    assert.is(hit?.answer, 'Three bikes: twenty euros.');
    assert.is(fixture.cache.stats().vetoed, 0, 'a lookup that still hits is not a veto');
  } finally {
    await fixture.close();
  }
});

test('an entry stored without its question (before questions were kept) serves the exact path only', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    const question = 'How much does express delivery cost?';
    put(fixture, namespace, question, 'Fifteen euros.');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const key = cacheEntryKey(namespace, question);
    const { question: kept, ...older } = fixture.scope.store.semanticCache.get(key) as { question?: string };
    assert.is(kept, question, 'new entries keep their question');
    fixture.scope.store.transaction(() => fixture.scope.store.semanticCache.put(key, older));
    await fixture.reopen();
    assert.is(fixture.cache.lookupSimilar(namespace, asked('How much does the express delivery cost?'), policy(T0, { threshold: 0.5 })), undefined, 'unverifiable: refused');
    assert.is(fixture.cache.stats().vetoed, 1);
    assert.is(fixture.cache.lookupExact(namespace, question, policy(T0))?.answer, 'Fifteen euros.');
  } finally {
    await fixture.close();
  }
});

test('namespaceFor remembers by every field of the parts: no change, added element or later mutation gets the old namespace', async () => {
  const fixture = await setup();
  try {
    const base: NamespaceParts = {
      tenantId: fixture.scope.tenantId,
      modelId: 'local:test',
      embedderId: embedder.id,
      plugins: { retrieval: 'a'.repeat(64), prompt: 'b'.repeat(64) },
      prompt: { systemPrompt: 'Be brief.', topK: 8, tokenBudget: 1500 },
      generation: 0,
      scope: 'tenant',
      endUser: undefined,
    };
    const first = fixture.cache.namespaceFor(base);
    assert.ok(first !== undefined);
    assert.is(fixture.cache.namespaceFor(structuredClone(base)), first, 'equal parts in another object: remembered');
    // Every leaf of the parts, found by walking the object rather than from a list, changed in turn.
    const variants: [string, NamespaceParts][] = [];
    const walk = (value: Record<string, unknown>, path: string[]): void => {
      for (const [key, leaf] of Object.entries(value)) {
        if (typeof leaf === 'object' && leaf !== null) {
          walk(leaf as Record<string, unknown>, [...path, key]);
          continue;
        }
        const variant = structuredClone(base) as unknown as Record<string, unknown>;
        let target = variant;
        for (const step of path) target = target[step] as Record<string, unknown>;
        target[key] = typeof leaf === 'number' ? leaf + 1 : typeof leaf === 'string' ? (leaf === 'a'.repeat(64) ? 'c'.repeat(64) : leaf === 'b'.repeat(64) ? 'd'.repeat(64) : `${leaf}x`) : 'alice';
        if (key === 'endUser') target['scope'] = 'user';
        variants.push([[...path, key].join('.'), variant as unknown as NamespaceParts]);
      }
    };
    walk(base as unknown as Record<string, unknown>, []);
    assert.is(variants.length, 11, 'every leaf was changed');
    for (const [what, parts] of variants) {
      fixture.cache.namespaceFor(base);
      const changed = fixture.cache.namespaceFor(parts);
      assert.is(changed?.key, cacheNamespace(parts)?.key, `${what}: computed, not remembered`);
      assert.is.not(changed?.key, first.key, `${what} changes the namespace`);
    }
    fixture.cache.namespaceFor(base);
    const added = { ...base, retrievalMode: 'hybrid' } as NamespaceParts;
    assert.is(fixture.cache.namespaceFor(added), undefined, 'an element the namespace does not know: no namespace, not the old one');
    const mutable = structuredClone(base);
    assert.is(fixture.cache.namespaceFor(mutable)?.key, first.key);
    (mutable.prompt as { topK: number }).topK = 4;
    assert.is.not(fixture.cache.namespaceFor(mutable)?.key, first.key, 'a mutation after the call is seen');
    assert.is(fixture.cache.namespaceFor(base)?.key, first.key, 'and back');
  } finally {
    await fixture.close();
  }
});

test('TTL: served up to the last millisecond, expired and dropped at the TTL', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    put(fixture, namespace, 'Express cost?', 'Fifteen euros.');
    const ttlMs = 7 * DAY_MS;
    assert.ok(fixture.cache.lookupExact(namespace, 'Express cost?', policy(T0 + ttlMs - 1)));
    assert.is(fixture.cache.lookupExact(namespace, 'Express cost?', policy(T0 + ttlMs)), undefined);
    assert.is(fixture.cache.stats().expired, 1);
    assert.is(fixture.cache.stats().entries, 0);
  } finally {
    await fixture.close();
  }
});

test('quota: least recently used entries are evicted, recently used ones kept, bytes within the quota', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    put(fixture, namespace, 'question 0', 'answer 0', T0);
    const entryBytes = fixture.cache.stats().bytes;
    const quotaBytes = entryBytes * 4;
    for (let i = 1; i < 4; i++) put(fixture, namespace, `question ${i}`, `answer ${i}`, T0 + i, { quotaBytes });
    assert.is(fixture.cache.stats().entries, 4, 'exactly at the quota: nothing evicted');
    assert.ok(fixture.cache.lookupExact(namespace, 'question 0', policy(T0 + 10)), 'question 0 is now the most recently used');
    put(fixture, namespace, 'question 4', 'answer 4', T0 + 11, { quotaBytes });
    const stats = fixture.cache.stats();
    assert.ok(stats.bytes <= quotaBytes, `${stats.bytes} <= ${quotaBytes}`);
    assert.ok(stats.evicted >= 1);
    assert.ok(fixture.cache.lookupExact(namespace, 'question 0', policy(T0 + 12)), 'recently used survives');
    assert.ok(fixture.cache.lookupExact(namespace, 'question 4', policy(T0 + 12)), 'the new entry is stored');
    assert.is(fixture.cache.lookupExact(namespace, 'question 1', policy(T0 + 12)), undefined, 'least recently used is gone');
    assert.not.ok(put(fixture, namespace, 'huge', 'x'.repeat(quotaBytes), T0 + 13, { quotaBytes }), 'an entry larger than the quota is not stored');
  } finally {
    await fixture.close();
  }
});

test('entry count: at cacheEntriesPerTenantMax nothing is evicted, one more evicts the oldest', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    const vector = embedder.embed('shared vector');
    const large = { quotaBytes: LIMITS.cacheBytesPerTenantMax };
    for (let i = 0; i < LIMITS.cacheEntriesPerTenantMax; i++) {
      fixture.cache.store({ namespace, question: `q${i}`, vector, answer: 'a', sources: [] }, policy(T0 + i, large));
    }
    assert.is(fixture.cache.stats().entries, LIMITS.cacheEntriesPerTenantMax);
    assert.is(fixture.cache.stats().evicted, 0);
    fixture.cache.store({ namespace, question: 'one more', vector, answer: 'a', sources: [] }, policy(T0 + 2 * LIMITS.cacheEntriesPerTenantMax, large));
    assert.ok(fixture.cache.stats().entries < LIMITS.cacheEntriesPerTenantMax);
    assert.is(fixture.cache.lookupExact(namespace, 'q0', policy(T0 + 3 * LIMITS.cacheEntriesPerTenantMax, large)), undefined, 'the oldest went');
    assert.ok(fixture.cache.lookupExact(namespace, 'one more', policy(T0 + 3 * LIMITS.cacheEntriesPerTenantMax, large)));
  } finally {
    await fixture.close();
  }
});

test('an ingest drops every entry of the older generation in its own transaction; a stale answer is not stored', async () => {
  const fixture = await setup();
  try {
    const before = namespaceOf(fixture);
    put(fixture, before, 'Express cost?', 'Fifteen euros.');
    await ingestDocuments(fixture.scope, embedder, [{ id: 'ship', title: 'Shipping', text: 'Express delivery now costs 20 euros.' }]);
    assert.is(fixture.cache.stats().entries, 0);
    assert.is(fixture.cache.stats().invalidated, 1);
    await writesLanded(fixture.scope.store.semanticCache);
    assert.is(fixture.scope.store.semanticCache.count(), 0, 'gone from disk too, even though its write was still in flight');
    assert.is(fixture.cache.lookupExact(before, 'Express cost?', policy(T0)), undefined);
    assert.not.ok(put(fixture, before, 'Express cost?', 'Fifteen euros.'), 'made under the old generation: refused');
    assert.is(fixture.cache.stats().entries, 0);
  } finally {
    await fixture.close();
  }
});

test('a hit whose source is gone, changed or not this tenant’s is rejected and dropped', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    const store = fixture.scope.store;
    const foreignTag = fixture.sources.map((source) => ({ ...source, tag: 'A'.repeat(43) }));
    fixture.cache.store({ namespace, question: 'forged', vector: embedder.embed('forged'), answer: 'x', sources: foreignTag }, policy(T0));
    assert.is(fixture.cache.lookupExact(namespace, 'forged', policy(T0)), undefined, 'a tag this tenant never made');
    put(fixture, namespace, 'Express cost?', 'Fifteen euros.');
    // A bug that removes a chunk from the index without raising the generation: the hit must still not be served.
    TenantIndex.of(store, embedder).delete(store.chunkRows.get('ship#0') as number);
    assert.is(fixture.cache.lookupExact(namespace, 'Express cost?', policy(T0)), undefined, 'source gone');
    assert.is(fixture.cache.stats().rejected, 2);
    assert.is(fixture.cache.stats().entries, 0);
  } finally {
    await fixture.close();
  }
});

test('entries and recency survive a reopen; entries of an older generation are purged on load', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    put(fixture, namespace, 'Express cost?', 'Fifteen euros.');
    await fixture.reopen();
    assert.is(fixture.cache.stats().entries, 1);
    assert.is(fixture.cache.lookupExact(namespace, 'Express cost?', policy(T0 + 1))?.answer, 'Fifteen euros.');
    // The generation moves while the cache is not loaded: the entry is unreachable, and purged on load.
    await fixture.reopen((scope) => {
      const counters = scope.store.counters();
      scope.store.transaction(() => scope.store.setCounters({ ...counters, generation: counters.generation + 1 }));
    });
    assert.is(fixture.cache.stats().entries, 0);
    await writesLanded(fixture.scope.store.semanticCache);
    assert.is(fixture.scope.store.semanticCache.count(), 0);
  } finally {
    await fixture.close();
  }
});

test('clear deletes every entry, on disk too, and keeps the counters', async () => {
  const fixture = await setup();
  try {
    const namespace = namespaceOf(fixture);
    put(fixture, namespace, 'one', 'a');
    put(fixture, namespace, 'two', 'b');
    fixture.cache.lookupExact(namespace, 'one', policy(T0));
    await writesLanded(fixture.scope.store.semanticCache);
    assert.is(fixture.scope.store.semanticCache.count(), 2, 'both on disk before the clear');
    assert.is(await fixture.cache.clear(), 2);
    assert.is(fixture.scope.store.semanticCache.count(), 0);
    assert.equal({ entries: fixture.cache.stats().entries, bytes: fixture.cache.stats().bytes, hits: fixture.cache.stats().hits }, { entries: 0, bytes: 0, hits: 1 });
    assert.is(fixture.cache.lookupExact(namespace, 'one', policy(T0)), undefined);
  } finally {
    await fixture.close();
  }
});

test.run();
