/**
 * The plugin ABI, where a plugin — tenant code, possibly hostile — hands the host bytes:
 *
 * - `abi-requests`: the host-function argument decoders (host/sandbox/abi.ts: `index_search`,
 *   the one-string requests of `chunk_get` / `kv_get` / `embed`, `kv_set`). Each returns a value
 *   within its limits or throws AbiDecodeError, and nothing else; a request encoded as the SDK
 *   encodes it decodes to what was encoded; what is decoded is bounded by the bytes given.
 * - `host-functions`: the host functions themselves (host/sandbox/host-functions.ts) over an
 *   in-memory tenant: they never throw into the plugin, and every response is one well-formed
 *   message whose first byte is a status.
 * - `slot-outputs`: the decoders of plugin output (host/sandbox/slots.ts): a value within the slot's
 *   rules or PLUGIN_BAD_OUTPUT; outputs encoded as the SDK encodes them decode to themselves.
 */
import fc from 'fast-check';
import type { HostError } from '../../../host/errors.ts';
import { LIMITS } from '../../../host/limits.ts';
import { AbiDecodeError, AbiReader, AbiWriter, decodeKvSetRequest, decodeSearchRequest, decodeStringRequest, HostStatus } from '../../../host/sandbox/abi.ts';
import type { SearchRequest } from '../../../host/sandbox/capabilities.ts';
import type { GuestMemory } from '../../../host/sandbox/extism.ts';
import { createHostFunctions, type HostCallBudget } from '../../../host/sandbox/host-functions.ts';
import { HOST_FUNCTION_NAMES } from '../../../host/sandbox/module-cache.ts';
import { decodeAssembleOutput, decodeRetrieveOutput, type AssembleOutput, type RankedChunk } from '../../../host/sandbox/slots.ts';
import { addChunk, memoryTenant } from '../../sandbox/harness.ts';
import { mutatedFrom } from '../mutate.ts';
import { ensure, expectErrorOf, expectHostError, preview, PropertyViolation, requireEqual, runCheck, type FuzzTarget } from '../target.ts';

// ---- Encoders as the SDK writes these messages (sdk/as/codec.ts), for round trips. ----

/** `index_search` request: `str query; u32 k; u8 mode; u32 vecLen + f32*; u32 filterCount + (str, str)*`. */
export function encodeSearchRequest(request: SearchSpec): Uint8Array {
  const writer = new AbiWriter().str(request.query).u32(request.k).u8(request.mode).u32(request.vector.length);
  for (const value of request.vector) writer.f32(value);
  writer.u32(request.filter.length);
  for (const [key, value] of request.filter) writer.str(key).str(value);
  return writer.finish();
}

/** `kv_set` request: `str key; bytes value`. */
export function encodeKvSetRequest(key: string, value: Uint8Array): Uint8Array {
  return new AbiWriter().str(key).bytes(value).finish();
}

/** `retrieve` output: `u32 n; n × (str chunkId; f32 score)`. */
export function encodeRetrieveOutput(chunks: readonly RankedChunk[]): Uint8Array {
  const writer = new AbiWriter().u32(chunks.length);
  for (const chunk of chunks) writer.str(chunk.chunkId).f32(chunk.score);
  return writer.finish();
}

/** `assemble` output: `u8 flags; u32 msgCount + (u8 role; u32 partCount + (u8 kind; str value)*)*`. */
export function encodeAssembleOutput(output: AssembleOutput): Uint8Array {
  const writer = new AbiWriter().u8(output.cacheable ? 1 : 0).u32(output.messages.length);
  for (const message of output.messages) {
    writer.u8(['system', 'user', 'assistant'].indexOf(message.role)).u32(message.parts.length);
    for (const part of message.parts) writer.u8(part.kind === 'text' ? 0 : 1).str(part.value);
  }
  return writer.finish();
}

// ---- Generators. ----

