/**
 * The near-duplicate fingerprints: estimates track the true Jaccard similarity, a passage copied
 * (verbatim or lightly edited) into a longer text is found, and unrelated or merely on-topic text is
 * not. Texts come from a seeded generator so every run sees the same words.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { estimateJaccard, LshIndex, MIN_SHINGLES, shingleHashes, signature, windowSignatures } from '../../host/training/minhash.ts';

/** A deterministic word generator (xorshift) over a 2,000-word vocabulary. */
function words(seed: number, count: number): string[] {
  let state = seed >>> 0 || 1;
  const out: string[] = [];
  for (let i = 0; i < count; i += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out.push(`w${(state >>> 0) % 2000}`);
  }
  return out;
}

function exactJaccard(a: Uint32Array, b: Uint32Array): number {
  const left = new Set(a);
  const right = new Set(b);
  let both = 0;
  for (const value of left) if (right.has(value)) both += 1;
  return both / (left.size + right.size - both);
}

function found(haystack: string, needle: string): boolean {
  const index = new LshIndex<string>();
  for (const sig of windowSignatures(haystack)) index.add(sig, 'haystack');
  return windowSignatures(needle).some((sig) => index.nearDuplicates(sig).length > 0);
}

test('the estimate is within 0.15 of the exact Jaccard similarity for overlaps from 0 to 1', () => {
  for (let shared = 0; shared <= 40; shared += 5) {
    const common = words(7, shared);
    const a = shingleHashes([...common, ...words(100 + shared, 40 - shared)].join(' '));
    const b = shingleHashes([...common, ...words(200 + shared, 40 - shared)].join(' '));
    const estimate = estimateJaccard(signature(a), signature(b));
    const exact = exactJaccard(a, b);
    assert.ok(Math.abs(estimate - exact) <= 0.15, `shared ${shared}: estimate ${estimate} vs exact ${exact}`);
  }
});

test('identical texts estimate 1; case and punctuation do not matter', () => {
  const text = words(3, 30).join(' ');
  const shouted = text.toUpperCase().replaceAll(' ', ', ');
  assert.is(estimateJaccard(signature(shingleHashes(text)), signature(shingleHashes(shouted))), 1);
});

test('a passage of 30 words copied into a long text is found, verbatim and with two words changed', () => {
  const source = words(11, 120);
  const passage = source.slice(40, 70);
  const host = [...words(12, 200), ...passage, ...words(13, 200)].join(' ');
  assert.ok(found(host, source.join(' ')), 'verbatim');
  const edited = [...passage];
  edited[10] = 'changed';
  edited[20] = 'altered';
  assert.ok(found([...words(14, 150), ...edited, ...words(15, 150)].join(' '), source.join(' ')), 'lightly edited');
});

test('a whole short chunk inside an answer is found', () => {
  const chunk = 'Beta keeps the master vault code in the blue binder on the third shelf of the archive room.';
  assert.ok(found(`Sure. ${chunk} Anything else?`, chunk));
});

test('unrelated text and text sharing only a few words are not near-duplicates', () => {
  const source = words(21, 120).join(' ');
  assert.not.ok(found(words(22, 400).join(' '), source), 'unrelated');
  const fewShared = [...words(23, 100), ...words(21, 6), ...words(24, 100)].join(' ');
  assert.not.ok(found(fewShared, source), 'six shared words are not a passage');
});

test('texts below the minimum shingle count get no fingerprint', () => {
  assert.equal(windowSignatures(words(5, MIN_SHINGLES + 1).join(' ')).length, 0);
  assert.equal(windowSignatures(words(5, MIN_SHINGLES + 2).join(' ')).length, 1);
});

test.run();
