import { AssertionError } from 'node:assert';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { Bm25Index, termFrequencies } from '../../host/retrieval/bm25.ts';
import { tokenize } from '../../host/retrieval/tokenize.ts';
import type { ScoredRow } from '../../host/retrieval/vector-index.ts';

/** mulberry32: reproducible random data. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Textbook Okapi BM25 over a plain list of documents, scoring every one: the reference. */
function naiveSearch(docs: Map<number, string[]>, query: readonly string[], k: number, accept?: (row: number) => boolean): ScoredRow[] {
  const n = docs.size;
  const averageLength = [...docs.values()].reduce((sum, doc) => sum + doc.length, 0) / n;
  const terms = [...new Set(query)];
  const hits: ScoredRow[] = [];
  for (const [row, doc] of docs) {
    let score = 0;
    for (const term of terms) {
      const tf = doc.filter((token) => token === term).length;
      if (tf === 0) continue;
      const df = [...docs.values()].filter((other) => other.includes(term)).length;
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
      score += (idf * tf * 2.2) / (tf + 1.2 * (1 - 0.75 + (0.75 * doc.length) / averageLength));
    }
    if (score > 0 && (accept === undefined || accept(row))) hits.push({ row, score });
  }
  return hits.sort((a, b) => b.score - a.score || a.row - b.row).slice(0, k);
}

function assertSameResults(actual: ScoredRow[], expected: ScoredRow[]): void {
  assert.equal(actual.map((hit) => hit.row), expected.map((hit) => hit.row));
  actual.forEach((hit, i) => assert.ok(Math.abs(hit.score - (expected[i] as ScoredRow).score) < 1e-9, `score of row ${hit.row}`));
}

function addDoc(index: Bm25Index, row: number, tokens: string[]): void {
  index.add(row, termFrequencies(tokens), tokens.length);
}

function randomCorpus(seed: number, rows: number): Map<number, string[]> {
  const next = random(seed);
  const docs = new Map<number, string[]>();
  for (let row = 0; row < rows; row++) {
    // Zipf-like vocabulary: low term numbers are common, high ones rare.
    docs.set(row, Array.from({ length: 5 + Math.floor(next() * 40) }, () => `t${Math.floor(200 * next() ** 3)}`));
  }
  return docs;
}

function expectAssertion(action: () => unknown, message: RegExp): void {
  assert.throws(action, (error: unknown) => error instanceof AssertionError && message.test(error.message));
}

test('termFrequencies counts each token', () => {
  assert.equal([...termFrequencies(['a', 'b', 'a', 'c', 'a'])], [['a', 3], ['b', 1], ['c', 1]]);
  assert.equal(termFrequencies([]).size, 0);
});

test('the document with the rare term ranks first', () => {
  const index = new Bm25Index();
  const texts = [
    'The cache stores answers for the tenant.',
    'A cache entry expires after its TTL; the cache is per tenant.',
    'Canary tokens in the cache reveal a leak between tenants.',
    'The cache is keyed by the model and the prompt.',
  ];
  texts.forEach((text, row) => addDoc(index, row, tokenize(text)));
  const hits = index.search(tokenize('cache canary'), 4);
  assert.is(hits[0]?.row, 2);
  assert.is(hits.length, 4);
});

test('scores equal the textbook formula (k1 = 1.2, b = 0.75, idf with +1) on random data', () => {
  const docs = randomCorpus(1, 400);
  const index = new Bm25Index();
  for (const [row, tokens] of docs) addDoc(index, row, tokens);
  const next = random(2);
  for (const k of [1, 8, 50, 1_000]) {
    const query = Array.from({ length: 6 }, () => `t${Math.floor(200 * next())}`);
    assertSameResults(index.search(query, k), naiveSearch(docs, query, k));
  }
});

test('shorter documents win at equal term frequency; more occurrences score higher but saturate', () => {
  const index = new Bm25Index();
  addDoc(index, 0, ['alpha', 'x', 'x', 'x', 'x', 'x', 'x', 'x']);
  addDoc(index, 1, ['alpha', 'y']);
  addDoc(index, 2, ['beta']);
  assert.equal(index.search(['alpha'], 2).map((hit) => hit.row), [1, 0]);
  const saturation = new Bm25Index();
  [1, 2, 10, 100].forEach((tf, row) => addDoc(saturation, row, Array.from({ length: 100 }, (_, i) => (i < tf ? 'gamma' : `pad${i}`))));
  addDoc(saturation, 4, ['delta']);
  const scores = saturation.search(['gamma'], 4).sort((a, b) => a.row - b.row).map((hit) => hit.score);
  assert.equal([...scores].sort((a, b) => a - b), scores, 'more occurrences, higher score');
  assert.is(new Set(scores).size, 4);
  assert.ok((scores[3] as number) < 2.2 * Math.log(1 + 1.5 / 4.5) + 1e-9, 'bounded by idf · (k1 + 1)');
});