/** Strings UTF-8 can carry (no lone surrogate): what a plugin's valid message holds. */
const wellFormed = (maxLength: number, minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', minLength, maxLength }).filter((text) => text.length >= minLength && text.length <= maxLength);
/** f32 values as they come back from an f32 field: finite, rounded to f32. */
const finiteF32 = fc.float({ noNaN: true, noDefaultInfinity: true }).map((value) => Math.fround(value));

const validSearch: fc.Arbitrary<SearchSpec> = fc.record({
  query: wellFormed(64),
  k: fc.oneof(fc.integer({ min: 1, max: LIMITS.searchHitsMax }), fc.constantFrom(1, LIMITS.searchHitsMax)),
  mode: fc.integer({ min: 1, max: 3 }),
  vector: fc.array(finiteF32, { maxLength: 16 }),
  filter: fc.uniqueArray(fc.tuple(wellFormed(24), wellFormed(24)), { maxLength: 4, selector: ([key]) => key }),
});

/** Bytes for a decoder: arbitrary, structured-then-mutated, or the valid message itself. */
function bytesFrom(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 128 }),
    valid,
    valid.chain((bytes) => mutatedFrom(bytes)),
    // A forged count or length followed by little: the decoders must not allocate for it.
    fc.tuple(fc.constantFrom(0xffff_ffff, 0x8000_0000, 0x0100_0000, 65_536, 4097), fc.uint8Array({ maxLength: 16 })).map(([count, rest]) => new AbiWriter().u32(count).bytes(rest).finish().subarray(0)),
  );
}

/** An `index_search` request as generated, before encoding. */
type SearchSpec = { query: string; k: number; mode: number; vector: number[]; filter: [string, string][] };

/** One request to decode, with what it must decode to when it was encoded from a valid one. */
type AbiRequest =
  | { fn: 'index_search'; bytes: Uint8Array; valid?: SearchSpec }
  | { fn: 'chunk_get' | 'kv_get' | 'embed'; bytes: Uint8Array; valid?: string }
  | { fn: 'kv_set'; bytes: Uint8Array; valid?: { key: string; value: Uint8Array } };

const stringRequest = (fn: 'chunk_get' | 'kv_get' | 'embed', maxLength: number): fc.Arbitrary<AbiRequest> =>
  fc.oneof(
    wellFormed(maxLength).map((value) => ({ fn, bytes: new AbiWriter().str(value).finish(), valid: value })),
    bytesFrom(wellFormed(maxLength).map((value) => new AbiWriter().str(value).finish())).map((bytes) => ({ fn, bytes })),
  );

const abiRequest: fc.Arbitrary<AbiRequest> = fc.oneof(
  validSearch.map((valid) => ({ fn: 'index_search' as const, bytes: encodeSearchRequest(valid), valid })),
  bytesFrom(validSearch.map(encodeSearchRequest)).map((bytes) => ({ fn: 'index_search' as const, bytes })),
  stringRequest('chunk_get', 40),
  stringRequest('kv_get', 40),
  stringRequest('embed', 40),
  fc.tuple(wellFormed(40, 1), fc.uint8Array({ maxLength: 64 })).map(([key, value]) => ({ fn: 'kv_set' as const, bytes: encodeKvSetRequest(key, value), valid: { key, value } })),
  bytesFrom(fc.tuple(wellFormed(40, 1), fc.uint8Array({ maxLength: 64 })).map(([key, value]) => encodeKvSetRequest(key, value))).map((bytes) => ({ fn: 'kv_set' as const, bytes })),
);

// ---- abi-requests ----

