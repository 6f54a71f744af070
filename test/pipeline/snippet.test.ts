/**
 * Source snippets: whole at the limit, cut with an ellipsis one over, at a word boundary when
 * there is one in the second half, whitespace collapsed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { sourceSnippet } from '../../host/pipeline/snippet.ts';

const words = (chars: number): string => 'word '.repeat(Math.ceil(chars / 5)).slice(0, chars);

test(`a text of sourceSnippetCharsMax (${LIMITS.sourceSnippetCharsMax}) characters is sent whole`, () => {
  const text = `${words(LIMITS.sourceSnippetCharsMax - 1)}x`;
  assert.is(text.length, LIMITS.sourceSnippetCharsMax);
  assert.is(sourceSnippet(text), text);
});

test('one character over is cut at a word boundary and ends in an ellipsis, within the limit', () => {
  const text = `${words(LIMITS.sourceSnippetCharsMax)}x`;
  const snippet = sourceSnippet(text);
  assert.ok(snippet.length <= LIMITS.sourceSnippetCharsMax, `${snippet.length} characters`);
  assert.ok(snippet.endsWith('word…'), snippet.slice(-12));
});

test('one long word is cut mid-word; whitespace is collapsed first', () => {
  assert.is(sourceSnippet('a'.repeat(50), 10), `${'a'.repeat(9)}…`);
  assert.is(sourceSnippet('  Opening\n\n hours:\tnine  to five  '), 'Opening hours: nine to five');
});

test.run();
