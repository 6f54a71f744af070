import { readFileSync } from 'node:fs';
import { AssertionError } from 'node:assert';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLocalEmbedder, LOCAL_EMBEDDER_DIM } from '../../host/retrieval/embedder.ts';

const DATA = new URL('../fixtures/data/paraphrase-pairs.json', import.meta.url);
const PAIRS = JSON.parse(readFileSync(DATA, 'utf8')) as Array<{ origin: string; similar: string }>;

function norm(vector: Float32Array): number {
  let squares = 0;
  for (const value of vector) squares += value * value;
  return Math.sqrt(squares);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number);
  return sum;
}

test('the id names the algorithm, version and dimension', () => {
  const embedder = createLocalEmbedder();
  assert.is(embedder.dim, LOCAL_EMBEDDER_DIM);
  assert.is(embedder.id, `local:hashgram-v1@${LOCAL_EMBEDDER_DIM}`);
  assert.is(createLocalEmbedder({ dim: 384 }).id, 'local:hashgram-v1@384');
});

test('vectors have length dim and unit norm', () => {
  const embedder = createLocalEmbedder();
  for (const text of ['cache', 'How do I stream a dataset?', 'Москва 東京 café 😀', 'x'.repeat(5_000), PAIRS[0]?.origin ?? '']) {
    const vector = embedder.embed(text);
    assert.instance(vector, Float32Array);
    assert.is(vector.length, LOCAL_EMBEDDER_DIM);
    assert.ok(Math.abs(norm(vector) - 1) < 1e-5, `|v| = ${norm(vector)} for ${text.slice(0, 20)}`);
  }
});

test('text without any term embeds to the zero vector', () => {
  const vector = createLocalEmbedder().embed(' ... !!! ');
  assert.is(norm(vector), 0);
});

test('embedding is deterministic across calls and instances (no state carries over)', () => {
  const first = createLocalEmbedder();
  const a = first.embed(PAIRS[1]?.origin ?? '');
  first.embed('something entirely different in between');
  assert.equal(Array.from(first.embed(PAIRS[1]?.origin ?? '')), Array.from(a));
  assert.equal(Array.from(createLocalEmbedder().embed(PAIRS[1]?.origin ?? '')), Array.from(a));
});

test('different dimensions give different embedders', () => {
  assert.is(createLocalEmbedder({ dim: 128 }).embed('tokenizer').length, 128);
});

test('a paraphrase scores higher than an unrelated sentence', () => {
  const embedder = createLocalEmbedder();
  const question = embedder.embed('How do I reset my account password?');
  const paraphrase = embedder.embed('What are the steps to reset the password of my account?');
  const unrelated = embedder.embed('The weather in Lisbon is sunny in July.');
  assert.ok(cosine(question, paraphrase) > cosine(question, unrelated) + 0.3);
  let wins = 0;
  for (let i = 0; i < 100; i++) {
    const pair = PAIRS[i] ?? { origin: '', similar: '' };
    const other = PAIRS[(i + 50) % PAIRS.length] ?? { origin: '', similar: '' };
    const origin = embedder.embed(pair.origin);
    if (cosine(origin, embedder.embed(pair.similar)) > cosine(origin, embedder.embed(other.similar))) wins++;
  }
  assert.ok(wins >= 95, `paraphrase beat the other entry's paraphrase in ${wins} / 100`);
});

test('word order matters a little (bigrams), spelling variants a lot (character n-grams)', () => {
  const embedder = createLocalEmbedder();
  const text = embedder.embed('model card upload');
  const reordered = cosine(text, embedder.embed('upload card model'));
  assert.ok(reordered < 0.999 && reordered > 0.8, `reordered ${reordered}`);
  const variant = cosine(embedder.embed('tokenizer'), embedder.embed('tokenization'));
  const other = cosine(embedder.embed('tokenizer'), embedder.embed('database'));
  // Different words with no shared unigram: only the character n-grams make them similar.
  assert.ok(variant > 0.25 && other < 0.15, `variant ${variant} vs other ${other}`);
});

test('dim bounds: 16 and 4096 are accepted, 15 and 4097 are programming errors', () => {
  assert.is(createLocalEmbedder({ dim: 16 }).embed('a b c').length, 16);
  assert.is(createLocalEmbedder({ dim: 4096 }).embed('a b c').length, 4096);
  for (const dim of [15, 4097, 100.5]) {
    const message = `dim is ${dim}; allowed: an integer from 16 to 4096`;
    assert.throws(() => createLocalEmbedder({ dim }), (error: unknown) => error instanceof AssertionError && error.message === message);
  }
});

test.run();
