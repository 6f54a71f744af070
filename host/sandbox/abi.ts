/**
 * The host side of ABI `ctx:host/v1`: the binary codec and the request/response messages of the
 * host functions. Everything a plugin sends is attacker-controlled, so every read checks the bytes
 * that remain, every count is bounded (by a named limit and by the bytes left) before anything is
 * allocated, strings must be valid UTF-8, and a message must end exactly where its last field does.
 *
 * Little-endian primitives: u8, u32, f32; `str` = u32 byteLength + UTF-8; `bytes` = u32 length + raw.
 */
import { LIMITS } from '../limits.ts';
import type { ChunkView, SearchHit, SearchRequest } from './capabilities.ts';

/** The first byte of every host function response. */
export const HostStatus = {
  ok: 0,
  badRequest: 1,
  notFound: 2,
  limit: 3,
  internal: 4,
} as const;

/** One of the {@link HostStatus} values. */
export type HostStatusCode = (typeof HostStatus)[keyof typeof HostStatus];

/**
 * A message that does not decode. `message` names the field and what was wrong with it; the
 * sandbox turns it into a `bad_request` status (host function requests) or PLUGIN_BAD_OUTPUT
 * (plugin outputs). It never leaves the sandbox as such.
 */
export class AbiDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbiDecodeError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * Reads one message. Every method takes the name of the field it reads, so errors say which one.
 *
 * @example
 * ```ts
 * const reader = new AbiReader(bytes);
 * const key = reader.str('key', LIMITS.kvKeyBytesMax);
 * reader.end();
 * ```
 */
export class AbiReader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  #position = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.byteLength - this.#position;
  }

  #take(size: number, field: string): number {
    if (size > this.remaining) {
      throw new AbiDecodeError(`${field}: needs ${size} bytes at byte ${this.#position}, only ${this.remaining} remain`);
    }
    const at = this.#position;
    this.#position += size;
    return at;
  }

  /** Reads a u8. */
  u8(field: string): number {
    return this.#view.getUint8(this.#take(1, field));
  }

  /** Reads a little-endian u32. */
  u32(field: string): number {
    return this.#view.getUint32(this.#take(4, field), true);
  }

  /** Reads a little-endian f32; NaN and infinities are refused (they poison every ranking). */
  f32(field: string): number {
    const value = this.#view.getFloat32(this.#take(4, field), true);
    if (!Number.isFinite(value)) throw new AbiDecodeError(`${field}: ${value} is not a finite number`);
    return value;
  }

  /** Reads raw bytes (a copy). */
  bytes(field: string, bytesMax: number): Uint8Array {
    const size = this.u32(`${field} length`);
    if (size > bytesMax) throw new AbiDecodeError(`${field}: ${size} bytes, over the limit of ${bytesMax}`);
    const at = this.#take(size, field);
    return this.#bytes.slice(at, at + size);
  }

  /** Reads a UTF-8 string of at most `bytesMax` bytes. */
  str(field: string, bytesMax: number = Number.MAX_SAFE_INTEGER): string {
    const size = this.u32(`${field} length`);
    if (size > bytesMax) throw new AbiDecodeError(`${field}: ${size} bytes, over the limit of ${bytesMax}`);
    const at = this.#take(size, field);
    try {
      return utf8.decode(this.#bytes.subarray(at, at + size));
    } catch {
      throw new AbiDecodeError(`${field}: not valid UTF-8`);
    }
  }

  /**
   * Reads an item count: at most `countMax`, and small enough that `count` items of at least
   * `itemBytesMin` bytes each fit in what remains (so a forged count allocates nothing).
   */
  count(field: string, countMax: number, itemBytesMin: number): number {
    const count = this.u32(field);
    if (count > countMax) throw new AbiDecodeError(`${field}: ${count}, over the limit of ${countMax}`);
    if (count * itemBytesMin > this.remaining) {
      throw new AbiDecodeError(`${field}: ${count} items cannot fit in the ${this.remaining} bytes that remain`);
    }
    return count;
  }

  /** Asserts the message ended: trailing bytes are refused, not ignored. */
  end(what: string): void {
    if (this.remaining !== 0) throw new AbiDecodeError(`${what}: ${this.remaining} trailing bytes after the last field`);
  }
}

/**
 * Builds one message.
 *
 * @example
 * ```ts
 * const bytes = new AbiWriter().u8(HostStatus.ok).str('hello').finish();
 * ```
 */
