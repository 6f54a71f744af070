/**
 * The plugin SDK (AssemblyScript): typed access to ABI `ctx:host/v1` for retrieval and prompt
 * plugins. This is the only place the ABI is wrapped on the plugin side; plugins import from here
 * and never declare host functions themselves.
 *
 * A retrieval plugin:
 * ```ts
 * import { readRetrieveInput, writeRetrieveOutput, indexSearch, RankedChunk } from "../../sdk/as/index";
 * export function retrieve(): i32 {
 *   const input = readRetrieveInput();
 *   const hits = indexSearch(input.query, input.k);
 *   const ranked: RankedChunk[] = [];
 *   if (hits) for (let i = 0; i < hits.length; i++) ranked.push(new RankedChunk(hits[i].chunkId, hits[i].score));
 *   writeRetrieveOutput(ranked);
 *   return 0;
 * }
 * ```
 * Build with `--use abort=sdk/as/index/abortPlugin` (scripts/build-plugins.ts does this).
 */
import { Host, LogLevel, Memory } from "@extism/as-pdk";
import { length as blockLength } from "@extism/as-pdk/lib/env";
import { Reader, Writer } from "./codec";
import {
  chunk_get as rawChunkGet,
  embed as rawEmbed,
  index_search as rawIndexSearch,
  kv_get as rawKvGet,
  kv_set as rawKvSet,
} from "./imports";

export { Reader, Writer } from "./codec";

// ---------------------------------------------------------------------------------------------
// Shared types
// ---------------------------------------------------------------------------------------------

/**
 * Who spoke a chat turn or message.
 *
 * @example
 * ```ts
 * const question = new Message(Role.User).text(input.query);
 * ```
 */
export enum Role {
  System = 0,
  User = 1,
  Assistant = 2,
}

/**
 * What a prompt message part holds.
 *
 * @example
 * ```ts
 * if (part.kind == PartKind.ChunkRef) logDebug("references " + part.value);
 * ```
 */
export enum PartKind {
  /** Literal text, copied into the prompt as is. */
  Literal = 0,
  /** A chunk id the host resolves to that chunk's text (so every chunk keeps its provenance). */
  ChunkRef = 1,
}

/**
 * Which index `indexSearch` asks; a bit set.
 *
 * @example
 * ```ts
 * const options = new SearchOptions();
 * options.mode = SearchMode.Lexical;
 * ```
 */
export enum SearchMode {
  Vector = 1,
  Lexical = 2,
  Hybrid = 3,
}

/**
 * Which index produced a hit.
 *
 * @example
 * ```ts
 * const lexical = hits.filter((hit: Hit): bool => hit.via == Via.Lexical);
 * ```
 */
export enum Via {
  Vector = 1,
  Lexical = 2,
}

/**
 * The status byte every host function response starts with.
 *
 * @example
 * ```ts
 * if (chunkGet(id) == null && lastError()!.status == HostStatus.NotFound) logWarn("stale id " + id);
 * ```
 */
export enum HostStatus {
  Ok = 0,
  BadRequest = 1,
  NotFound = 2,
  Limit = 3,
  Internal = 4,
}

/**
 * One turn of this session's chat history.
 *
 * @example
 * ```ts
 * const turn = new Turn(Role.User, "What is our refund policy?");
 * ```
 */
export class Turn {
  constructor(public role: Role, public content: string) {}
}

// ---------------------------------------------------------------------------------------------
// Retrieval slot
// ---------------------------------------------------------------------------------------------

/**
 * What `retrieve` receives: the question, how many chunks to return, and the history.
 *
 * @example
 * ```ts
 * const input = readRetrieveInput();
 * if (input.k == 0) { writeRetrieveOutput([]); return 0; }
 * ```
 */
export class RetrieveInput {
  constructor(public query: string, public k: u32, public history: Turn[]) {}
}

/**
 * One ranked chunk that `retrieve` returns.
 *
 * @example
 * ```ts
 * const ranked = [new RankedChunk("doc-1#0", 0.92)];
 * ```
 */
export class RankedChunk {
  constructor(public chunkId: string, public score: f32) {}
}

/**
 * Reads the input of the `retrieve` export.
 *
 * @example
 * ```ts
 * const input = readRetrieveInput();
 * const hits = indexSearch(input.query, input.k);
 * ```
 */
export function readRetrieveInput(): RetrieveInput {
  const reader = new Reader(Host.input());
  const query = reader.str();
  const k = reader.u32();
  return new RetrieveInput(query, k, readHistory(reader));
}

