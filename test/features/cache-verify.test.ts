/**
 * The semantic cache's verifier through the real server and a real WebSocket client, at the default
 * threshold: an answer cached for "first day at CMS Energy" is not served for "first day at Peabody
 * Energy" (or for another CFA level), though the embeddings alone would have served it, while a true
 * paraphrase of the cached question is still answered from the cache.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { TENANT_SETTINGS_DEFAULTS } from '../../host/tenants/settings.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

let host: TestHost;
let tenant: { id: string; apiKey: string };

const CACHED = 'What should I expect on my first day at CMS Energy?';
const OTHER_COMPANY = 'What should I expect on my first day at Peabody Energy?';
const PARAPHRASE = 'What should I expect on the first day at CMS Energy?';

test.before(async () => {
  host = await startTestHost();
  tenant = await host.createTenant('Onboarding');
  await host.ingest(tenant.apiKey, [
    { id: 'cms', title: 'CMS Energy onboarding', text: 'On your first day at CMS Energy you collect your badge at the Jackson office at 9 am and meet your mentor.' },
    { id: 'peabody', title: 'Peabody Energy onboarding', text: 'On your first day at Peabody Energy you join the safety briefing at the St. Louis site at 7 am.' },
    { id: 'cfa', title: 'CFA study plan', text: 'For CFA level I plan 300 hours of study; for CFA level III plan 350 hours with essay practice.' },
  ]);
});
test.after(async () => {
  await host.close();
});

/** One ask in a fresh session (the cache serves first turns only). */
async function askFresh(text: string) {
  const client = await host.chat(tenant.apiKey);
  try {
    return (await host.ask(client, text)).result as { answer: string; cache: string; cacheMatch?: string; similarity?: number };
  } finally {
    client.close();
  }
}

async function stats(): Promise<Record<string, number>> {
  const response = await host.request('GET', '/v1/cache/stats', tenant.apiKey);
  assert.is(response.status, 200);
  return response.body;
}

/** Cosine of the local embedder, which the test host uses: shows the embedding alone would serve the hit. */
function cosine(a: string, b: string): number {
  const embedder = createLocalEmbedder();
  const x = embedder.embed(a);
  const y = embedder.embed(b);
  return x.reduce((sum, value, i) => sum + value * (y[i] as number), 0);
}

test('"first day at CMS Energy" cached does not answer "first day at Peabody Energy"; a true paraphrase still hits', async () => {
  const threshold = TENANT_SETTINGS_DEFAULTS.cache.threshold;
  assert.ok(cosine(CACHED, OTHER_COMPANY) >= threshold, `precondition: similar enough to be served without the verifier (${cosine(CACHED, OTHER_COMPANY)})`);
  assert.ok(cosine(CACHED, PARAPHRASE) >= threshold, 'precondition: the paraphrase is similar enough too');

  const first = await askFresh(CACHED);
  assert.is(first.cache, 'miss');
  assert.match(first.answer, /CMS Energy/);
  const before = await stats();

  const other = await askFresh(OTHER_COMPANY);
  assert.is(other.cache, 'miss', 'another company: answered afresh, not from the cache');
  assert.is.not(other.answer, first.answer);
  assert.match(other.answer, /Peabody Energy/);

  const paraphrase = await askFresh(PARAPHRASE);
  assert.equal({ cache: paraphrase.cache, match: paraphrase.cacheMatch, answer: paraphrase.answer }, { cache: 'hit', match: 'semantic', answer: first.answer });

  const after = await stats();
  assert.is((after['vetoed'] ?? 0) - (before['vetoed'] ?? 0), 1, 'the refusal is counted');
});

test('"CFA level I" cached does not answer "CFA level 3"; "CFA level 1" is the same question', async () => {
  const cached = 'How many hours should I plan for CFA level I?';
  const other = 'How many hours should I plan for CFA level 3?';
  const same = 'How many hours should I plan for the CFA level 1?';
  assert.ok(cosine(cached, other) >= TENANT_SETTINGS_DEFAULTS.cache.threshold, 'precondition');
  const first = await askFresh(cached);
  assert.is(first.cache, 'miss');
  assert.is((await askFresh(other)).cache, 'miss');
  const rewritten = await askFresh(same);
  assert.equal({ cache: rewritten.cache, answer: rewritten.answer }, { cache: 'hit', answer: first.answer });
});

test.run();
