/**
 * The life of a cache entry through the real server: expiry by the tenant's TTL (on an injected
 * clock), eviction of the least recently used beyond the tenant's byte quota, invalidation when a
 * cited document is updated or deleted, DELETE /v1/cache, the stats route, and the validation of
 * every cache setting on both sides of its range.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

let host: TestHost;
let now = Date.UTC(2030, 0, 1);

test.before(async () => {
  host = await startTestHost({ clock: () => now });
});
test.after(async () => {
  await host.close();
});

async function tenantWithDocs(name: string): Promise<{ id: string; apiKey: string }> {
  const tenant = await host.createTenant(name);
  await host.ingest(tenant.apiKey, [
    { id: 'shipping', title: 'Shipping', text: 'Express delivery costs 15 euros and arrives the next working day.' },
    { id: 'hours', title: 'Opening hours', text: 'On Sunday the stores are open from 11 am to 4 pm.' },
  ]);
  return tenant;
}

async function askFresh(apiKey: string, text: string) {
  const client = await host.chat(apiKey);
  try {
    return (await host.ask(client, text)).result;
  } finally {
    client.close();
  }
}

const stats = async (apiKey: string) => (await host.request('GET', '/v1/cache/stats', apiKey)).body;

test('TTL: served until the last millisecond of the TTL, then expired; a shorter TTL applies at once', async () => {
  const tenant = await tenantWithDocs('Ttl');
  const question = 'How much does express delivery cost?';
  const start = now;
  await askFresh(tenant.apiKey, question);
  now = start + 7 * 86_400_000 - 1;
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'hit', 'default TTL is 7 days');
  now = start + 7 * 86_400_000;
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'miss', 'expired at 7 days');
  assert.is((await stats(tenant.apiKey)).expired, 1);
  await host.request('PATCH', '/v1/config', tenant.apiKey, { cache: { ttlSeconds: 60 } });
  const stored = now;
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'hit');
  now = stored + 60_000;
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'miss');
});

test('quota: beyond the byte quota the least recently used answers are evicted; bytes stay within it', async () => {
  const tenant = await tenantWithDocs('Quota');
  const quotaBytes = LIMITS.cacheBytesPerTenantMin;
  // Threshold 1: these templated questions differ in one number, which the local embedder scores
  // above 0.92; this test is about eviction, so only the exact path may hit.
  assert.is((await host.request('PATCH', '/v1/config', tenant.apiKey, { cache: { quotaBytes, threshold: 1 } })).status, 200);
  const hot = 'When are the stores open on Sunday?';
  await askFresh(tenant.apiKey, hot);
  for (let i = 0; i < 24; i++) {
    now += 1000;
    await askFresh(tenant.apiKey, `Question number ${i} about express delivery?`);
    now += 1000;
    assert.is((await askFresh(tenant.apiKey, hot)).cache, 'hit', `the hot answer stays (round ${i})`);
  }
  const after = await stats(tenant.apiKey);
  assert.ok(after.evicted > 0, JSON.stringify(after));
  assert.ok(after.bytes <= quotaBytes, `${after.bytes} <= ${quotaBytes}`);
  assert.is((await askFresh(tenant.apiKey, 'Question number 0 about express delivery?')).cache, 'miss', 'the oldest cold answer is gone');
});

test('updating or deleting a cited document invalidates the answers and the new facts are served', async () => {
  const tenant = await tenantWithDocs('Invalidate');
  const question = 'How much does express delivery cost?';
  assert.ok((await askFresh(tenant.apiKey, question)).answer.includes('15 euros'));
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'hit');
  await host.ingest(tenant.apiKey, [{ id: 'shipping', title: 'Shipping', text: 'Express delivery now costs 19 euros and arrives the next working day.' }]);
  const updated = await stats(tenant.apiKey);
  assert.equal([updated.entries, updated.invalidated], [0, 1]);
  const fresh = await askFresh(tenant.apiKey, question);
  assert.is(fresh.cache, 'miss');
  assert.ok(fresh.answer.includes('19 euros'), fresh.answer);
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'hit');
  assert.is((await host.request('DELETE', '/v1/documents/shipping', tenant.apiKey)).status, 200);
  const afterDelete = await askFresh(tenant.apiKey, question);
  assert.is(afterDelete.cache, 'miss');
  assert.not.ok(afterDelete.answer.includes('19 euros'), 'the deleted document is not cited from the cache');
});

test('DELETE /v1/cache empties this tenant’s caches only; the stats route needs the tenant key', async () => {
  const mine = await tenantWithDocs('Clearing');
  const theirs = await tenantWithDocs('Bystander');
  const question = 'How much does express delivery cost?';
  for (const tenant of [mine, theirs]) await askFresh(tenant.apiKey, question);
  for (const tenant of [mine, theirs]) await host.writesLanded(tenant.id);
  const response = await host.request('DELETE', '/v1/cache', mine.apiKey);
  assert.is(response.status, 200);
  assert.equal(response.body, { deleted: { entries: 1, embeddings: 0 } });
  assert.is((await stats(mine.apiKey)).entries, 0);
  assert.is((await askFresh(mine.apiKey, question)).cache, 'miss');
  assert.is((await askFresh(theirs.apiKey, question)).cache, 'hit', 'the other tenant keeps its cache');
  const anonymous = await host.request('GET', '/v1/cache/stats', undefined);
  assert.is(anonymous.status, 401);
  assert.is(anonymous.body.error.code, 'AUTH_MISSING_KEY');
  assert.is((await host.request('DELETE', '/v1/cache', 'ctx_not-a-key')).body.error.code, 'AUTH_INVALID_KEY');
});

test('cache settings: each accepted at its limits and refused one past them, naming the setting', async () => {
  const tenant = await host.createTenant('Settings');
  const patch = (cache: unknown) => host.request('PATCH', '/v1/config', tenant.apiKey, { cache });
  const accepted = [
    { threshold: 0.5 }, { threshold: 1 }, { ttlSeconds: 1 }, { ttlSeconds: LIMITS.cacheTtlSecondsMax },
    { quotaBytes: LIMITS.cacheBytesPerTenantMin }, { quotaBytes: LIMITS.cacheBytesPerTenantMax }, { scope: 'user' }, { enabled: false },
  ];
  for (const value of accepted) assert.is((await patch(value)).status, 200, JSON.stringify(value));
  const refused: [unknown, string][] = [
    [{ threshold: 0.49 }, 'cache.threshold'], [{ threshold: 1.01 }, 'cache.threshold'], [{ threshold: '0.9' }, 'cache.threshold'],
    [{ ttlSeconds: 0 }, 'cache.ttlSeconds'], [{ ttlSeconds: LIMITS.cacheTtlSecondsMax + 1 }, 'cache.ttlSeconds'],
    [{ quotaBytes: LIMITS.cacheBytesPerTenantMin - 1 }, 'cache.quotaBytes'], [{ quotaBytes: LIMITS.cacheBytesPerTenantMax + 1 }, 'cache.quotaBytes'],
    [{ scope: 'global' }, 'cache.scope'], [{ enabled: 'yes' }, 'cache.enabled'], [{ ttl: 5 }, 'cache.ttl'], ['on', 'cache'],
  ];
  for (const [value, setting] of refused) {
    const response = await patch(value);
    assert.is(response.status, 400, JSON.stringify(value));
    assert.is(response.body.error.code, 'CONFIG_INVALID');
    assert.equal(response.body.error.detail, { setting });
    assert.match(response.body.error.message, new RegExp(`^${setting.replace('.', '\\.')}: `));
  }
  const settings = (await host.request('GET', '/v1/config', tenant.apiKey)).body;
  assert.equal(settings.cache, { enabled: false, scope: 'user', threshold: 1, ttlSeconds: LIMITS.cacheTtlSecondsMax, quotaBytes: LIMITS.cacheBytesPerTenantMax });
});

test.run();
