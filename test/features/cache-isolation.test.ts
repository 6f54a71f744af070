/**
 * The semantic cache through the real server, played as an attacker: two tenants asking the same
 * questions verbatim never get each other's answers (entries live in each tenant's own environment);
 * with `user` scope one end user never gets another's; and a cached answer meets the stream guard
 * like a model's — one that carries another tenant's canary is blocked and dropped.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SemanticCache } from '../../host/cache/semantic-cache.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { ChatError } from '../../sdk/client/client.ts';
import { connect } from '../../sdk/client/node.ts';
import { within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

let host: TestHost;

const QUESTIONS = [
  'How much does express delivery cost?',
  'How long does standard delivery take?',
  'Can I return a bike I rode?',
  'When are the stores open on Sunday?',
];

/** Same document ids and titles in both tenants, different facts: the worst case for a key without tenant identity. */
const documentsFor = (price: string, days: string, returns: string, sunday: string) => [
  { id: 'shipping', title: 'Shipping', text: `Express delivery costs ${price} and arrives the next working day. Standard delivery takes ${days}.` },
  { id: 'returns', title: 'Returns', text: `Returns: ${returns}` },
  { id: 'hours', title: 'Opening hours', text: `On Sunday the stores are open ${sunday}.` },
];

test.before(async () => {
  host = await startTestHost();
});
test.after(async () => {
  await host.close();
});

/** One ask in a fresh session (the cache serves first turns). */
async function askFresh(apiKey: string, text: string) {
  const client = await host.chat(apiKey);
  try {
    return await host.ask(client, text);
  } finally {
    client.close();
  }
}

async function statsOf(apiKey: string): Promise<Record<string, number>> {
  const response = await host.request('GET', '/v1/cache/stats', apiKey);
  assert.is(response.status, 200);
  return response.body;
}

test('two tenants asking the same questions verbatim: zero hits across tenants, hits within each', async () => {
  const a = await host.createTenant('Alpha Bikes');
  const b = await host.createTenant('Beta Bikes');
  await host.ingest(a.apiKey, documentsFor('15 euros', 'three days', 'within 30 days, unridden only.', 'from 11 am to 4 pm'));
  await host.ingest(b.apiKey, documentsFor('42 euros', 'nine days', 'never accepted once ridden.', 'from noon to 2 pm'));
  const first = { a: new Map<string, string>(), b: new Map<string, string>() };
  for (const question of QUESTIONS) {
    const fromA = await askFresh(a.apiKey, question);
    assert.is(fromA.result.cache, 'miss', `A: ${question}`);
    first.a.set(question, fromA.result.answer);
    // B asks right after A cached the very same text: a key without the tenant would hit here.
    const fromB = await askFresh(b.apiKey, question);
    assert.is(fromB.result.cache, 'miss', `B: ${question}`);
    first.b.set(question, fromB.result.answer);
  }
  assert.ok(first.a.get(QUESTIONS[0]!)!.includes('15 euros') && first.b.get(QUESTIONS[0]!)!.includes('42 euros'), 'the tenants really answer differently');
  for (const question of QUESTIONS) {
    for (const [tenant, key] of [['a', a.apiKey], ['b', b.apiKey]] as const) {
      const { tokens, result } = await askFresh(key, question);
      assert.is(result.cache, 'hit', `${tenant}: ${question}`);
      assert.is(result.answer, first[tenant].get(question), `${tenant} gets its own answer`);
      assert.is(tokens.join(''), result.answer, 'a hit streams its answer as token frames before done');
    }
  }
  for (const key of [a.apiKey, b.apiKey]) {
    const stats = await statsOf(key);
    assert.equal({ hits: stats['hits'], misses: stats['misses'], entries: stats['entries'] }, { hits: QUESTIONS.length, misses: QUESTIONS.length, entries: QUESTIONS.length });
  }
});

