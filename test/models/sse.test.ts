import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { SSE_EVENT_CHARS_MAX, type SseEvent, createSseDecoder } from '../../host/models/sse.ts';

const encoder = new TextEncoder();

/** Decodes `bytes` fed in the given pieces, then ends the stream. */
function decode(bytes: Uint8Array, cuts: number[] = []): SseEvent[] {
  const decoder = createSseDecoder();
  const events: SseEvent[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...decoder.push(bytes.subarray(start, cut)));
    start = cut;
  }
  events.push(...decoder.end());
  return events;
}

function assertTooLong(run: () => void): void {
  try {
    run();
    assert.unreachable('expected the limit to be enforced');
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'MODEL_FAILED');
    assert.is((error as HostError).message, `model stream line or event exceeds ${SSE_EVENT_CHARS_MAX} characters (SSE_EVENT_CHARS_MAX)`);
  }
}

// Every line ending the format allows, comments, event names, multi-line data, fields without a
// space or without a colon, and multi-byte characters of two, three and four bytes.
const WIRE = encoder.encode(
  ': comment\r\n' +
    'data: Grüße\r\n\r\n' +
    'event: delta\ndata:東京\ndata: 🙂 two\nid: 7\nretry: 100\n\n' +
    'data\r\r' +
    'event: empty\n\n' +
    'data:  two spaces\n\n',
);
const EXPECTED: SseEvent[] = [
  { event: 'message', data: 'Grüße' },
  { event: 'delta', data: '東京\n🙂 two' },
  { event: 'message', data: '' },
  { event: 'message', data: ' two spaces' },
];

test('decodes the format: line endings, comments, names, multi-line data', () => {
  assert.equal(decode(WIRE), EXPECTED);
});

test('gives the same events however the bytes are split (every single cut, and byte by byte)', () => {
  for (let cut = 1; cut < WIRE.length; cut += 1) assert.equal(decode(WIRE, [cut]), EXPECTED, `cut at byte ${cut}`);
  const everyByte = Array.from({ length: WIRE.length - 1 }, (_, index) => index + 1);
  assert.equal(decode(WIRE, everyByte), EXPECTED);
});

test('a CR at the end of one read and LF at the start of the next is one line break', () => {
  const bytes = encoder.encode('data: a\r\ndata: b\r\n\r\n');
  const crCuts = [...bytes.keys()].filter((index) => bytes[index - 1] === 0x0d);
  assert.equal(decode(bytes, crCuts), [{ event: 'message', data: 'a\nb' }]);
});

test('at the end, a complete event without its blank line is dispatched; a cut-off line is not', () => {
  assert.equal(decode(encoder.encode('data: [DONE]\n')), [{ event: 'message', data: '[DONE]' }]);
  assert.equal(decode(encoder.encode('data: one\n\ndata: {"cut')), [{ event: 'message', data: 'one' }]);
});

test('a UTF-8 sequence cut off by the end of the stream becomes U+FFFD, not an error', () => {
  const bytes = encoder.encode('data: 東\n');
  const decoder = createSseDecoder();
  assert.equal(decoder.push(bytes.subarray(0, 7)), []);
  assert.equal(decoder.end(), []);
});

test(`a line of exactly SSE_EVENT_CHARS_MAX (${SSE_EVENT_CHARS_MAX}) characters passes, one more fails`, () => {
  const atLimit = `data: ${'a'.repeat(SSE_EVENT_CHARS_MAX - 6)}`;
  const bytes = encoder.encode(`${atLimit}\n\n`);
  assert.is(decode(bytes)[0]?.data.length, SSE_EVENT_CHARS_MAX - 6);
  assert.is(decode(bytes, [100, 200_000])[0]?.data.length, SSE_EVENT_CHARS_MAX - 6);
  // One over: whether the line arrives whole or still unterminated.
  assertTooLong(() => decode(encoder.encode(`${atLimit}a\n\n`)));
  assertTooLong(() => createSseDecoder().push(encoder.encode(`${atLimit}a`)));
});

test('the joined data of one event is capped too', () => {
  const half = 'a'.repeat(SSE_EVENT_CHARS_MAX / 2);
  // Two lines joined by \n: exactly the limit passes ...
  const atLimit = `data: ${half}\ndata: ${half.slice(1)}\n\n`;
  assert.is(decode(encoder.encode(atLimit))[0]?.data.length, SSE_EVENT_CHARS_MAX);
  // ... and one more character fails.
  assertTooLong(() => decode(encoder.encode(`data: ${half}\ndata: ${half}\n\n`)));
});

test.run();
