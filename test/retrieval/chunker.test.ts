import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { chunkText, type Chunk, type ChunkOptions } from '../../host/retrieval/chunker.ts';

/** A paragraph of `count` distinct sentences, ~50 characters each. */
function paragraph(tag: string, count: number): string {
  return Array.from({ length: count }, (_, i) => `Sentence ${tag}${i} covers topic number ${i % 7} here.`).join(' ');
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function normalise(text: string): string {
  return text.replace(/\s+/g, (run) => {
    const breaks = (run.match(/\r\n|[\n\r]/g) ?? []).length;
    return breaks >= 2 ? '\n\n' : breaks === 1 ? '\n' : ' ';
  });
}

/** Invariants every chunking must keep, whatever the input. */
function assertWellFormed(text: string, chunks: Chunk[], targetChars: number): void {
  chunks.forEach((chunk, i) => {
    assert.is(chunk.ordinal, i);
    assert.ok(chunk.text.length > 0, 'no empty chunk');
    assert.ok(chunk.text.length <= targetChars, `chunk ${i} has ${chunk.text.length} > ${targetChars} chars`);
    assert.is(chunk.text, chunk.text.trim(), 'no leading or trailing whitespace');
    assert.is(chunk.text, normalise(text.slice(chunk.start, chunk.end)), 'offsets point at the chunk in the original');
    assert.not.ok(LONE_SURROGATE.test(chunk.text), 'no lone surrogate');
    if (i > 0) assert.ok(chunk.start > (chunks[i - 1] as Chunk).start, 'chunks advance');
  });
  const covered = new Uint8Array(text.length);
  for (const chunk of chunks) covered.fill(1, chunk.start, chunk.end);
  for (let i = 0; i < text.length; i++) {
    if (!/\s/.test(text[i] as string)) assert.is(covered[i], 1, `character ${i} is covered`);
  }
}

test('empty and whitespace-only text give no chunks', () => {
  assert.equal(chunkText(''), []);
  assert.equal(chunkText(' \n\n\t \r\n '), []);
});

test('a short text is one chunk with normalised whitespace and original offsets', () => {
  const text = '  Hello   world.\t Second\r\nline.\n\n\n  New   paragraph.  ';
  const chunks = chunkText(text);
  assert.equal(chunks, [{ ordinal: 0, text: 'Hello world. Second\nline.\n\nNew paragraph.', start: 2, end: text.length - 2 }]);
});

test('long text: chunks stay within target, overlap at sentence starts, cover everything', () => {
  const text = [paragraph('a', 30), paragraph('b', 25), paragraph('c', 40)].join('\n\n');
  const options = { targetChars: 800, overlapChars: 120 };
  const chunks = chunkText(text, options);
  assertWellFormed(text, chunks, 800);
  assert.ok(chunks.length >= 3);
  for (let i = 1; i < chunks.length; i++) {
    const previous = chunks[i - 1] as Chunk;
    const chunk = chunks[i] as Chunk;
    const overlap = previous.end - chunk.start;
    assert.ok(overlap > 0 && overlap <= 120, `chunk ${i} overlaps the one before by ${overlap}`);
    assert.ok(/^Sentence [abc]\d+ /.test(chunk.text), `chunk ${i} starts at a sentence: ${chunk.text.slice(0, 30)}`);
    assert.ok(previous.text.endsWith('here.'), `chunk ${i - 1} ends at a sentence end`);
  }
  const last = chunks[chunks.length - 1] as Chunk;
  assert.is(last.end, text.length);
});

test('paragraph breaks are preferred over sentence ends', () => {
  const text = [paragraph('a', 9), paragraph('b', 9), paragraph('c', 9), paragraph('d', 9)].join('\n\n');
  const chunks = chunkText(text, { targetChars: 1_000, overlapChars: 0 });
  assertWellFormed(text, chunks, 1_000);
  for (const chunk of chunks.slice(0, -1)) assert.is(text.slice(chunk.end, chunk.end + 2), '\n\n');
});

test('without overlapChars the chunks abut and do not overlap', () => {
  const text = paragraph('a', 60);
  const chunks = chunkText(text, { targetChars: 400, overlapChars: 0 });
  assertWellFormed(text, chunks, 400);
  for (let i = 1; i < chunks.length; i++) assert.ok((chunks[i] as Chunk).start > (chunks[i - 1] as Chunk).end - 1);
});

test('text without sentence punctuation breaks at spaces and overlaps at word starts', () => {
  const words = Array.from({ length: 600 }, (_, i) => `word${i}`);
  const text = words.join(' ');
  const chunks = chunkText(text, { targetChars: 300, overlapChars: 60 });
  assertWellFormed(text, chunks, 300);
  for (const chunk of chunks) assert.ok(/^word\d+( word\d+)*$/.test(chunk.text), 'whole words only');
  for (let i = 1; i < chunks.length; i++) assert.ok((chunks[i - 1] as Chunk).end - (chunks[i] as Chunk).start > 0);
});

test('a huge single word is cut hard at the target, with no overlap possible', () => {
  const text = `${'x'.repeat(2_050)}`;
  const chunks = chunkText(text, { targetChars: 500, overlapChars: 100 });
  assertWellFormed(text, chunks, 500);
  assert.equal(chunks.map((c) => [c.start, c.end]), [[0, 500], [500, 1_000], [1_000, 1_500], [1_500, 2_000], [2_000, 2_050]]);
});

test('hard cuts never split a surrogate pair or detach combining marks', () => {
  const emoji = '😀'.repeat(400);
  const emojiChunks = chunkText(emoji, { targetChars: 301 });
  assertWellFormed(emoji, emojiChunks, 301);
  const accented = 'e\u0301'.repeat(400);
  const accentChunks = chunkText(accented, { targetChars: 301 });
  assertWellFormed(accented, accentChunks, 301);
  for (const chunk of accentChunks) assert.not.ok(/^\p{M}/u.test(chunk.text), 'no chunk starts with a combining mark');
});

test('a run of combining marks longer than the back-off window is still cut, never split mid-pair', () => {
  const text = `a ${'\u0301'.repeat(1_000)}`;
  const chunks = chunkText(text, { targetChars: 200, overlapChars: 0 });
  assertWellFormed(text, chunks, 200);
});

test('CJK text breaks after full stops without spaces', () => {
  const text = Array.from({ length: 80 }, (_, i) => `这是第${i}个句子，内容很短。`).join('');
  const chunks = chunkText(text, { targetChars: 200, overlapChars: 40 });
  assertWellFormed(text, chunks, 200);
  for (const chunk of chunks) {
    assert.ok(chunk.text.startsWith('这是第'), `starts at a sentence: ${chunk.text.slice(0, 8)}`);
    assert.ok(chunk.text.endsWith('。'), 'ends at a sentence');
  }
});

test('a full stop before a lower-case word ("e.g. the") is not a sentence end', () => {
  const words = (count: number, tag: string): string => Array.from({ length: count }, (_, i) => `${tag}${i}`).join(' ');
  // "e.g." sits at 130, inside the second half of the first 200-character window.
  const lower = `${words(35, 'w')} e.g. the ${words(40, 'v')}`;
  const upper = `${words(35, 'w')} e.g. The ${words(40, 'v')}`;
  const options = { targetChars: 200, overlapChars: 50 };
  assert.not.ok((chunkText(lower, options)[0] as Chunk).text.endsWith('e.g.'));
  assert.ok((chunkText(upper, options)[0] as Chunk).text.endsWith('e.g.'), 'the same spot before a capital is a sentence end');
  assertWellFormed(lower, chunkText(lower, options), 200);
});

test('chunking is deterministic', () => {
  const text = [paragraph('a', 40), paragraph('b', 40)].join('\n\n');
  assert.equal(chunkText(text), chunkText(text));
});

test('a 1,000,000-character document chunks in linear time', () => {
  const text = paragraph('z', 20_000).slice(0, LIMITS.documentCharsMax);
  const chunks = chunkText(text);
  assert.ok(chunks.length > 1_000);
  assert.is((chunks[chunks.length - 1] as Chunk).end, text.length);
  // Measured against itself, not against the clock (a loaded machine is slow at both): the whole
  // document costs about what its hundredth does a hundred times when the work is linear (2–4 times
  // that here: memory and GC), and a hundred times that when it is quadratic. Best of three,
  // interleaved, to shed a busy moment; the bound sits between the two.
  const hundredth = text.slice(0, Math.floor(text.length / 100));
  const time = (run: () => void): number => {
    const started = performance.now();
    run();
    return performance.now() - started;
  };
  let whole = Number.POSITIVE_INFINITY;
  let parts = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round += 1) {
    whole = Math.min(whole, time(() => chunkText(text)));
    parts = Math.min(parts, time(() => {
      for (let index = 0; index < 100; index += 1) chunkText(hundredth);
    }));
  }
  assert.ok(whole < 20 * parts, `the whole document took ${whole.toFixed(0)} ms, its hundredth 100 times ${parts.toFixed(0)} ms`);
});