/**
 * Writes the output of the `retrieve` export: `u32 n; n × (str chunkId; f32 score)`.
 *
 * @example
 * ```ts
 * writeRetrieveOutput([new RankedChunk("doc-1#0", 0.92)]);
 * ```
 */
export function writeRetrieveOutput(chunks: RankedChunk[]): void {
  const writer = new Writer();
  writer.u32(<u32>chunks.length);
  for (let i = 0; i < chunks.length; i++) {
    writer.str(chunks[i].chunkId).f32(chunks[i].score);
  }
  Host.output(writer.finish());
}

// ---------------------------------------------------------------------------------------------
// Prompt slot
// ---------------------------------------------------------------------------------------------

/**
 * A retrieved chunk as the prompt plugin sees it.
 *
 * @example
 * ```ts
 * for (let i = 0; i < input.chunks.length; i++) logInfo(input.chunks[i].title);
 * ```
 */
export class ContextChunk {
  constructor(
    public chunkId: string,
    public docId: string,
    public title: string,
    public text: string,
    public score: f32,
  ) {}
}

/**
 * What `assemble` receives.
 *
 * @example
 * ```ts
 * const input = readAssembleInput();
 * const firstTurn = input.history.length == 0;
 * ```
 */
export class AssembleInput {
  constructor(
    public systemPrompt: string,
    public query: string,
    public tokenBudget: u32,
    public history: Turn[],
    public chunks: ContextChunk[],
  ) {}
}

/**
 * One part of a prompt message: literal text or a chunk reference.
 *
 * @example
 * ```ts
 * const parts = [Part.literal("[doc-1#0] Refunds:\n"), Part.chunkRef("doc-1#0")];
 * ```
 */
export class Part {
  constructor(public kind: PartKind, public value: string) {}

  /** Literal text. */
  static literal(text: string): Part {
    return new Part(PartKind.Literal, text);
  }

  /** A reference to a chunk the host resolves to its text. */
  static chunkRef(chunkId: string): Part {
    return new Part(PartKind.ChunkRef, chunkId);
  }
}

/**
 * One chat message made of parts.
 *
 * @example
 * ```ts
 * const system = new Message(Role.System).text("Answer from the context.\n").ref("doc-1#0");
 * ```
 */
export class Message {
  parts: Part[] = [];

  constructor(public role: Role) {}

  /** Appends literal text and returns this message. */
  text(value: string): Message {
    this.parts.push(Part.literal(value));
    return this;
  }

  /** Appends a chunk reference and returns this message. */
  ref(chunkId: string): Message {
    this.parts.push(Part.chunkRef(chunkId));
    return this;
  }
}

/**
 * Reads the input of the `assemble` export.
 *
 * @example
 * ```ts
 * const input = readAssembleInput();
 * ```
 */
export function readAssembleInput(): AssembleInput {
  const reader = new Reader(Host.input());
  const systemPrompt = reader.str();
  const query = reader.str();
  const tokenBudget = reader.u32();
  const history = readHistory(reader);
  const count = reader.count(20);
  const chunks = new Array<ContextChunk>(0);
  for (let i = 0; i < count; i++) {
    const chunkId = reader.str();
    const docId = reader.str();
    const title = reader.str();
    const text = reader.str();
    chunks.push(new ContextChunk(chunkId, docId, title, text, reader.f32()));
  }
  return new AssembleInput(systemPrompt, query, tokenBudget, history, chunks);
}

/**
 * Writes the output of the `assemble` export. `cacheable` tells the host the answer may be
 * stored in this tenant's semantic cache (typically: no history, so the question stands alone).
 *
 * @example
 * ```ts
 * writeAssembleOutput([new Message(Role.User).text(input.query)], input.history.length == 0);
 * ```
 */
export function writeAssembleOutput(messages: Message[], cacheable: bool): void {
  const writer = new Writer();
  writer.u8(cacheable ? 1 : 0);
  writer.u32(<u32>messages.length);
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    writer.u8(<u8>message.role);
    writer.u32(<u32>message.parts.length);
    for (let j = 0; j < message.parts.length; j++) {
      writer.u8(<u8>message.parts[j].kind).str(message.parts[j].value);
    }
  }
  Host.output(writer.finish());
}

function readHistory(reader: Reader): Turn[] {
  const count = reader.count(5);
  const history = new Array<Turn>(0);
  for (let i = 0; i < count; i++) {
    const role = <Role>reader.u8();
    history.push(new Turn(role, reader.str()));
  }
  return history;
}

// ---------------------------------------------------------------------------------------------
// Host functions
// ---------------------------------------------------------------------------------------------

