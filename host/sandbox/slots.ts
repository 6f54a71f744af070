/**
 * The two plugin slots as typed TypeScript: what the host passes to `retrieve` and `assemble`,
 * what it accepts back, and the codec between those types and the ABI bytes. Inputs come from
 * the host, so their bounds are assertions; outputs come from a plugin, so every field is
 * validated and any failure is PLUGIN_BAD_OUTPUT naming the field.
 */
import assert from 'node:assert/strict';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { AbiDecodeError, AbiReader, AbiWriter } from './abi.ts';

/** The two plugin slots. */
export type PluginSlot = 'retrieval' | 'prompt';

/** Who spoke. */
export type Role = 'system' | 'user' | 'assistant';

/** One turn of the session's history. */
export interface HistoryTurn {
  role: Role;
  content: string;
}

/** Input of `retrieve`. */
export interface RetrieveInput {
  query: string;
  /** Chunks wanted, 1..LIMITS.retrievedChunksMax. */
  k: number;
  history: readonly HistoryTurn[];
}

/** One chunk `retrieve` ranked. */
export interface RankedChunk {
  chunkId: string;
  score: number;
}

/** A chunk handed to `assemble`, with its provenance. */
export interface ContextChunk {
  chunkId: string;
  docId: string;
  title: string;
  text: string;
  score: number;
}

/** Input of `assemble`. */
export interface AssembleInput {
  systemPrompt: string;
  query: string;
  tokenBudget: number;
  history: readonly HistoryTurn[];
  chunks: readonly ContextChunk[];
}

/** A part of a prompt message: literal text, or a chunk id the host resolves to that chunk's text. */
export interface MessagePart {
  kind: 'text' | 'chunk';
  value: string;
}

/** One prompt message. */
export interface AssembledMessage {
  role: Role;
  parts: MessagePart[];
}

/** Output of `assemble`. */
export interface AssembleOutput {
  /** The plugin says the answer depends only on this input (no history), so it may be cached. */
  cacheable: boolean;
  messages: AssembledMessage[];
}

const ROLES: readonly Role[] = ['system', 'user', 'assistant'];
const PART_KINDS: readonly MessagePart['kind'][] = ['text', 'chunk'];
/** Smallest encodings, used to bound counts by the bytes that remain. */
const RANKED_CHUNK_BYTES_MIN = 8;
const MESSAGE_BYTES_MIN = 5;
const PART_BYTES_MIN = 5;
const U32_MAX = 0xffff_ffff;

function writeHistory(writer: AbiWriter, history: readonly HistoryTurn[]): void {
  assert.ok(history.length <= LIMITS.historyTurnsMax * 2, `history has ${history.length} turns, over twice LIMITS.historyTurnsMax`);
  writer.u32(history.length);
  for (const turn of history) writer.u8(ROLES.indexOf(turn.role)).str(turn.content);
}

/**
 * Encodes the input of `retrieve`: `str query; u32 k; u32 historyCount + (u8 role; str content)*`.
 *
 * @example
 * ```ts
 * const bytes = encodeRetrieveInput({ query: 'refunds?', k: 5, history: [] });
 * ```
 */
export function encodeRetrieveInput(input: RetrieveInput): Uint8Array {
  assert.ok(Number.isInteger(input.k) && input.k >= 1 && input.k <= LIMITS.retrievedChunksMax, `k ${input.k} is outside 1..${LIMITS.retrievedChunksMax}`);
  const writer = new AbiWriter().str(input.query).u32(input.k);
  writeHistory(writer, input.history);
  return writer.finish();
}

/**
 * Decodes and validates the output of `retrieve`: `u32 n; n × (str chunkId; f32 score)`, with
 * n ≤ k, non-empty unique chunk ids and finite scores.
 *
 * @example
 * ```ts
 * const ranked = decodeRetrieveOutput(outputBytes, input.k);
 * ```
 * @throws {HostError} PLUGIN_BAD_OUTPUT naming the field.
 */
export function decodeRetrieveOutput(bytes: Uint8Array, k: number): RankedChunk[] {
  return asBadOutput('retrieve', () => {
    const reader = new AbiReader(bytes);
    const count = reader.count('chunkCount', k, RANKED_CHUNK_BYTES_MIN);
    const chunks: RankedChunk[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i += 1) {
      const chunkId = reader.str(`chunks[${i}].chunkId`);
      if (chunkId.length === 0) throw new AbiDecodeError(`chunks[${i}].chunkId: must not be empty`);
      if (seen.has(chunkId)) throw new AbiDecodeError(`chunks[${i}].chunkId: repeats an earlier chunk`);
      seen.add(chunkId);
      chunks.push({ chunkId, score: reader.f32(`chunks[${i}].score`) });
    }
    reader.end('output');
    return chunks;
  });
}

