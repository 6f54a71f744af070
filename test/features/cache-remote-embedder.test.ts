/**
 * A host whose embedder is a remote OpenAI-compatible server (EMBED_URL): the embedding cache is
 * where that pays, so ingestion, asks and the plugins' `embed` host function all go through it —
 * each distinct text is sent to the provider once per tenant — and the exact path of the semantic
 * cache needs no embedding at all. The host function, being synchronous, is served from that cache
 * or refused with a status the plugin can read.
 */
import { readFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { loadBuiltinModules, type PluginModules } from '../../host/sandbox/session-plugins.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';
import { startEmbeddingsServer, type EmbeddingsServer } from '../cache/embeddings-server.ts';

let embeddings: EmbeddingsServer;
let model: ModelServer;
let host: TestHost;
let reporter: PluginModules;
const reporterTenants = new Set<string>();

test.before(async () => {
  const { outFile } = await buildPlugin('test/fixtures/plugins/prompt-embed-reporter.ts', 'build/test/plugins/prompt-embed-reporter.wasm');
  const builtin = await loadBuiltinModules();
  reporter = { retrieval: builtin.retrieval, prompt: await compilePlugin(await readFile(outFile)) };
  embeddings = await startEmbeddingsServer(64);
  // The reporter's only system message is its report; the model echoes it.
  model = await startModelServer({ answer: (body) => [String(body.messages[0].content)] });
  host = await startTestHost({
    config: { embedUrl: embeddings.url, embedModel: 'mini', modelUrl: model.url, modelProvider: 'openai' },
    pluginModulesFor: (tenantId) => (reporterTenants.has(tenantId) ? reporter : undefined),
  });
});
test.after(async () => {
  await host.close();
  await model.close();
  await embeddings.close();
});

async function askFresh(apiKey: string, text: string) {
  const client = await host.chat(apiKey);
  try {
    return (await host.ask(client, text)).result;
  } finally {
    client.close();
  }
}

/** Texts the provider was asked to embed since `from` requests ago. */
const sentSince = (from: number): string[] => embeddings.requests.slice(from).flatMap((request) => request.body.input);

test('the host probes the provider at start and uses its id', () => {
  assert.is(host.server.embedder.id, 'openai-embed:mini@64');
  assert.ok(host.server.embedder.costly);
  assert.equal(embeddings.requests[0]?.body.input, ['dimension probe']);
});

test('ingestion, exact hits, semantic hits and repeated questions: each text goes to the provider once', async () => {
  const tenant = await host.createTenant('Remote');
  let mark = embeddings.requests.length;
  await host.ingest(tenant.apiKey, [
    { id: 'shipping', title: 'Shipping', text: 'Express delivery costs 15 euros and arrives the next working day.' },
    { id: 'hours', title: 'Opening hours', text: 'On Sunday the stores are open from 11 am to 4 pm.' },
  ]);
  assert.is(embeddings.requests.length, mark + 1, 'one batch for the whole ingest');
  assert.is(sentSince(mark).length, 2);
  const question = 'How much does express delivery cost?';
  mark = embeddings.requests.length;
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'miss');
  assert.equal(sentSince(mark), [question]);
  await host.writesLanded(tenant.id);
  mark = embeddings.requests.length;
  assert.is((await askFresh(tenant.apiKey, question)).cache, 'hit');
  assert.equal(sentSince(mark), [], 'the exact path needs no embedding');
  const paraphrase = 'How much does the express delivery cost?';
  const semantic = await askFresh(tenant.apiKey, paraphrase);
  assert.equal([semantic.cache, (semantic as any).cacheMatch], ['hit', 'semantic']);
  assert.equal(sentSince(mark), [paraphrase]);
  await host.request('PATCH', '/v1/config', tenant.apiKey, { cache: { enabled: false } });
  await host.writesLanded(tenant.id);
  mark = embeddings.requests.length;
  assert.is((await askFresh(tenant.apiKey, paraphrase)).cache, 'miss');
  assert.equal(sentSince(mark), [], 'the question’s vector comes from the embedding cache');
  const stats = (await host.request('GET', '/v1/cache/stats', tenant.apiKey)).body;
  assert.is(stats.embeddingCacheEntries, 4, 'two chunks and two questions');
  const cleared = (await host.request('DELETE', '/v1/cache', tenant.apiKey)).body;
  assert.equal(cleared.deleted, { entries: 1, embeddings: 4 });
  mark = embeddings.requests.length;
  await askFresh(tenant.apiKey, paraphrase);
  assert.equal(sentSince(mark), [paraphrase], 'after DELETE /v1/cache the provider is asked again');
});

test('the embed host function: the ask’s own question, then the embedding cache, else a readable refusal', async () => {
  const tenant = await host.createTenant('Reporter');
  reporterTenants.add(tenant.id);
  const other = 'What are the opening hours?';
  const refused = (await askFresh(tenant.apiKey, 'Where is the shop?')).answer;
  assert.match(refused, /^question=dim 64 other=status 1 embed: the embedder openai-embed:mini@64 is remote and embeds asynchronously only/);
  assert.is((await askFresh(tenant.apiKey, other)).answer, 'question=dim 64 other=dim 64', 'the other text is this ask’s question');
  await host.writesLanded(tenant.id);
  const mark = embeddings.requests.length;
  assert.is((await askFresh(tenant.apiKey, 'Where is the bike shop?')).answer, 'question=dim 64 other=dim 64', 'served from the embedding cache');
  assert.not.ok(sentSince(mark).includes(other), 'without asking the provider');
  const stranger = await host.createTenant('Stranger');
  reporterTenants.add(stranger.id);
  assert.match((await askFresh(stranger.apiKey, 'Where is the shop?')).answer, /other=status 1 /, 'another tenant’s embedding cache is not this one');
});

test('a provider failure during an ask is EMBED_FAILED and the session carries on', async () => {
  const tenant = await host.createTenant('Flaky');
  const client = await host.chat(tenant.apiKey);
  try {
    embeddings.mode = 'http-500';
    try {
      await host.ask(client, 'Is anyone there?');
      assert.unreachable();
    } catch (error) {
      assert.is((error as { code: string }).code, 'EMBED_FAILED');
      assert.match((error as Error).message, /answered HTTP 500/);
    } finally {
      embeddings.mode = 'ok';
    }
    assert.type((await host.ask(client, 'Is anyone there?')).result.answer, 'string');
  } finally {
    client.close();
  }
});

test.run();
