import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { LOCAL_MODEL_ID, NO_ANSWER_SENTENCE, createLocalModel, extractAnswer } from '../../host/models/local.ts';
import type { ContextChunk, ModelRequest } from '../../host/models/model.ts';
import { collect } from './provider-server.ts';

const CHUNKS: ContextChunk[] = [
  {
    chunkId: 'shipping#0',
    docId: 'shipping',
    title: 'Shipping',
    text: 'Orders ship within two business days.\nExpress shipping costs $15 and arrives next day. International orders may take up to three weeks.',
  },
  {
    chunkId: 'refunds#0',
    docId: 'refunds',
    title: 'Refunds',
    text: 'Refunds are issued to the original payment method.  A refund takes 5 to 7 business\n  days to appear.\n\nDamaged items can be returned for a full refund within 30 days.',
  },
  // Overlapping chunking repeats a sentence; it must not be quoted twice.
  { chunkId: 'refunds#1', docId: 'refunds', title: 'Refunds', text: 'Damaged items can be returned for a full refund within 30 days. Gift cards are not refundable.' },
];

function request(question: string, chunks: ContextChunk[] = CHUNKS, signal = new AbortController().signal): ModelRequest {
  return { messages: [{ role: 'user', content: question }], question, chunks, signal };
}

/** `[chunkId]` citations at the end of each chunk's group of sentences. */
const CITATION = /\s?\[([^\]]+)\]/g;