test('delete really removes and updates the statistics; re-adding a row replaces it', () => {
  const docs = randomCorpus(3, 300);
  const index = new Bm25Index();
  for (const [row, tokens] of docs) addDoc(index, row, tokens);
  const next = random(4);
  // Delete most rows so the compaction of posting lists runs, then re-add some with new content.
  for (let row = 0; row < 300; row++) {
    if (next() < 0.7) {
      assert.ok(index.delete(row));
      assert.not.ok(index.delete(row));
      docs.delete(row);
    }
  }
  for (let row = 0; row < 300; row += 7) {
    const tokens = Array.from({ length: 10 }, () => `t${Math.floor(200 * next() ** 3)}`);
    addDoc(index, row, tokens);
    docs.set(row, tokens);
  }
  assert.is(index.size, docs.size);
  for (let i = 0; i < 20; i++) {
    const query = Array.from({ length: 4 }, () => `t${Math.floor(200 * next() ** 2)}`);
    assertSameResults(index.search(query, 20), naiveSearch(docs, query, 20));
  }
});

test('re-adding a live row does not double count it', () => {
  const index = new Bm25Index();
  addDoc(index, 0, ['apple', 'pear']);
  addDoc(index, 1, ['plum']);
  addDoc(index, 0, ['plum', 'fig']);
  assert.is(index.size, 2);
  assert.equal(index.search(['apple'], 5), []);
  const docs = new Map([[0, ['plum', 'fig']], [1, ['plum']]]);
  assertSameResults(index.search(['plum', 'fig'], 5), naiveSearch(docs, ['plum', 'fig'], 5));
});

test('the accept filter is respected; unknown terms, k = 0 and duplicates in the query', () => {
  const docs = randomCorpus(5, 200);
  const index = new Bm25Index();
  for (const [row, tokens] of docs) addDoc(index, row, tokens);
  const accept = (row: number): boolean => row % 3 === 1;
  const hits = index.search(['t0', 't5', 't9'], 10, accept);
  assert.ok(hits.length === 10 && hits.every((hit) => accept(hit.row)));
  assertSameResults(hits, naiveSearch(docs, ['t0', 't5', 't9'], 10, accept));
  assert.equal(index.search(['nothing-like-this'], 5), []);
  assert.equal(index.search(['t0'], 0), []);
  assertSameResults(index.search(['t7', 't7', 't7'], 5), index.search(['t7'], 5));
});

test('an accept filter that throws leaves the index consistent', () => {
  const index = new Bm25Index();
  addDoc(index, 0, ['kiwi']);
  addDoc(index, 1, ['kiwi', 'lime']);
  const before = index.search(['kiwi'], 2);
  assert.throws(() => index.search(['kiwi'], 2, () => {
    throw new Error('filter failed');
  }), /filter failed/);
  assertSameResults(index.search(['kiwi'], 2), before);
});

test('row limit: the last allowed row is accepted, the next is a programming error', () => {
  const index = new Bm25Index();
  const last = LIMITS.chunksPerTenantMax - 1;
  addDoc(index, last, ['edge']);
  assert.is(index.search(['edge'], 1)[0]?.row, last);
  expectAssertion(() => addDoc(index, last + 1, ['edge']), new RegExp(`^row is ${last + 1}; allowed: 0 to ${last}$`));
  expectAssertion(() => addDoc(index, -1, ['edge']), /^row is -1/);
});

test('bad lengths, frequencies, k and use after close are programming errors', () => {
  const index = new Bm25Index();
  expectAssertion(() => index.add(0, new Map([['a', 1]]), -1), /^length is -1/);
  expectAssertion(() => index.add(0, new Map([['a', 0]]), 1), /^frequency of a term is 0/);
  expectAssertion(() => index.search(['a'], -2), /^k is -2/);
  index.close();
  expectAssertion(() => index.search(['a'], 1), /^the BM25 index is closed$/);
  expectAssertion(() => addDoc(index, 0, ['a']), /^the BM25 index is closed$/);
});

test.run();