test('a hit carries the original sources, the similarity and the path, and streams tokens first', async () => {
  const tenant = await host.createTenant('Gamma');
  await host.ingest(tenant.apiKey, documentsFor('15 euros', 'three days', 'within 30 days.', 'from 11 am to 4 pm'));
  const miss = (await askFresh(tenant.apiKey, 'How much does express delivery cost?')).result;
  const exact = await askFresh(tenant.apiKey, 'how much does EXPRESS delivery cost?');
  assert.equal(exact.result.sources, miss.sources);
  assert.ok(exact.result.sources.length > 0);
  assert.equal([(exact.result as any).cacheMatch, (exact.result as any).similarity], ['exact', 1]);
  assert.ok(exact.tokens.length >= 1);
  const similar = (await askFresh(tenant.apiKey, 'How much does the express delivery cost?')).result as any;
  assert.is(similar.cache, 'hit');
  assert.is(similar.cacheMatch, 'semantic');
  assert.ok(similar.similarity >= 0.92 && similar.similarity < 1, String(similar.similarity));
  assert.equal(similar.sources, miss.sources);
});

test('user scope: one end user never gets another user’s cached answer; without a user nothing is cached', async () => {
  const tenant = await host.createTenant('Delta');
  await host.ingest(tenant.apiKey, documentsFor('15 euros', 'three days', 'within 30 days.', 'from 11 am to 4 pm'));
  assert.is((await host.request('PATCH', '/v1/config', tenant.apiKey, { cache: { scope: 'user' } })).status, 200);
  const askAs = async (user: string, text: string) => {
    const { body } = await host.request('POST', '/v1/tickets', tenant.apiKey, { user });
    const client = await within(connect({ url: host.url, ticket: body.ticket }), 'ticket connect');
    try {
      return (await host.ask(client, text)).result;
    } finally {
      client.close();
    }
  };
  const question = 'How much does express delivery cost?';
  assert.is((await askAs('alice', question)).cache, 'miss');
  assert.is((await askAs('alice', question)).cache, 'hit', 'alice gets her own');
  assert.is((await askAs('bob', question)).cache, 'miss', 'bob does not get alice’s');
  assert.is((await askAs('bob', 'How much does the express delivery cost?')).cache, 'hit', 'bob’s own paraphrase hits bob’s entry');
  const before = await statsOf(tenant.apiKey);
  assert.is((await askFresh(tenant.apiKey, question)).result.cache, 'miss', 'an API-key session has no end user');
  assert.is((await askFresh(tenant.apiKey, question)).result.cache, 'miss', 'and is never cached');
  const after = await statsOf(tenant.apiKey);
  assert.is(after['bypassed']! - before['bypassed']!, 2);
  assert.is(after['entries'], before['entries']);
});

test('a cached answer carrying another tenant’s canary is blocked by the stream guard and dropped', async () => {
  const victim = await host.createTenant('Victim');
  const other = await host.createTenant('Other');
  await host.ingest(victim.apiKey, documentsFor('15 euros', 'three days', 'within 30 days.', 'from 11 am to 4 pm'));
  const question = 'How much does express delivery cost?';
  await askFresh(victim.apiKey, question);
  // The entry is written asynchronously; the edit below must land after it, not be overwritten by it.
  await host.writesLanded(victim.id);
  const otherCanary = host.server.authority.registry.findTenant(other.id)?.canary ?? '';
  // A bug (or a corrupted page) puts foreign material into the stored answer.
  const scope = mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), victim.id);
  const [stored] = [...scope.store.semanticCache.entries()];
  assert.ok(stored !== undefined);
  scope.store.transaction(() => scope.store.semanticCache.put(stored.key, { ...(stored.value as object), answer: `Fifteen euros, and ${otherCanary}.` }));
  const client = await host.chat(victim.apiKey);
  const handle = client.ask(question);
  const tokens: string[] = [];
  try {
    for await (const token of handle.tokens) tokens.push(token);
    assert.unreachable('the ask must fail');
  } catch (error) {
    assert.instance(error, ChatError);
    assert.is((error as ChatError).code, 'LEAK_BLOCKED');
  }
  client.close();
  assert.not.ok(tokens.join('').includes('ctxcanary-'), 'not even the start of the canary was sent');
  assert.is(SemanticCache.of(scope.store, host.server.embedder).stats().entries, 0, 'the entry is dropped');
  scope.release();
  assert.is((await askFresh(victim.apiKey, question)).result.cache, 'miss', 'answered afresh');
});

test.run();