/** Whitespace-collapsed text, as the local model quotes it. */
function flat(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Checks that every part of `answer` between citations is made of sentences of the chunk it cites:
 * each group, split at its sentence ends, must be a substring of that chunk.
 */
function assertQuotesOnly(answer: string, chunks: ContextChunk[]): void {
  if (answer === NO_ANSWER_SENTENCE) return;
  let rest = answer;
  let cited = 0;
  for (const match of answer.matchAll(CITATION)) {
    const [citation, chunkId] = match;
    const end = rest.indexOf(citation);
    const group = rest.slice(0, end).trim();
    rest = rest.slice(end + citation.length);
    const chunk = chunks.find((candidate) => candidate.chunkId === chunkId);
    assert.ok(chunk, `cites unknown chunk ${chunkId ?? ''}`);
    for (const sentence of group.split(/(?<=[.!?])\s+/)) {
      assert.ok(flat(chunk?.text ?? '').includes(sentence), `"${sentence}" is not in ${chunkId ?? ''}`);
    }
    cited += 1;
  }
  assert.ok(cited > 0, 'an answer cites at least one chunk');
  assert.is(rest, '', 'nothing follows the last citation');
}

test('answers from the right chunk and cites it', async () => {
  const model = createLocalModel();
  assert.is(model.id, LOCAL_MODEL_ID);
  const answer = (await collect(model.stream(request('How long does a refund take?')))).join('');
  assert.is(answer, 'A refund takes 5 to 7 business days to appear. [refunds#0]');
  assert.is(
    extractAnswer('How much does express shipping cost?', CHUNKS),
    'Express shipping costs $15 and arrives next day. [shipping#0]',
  );
});

test('matches plurals and verb forms of the question words', () => {
  assert.is(extractAnswer('Is a gift card refundable?', CHUNKS), 'Gift cards are not refundable. [refunds#1]');
  assert.is(extractAnswer('return a damaged item', CHUNKS), 'Damaged items can be returned for a full refund within 30 days. [refunds#0]');
});

test('splits at line breaks before list items and headings, and drops their markers', () => {
  const policy: ContextChunk[] = [
    {
      chunkId: 'policy#2',
      docId: 'policy',
      title: 'Policy',
      text: '# Returns\n- Items can be returned within 30 days\n- Opened software cannot be returned\r\n\r\nVersion 3.5 applies.',
    },
  ];
  assert.is(extractAnswer('Can opened software be returned?', policy), 'Opened software cannot be returned [policy#2]');
  assert.is(extractAnswer('Which version applies?', policy), 'Version 3.5 applies. [policy#2]');
  assertQuotesOnly(extractAnswer('Can opened software be returned?', policy), policy);
});

test('quotes several sentences, one citation per chunk, no duplicates', () => {
  const answer = extractAnswer('shipping and refund times', CHUNKS);
  assert.is(
    answer,
    'Refunds are issued to the original payment method. A refund takes 5 to 7 business days to appear. [refunds#0] ' +
      'Orders ship within two business days. [shipping#0]',
  );
  const damaged = extractAnswer('damaged items refund', CHUNKS);
  assert.is(damaged.split('Damaged items').length - 1, 1, damaged);
});

test('never says anything that is not in the chunks, except the no-answer sentence and citations', () => {
  const questions = [
    'How long does a refund take?',
    'shipping and refund times',
    'What does international shipping cost and how long does it take?',
    'Are gift cards refundable or returned?',
    'business days',
    'What is the capital of France?',
    'orders orders orders',
  ];
  for (const question of questions) {
    const answer = extractAnswer(question, CHUNKS);
    assertQuotesOnly(answer, CHUNKS);
    assert.ok(answer.length > 0);
  }
});

test('says the fixed no-answer sentence when nothing matches or there are no chunks', async () => {
  const model = createLocalModel();
  assert.is(NO_ANSWER_SENTENCE, 'The provided documents do not contain an answer to this question.');
  assert.is((await collect(model.stream(request('What is the capital of France?')))).join(''), NO_ANSWER_SENTENCE);
  assert.is((await collect(model.stream(request('How long does a refund take?', [])))).join(''), NO_ANSWER_SENTENCE);
  // Only stop words: nothing to match on, so no guess.
  assert.is(extractAnswer('what is it?', CHUNKS), NO_ANSWER_SENTENCE);
  // One shared word out of many is too little.
  assert.is(extractAnswer('Which planet hosts volcanic mountains, icy rings and two business moons?', CHUNKS), NO_ANSWER_SENTENCE);
});

test('is deterministic across calls and instances, and ties go to context order', async () => {
  const first = await collect(createLocalModel().stream(request('What does international shipping cost?')));
  const second = await collect(createLocalModel().stream(request('What does international shipping cost?')));
  assert.equal(first, second);
  const twins: ContextChunk[] = [
    { chunkId: 'a#0', docId: 'a', title: 'A', text: 'The office opens at nine.' },
    { chunkId: 'b#0', docId: 'b', title: 'B', text: 'The office opens at ten.' },
  ];
  assert.is(extractAnswer('When does the office open?', twins), 'The office opens at nine. [a#0] The office opens at ten. [b#0]');
  assert.is(extractAnswer('When does the office open?', [...twins].reverse()), 'The office opens at ten. [b#0] The office opens at nine. [a#0]');
});

test('streams one word plus its following space per token; tokens join to the answer', async () => {
  const question = 'shipping and refund times';
  const tokens = await collect(createLocalModel().stream(request(question)));
  assert.is(tokens.join(''), extractAnswer(question, CHUNKS));
  assert.ok(tokens.length > 5);
  tokens.forEach((token, index) => {
    const last = index === tokens.length - 1;
    assert.match(token, last ? /^\S+$/ : /^\S+ $/);
  });
});

test('stops with the abort reason as soon as the signal aborts', async () => {
  const controller = new AbortController();
  const reason = new Error('ask cancelled');
  const seen: string[] = [];
  try {
    for await (const token of createLocalModel().stream(request('shipping and refund times', CHUNKS, controller.signal))) {
      seen.push(token);
      controller.abort(reason);
    }
    assert.unreachable('the stream should throw');
  } catch (error) {
    assert.is(error, reason);
  }
  assert.is(seen.length, 1);
  const aborted = new AbortController();
  aborted.abort(reason);
  try {
    await collect(createLocalModel().stream(request('refund', CHUNKS, aborted.signal)));
    assert.unreachable('an aborted signal yields nothing');
  } catch (error) {
    assert.is(error, reason);
  }
});

test(`never quotes past answerCharsMax (${LIMITS.answerCharsMax})`, () => {
  const runOn = `${'refund policy '.repeat(Math.ceil(LIMITS.answerCharsMax / 14))}applies.`;
  const chunks: ContextChunk[] = [{ chunkId: 'long#0', docId: 'long', title: 'Long', text: `${runOn} Refunds take 5 days.` }];
  assert.ok(runOn.length > LIMITS.answerCharsMax);
  // The run-on sentence matches best but cannot fit, so the next one answers.
  assert.is(extractAnswer('refund policy', chunks), 'Refunds take 5 days. [long#0]');
  // A sentence that just fits (with its citation and a joining space) is quoted whole.
  const fits = `${'refund '.repeat(Math.floor((LIMITS.answerCharsMax - 20) / 7))}end.`;
  const answer = extractAnswer('refund', [{ chunkId: 'fit#0', docId: 'fit', title: 'Fit', text: fits }]);
  assert.is(answer, `${fits} [fit#0]`);
  assert.ok(answer.length <= LIMITS.answerCharsMax);
});

test('routing never changes the local model id', () => {
  const model = createLocalModel();
  assert.is(model.idFor?.({ model: 'x', adapter: 'y' }), LOCAL_MODEL_ID);
});

test.run();