export class AbiWriter {
  #buffer = new Uint8Array(256);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;

  #reserve(size: number): number {
    const needed = this.#length + size;
    if (needed > this.#buffer.byteLength) {
      let capacity = this.#buffer.byteLength * 2;
      while (capacity < needed) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
      this.#view = new DataView(grown.buffer);
    }
    const at = this.#length;
    this.#length = needed;
    return at;
  }

  /** Appends a u8. */
  u8(value: number): this {
    // Reserve before reading #view: reserving may replace the buffer and its view.
    const at = this.#reserve(1);
    this.#view.setUint8(at, value);
    return this;
  }

  /** Appends a little-endian u32. */
  u32(value: number): this {
    // Reserve before reading #view: reserving may replace the buffer and its view.
    const at = this.#reserve(4);
    this.#view.setUint32(at, value, true);
    return this;
  }

  /** Appends a little-endian f32. */
  f32(value: number): this {
    // Reserve before reading #view: reserving may replace the buffer and its view.
    const at = this.#reserve(4);
    this.#view.setFloat32(at, value, true);
    return this;
  }

  /** Appends `bytes`. */
  bytes(value: Uint8Array): this {
    this.u32(value.byteLength);
    // Reserve first: it may replace the buffer.
    const at = this.#reserve(value.byteLength);
    this.#buffer.set(value, at);
    return this;
  }

  /** Appends `str`. */
  str(value: string): this {
    return this.bytes(utf8Encoder.encode(value));
  }

  /** The message: a fresh copy of exactly the bytes written. */
  finish(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}

/**
 * An error response: the status, then a message for the plugin.
 *
 * @example
 * ```ts
 * const response = encodeErrorResponse(HostStatus.notFound, 'chunk_get: no chunk has that id');
 * ```
 */
export function encodeErrorResponse(status: Exclude<HostStatusCode, 0>, message: string): Uint8Array {
  return new AbiWriter().u8(status).str(message).finish();
}

/** Each request field's minimum encoded size, used to bound counts by the bytes that remain. */
const FILTER_ENTRY_BYTES_MIN = 8;
const F32_BYTES = 4;

/**
 * Decodes an `index_search` request:
 * `str query; u32 k; u8 mode; u32 vecLen + f32[vecLen]; u32 filterCount + (str key, str value)*`.
 *
 * @example
 * ```ts
 * const request = decodeSearchRequest(bytes); // request.mode.vector, request.filter, ...
 * ```
 * @throws {AbiDecodeError} naming the field that is malformed or out of range.
 */
export function decodeSearchRequest(bytes: Uint8Array): SearchRequest {
  const reader = new AbiReader(bytes);
  const query = reader.str('query');
  const k = reader.u32('k');
  if (k < 1 || k > LIMITS.searchHitsMax) throw new AbiDecodeError(`k: ${k}, must be 1..${LIMITS.searchHitsMax}`);
  const mode = reader.u8('mode');
  if (mode < 1 || mode > 3) throw new AbiDecodeError(`mode: ${mode}, must set bit 0 (vector), bit 1 (lexical) or both`);
  const vecLen = reader.count('vecLen', Math.floor(LIMITS.hostCallInputBytesMax / F32_BYTES), F32_BYTES);
  let vector: Float32Array | null = null;
  if (vecLen > 0) {
    vector = new Float32Array(vecLen);
    for (let i = 0; i < vecLen; i += 1) vector[i] = reader.f32(`vector[${i}]`);
  }
  const filter: Record<string, string> = Object.create(null) as Record<string, string>;
  const filterCount = reader.count('filterCount', LIMITS.metadataEntriesMax, FILTER_ENTRY_BYTES_MIN);
  for (let i = 0; i < filterCount; i += 1) {
    const key = readMetadataString(reader, `filter[${i}].key`);
    const value = readMetadataString(reader, `filter[${i}].value`);
    if (key in filter) throw new AbiDecodeError(`filter[${i}].key: duplicates an earlier key`);
    filter[key] = value;
  }
  reader.end('index_search request');
  return { query, k, mode: { vector: (mode & 1) !== 0, lexical: (mode & 2) !== 0 }, vector, filter };
}

