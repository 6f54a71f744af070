/**
 * POST /v1/documents: bad bodies get a clear error naming what was wrong and store nothing; good
 * ones are chunked with overlap, keep their metadata, replace by id, and are searchable at once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

let host: TestHost;
let tenant: { id: string; apiKey: string };

test.before(async () => {
  host = await startTestHost();
  tenant = await host.createTenant('Docs Co');
});
test.after(async () => {
  await host.close();
});

const post = (body: unknown) => host.request('POST', '/v1/documents', tenant.apiKey, body);
const count = async () => (await host.request('GET', '/v1/documents', tenant.apiKey)).body;

test('bad bodies are refused with the field named, and nothing is stored', async () => {
  const cases: [unknown, RegExp][] = [
    [[], /body must be an object/],
    [{}, /documents must be an array/],
    [{ documents: [] }, /documents must hold 1\.\.1000 items, got 0/],
    [{ documents: [{ text: 'ok' }, { text: '' }] }, /documents\[1\]\.text must be a non-empty string/],
    [{ documents: [{ text: 'ok', id: 'has space' }] }, /documents\[0\]\.id must be/],
    [{ documents: [{ text: 'ok', metadata: { n: 1 } }] }, /documents\[0\]\.metadata\.n must be a string/],
    [{ documents: [{ text: 'ok', colour: 'red' }] }, /documents\[0\] has unknown key "colour"/],
    [{ documents: [{ id: 'x', text: 'a' }, { id: 'x', text: 'b' }] }, /documents\[1\]\.id "x" repeats/],
    [{ documents: [{ text: 'ok' }], extra: true }, /unknown body key "extra"/],
    // Raw JSON: an object literal would set the prototype instead of making the key. These keys
    // were dropped silently (__proto__) or kept as traps for later readers (constructor, prototype).
    ...['__proto__', 'constructor', 'prototype'].map((key): [unknown, RegExp] => [
      `{"documents":[{"text":"ok","metadata":{"lang":"en","${key}":"x"}}]}`,
      new RegExp(`^documents\\[0\\]\\.metadata has the key "${key}", which is reserved$`),
    ]),
  ];
  for (const [body, message] of cases) {
    const response = await post(body);
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.equal(response.body.error.code, 'DOCUMENT_INVALID');
    assert.match(response.body.error.message, message);
  }
  const bad = await host.request('POST', '/v1/documents', tenant.apiKey, '{"documents": [');
  assert.equal(bad.body.error.code, 'HTTP_BODY_INVALID');
  assert.equal((await count()).documents, []);
  assert.equal((await count()).chunks, 0);
});

test('documents per request and characters per document: at the limit pass, one over fails', async () => {
  const many = Array.from({ length: LIMITS.documentsPerRequestMax }, (_, i) => ({ id: `n${i}`, text: `note ${i}` }));
  assert.equal((await post({ documents: many })).body.inserted, LIMITS.documentsPerRequestMax);
  const tooMany = [...many, { id: 'one-more', text: 'x' }];
  assert.match((await post({ documents: tooMany })).body.error.message, /got 1001/);
  const big = 'word '.repeat(LIMITS.documentCharsMax / 5);
  assert.equal((await post({ documents: [{ id: 'big', text: big }] })).status, 200);
  const over = (await post({ documents: [{ id: 'bigger', text: big + 'x' }] })).body.error;
  assert.equal(over.code, 'DOCUMENT_INVALID');
  assert.match(over.message, /1000001 characters, limit 1000000/);
  await host.request('DELETE', '/v1/documents/big', tenant.apiKey);
});

test('long documents are chunked with overlap and keep title and metadata', async () => {
  const sentences = Array.from({ length: 60 }, (_, i) => `Sentence number ${i} talks about topic ${i % 7}.`).join(' ');
  const response = await post({ documents: [{ id: 'long', title: 'Long one', text: sentences, metadata: { lang: 'en' } }] });
  assert.equal(response.status, 200);
  assert.ok(response.body.chunks > 1, `chunks: ${response.body.chunks}`);
  const listed = (await count()).documents.find((doc: { id: string }) => doc.id === 'long');
  assert.equal(listed.metadata, { lang: 'en' });
  assert.equal(listed.title, 'Long one');
  const client = await host.chat(tenant.apiKey);
  const { result } = await host.ask(client, 'Which topic does sentence number 45 talk about?');
  assert.ok(result.answer.includes('Sentence number 45 talks about topic 3'), result.answer);
  client.close();
});

test('re-posting an id replaces the document; an unchanged repost is a no-op; delete removes it', async () => {
  const first = await post({ documents: [{ id: 'menu', text: 'The soup of the day is tomato.' }] });
  assert.equal(first.body.inserted, 1);
  const same = await post({ documents: [{ id: 'menu', text: 'The soup of the day is tomato.' }] });
  assert.equal([same.body.unchanged, same.body.generation], [1, first.body.generation]);
  const replaced = await post({ documents: [{ id: 'menu', text: 'The soup of the day is leek.' }] });
  assert.equal(replaced.body.updated, 1);
  assert.ok(replaced.body.generation > first.body.generation);
  const client = await host.chat(tenant.apiKey);
  const { result } = await host.ask(client, 'What is the soup of the day?');
  assert.ok(result.answer.includes('leek') && !result.answer.includes('tomato'), result.answer);
  const deleted = await host.request('DELETE', '/v1/documents/menu', tenant.apiKey);
  assert.equal(deleted.status, 200);
  const after = await host.ask(client, 'What is the soup of the day?');
  assert.not.ok(after.result.sources.some((source) => source.docId === 'menu'));
  const missing = await host.request('DELETE', '/v1/documents/menu', tenant.apiKey);
  assert.equal([missing.status, missing.body.error.code], [404, 'DOCUMENT_NOT_FOUND']);
  client.close();
});

test('tenant settings: unknown keys and out-of-range values are refused with the setting named', async () => {
  const cases: [unknown, RegExp][] = [
    [{ colour: 'red' }, /colour: unknown setting/],
    [{ topK: 0 }, /topK: must be an integer in 1\.\.32, got 0/],
    [{ topK: 33 }, /topK: must be an integer in 1\.\.32, got 33/],
    [{ model: { provider: 'gpt' } }, /model\.provider: must be default, local or openai/],
    [{ systemPrompt: 'x'.repeat(LIMITS.systemPromptCharsMax + 1) }, /systemPrompt: must be a string of at most 8000/],
  ];
  for (const [patch, message] of cases) {
    const response = await host.request('PATCH', '/v1/config', tenant.apiKey, patch);
    assert.equal([response.status, response.body.error.code], [400, 'CONFIG_INVALID']);
    assert.match(response.body.error.message, message);
  }
  const ok = await host.request('PATCH', '/v1/config', tenant.apiKey, { topK: 32, systemPrompt: 'x'.repeat(LIMITS.systemPromptCharsMax) });
  assert.equal([ok.status, ok.body.topK], [200, 32]);
  const read = await host.request('GET', '/v1/config', tenant.apiKey);
  assert.equal(read.body.topK, 32);
  const routed = await host.request('PATCH', '/v1/config', tenant.apiKey, { model: { provider: 'openai' } });
  assert.equal(routed.status, 200);
  const client = await host.chat(tenant.apiKey);
  try {
    await host.ask(client, 'anything');
    assert.unreachable();
  } catch (error) {
    assert.equal((error as { code: string }).code, 'MODEL_FAILED');
    assert.match((error as Error).message, /openai is not configured on this host/);
  }
  client.close();
  await host.request('PATCH', '/v1/config', tenant.apiKey, { model: { provider: 'default' } });
});

test('unknown routes and wrong methods say what exists', async () => {
  const missing = await host.request('GET', '/v1/nothing', tenant.apiKey);
  assert.equal([missing.status, missing.body.error.code], [404, 'HTTP_NOT_FOUND']);
  const wrong = await host.request('PUT', '/v1/documents', tenant.apiKey, {});
  assert.match(wrong.body.error.message, /PUT is not allowed on \/v1\/documents; use POST, GET/);
});

test('HEAD answers like GET, without a body', async () => {
  const head = await fetch(`${host.url}/healthz`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  const page = await fetch(`${host.url}/`, { method: 'HEAD' });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
});

test.run();
