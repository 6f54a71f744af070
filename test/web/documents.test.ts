/**
 * The console's upload planning (host/web/client/documents.ts), run in Node: files become
 * documents as the README says, and batches stay within the host's per-request limits on both
 * sides (documents per request, body bytes).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { BATCH_BYTES_MAX, DocumentFileError, documentId, documentsFromFile, planBatches } from '../../host/web/client/documents.ts';

test('a text or Markdown file is one document: id from the name, title from the first heading', () => {
  assert.equal(documentsFromFile('Returns policy.md', 'Intro\n\n## Returns and refunds ##\nThirty days.'), [
    { id: 'Returns-policy', title: 'Returns and refunds', text: 'Intro\n\n## Returns and refunds ##\nThirty days.' },
  ]);
  assert.equal(documentsFromFile('notes.txt', 'plain'), [{ id: 'notes', title: 'notes', text: 'plain' }]);
  assert.is(documentId('../../ü.txt'), undefined);
  assert.is(documentId('-x y.txt'), 'x-y');
});

test('JSON holds {documents}, an array or one document; JSONL one per line', () => {
  const doc = { id: 'a', title: 'A', text: 'alpha' };
  assert.equal(documentsFromFile('x.json', JSON.stringify({ documents: [doc] })), [doc]);
  assert.equal(documentsFromFile('x.json', JSON.stringify([doc, { text: 'beta' }])), [doc, { text: 'beta' }]);
  assert.equal(documentsFromFile('x.json', JSON.stringify(doc)), [doc]);
  assert.equal(documentsFromFile('x.jsonl', `${JSON.stringify(doc)}\n\n{"text":"beta"}\n`), [doc, { text: 'beta' }]);
});

test('unreadable files are refused with the file (and line or item) named', () => {
  const refused = (name: string, text: string, pattern: RegExp) =>
    assert.throws(() => documentsFromFile(name, text), (error: unknown) => error instanceof DocumentFileError && pattern.test(error.message));
  refused('bad.json', '{', /^bad\.json is not valid JSON/);
  refused('bad.jsonl', '{"text":"ok"}\n[', /^bad\.jsonl line 2 is not valid JSON/);
  refused('empty.json', '[]', /^empty\.json holds no documents/);
  refused('items.json', '[{"text":"ok"},{"title":"no text"}]', /^items\.json item 2 is not a document/);
});

test(`documentsPerRequestMax (${LIMITS.documentsPerRequestMax}) documents make one batch; one more makes two`, () => {
  const docs = (count: number) => Array.from({ length: count }, (_, index) => ({ id: `d${index}`, text: 'x' }));
  assert.equal(planBatches(docs(LIMITS.documentsPerRequestMax)).map((batch) => batch.documents.length), [LIMITS.documentsPerRequestMax]);
  assert.equal(planBatches(docs(LIMITS.documentsPerRequestMax + 1)).map((batch) => batch.documents.length), [LIMITS.documentsPerRequestMax, 1]);
});

test('a batch body stays within the byte budget; at the budget it is one batch, one byte over two', () => {
  const doc = (text: string) => ({ text });
  // Two documents whose body is exactly the budget: `{"documents":[` + a + `,` + b + `]}`.
  const fixed = JSON.stringify({ documents: [doc(''), doc('')] }).length;
  const fill = 'y'.repeat(BATCH_BYTES_MAX - fixed - 1);
  const atBudget = planBatches([doc(fill), doc('z')]);
  assert.is(atBudget.length, 1);
  assert.is(atBudget[0]?.bytes, BATCH_BYTES_MAX);
  assert.is(planBatches([doc(`${fill}y`), doc('z')]).length, 2);
  assert.ok(BATCH_BYTES_MAX <= LIMITS.httpBodyBytesMax);
  // A single document larger than the budget still goes (alone): the host judges it.
  assert.equal(planBatches([doc('w'.repeat(BATCH_BYTES_MAX))]).map((batch) => batch.documents.length), [1]);
});

test.run();