function readMetadataString(reader: AbiReader, field: string): string {
  const value = reader.str(field);
  if (value.length > LIMITS.metadataValueCharsMax) {
    throw new AbiDecodeError(`${field}: ${value.length} characters, over the limit of ${LIMITS.metadataValueCharsMax}`);
  }
  return value;
}

/**
 * Encodes an `index_search` response: `u32 n; n × (str chunkId; str docId; f32 score; u8 via)`.
 *
 * @example
 * ```ts
 * const response = encodeSearchResponse(capabilities.indexSearch(request).slice(0, request.k));
 * ```
 */
export function encodeSearchResponse(hits: readonly SearchHit[]): Uint8Array {
  const writer = new AbiWriter().u8(HostStatus.ok).u32(hits.length);
  for (const hit of hits) writer.str(hit.chunkId).str(hit.docId).f32(hit.score).u8(hit.via);
  return writer.finish();
}

/**
 * Decodes a request that is a single string (`chunk_get`, `kv_get`, `embed`).
 *
 * @example
 * ```ts
 * const chunkId = decodeStringRequest(bytes, 'chunkId', LIMITS.hostCallInputBytesMax);
 * ```
 * @throws {AbiDecodeError} when it is not exactly one valid string within `bytesMax`.
 */
export function decodeStringRequest(bytes: Uint8Array, field: string, bytesMax: number): string {
  const reader = new AbiReader(bytes);
  const value = reader.str(field, bytesMax);
  reader.end(`${field} request`);
  return value;
}

/**
 * Encodes a `chunk_get` response: `str chunkId; str docId; str title; str text; u32 metaCount + (str, str)*`.
 *
 * @example
 * ```ts
 * const response = encodeChunkResponse(view);
 * ```
 */
export function encodeChunkResponse(chunk: ChunkView): Uint8Array {
  const writer = new AbiWriter().u8(HostStatus.ok).str(chunk.chunkId).str(chunk.docId).str(chunk.title).str(chunk.text);
  const entries = Object.entries(chunk.metadata);
  writer.u32(entries.length);
  for (const [key, value] of entries) writer.str(key).str(value);
  return writer.finish();
}

/**
 * Encodes a `kv_get` response: `u8 found; bytes value` (empty when not found).
 *
 * @example
 * ```ts
 * const response = encodeKvGetResponse(capabilities.kvGet(key));
 * ```
 */
export function encodeKvGetResponse(value: Uint8Array | undefined): Uint8Array {
  return new AbiWriter().u8(HostStatus.ok).u8(value === undefined ? 0 : 1).bytes(value ?? new Uint8Array(0)).finish();
}

/**
 * Decodes a `kv_set` request: `str key; bytes value` (an empty value deletes the key).
 *
 * @example
 * ```ts
 * const { key, value } = decodeKvSetRequest(bytes);
 * ```
 * @throws {AbiDecodeError} when the key or value is over its limit or the message is malformed.
 */
export function decodeKvSetRequest(bytes: Uint8Array): { key: string; value: Uint8Array } {
  const reader = new AbiReader(bytes);
  const key = decodeKvKey(reader);
  const value = reader.bytes('value', LIMITS.kvValueBytesMax);
  reader.end('kv_set request');
  return { key, value };
}

/**
 * Reads a kv key: 1..kvKeyBytesMax bytes of UTF-8.
 *
 * @example
 * ```ts
 * const key = decodeKvKey(new AbiReader(bytes));
 * ```
 * @throws {AbiDecodeError} when the key is empty, too long or not UTF-8.
 */
export function decodeKvKey(reader: AbiReader): string {
  const key = reader.str('key', LIMITS.kvKeyBytesMax);
  if (key.length === 0) throw new AbiDecodeError('key: must not be empty');
  return key;
}

/**
 * An empty success response (`kv_set`).
 *
 * @example
 * ```ts
 * return encodeEmptyResponse();
 * ```
 */
export function encodeEmptyResponse(): Uint8Array {
  return Uint8Array.of(HostStatus.ok);
}

/**
 * Encodes an `embed` response: `u32 dim; f32[dim]`.
 *
 * @example
 * ```ts
 * const response = encodeEmbedResponse(capabilities.embed(text));
 * ```
 */
export function encodeEmbedResponse(vector: Float32Array): Uint8Array {
  const writer = new AbiWriter().u8(HostStatus.ok).u32(vector.length);
  for (const value of vector) writer.f32(value);
  return writer.finish();
}