function checkSearch(bytes: Uint8Array, valid: SearchSpec | undefined): void {
  let request: SearchRequest;
  try {
    request = decodeSearchRequest(bytes);
  } catch (error: unknown) {
    expectErrorOf('abi-requests', error, AbiDecodeError);
    ensure(valid === undefined, `a valid request was refused: ${String(error)}`);
    return;
  }
  ensure(request.k >= 1 && request.k <= LIMITS.searchHitsMax, `k ${request.k} out of range`);
  ensure(request.mode.vector || request.mode.lexical, 'no mode');
  ensure((request.vector?.length ?? 0) * 4 <= bytes.byteLength, 'more vector than bytes');
  const filterKeys = Object.keys(request.filter);
  ensure(filterKeys.length <= LIMITS.metadataEntriesMax, 'too many filter entries');
  ensure(Object.values(request.filter).every((value) => value.length <= LIMITS.metadataValueCharsMax), 'a filter value over its limit');
  ensure(request.vector === null || request.vector.every(Number.isFinite), 'a non-finite vector value');
  if (valid !== undefined) {
    requireEqual(
      { query: request.query, k: request.k, mode: (request.mode.vector ? 1 : 0) | (request.mode.lexical ? 2 : 0), vector: request.vector === null ? [] : Array.from(request.vector), filter: Object.entries(request.filter) },
      { query: valid.query, k: valid.k, mode: valid.mode, vector: valid.vector, filter: valid.filter },
      'index_search round trip',
    );
  }
}

function checkRequest(request: AbiRequest): void {
  if (request.fn === 'index_search') return checkSearch(request.bytes, request.valid);
  if (request.fn === 'kv_set') {
    try {
      const decoded = decodeKvSetRequest(request.bytes);
      ensure(decoded.key.length > 0 && Buffer.byteLength(decoded.key) <= LIMITS.kvKeyBytesMax, 'kv_set key out of its limits');
      ensure(decoded.value.byteLength <= LIMITS.kvValueBytesMax && decoded.value.byteLength <= request.bytes.byteLength, 'kv_set value out of its limits');
      if (request.valid !== undefined) requireEqual({ key: decoded.key, value: Array.from(decoded.value) }, { key: request.valid.key, value: Array.from(request.valid.value) }, 'kv_set round trip');
    } catch (error: unknown) {
      if (error instanceof PropertyViolation) throw error;
      expectErrorOf('abi-requests', error, AbiDecodeError);
      ensure(request.valid === undefined, `a valid kv_set was refused: ${String(error)}`);
    }
    return;
  }
  const bytesMax = request.fn === 'kv_get' ? LIMITS.kvKeyBytesMax : LIMITS.hostCallInputBytesMax;
  try {
    const value = decodeStringRequest(request.bytes, request.fn, bytesMax);
    ensure(Buffer.byteLength(value) <= bytesMax && Buffer.byteLength(value) + 4 === request.bytes.byteLength, `${request.fn}: the string does not account for the bytes`);
    if (request.valid !== undefined) requireEqual(value, request.valid, `${request.fn} round trip`);
  } catch (error: unknown) {
    if (error instanceof PropertyViolation) throw error;
    expectErrorOf('abi-requests', error, AbiDecodeError);
    ensure(request.valid === undefined, `a valid ${request.fn} request was refused: ${String(error)}`);
  }
}

export const abiRequestsTarget: FuzzTarget = {
  name: 'abi-requests',
  summary: 'host-function argument decoders (index_search, chunk_get/kv_get/embed, kv_set) over arbitrary, forged-count and mutated requests',
  testRuns: 3_000,
  async open() {
    const property = fc.asyncProperty(abiRequest, async (request) => checkRequest(request));
    return { check: (params) => runCheck(property, params), close: async () => undefined };
  },
};

// ---- host-functions ----