function expectConfigError(options: ChunkOptions, message: RegExp): void {
  try {
    chunkText('Some text.', options);
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'CONFIG_INVALID');
    assert.match((error as HostError).message, message);
    return;
  }
  assert.unreachable('chunkText should have thrown');
}

test('targetChars limits: at the limit passes, one beyond fails with CONFIG_INVALID', () => {
  const { chunkTargetCharsMin: min, chunkTargetCharsMax: max } = LIMITS;
  assert.is(chunkText('a b', { targetChars: min }).length, 1);
  assert.is(chunkText('a b', { targetChars: max }).length, 1);
  expectConfigError({ targetChars: min - 1 }, new RegExp(`^targetChars is ${min - 1}; allowed: an integer from ${min} to ${max}$`));
  expectConfigError({ targetChars: max + 1 }, new RegExp(`^targetChars is ${max + 1}; allowed: an integer from ${min} to ${max}$`));
  expectConfigError({ targetChars: 800.5 }, /^targetChars is 800.5; allowed/);
});

test('overlapChars limits: up to targetChars / 4 passes, one more fails', () => {
  assert.is(chunkText('a b', { targetChars: 800, overlapChars: 200 }).length, 1);
  assert.is(chunkText('a b', { targetChars: 800, overlapChars: 0 }).length, 1);
  expectConfigError({ targetChars: 800, overlapChars: 201 }, /^overlapChars is 201; allowed: an integer from 0 to 200 \(targetChars \/ 4\)$/);
  expectConfigError({ overlapChars: -1 }, /^overlapChars is -1; allowed/);
});

test('unknown options are refused', () => {
  expectConfigError({ targetChar: 500 } as unknown as ChunkOptions, /^chunk option "targetChar" is unknown/);
});

test.run();
