/**
 * The host-side ABI codec on its own: every length, count and string is validated before use.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import {
  AbiDecodeError,
  AbiReader,
  AbiWriter,
  decodeKvSetRequest,
  decodeSearchRequest,
  decodeStringRequest,
  encodeChunkResponse,
  encodeErrorResponse,
  HostStatus,
} from '../../host/sandbox/abi.ts';
import { decodeAssembleOutput, decodeRetrieveOutput, encodeAssembleInput, encodeRetrieveInput } from '../../host/sandbox/slots.ts';
import { assertHostError } from './harness.ts';

function assertDecodeError(decode: () => unknown, message: string): void {
  let caught: unknown = undefined;
  try {
    decode();
  } catch (error: unknown) {
    caught = error;
  }
  assert.instance(caught, AbiDecodeError);
  assert.is((caught as AbiDecodeError).name, 'AbiDecodeError');
  assert.is((caught as AbiDecodeError).message, message);
}

const search = (build: (writer: AbiWriter) => AbiWriter) => build(new AbiWriter()).finish();
const validSearch = (writer: AbiWriter) => writer.str('refunds').u32(5).u8(3).u32(0).u32(0);

test('index_search request: a valid request decodes with its mode bits, vector and filter', () => {
  const plain = decodeSearchRequest(search(validSearch));
  assert.equal({ ...plain, filter: { ...plain.filter } }, { query: 'refunds', k: 5, mode: { vector: true, lexical: true }, vector: null, filter: {} });
  // The filter has no prototype, so a key named __proto__ is just a key.
  const proto = decodeSearchRequest(search((w) => w.str('q').u32(1).u8(2).u32(0).u32(1).str('__proto__').str('x')));
  assert.is(Object.getPrototypeOf(proto.filter), null);
  assert.equal(Object.keys(proto.filter), ['__proto__']);
  const withVector = search((w) => w.str('q').u32(1).u8(1).u32(2).f32(0.5).f32(-1).u32(1).str('lang').str('en'));
  const decoded = decodeSearchRequest(withVector);
  assert.equal(Array.from(decoded.vector ?? []), [0.5, -1]);
  assert.equal({ ...decoded.filter }, { lang: 'en' });
  assert.equal(decoded.mode, { vector: true, lexical: false });
});

test('index_search request: every malformed field is named', () => {
  assertDecodeError(() => decodeSearchRequest(search((w) => validSearch(w).u8(0))), 'index_search request: 1 trailing bytes after the last field');
  assertDecodeError(() => decodeSearchRequest(search((w) => w.str('q').u32(0).u8(1).u32(0).u32(0))), `k: 0, must be 1..${LIMITS.searchHitsMax}`);
  assertDecodeError(() => decodeSearchRequest(search((w) => w.str('q').u32(1).u8(0).u32(0).u32(0))), 'mode: 0, must set bit 0 (vector), bit 1 (lexical) or both');
  assertDecodeError(() => decodeSearchRequest(search((w) => w.str('q').u32(1).u8(4).u32(0).u32(0))), 'mode: 4, must set bit 0 (vector), bit 1 (lexical) or both');
  assertDecodeError(() => decodeSearchRequest(search((w) => w.str('q').u32(1).u8(1).u32(1).f32(Number.NaN).u32(0))), 'vector[0]: NaN is not a finite number');
  assertDecodeError(
    () => decodeSearchRequest(search((w) => w.str('q').u32(1).u8(1).u32(1000).f32(1).u32(0))),
    'vecLen: 1000 items cannot fit in the 8 bytes that remain',
  );
  assertDecodeError(
    () => decodeSearchRequest(search((w) => w.str('q').u32(1).u8(1).u32(0).u32(2).str('a').str('1').str('a').str('2'))),
    'filter[1].key: duplicates an earlier key',
  );
  const longValue = 'v'.repeat(LIMITS.metadataValueCharsMax + 1);
  assertDecodeError(
    () => decodeSearchRequest(search((w) => w.str('q').u32(1).u8(1).u32(0).u32(1).str('a').str(longValue))),
    `filter[0].value: ${LIMITS.metadataValueCharsMax + 1} characters, over the limit of ${LIMITS.metadataValueCharsMax}`,
  );
});

test('strings: invalid UTF-8 and forged lengths are refused', () => {
  assertDecodeError(() => decodeStringRequest(Uint8Array.of(2, 0, 0, 0, 0xc3, 0x28), 'key', 10), 'key: not valid UTF-8');
  assertDecodeError(() => decodeStringRequest(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x61), 'key', 10), 'key: 4294967295 bytes, over the limit of 10');
  assertDecodeError(() => decodeStringRequest(Uint8Array.of(5, 0, 0, 0, 0x61), 'key', 10), 'key: needs 5 bytes at byte 4, only 1 remain');
  assert.is(decodeStringRequest(new AbiWriter().str('héllo').finish(), 'key', 10), 'héllo');
});

test('kv_set request: key 1..kvKeyBytesMax bytes, value up to kvValueBytesMax', () => {
  const request = (key: string, value: Uint8Array) => new AbiWriter().str(key).bytes(value).finish();
  assert.equal(decodeKvSetRequest(request('k', Uint8Array.of(1, 2))), { key: 'k', value: Uint8Array.of(1, 2) });
  assertDecodeError(() => decodeKvSetRequest(request('', Uint8Array.of(1))), 'key: must not be empty');
  assertDecodeError(
    () => decodeKvSetRequest(request('k', new Uint8Array(LIMITS.kvValueBytesMax + 1))),
    `value: ${LIMITS.kvValueBytesMax + 1} bytes, over the limit of ${LIMITS.kvValueBytesMax}`,
  );
});

test('responses: status first, then the message or payload', () => {
  const reader = new AbiReader(encodeErrorResponse(HostStatus.notFound, 'no such chunk'));
  assert.is(reader.u8('status'), 2);
  assert.is(reader.str('message'), 'no such chunk');
  reader.end('response');
  const chunk = new AbiReader(encodeChunkResponse({ chunkId: 'd#0', docId: 'd', title: 'T', text: 'body', metadata: { a: '1' } }));
  assert.equal([chunk.u8('s'), chunk.str('id'), chunk.str('doc'), chunk.str('title'), chunk.str('text'), chunk.u32('n'), chunk.str('k'), chunk.str('v')], [
    0, 'd#0', 'd', 'T', 'body', 1, 'a', '1',
  ]);
  chunk.end('chunk response');
});

test('slot codecs: retrieve output round-trips; scores must be finite', async () => {
  const output = new AbiWriter().u32(2).str('a#0').f32(0.5).str('b#0').f32(0.25).finish();
  assert.equal(decodeRetrieveOutput(output, 2), [
    { chunkId: 'a#0', score: 0.5 },
    { chunkId: 'b#0', score: 0.25 },
  ]);
  const infinite = new AbiWriter().u32(1).str('a#0').f32(Number.POSITIVE_INFINITY).finish();
  await assertHostError(Promise.resolve().then(() => decodeRetrieveOutput(infinite, 2)), 'PLUGIN_BAD_OUTPUT', 'retrieve output: chunks[0].score: Infinity is not a finite number');
  const empty = new AbiWriter().u32(1).str('').f32(1).finish();
  await assertHostError(Promise.resolve().then(() => decodeRetrieveOutput(empty, 2)), 'PLUGIN_BAD_OUTPUT', 'retrieve output: chunks[0].chunkId: must not be empty');
});

test('slot codecs: inputs encode in ABI order', () => {
  const retrieve = new AbiReader(encodeRetrieveInput({ query: 'q', k: 3, history: [{ role: 'assistant', content: 'hi' }] }));
  assert.equal([retrieve.str('query'), retrieve.u32('k'), retrieve.u32('n'), retrieve.u8('role'), retrieve.str('content')], ['q', 3, 1, 2, 'hi']);
  retrieve.end('retrieve input');
  const assemble = new AbiReader(
    encodeAssembleInput({ systemPrompt: 's', query: 'q', tokenBudget: 9, history: [], chunks: [{ chunkId: 'c', docId: 'd', title: 't', text: 'x', score: 0.5 }] }),
  );
  const fields = [assemble.str('s'), assemble.str('q'), assemble.u32('b'), assemble.u32('h'), assemble.u32('n')];
  const chunk = [assemble.str('id'), assemble.str('doc'), assemble.str('title'), assemble.str('text'), assemble.f32('score')];
  assert.equal([...fields, ...chunk], ['s', 'q', 9, 0, 1, 'c', 'd', 't', 'x', 0.5]);
  assemble.end('assemble input');
});

test('slot codecs: assemble output parts decode to text and chunk references', () => {
  const output = new AbiWriter().u8(1).u32(1).u8(1).u32(2).u8(0).str('see ').u8(1).str('c').finish();
  assert.equal(decodeAssembleOutput(output, new Set(['c'])), {
    cacheable: true,
    messages: [{ role: 'user', parts: [{ kind: 'text', value: 'see ' }, { kind: 'chunk', value: 'c' }] }],
  });
});

test.run();
