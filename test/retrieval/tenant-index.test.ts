/**
 * Loading a tenant's index when its environment opens: `TenantIndex.ready` loads it in steps
 * between which the event loop turns (a large tenant's first ask after a restart, a cell taking
 * over or a move must not hold its cell for the whole load), from one read snapshot, and gives the
 * same index a synchronous load gives; concurrent callers share one load, a synchronous load
 * meanwhile wins, and rows no document lists (an ingest a crash cut short) are dropped.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { ingestDocuments } from '../../host/retrieval/ingest.ts';
import { TenantIndex } from '../../host/retrieval/tenant-index.ts';
import type { SearchRequest } from '../../host/sandbox/capabilities.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeForOperator, operatorFromLocalAccess, type TenantScope } from '../../host/tenants/scope.ts';
import { openTestAuthority, type TestAuthority } from '../helpers/authority.ts';

const operator = operatorFromLocalAccess();
const embedder = createLocalEmbedder();
const HEX = '63';
const WORDS = ['valve', 'pump', 'boiler', 'gasket', 'filter', 'hinge', 'lever', 'spring', 'bearing', 'nozzle', 'piston', 'rotor'];

let base: TestAuthority;
let tenantId = '';

test.before(async () => {
  base = openTestAuthority({ hexByte: HEX });
  tenantId = createTenant(base.authority, operator, 'Indexed').tenant.id;
  const scope = mintScopeForOperator(base.authority, operator, tenantId);
  // 3,000 one-chunk documents: a load that takes many steps of work.
  const documents = Array.from({ length: 3_000 }, (_, i) => ({
    id: `d${i}`,
    text: `Part ${i}: the ${WORDS[i % WORDS.length]} of unit ${i} is checked every ${(i % 9) + 1} weeks by the ${WORDS[(i * 7) % WORDS.length]} team.`,
    metadata: { shelf: String(i % 4) },
  }));
  for (let start = 0; start < documents.length; start += 500) await ingestDocuments(scope, embedder, documents.slice(start, start + 500));
  scope.release();
  await base.authority.environments.close();
});

test.after(async () => {
  await base.close();
});

/** The tenant in a freshly opened environment: nothing derived from it is built yet. */
async function fresh<T>(action: (scope: TenantScope) => Promise<T>): Promise<T> {
  const opened = openTestAuthority({ hexByte: HEX, dir: base.dir });
  const scope = mintScopeForOperator(opened.authority, operator, tenantId);
  try {
    return await action(scope);
  } finally {
    scope.release();
    await opened.close();
  }
}

const requests: SearchRequest[] = [
  { query: 'gasket of unit 17', k: 8, mode: { vector: true, lexical: true }, vector: null, filter: {} },
  { query: 'bearing team weeks', k: 5, mode: { vector: false, lexical: true }, vector: null, filter: { shelf: '2' } },
  { query: 'piston checked', k: 8, mode: { vector: true, lexical: false }, vector: null, filter: {} },
];

function searches(index: TenantIndex): [string, number][][] {
  return requests.map((request) => index.search(request, embedder.embed(request.query)).map((hit): [string, number] => [hit.chunkId, hit.score]));
}

test('ready loads the index in steps, letting the loop turn, and gives what a synchronous load gives', async () => {
  const stepwise = await fresh(async (scope) => {
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const before = turns;
    const index = await TenantIndex.ready(scope.store, embedder);
    ticking = false;
    assert.ok(turns > before, 'the event loop turned during the load');
    assert.is(TenantIndex.of(scope.store, embedder), index, 'the loaded index is the one later uses get');
    return { size: index.size, results: searches(index) };
  });
  const whole = await fresh(async (scope) => {
    const index = TenantIndex.of(scope.store, embedder);
    return { size: index.size, results: searches(index) };
  });
  assert.is(stepwise.size, 3_000);
  for (const hits of stepwise.results) assert.ok(hits.length > 0, 'each search finds something');
  assert.equal(stepwise, whole);
});

test('concurrent callers share one load; a synchronous load meanwhile wins', async () => {
  await fresh(async (scope) => {
    const first = TenantIndex.ready(scope.store, embedder);
    const second = TenantIndex.ready(scope.store, embedder);
    const [a, b] = await Promise.all([first, second]);
    assert.is(a, b);
  });
  await fresh(async (scope) => {
    const pending = TenantIndex.ready(scope.store, embedder);
    const synchronous = TenantIndex.of(scope.store, embedder);
    assert.is(await pending, synchronous);
    assert.is(await TenantIndex.ready(scope.store, embedder), synchronous, 'and is what later callers get');
  });
});

test('rows no document lists (an ingest a crash cut short) are dropped by the stepwise load', async () => {
  await fresh(async (scope) => {
    const { store } = scope;
    const row = store.counters().nextRow + 5;
    const listed = store.chunks.get(0);
    assert.ok(listed !== undefined);
    store.transaction(() => {
      store.chunks.put(row, { ...listed, row, chunkId: 'ghost#0', docId: 'ghost' });
      store.chunkTerms.put(row, store.chunkTerms.get(0) ?? { terms: [], length: 0 });
      store.vectors.put(row, store.vectors.get(0) as Uint8Array);
    });
    const index = await TenantIndex.ready(store, embedder);
    assert.is(index.size, 3_000);
    assert.is(store.chunks.get(row), undefined, 'the orphan row is gone from storage');
    assert.is(store.vectors.get(row), undefined);
  });
});

test.run();