/** Checks that `response` is exactly one message of `fn`'s response format for `status`. */
function checkResponse(fn: (typeof HOST_FUNCTION_NAMES)[number], response: Uint8Array): void {
  ensure(response.byteLength >= 1, 'an empty response');
  const reader = new AbiReader(response);
  const status = reader.u8('status');
  ensure(Object.values(HostStatus).includes(status as never), `status ${status} is not one of HostStatus`);
  try {
    if (status !== HostStatus.ok) {
      reader.str('message');
    } else if (fn === 'index_search') {
      const count = reader.u32('count');
      for (let i = 0; i < count; i += 1) {
        reader.str('chunkId');
        reader.str('docId');
        reader.f32('score');
        ensure([1, 2].includes(reader.u8('via')), 'via is not 1 or 2');
      }
    } else if (fn === 'chunk_get') {
      for (const field of ['chunkId', 'docId', 'title', 'text']) reader.str(field);
      const entries = reader.u32('metaCount');
      for (let i = 0; i < entries; i += 1) {
        reader.str('metaKey');
        reader.str('metaValue');
      }
    } else if (fn === 'kv_get') {
      ensure([0, 1].includes(reader.u8('found')), 'found is not 0 or 1');
      reader.bytes('value', LIMITS.kvValueBytesMax);
    } else if (fn === 'embed') {
      const dim = reader.u32('dim');
      for (let i = 0; i < dim; i += 1) reader.f32('value');
    }
    reader.end(`${fn} response`);
  } catch (error: unknown) {
    if (error instanceof PropertyViolation) throw error;
    throw new PropertyViolation(`${fn} answered a malformed response (status ${status}): ${String(error)}; ${preview(response)}`);
  }
}

export const hostFunctionsTarget: FuzzTarget = {
  name: 'host-functions',
  summary: 'the ctx:host/v1 functions over an in-memory tenant: never throw, always one well-formed status response',
  testRuns: 3_000,
  async open() {
    const tenant = memoryTenant();
    addChunk(tenant, 'doc#0', 'Title', 'Some chunk text.');
    tenant.ranking.vector = ['doc#0'];
    tenant.ranking.lexical = ['doc#0'];
    const budget: HostCallBudget = { calls: 0, failure: null, deadlineAt: Number.POSITIVE_INFINITY };
    const internal: unknown[] = [];
    const functions = createHostFunctions(tenant.capabilities, {
      budget,
      hostCallsPerCallMax: LIMITS.hostCallsPerPluginCallMax,
      hostCallInputBytesMax: LIMITS.hostCallInputBytesMax,
      onInternalError: (_name, error) => internal.push(error),
    });
    const property = fc.asyncProperty(
      fc.oneof(
        abiRequest,
        // Any request to any function: the wrong function's bytes included.
        fc.record({ fn: fc.constantFrom(...HOST_FUNCTION_NAMES), bytes: fc.uint8Array({ maxLength: 64 }) }),
        // chunk_get of the chunk that exists, so the found path runs too.
        fc.constant({ fn: 'chunk_get' as const, bytes: new AbiWriter().str('doc#0').finish() }),
      ),
      fc.integer({ min: 0, max: LIMITS.hostCallsPerPluginCallMax + 1 }),
      async (request, callsBefore) => {
        budget.calls = callsBefore;
        budget.failure = null;
        internal.length = 0;
        let stored: Uint8Array | undefined;
        const memory: GuestMemory = {
          readBlock: (_offset, bytesMax) =>
            request.bytes.byteLength > bytesMax ? { ok: false, reason: 'too_large', message: `over ${bytesMax} bytes` } : { ok: true, bytes: request.bytes },
          storeBlock: (bytes) => {
            stored = bytes;
            return 8n;
          },
        };
        let returned: bigint;
        try {
          returned = functions[request.fn](memory, 8n);
        } catch (error: unknown) {
          throw new PropertyViolation(`${request.fn} threw into the plugin: ${String(error)}`);
        }
        ensure(returned === 8n && stored !== undefined, `${request.fn} stored no response`);
        checkResponse(request.fn, stored);
        ensure(internal.length === 0, `${request.fn} reported an internal error: ${String(internal[0])}`);
        // The call sets budget.failure; the cast undoes TypeScript's narrowing from the reset above.
        if (callsBefore >= LIMITS.hostCallsPerPluginCallMax) {
          ensure(stored[0] === HostStatus.limit && (budget.failure as HostError | null)?.code === 'PLUGIN_HOST_CALL_LIMIT', 'a call past the host-call cap was not refused');
        }
      },
    );
    return { check: (params) => runCheck(property, params), close: async () => undefined };
  },
};

