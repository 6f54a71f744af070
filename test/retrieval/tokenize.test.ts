import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { stemWord, tokenize } from '../../host/retrieval/tokenize.ts';

test('splits on non-letters, lower-cases and folds compatibility forms (NFKC)', () => {
  assert.equal(tokenize('Git-based MODELS, v2.10!'), ['git', 'bas', 'model', 'v2', '10']);
  assert.equal(tokenize('ＡＢＣ ﬁle'), ['abc', 'fil']);
});

test('keeps letters and digits of every script', () => {
  assert.equal(tokenize('Café naïve Москва 2024 αβγ'), ['café', 'naïve', 'москва', '2024', 'αβγ']);
  assert.equal(tokenize('e\u0301cole'), ['école'], 'NFKC composes the combining accent');
});

test('drops stop words by default and keeps them on request; negations and question words stay', () => {
  assert.equal(tokenize('How is the index of a tenant built?'), ['how', 'index', 'tenant', 'built']);
  assert.equal(tokenize('It is not in the cache'), ['not', 'cach']);
  assert.equal(tokenize('It is not in the cache', { keepStopWords: true }), ['it', 'is', 'not', 'in', 'the', 'cach']);
});

test("contractions: 's is dropped, n't becomes not", () => {
  assert.equal(tokenize("The model's card doesn't load"), ['model', 'card', 'not', 'load']);
  assert.equal(tokenize("can't won't isn’t"), ['not', 'not', 'not']);
  assert.equal(tokenize("can't", { keepStopWords: true }), ['can', 'not']);
});

test('Han and Kana characters become one token each', () => {
  assert.equal(tokenize('東京タワーは高い'), ['東', '京', 'タ', 'ワ', 'ー', 'は', '高', 'い']);
  assert.equal(tokenize('GPU計算'), ['gpu', '計', '算']);
});

test('stemming merges the inflections it promises', () => {
  const groups = [
    ['model', 'models'],
    ['library', 'libraries'],
    ['class', 'classes'],
    ['box', 'boxes'],
    ['match', 'matches'],
    ['cache', 'caches', 'cached', 'caching'],
    ['use', 'uses', 'used', 'using'],
    ['run', 'running'],
    ['embed', 'embedding', 'embeddings', 'embedded'],
    ['install', 'installing', 'installed'],
    ['quick', 'quickly'],
    ['complete', 'completely'],
  ];
  for (const group of groups) {
    const stems = new Set(group.map(stemWord));
    assert.is(stems.size, 1, `${group.join(', ')} → ${[...stems].join(', ')}`);
  }
});

test('stemming leaves alone what it should not touch', () => {
  for (const word of ['status', 'analysis', 'string', 'speed', 'need', 'apply', 'supply', 'is', 'gpu', 'cafés', 'v2']) {
    assert.is(stemWord(word), word, word);
  }
});

test('token length cap: at the limit kept whole, one over cut to the limit', () => {
  const max = LIMITS.tokenCharsMax;
  const atLimit = 'k'.repeat(max);
  assert.equal(tokenize(atLimit), [atLimit]);
  assert.equal(tokenize('k'.repeat(max + 1)), [atLimit]);
  const astral = '𐌰'.repeat(max + 1); // Gothic letters, outside the BMP: the cap counts code points
  assert.equal(tokenize(astral), ['𐌰'.repeat(max)]);
});

test('tokenizing is deterministic and total on odd input', () => {
  const text = 'Mixed ✓ input — with emoji 😀, tabs\tand\u0000nulls';
  assert.equal(tokenize(text), tokenize(text));
  assert.equal(tokenize(''), []);
  assert.equal(tokenize('!!! ... ---'), []);
});

test.run();
