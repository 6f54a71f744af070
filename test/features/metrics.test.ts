/**
 * `GET /metrics`, the console's recent asks and the operator overview through the real server:
 * real asks (answered, cached, failed in a plugin, blocked by the leak guard) move the right
 * series for the right tenant, live sessions follow connections, a tenant sees only its own asks,
 * and tenant labels stay bounded, a deleted tenant's series going with it.
 */
import { readFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ResolvedChunk } from '../../host/pipeline/guard.ts';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { loadBuiltinModules, type PluginModules } from '../../host/sandbox/session-plugins.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { ChatError } from '../../sdk/client/client.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';
import { within } from '../helpers/deadline.ts';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';
import { parseSamples, sampleValue } from '../helpers/prometheus.ts';
import { eventuallyValue } from '../helpers/wait.ts';

let host: TestHost;
let failing: PluginModules;
let shop: { id: string; apiKey: string };
let faulty: { id: string; apiKey: string };
let leaky: { id: string; apiKey: string };
let foreign: ResolvedChunk;

const QUESTION = 'How much does express delivery cost?';

test.before(async () => {
  const { outFile } = await buildPlugin('test/fixtures/plugins/failures.ts', 'build/test/plugins/failures.wasm');
  const builtin = await loadBuiltinModules();
  failing = { retrieval: await compilePlugin(await readFile(outFile)), prompt: builtin.prompt };
  host = await startTestHost({
    pluginModulesFor: (tenantId) => (tenantId === faulty?.id ? failing : undefined),
    // A bug that puts the shop's chunk into the leaky tenant's context, for the leak-block series.
    faultInjectResolved: (tenantId, resolved, chunks) => {
      if (tenantId !== leaky?.id) return;
      resolved.set(foreign.chunkId, foreign);
      chunks.unshift(foreign);
    },
  });
  shop = await host.createTenant('Shop');
  faulty = await host.createTenant('Faulty');
  leaky = await host.createTenant('Leaky');
  await host.ingest(shop.apiKey, [{ id: 'shipping', title: 'Shipping', text: 'Express delivery arrives the next working day and costs 15 euros.' }]);
  await host.ingest(leaky.apiKey, [{ id: 'notes', title: 'Notes', text: 'Leaky keeps its notes here.' }]);
  const scope = mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), shop.id);
  const stored = scope.store.chunks.get(scope.store.chunkRows.get('shipping#0') as number);
  scope.release();
  if (stored === undefined) throw new Error('the shop chunk was not stored');
  foreign = { chunkId: stored.chunkId, docId: stored.docId, title: stored.title, text: stored.text, score: 1, tag: stored.tag };
});
test.after(async () => {
  await host.close();
});