/**
 * Encodes the input of `assemble`:
 * `str systemPrompt; str query; u32 tokenBudget; u32 historyCount + (u8 role; str content)*;
 * u32 chunkCount + (str chunkId; str docId; str title; str text; f32 score)*`.
 *
 * @example
 * ```ts
 * const bytes = encodeAssembleInput({ systemPrompt, query, tokenBudget: 2000, history: [], chunks });
 * ```
 */
export function encodeAssembleInput(input: AssembleInput): Uint8Array {
  assert.ok(Number.isInteger(input.tokenBudget) && input.tokenBudget >= 0 && input.tokenBudget <= U32_MAX, `tokenBudget ${input.tokenBudget} is not a u32`);
  assert.ok(input.chunks.length <= LIMITS.retrievedChunksMax, `${input.chunks.length} chunks, over LIMITS.retrievedChunksMax`);
  const writer = new AbiWriter().str(input.systemPrompt).str(input.query).u32(input.tokenBudget);
  writeHistory(writer, input.history);
  writer.u32(input.chunks.length);
  for (const chunk of input.chunks) {
    writer.str(chunk.chunkId).str(chunk.docId).str(chunk.title).str(chunk.text).f32(chunk.score);
  }
  return writer.finish();
}

/**
 * Decodes and validates the output of `assemble`:
 * `u8 flags; u32 msgCount + (u8 role; u32 partCount + (u8 kind; str value)*)*`. Only flag bit 0
 * (cacheable) is defined; 1..promptMessagesMax messages; every chunk reference must name a chunk
 * of the input, so a plugin cannot smuggle in material the host did not resolve for this ask.
 *
 * @example
 * ```ts
 * const output = decodeAssembleOutput(bytes, new Set(input.chunks.map((c) => c.chunkId)));
 * ```
 * @throws {HostError} PLUGIN_BAD_OUTPUT naming the field.
 */
export function decodeAssembleOutput(bytes: Uint8Array, inputChunkIds: ReadonlySet<string>): AssembleOutput {
  return asBadOutput('assemble', () => {
    const reader = new AbiReader(bytes);
    const flags = reader.u8('flags');
    if ((flags & ~1) !== 0) throw new AbiDecodeError(`flags: 0x${flags.toString(16)} sets bits other than bit 0 (cacheable)`);
    const count = reader.count('messageCount', LIMITS.promptMessagesMax, MESSAGE_BYTES_MIN);
    if (count === 0) throw new AbiDecodeError('messageCount: 0, at least one message is required');
    const messages: AssembledMessage[] = [];
    for (let i = 0; i < count; i += 1) messages.push(readMessage(reader, `messages[${i}]`, inputChunkIds));
    reader.end('output');
    return { cacheable: (flags & 1) === 1, messages };
  });
}

function readMessage(reader: AbiReader, field: string, inputChunkIds: ReadonlySet<string>): AssembledMessage {
  const role = ROLES[reader.u8(`${field}.role`)];
  if (role === undefined) throw new AbiDecodeError(`${field}.role: must be 0 (system), 1 (user) or 2 (assistant)`);
  // Parts have no count limit of their own: the output byte cap bounds them, and each costs 5 bytes.
  const partCount = reader.count(`${field}.partCount`, LIMITS.pluginOutputBytesMax, PART_BYTES_MIN);
  const parts: MessagePart[] = [];
  for (let j = 0; j < partCount; j += 1) {
    const kind = PART_KINDS[reader.u8(`${field}.parts[${j}].kind`)];
    if (kind === undefined) throw new AbiDecodeError(`${field}.parts[${j}].kind: must be 0 (text) or 1 (chunk reference)`);
    const value = reader.str(`${field}.parts[${j}].value`);
    if (kind === 'chunk' && !inputChunkIds.has(value)) {
      throw new AbiDecodeError(`${field}.parts[${j}].value: references a chunk that was not in the input`);
    }
    parts.push({ kind, value });
  }
  return { role, parts };
}

/** Runs a decoder, turning its AbiDecodeError into PLUGIN_BAD_OUTPUT for `exportName`. */
function asBadOutput<T>(exportName: string, decode: () => T): T {
  try {
    return decode();
  } catch (error: unknown) {
    if (error instanceof AbiDecodeError) {
      throw new HostError('PLUGIN_BAD_OUTPUT', `${exportName} output: ${error.message}`);
    }
    throw error;
  }
}
