/**
 * The namespace fails closed: every element changes the key, and a missing or malformed element
 * yields no namespace at all (never a broader one).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cacheEntryKey, cacheNamespace, normalizeQuestion, type NamespaceParts } from '../../host/cache/namespace.ts';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

const BASE: NamespaceParts = {
  tenantId: 'tnt_1',
  modelId: 'local:extractive-v1',
  embedderId: 'local:hashgram-v1@256',
  plugins: { retrieval: SHA_A, prompt: SHA_B },
  prompt: { systemPrompt: 'Be brief.', topK: 8, tokenBudget: 1500 },
  generation: 3,
  scope: 'tenant',
  endUser: undefined,
};

const keyOf = (parts: NamespaceParts): string | undefined => cacheNamespace(parts)?.key;

test('a complete namespace has a key and keeps its generation', () => {
  const namespace = cacheNamespace(BASE);
  assert.ok(namespace !== undefined);
  assert.match(namespace.key, /^[A-Za-z0-9_-]{43}$/);
  assert.is(namespace.generation, 3);
  assert.is(keyOf({ ...BASE }), namespace.key, 'deterministic');
});

test('every element changes the key', () => {
  const base = keyOf(BASE);
  const variants: [string, NamespaceParts][] = [
    ['tenant', { ...BASE, tenantId: 'tnt_2' }],
    ['model', { ...BASE, modelId: 'openai:llama3' }],
    ['model adapter', { ...BASE, modelId: 'openai:llama3@support-lora' }],
    ['embedder', { ...BASE, embedderId: 'openai-embed:mini@384' }],
    ['retrieval plugin', { ...BASE, plugins: { retrieval: SHA_B, prompt: SHA_B } }],
    ['prompt plugin', { ...BASE, plugins: { retrieval: SHA_A, prompt: SHA_A } }],
    ['system prompt', { ...BASE, prompt: { ...BASE.prompt!, systemPrompt: 'Be verbose.' } }],
    ['topK', { ...BASE, prompt: { ...BASE.prompt!, topK: 4 } }],
    ['token budget', { ...BASE, prompt: { ...BASE.prompt!, tokenBudget: 1400 } }],
    ['generation', { ...BASE, generation: 4 }],
    ['user scope', { ...BASE, scope: 'user', endUser: 'alice' }],
  ];
  const seen = new Set([base]);
  for (const [what, parts] of variants) {
    const key = keyOf(parts);
    assert.ok(key !== undefined, what);
    assert.not.ok(seen.has(key), `${what} must change the key`);
    seen.add(key);
  }
  assert.is.not(keyOf({ ...BASE, scope: 'user', endUser: 'alice' }), keyOf({ ...BASE, scope: 'user', endUser: 'bob' }), 'users differ');
});

test('element boundaries cannot be shifted to collide', () => {
  const left = keyOf({ ...BASE, modelId: 'a', embedderId: 'bc' });
  const right = keyOf({ ...BASE, modelId: 'ab', embedderId: 'c' });
  assert.is.not(left, right);
});

test('a missing or malformed element means no namespace', () => {
  const broken: [string, NamespaceParts][] = [
    ['no tenant', { ...BASE, tenantId: '' }],
    ['no model', { ...BASE, modelId: undefined }],
    ['empty model', { ...BASE, modelId: '' }],
    ['no embedder', { ...BASE, embedderId: undefined }],
    ['no plugins', { ...BASE, plugins: undefined }],
    ['plugin hash not sha256', { ...BASE, plugins: { retrieval: 'builtin', prompt: SHA_B } }],
    ['no prompt config', { ...BASE, prompt: undefined }],
    ['fractional topK', { ...BASE, prompt: { ...BASE.prompt!, topK: 1.5 } }],
    ['no generation', { ...BASE, generation: undefined }],
    ['negative generation', { ...BASE, generation: -1 }],
    ['user scope without a user', { ...BASE, scope: 'user', endUser: undefined }],
    ['user scope with an empty user', { ...BASE, scope: 'user', endUser: '' }],
    ['unknown scope', { ...BASE, scope: 'global' as never }],
  ];
  for (const [what, parts] of broken) assert.is(cacheNamespace(parts), undefined, what);
});

test('an element the digest does not take means no namespace, rather than a key without it', () => {
  assert.is(cacheNamespace({ ...BASE, retrievalMode: 'hybrid' } as NamespaceParts), undefined);
  assert.is(cacheNamespace({ ...BASE, extra: undefined } as NamespaceParts), undefined);
});

test('tenant scope ignores the end user (the tenant shares one cache)', () => {
  assert.is(keyOf({ ...BASE, endUser: 'alice' }), keyOf(BASE));
});

test('normalisation folds case, width and white space but keeps punctuation', () => {
  assert.is(normalizeQuestion('  How MUCH\tdoes\n express  cost? '), 'how much does express cost?');
  assert.is(normalizeQuestion('ＦＵＬＬ width'), 'full width');
  assert.is.not(normalizeQuestion('Is it 5?'), normalizeQuestion('Is it 5.'));
  const namespace = cacheNamespace(BASE)!;
  assert.is(cacheEntryKey(namespace, 'How much?'), cacheEntryKey(namespace, ' how  MUCH? '));
  assert.is.not(cacheEntryKey(namespace, 'How much?'), cacheEntryKey(cacheNamespace({ ...BASE, generation: 4 })!, 'How much?'));
});

test.run();