// ---- slot-outputs ----

const chunkIds = ['a#0', 'a#1', 'b#0', 'ünï#2'];
const validRetrieve = fc.uniqueArray(fc.record({ chunkId: fc.oneof(fc.constantFrom(...chunkIds), wellFormed(20, 1)), score: finiteF32 }), { maxLength: 8, selector: (chunk) => chunk.chunkId });
const validAssemble: fc.Arbitrary<AssembleOutput> = fc.record({
  cacheable: fc.boolean(),
  messages: fc.array(
    fc.record({
      role: fc.constantFrom('system' as const, 'user' as const, 'assistant' as const),
      parts: fc.array(fc.oneof(fc.record({ kind: fc.constant('text' as const), value: wellFormed(40) }), fc.record({ kind: fc.constant('chunk' as const), value: fc.constantFrom(...chunkIds) })), { maxLength: 4 }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

type SlotInput = { slot: 'retrieval'; k: number; bytes: Uint8Array; valid?: RankedChunk[] } | { slot: 'prompt'; bytes: Uint8Array; valid?: AssembleOutput };

const slotInput: fc.Arbitrary<SlotInput> = fc.oneof(
  validRetrieve.map((valid) => ({ slot: 'retrieval' as const, k: Math.max(valid.length, 1), bytes: encodeRetrieveOutput(valid), valid })),
  fc.tuple(fc.integer({ min: 1, max: LIMITS.retrievedChunksMax }), bytesFrom(validRetrieve.map(encodeRetrieveOutput))).map(([k, bytes]) => ({ slot: 'retrieval' as const, k, bytes })),
  validAssemble.map((valid) => ({ slot: 'prompt' as const, bytes: encodeAssembleOutput(valid), valid })),
  bytesFrom(validAssemble.map(encodeAssembleOutput)).map((bytes) => ({ slot: 'prompt' as const, bytes })),
);

function checkSlotOutput(input: SlotInput): void {
  try {
    if (input.slot === 'retrieval') {
      const ranked = decodeRetrieveOutput(input.bytes, input.k);
      ensure(ranked.length <= input.k, `${ranked.length} chunks for k = ${input.k}`);
      ensure(new Set(ranked.map((chunk) => chunk.chunkId)).size === ranked.length, 'a repeated chunk id');
      ensure(ranked.every((chunk) => chunk.chunkId.length > 0 && Number.isFinite(chunk.score)), 'an empty id or a non-finite score');
      if (input.valid !== undefined) requireEqual(ranked, input.valid.map((chunk) => ({ ...chunk })), 'retrieve output round trip');
    } else {
      const output = decodeAssembleOutput(input.bytes, new Set(chunkIds));
      ensure(output.messages.length >= 1 && output.messages.length <= LIMITS.promptMessagesMax, `${output.messages.length} messages`);
      ensure(output.messages.every((message) => message.parts.every((part) => part.kind === 'text' || chunkIds.includes(part.value))), 'a chunk reference outside the input');
      if (input.valid !== undefined) requireEqual(output, structuredClone(input.valid), 'assemble output round trip');
    }
  } catch (error: unknown) {
    if (error instanceof PropertyViolation) throw error;
    expectHostError('slot-outputs', error, ['PLUGIN_BAD_OUTPUT']);
    ensure(input.valid === undefined, `a valid ${input.slot} output was refused: ${String(error)}`);
  }
}

export const slotOutputsTarget: FuzzTarget = {
  name: 'slot-outputs',
  summary: 'decoders of retrieve and assemble output over arbitrary, forged-count and mutated outputs',
  testRuns: 3_000,
  async open() {
    const property = fc.asyncProperty(slotInput, async (input) => checkSlotOutput(input));
    return { check: (params) => runCheck(property, params), close: async () => undefined };
  },
};