/**
 * Why the most recent host call failed.
 *
 * @example
 * ```ts
 * const hits = indexSearch("refunds", 5);
 * if (!hits) logWarn("search failed: " + lastError()!.message);
 * ```
 */
export class HostCallError {
  constructor(public status: HostStatus, public message: string) {}
}

let lastHostError: HostCallError | null = null;

/**
 * The error of the most recent host call, or `null` when it succeeded (a missing chunk or kv key
 * is a success that returns `null`, except for `chunkGet`, which reports `NotFound`).
 *
 * @example
 * ```ts
 * if (kvGet("state") == null && lastError() != null) logError(lastError()!.message);
 * ```
 */
export function lastError(): HostCallError | null {
  return lastHostError;
}

enum HostFunction {
  IndexSearch,
  ChunkGet,
  KvGet,
  KvSet,
  Embed,
}

function invoke(fn: HostFunction, request: u64): u64 {
  switch (fn) {
    case HostFunction.IndexSearch:
      return rawIndexSearch(request);
    case HostFunction.ChunkGet:
      return rawChunkGet(request);
    case HostFunction.KvGet:
      return rawKvGet(request);
    case HostFunction.KvSet:
      return rawKvSet(request);
    default:
      return rawEmbed(request);
  }
}

/**
 * Sends one request and returns a reader positioned at the payload, or `null` (with
 * `lastError()` set) when the host answered with an error status. Both blocks are freed so a
 * long call does not accumulate Extism memory.
 */
function callHost(fn: HostFunction, request: Uint8Array): Reader | null {
  const requestBlock = Memory.allocate(<u64>request.length);
  requestBlock.store(request);
  const responseOffset = invoke(fn, requestBlock.offset);
  requestBlock.free();
  if (responseOffset == 0) {
    lastHostError = new HostCallError(HostStatus.Internal, "the host returned no response");
    return null;
  }
  const responseBlock = new Memory(responseOffset, blockLength(responseOffset));
  const reader = new Reader(responseBlock.toUint8Array());
  responseBlock.free();
  const status = <HostStatus>reader.u8();
  if (status != HostStatus.Ok) {
    lastHostError = new HostCallError(status, reader.str());
    return null;
  }
  lastHostError = null;
  return reader;
}

/**
 * How `indexSearch` searches: which index (`mode`), an optional query vector (otherwise the
 * host embeds the query), and a metadata equality filter.
 *
 * @example
 * ```ts
 * const options = SearchOptions.lexicalOnly();
 * options.filter.set("lang", "en");
 * ```
 */
export class SearchOptions {
  mode: SearchMode = SearchMode.Hybrid;
  vector: Float32Array | null = null;
  filter: Map<string, string> = new Map<string, string>();

  /** Vector index only. */
  static vectorOnly(): SearchOptions {
    const options = new SearchOptions();
    options.mode = SearchMode.Vector;
    return options;
  }

  /** Lexical (BM25) index only. */
  static lexicalOnly(): SearchOptions {
    const options = new SearchOptions();
    options.mode = SearchMode.Lexical;
    return options;
  }
}

/**
 * One search hit.
 *
 * @example
 * ```ts
 * if (hit.via == Via.Lexical) logDebug("lexical hit " + hit.chunkId);
 * ```
 */
export class Hit {
  constructor(public chunkId: string, public docId: string, public score: f32, public via: Via) {}
}

/**
 * Searches this tenant's index. Returns at most `k` hits, best first, or `null` on error.
 *
 * @example
 * ```ts
 * const hits = indexSearch(input.query, 10, SearchOptions.vectorOnly());
 * ```
 */
export function indexSearch(query: string, k: u32, options: SearchOptions | null = null): Hit[] | null {
  const opts = options ? options : new SearchOptions();
  const writer = new Writer().str(query).u32(k).u8(<u8>opts.mode);
  const vector = opts.vector;
  if (vector) {
    writer.u32(<u32>vector.length);
    for (let i = 0; i < vector.length; i++) writer.f32(vector[i]);
  } else {
    writer.u32(0);
  }
  const keys = opts.filter.keys();
  writer.u32(<u32>keys.length);
  for (let i = 0; i < keys.length; i++) writer.str(keys[i]).str(opts.filter.get(keys[i]));
  const reader = callHost(HostFunction.IndexSearch, writer.finish());
  if (!reader) return null;
  const count = reader.count(13);
  const hits = new Array<Hit>(0);
  for (let i = 0; i < count; i++) {
    const chunkId = reader.str();
    const docId = reader.str();
    const score = reader.f32();
    hits.push(new Hit(chunkId, docId, score, <Via>reader.u8()));
  }
  return hits;
}