async function scrape(target: TestHost = host): Promise<string> {
  const response = await within(fetch(`${target.url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } }), 'GET /metrics');
  assert.is(response.status, 200);
  return response.text();
}

/** Scrapes until `check` holds (sessions end asynchronously after a client closes). */
const eventually = (check: (text: string) => boolean, what: string): Promise<string> => eventuallyValue(() => scrape(), check, what);

async function askFailing(apiKey: string, question: string): Promise<ChatError> {
  const client = await host.chat(apiKey);
  try {
    await within(client.ask(question).result, `ask ${question}`);
  } catch (error) {
    assert.instance(error, ChatError);
    return error as ChatError;
  } finally {
    client.close();
  }
  throw new Error('the ask was expected to fail');
}

test('/metrics needs the operator key, and answers in the Prometheus text format', async () => {
  const none = await fetch(`${host.url}/metrics`);
  assert.equal([none.status, ((await none.json()) as { error: { code: string } }).error.code], [401, 'AUTH_MISSING_KEY']);
  const tenantKey = await host.request('GET', '/metrics', shop.apiKey);
  assert.equal([tenantKey.status, tenantKey.body.error.code], [401, 'AUTH_INVALID_KEY']);
  const response = await fetch(`${host.url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(await response.text(), /^# HELP ctx_asks_total /m);
});

test('asks, cache misses and hits, stage latencies and live sessions, by tenant', async () => {
  const first = await host.chat(shop.apiKey);
  assert.is((await host.ask(first, QUESTION)).result.cache, 'miss');
  let text = await scrape();
  assert.is(sampleValue(text, 'ctx_live_sessions', { tenant: shop.id }), 1);
  // A new session's first turn may use the cache: the same question hits.
  const second = await host.chat(shop.apiKey);
  assert.is((await host.ask(second, QUESTION)).result.cache, 'hit');
  text = await scrape();
  assert.is(sampleValue(text, 'ctx_asks_total', { tenant: shop.id, outcome: 'answered' }), 2);
  assert.is(sampleValue(text, 'ctx_cache_lookups_total', { tenant: shop.id, result: 'miss' }), 1);
  assert.is(sampleValue(text, 'ctx_cache_lookups_total', { tenant: shop.id, result: 'hit' }), 1);
  assert.is(sampleValue(text, 'ctx_live_sessions', { tenant: shop.id }), 2);
  assert.ok((sampleValue(text, 'ctx_ask_stage_duration_seconds_count', { stage: 'model' }) ?? 0) >= 1, 'the miss ran the model');
  assert.is(sampleValue(text, 'ctx_ask_duration_seconds_count', { tenant: shop.id, cache: 'hit' }), 1);
  first.close();
  second.close();
  await eventually((scraped) => sampleValue(scraped, 'ctx_live_sessions', { tenant: shop.id }) === undefined, 'live sessions back to none');
});

test('plugin failures count by code; the tenant console and the operator view list them', async () => {
  const error = await askFailing(faulty.apiKey, 'unreachable');
  assert.is(error.code, 'PLUGIN_FAILED');
  const text = await scrape();
  assert.is(sampleValue(text, 'ctx_plugin_failures_total', { tenant: faulty.id, code: 'PLUGIN_FAILED' }), 1);
  assert.is(sampleValue(text, 'ctx_ask_errors_total', { tenant: faulty.id, code: 'PLUGIN_FAILED' }), 1);
  const asks = await host.request('GET', '/v1/asks', faulty.apiKey);
  assert.equal(asks.body.asks.map((ask: any) => [ask.outcome, ask.code]), [['failed', 'PLUGIN_FAILED']]);
  const overview = await host.request('GET', '/v1/operator/overview', OPERATOR_KEY);
  const row = overview.body.tenants.find((tenant: any) => tenant.id === faulty.id);
  assert.equal([row.asks, row.failed, row.pluginFailures, row.leakBlocks], [1, 1, 1, 0]);
  assert.ok(overview.body.incidents.some((incident: any) => incident.tenantId === faulty.id && incident.code === 'PLUGIN_FAILED'));
});

test('a leak block is counted for the asking tenant, by layer, and listed as an incident with its layer', async () => {
  const error = await askFailing(leaky.apiKey, 'Where are the notes?');
  assert.is(error.code, 'LEAK_BLOCKED');
  const text = await scrape();
  assert.is(sampleValue(text, 'ctx_leak_blocks_total', { tenant: leaky.id }), 1);
  assert.is(sampleValue(text, 'ctx_leak_blocks_total', { tenant: shop.id }), undefined, 'the owner of the chunk did not leak');
  assert.is(sampleValue(text, 'ctx_leak_blocks_by_layer_total', { layer: 'provenance' }), 1);
  const overview = await host.request('GET', '/v1/operator/overview', OPERATOR_KEY);
  const incident = overview.body.incidents.find((candidate: any) => candidate.tenantId === leaky.id);
  assert.equal([incident?.code, incident?.layer], ['LEAK_BLOCKED', 'provenance']);
});

test("a tenant's recent asks are its own, with stage timings and no text; the overview is the operator's", async () => {
  const asks = await host.request('GET', '/v1/asks', shop.apiKey);
  assert.is(asks.status, 200);
  assert.equal(asks.body.asks.map((ask: any) => [ask.outcome, ask.cache]), [['answered', 'hit'], ['answered', 'miss']]);
  assert.equal(Object.keys(asks.body.asks[1].timings).sort(), ['cacheMs', 'embedMs', 'guardMs', 'modelMs', 'promptMs', 'retrievalMs', 'totalMs']);
  assert.not.ok(JSON.stringify(asks.body).includes('express'), 'no question or answer text');
  const refused = await host.request('GET', '/v1/operator/overview', shop.apiKey);
  assert.equal([refused.status, refused.body.error.code], [401, 'AUTH_INVALID_KEY']);
});

test("tenant labels are bounded: past the limit tenants share _other; a deleted tenant's series go and free its label", async () => {
  const small = await startTestHost({ limits: { metricsTenantLabelsMax: 2 } });
  try {
    const tenants = [await small.createTenant('One'), await small.createTenant('Two'), await small.createTenant('Three')];
    for (const tenant of tenants) {
      const client = await small.chat(tenant.apiKey);
      await small.ask(client, 'anything at all?');
      client.close();
    }
    // Sessions end asynchronously after their clients close; the deletion below must not race one.
    await eventuallyValue(() => small.server.liveSessions(), (live) => live === 0, 'the sessions ending');
    let text = await scrape(small);
    const askSeries = parseSamples(text).filter((sample) => sample.name === 'ctx_asks_total');
    assert.equal(askSeries.map((sample) => [sample.labels['tenant'], sample.value]), [[tenants[0]?.id, 1], [tenants[1]?.id, 1], ['_other', 1]]);
    assert.is((await small.request('DELETE', `/v1/tenants/${tenants[0]?.id}`, OPERATOR_KEY)).status, 200);
    text = await scrape(small);
    assert.not.ok(text.includes(tenants[0]?.id ?? '?'), "the deleted tenant's series are gone");
    const four = await small.createTenant('Four');
    const client = await small.chat(four.apiKey);
    await small.ask(client, 'anything at all?');
    client.close();
    assert.is(sampleValue(await scrape(small), 'ctx_asks_total', { tenant: four.id, outcome: 'answered' }), 1, 'the freed label went to the next tenant');
  } finally {
    await small.close();
  }
});

test.run();
