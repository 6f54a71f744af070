/**
 * Invariants 1, 2 and 4 end to end, played as an attacker would: two tenants with near-identical
 * documents ask the same questions; a fact only tenant B holds must never reach tenant A, and every
 * source of every answer must be the asking tenant's own.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestHost, type TestHost } from '../helpers/host.ts';

const shared = (company: string, wifi: string) => [
  { id: 'handbook', title: `${company} staff handbook`, text: `The ${company} office opens at 8 am. The office wifi password is ${wifi}. Visitors sign in at the front desk.` },
  { id: 'leave', title: `${company} leave policy`, text: `Staff at ${company} get 25 days of paid leave per year. Unused leave expires at the end of March.` },
];
const QUESTIONS = ['What is the office wifi password?', 'How many days of paid leave do staff get?', 'What is the launch codename?'];

let host: TestHost;
let a: { id: string; apiKey: string };
let b: { id: string; apiKey: string };

test.before(async () => {
  host = await startTestHost();
  a = await host.createTenant('Acme');
  b = await host.createTenant('Bravo');
  await host.ingest(a.apiKey, shared('Acme', 'alpha-river-42'));
  await host.ingest(b.apiKey, [
    ...shared('Bravo', 'bravo-stone-77'),
    { id: 'launch', title: 'Bravo launch plan', text: 'The secret launch codename is Nightjar. The launch is planned for the spring.' },
  ]);
});

test.after(async () => {
  await host.close();
});

test('every source of every answer belongs to the asking tenant', async () => {
  for (const [tenant, company] of [[a, 'Acme'], [b, 'Bravo']] as const) {
    const client = await host.chat(tenant.apiKey);
    for (const question of QUESTIONS) {
      const { result } = await host.ask(client, question);
      for (const source of result.sources) {
        assert.ok(source.title.startsWith(company), `${company} got a source titled ${source.title}`);
      }
    }
    client.close();
  }
});

test('a fact only tenant B holds never appears in tenant A answers', async () => {
  const client = await host.chat(a.apiKey);
  for (const question of [...QUESTIONS, 'Nightjar', 'What is Bravo planning for the spring launch?', 'bravo-stone-77']) {
    const { tokens, result } = await host.ask(client, question);
    const streamed = tokens.join('');
    for (const secret of ['Nightjar', 'bravo-stone-77', 'Bravo']) {
      assert.not.ok(result.answer.includes(secret), `A's answer to ${JSON.stringify(question)} holds ${secret}`);
      assert.not.ok(streamed.includes(secret), `A's stream for ${JSON.stringify(question)} holds ${secret}`);
    }
    assert.not.ok(result.sources.some((source) => source.docId === 'launch'), 'A got B-only document as a source');
  }
  client.close();
});

test('each tenant gets its own answer to the same question', async () => {
  const clientA = await host.chat(a.apiKey);
  const clientB = await host.chat(b.apiKey);
  const fromA = await host.ask(clientA, 'What is the office wifi password?');
  const fromB = await host.ask(clientB, 'What is the office wifi password?');
  assert.ok(fromA.result.answer.includes('alpha-river-42'), fromA.result.answer);
  assert.ok(fromB.result.answer.includes('bravo-stone-77'), fromB.result.answer);
  assert.equal(fromA.tokens.join(''), fromA.result.answer, 'streamed tokens join to the answer');
  clientA.close();
  clientB.close();
});

test('B sees its B-only fact (so the test above can fail)', async () => {
  const client = await host.chat(b.apiKey);
  const { result } = await host.ask(client, 'What is the secret launch codename?');
  assert.ok(result.answer.includes('Nightjar'), result.answer);
  assert.ok(result.sources.some((source) => source.docId === 'launch'));
  client.close();
});

test.run();