/**
 * One of this tenant's chunks.
 *
 * @example
 * ```ts
 * const chunk = chunkGet("doc-1#0");
 * if (chunk) logInfo(chunk.title);
 * ```
 */
export class Chunk {
  constructor(
    public chunkId: string,
    public docId: string,
    public title: string,
    public text: string,
    public metadata: Map<string, string>,
  ) {}
}

/**
 * Reads one chunk of this tenant, or `null` (with `lastError().status == NotFound` when the id
 * is unknown).
 *
 * @example
 * ```ts
 * const chunk = chunkGet(hits[0].chunkId);
 * ```
 */
export function chunkGet(chunkId: string): Chunk | null {
  const reader = callHost(HostFunction.ChunkGet, new Writer().str(chunkId).finish());
  if (!reader) return null;
  const id = reader.str();
  const docId = reader.str();
  const title = reader.str();
  const text = reader.str();
  const count = reader.count(8);
  const metadata = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const key = reader.str();
    metadata.set(key, reader.str());
  }
  return new Chunk(id, docId, title, text, metadata);
}

/**
 * Reads this plugin's private value for `key` in this tenant's store; `null` when absent (or on
 * error: check `lastError()`).
 *
 * @example
 * ```ts
 * const seen = kvGet("queries-seen");
 * ```
 */
export function kvGet(key: string): Uint8Array | null {
  const reader = callHost(HostFunction.KvGet, new Writer().str(key).finish());
  if (!reader) return null;
  const found = reader.u8();
  const value = reader.bytes();
  return found != 0 ? value : null;
}

/**
 * Stores this plugin's private value for `key`; an empty value deletes it. Returns `false` on
 * error (see `lastError()`).
 *
 * @example
 * ```ts
 * kvSet("queries-seen", Uint8Array.wrap(String.UTF8.encode("42")));
 * ```
 */
export function kvSet(key: string, value: Uint8Array): bool {
  return callHost(HostFunction.KvSet, new Writer().str(key).bytes(value).finish()) != null;
}

/**
 * Deletes this plugin's value for `key`.
 *
 * @example
 * ```ts
 * kvDelete("queries-seen");
 * ```
 */
export function kvDelete(key: string): bool {
  return kvSet(key, new Uint8Array(0));
}

/**
 * Embeds `text` with this tenant's embedder; `null` on error.
 *
 * @example
 * ```ts
 * const vector = embed("refund policy");
 * ```
 */
export function embed(text: string): Float32Array | null {
  const reader = callHost(HostFunction.Embed, new Writer().str(text).finish());
  if (!reader) return null;
  const dim = reader.count(4);
  const vector = new Float32Array(dim);
  for (let i = 0; i < dim; i++) vector[i] = reader.f32();
  return vector;
}

// ---------------------------------------------------------------------------------------------
// Logging and abort
// ---------------------------------------------------------------------------------------------

/**
 * Logs a line at info level (the host caps lines per call and drops the rest).
 *
 * @example
 * ```ts
 * logInfo("fused " + ranked.length.toString() + " chunks");
 * ```
 */
export function logInfo(message: string): void {
  Host.log(LogLevel.Info, message);
}

/**
 * Logs a line at warn level.
 *
 * @example
 * ```ts
 * logWarn("vector search failed");
 * ```
 */
export function logWarn(message: string): void {
  Host.log(LogLevel.Warn, message);
}

/**
 * Logs a line at error level.
 *
 * @example
 * ```ts
 * logError("unexpected input");
 * ```
 */
export function logError(message: string): void {
  Host.log(LogLevel.Error, message);
}

/**
 * Logs a line at debug level.
 *
 * @example
 * ```ts
 * logDebug("k=" + input.k.toString());
 * ```
 */
export function logDebug(message: string): void {
  Host.log(LogLevel.Debug, message);
}

/**
 * The AssemblyScript `abort` of every plugin built with this SDK (`--use
 * abort=sdk/as/index/abortPlugin`): Extism provides no `env.abort`, so without it a module would
 * not even load. It logs why the plugin aborted, then traps; the host reports PLUGIN_FAILED.
 *
 * @example
 * ```ts
 * throw new Error("impossible state"); // ends up here
 * ```
 */
export function abortPlugin(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const what = message ? message : "abort";
  const where = fileName ? fileName : "?";
  logError(what + " at " + where + ":" + line.toString() + ":" + column.toString());
  unreachable();
}
