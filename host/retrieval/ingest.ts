/**
 * Document ingestion for one tenant: validate the whole batch first, then chunk, tokenize and embed,
 * then write documents, chunks, lexical entries and vectors in ONE transaction of the tenant's own
 * environment (so a bad batch stores nothing), then bring the in-memory index up to date.
 */
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { randomHex, sha256Hex } from '../storage/keys.ts';
import type { ChunkRecord, ChunkTerms, DocumentRecord } from '../storage/tenant-store.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { termFrequencies } from './bm25.ts';
import { chunkText } from './chunker.ts';
import { embedCached, embedTexts, prepareIndexVectors } from '../cache/embedding-cache.ts';
import type { Embedder } from './embedder.ts';
import { embeddedText, encodeVector, TenantIndex } from './tenant-index.ts';
import { tokenize } from './tokenize.ts';

/** One document as a client sends it. */
export interface DocumentInput {
  id?: string;
  title?: string;
  text: string;
  metadata?: Record<string, string>;
}

/** What an ingest did. */
export interface IngestResult {
  inserted: number;
  updated: number;
  unchanged: number;
  chunks: number;
  generation: number;
  ids: string[];
}

const DOC_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
/**
 * Metadata keys refused outright: assigning `__proto__` to a plain object changes its prototype
 * instead of adding the key (it was dropped silently), and `constructor` / `prototype` shadow what
 * code reading the metadata object later may expect to find there.
 */
const RESERVED_METADATA_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Validates a request body `{documents: [...]}` completely before anything is stored.
 * @throws {HostError} DOCUMENT_INVALID naming the document index and field.
 */
export function validateDocuments(body: unknown): DocumentInput[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HostError('DOCUMENT_INVALID', 'body must be an object {documents: [...]}');
  }
  const unknownKeys = Object.keys(body).filter((key) => key !== 'documents');
  if (unknownKeys.length > 0) throw new HostError('DOCUMENT_INVALID', `unknown body key ${JSON.stringify(unknownKeys[0])}`);
  const documents = (body as { documents?: unknown }).documents;
  if (!Array.isArray(documents)) throw new HostError('DOCUMENT_INVALID', 'documents must be an array');
  if (documents.length === 0 || documents.length > LIMITS.documentsPerRequestMax) {
    throw new HostError('DOCUMENT_INVALID', `documents must hold 1..${LIMITS.documentsPerRequestMax} items, got ${documents.length}`);
  }
  const seen = new Set<string>();
  return documents.map((item: unknown, index) => {
    const document = validateDocument(item, `documents[${index}]`);
    if (document.id !== undefined) {
      if (seen.has(document.id)) throw new HostError('DOCUMENT_INVALID', `documents[${index}].id ${JSON.stringify(document.id)} repeats an earlier id in this batch`);
      seen.add(document.id);
    }
    return document;
  });
}

function validateDocument(item: unknown, where: string): DocumentInput {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new HostError('DOCUMENT_INVALID', `${where} must be an object`);
  const record = item as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!['id', 'title', 'text', 'metadata'].includes(key)) throw new HostError('DOCUMENT_INVALID', `${where} has unknown key ${JSON.stringify(key)}`);
  }
  const { id, title, text, metadata } = record;
  if (typeof text !== 'string' || text.trim().length === 0) throw new HostError('DOCUMENT_INVALID', `${where}.text must be a non-empty string`);
  if (text.length > LIMITS.documentCharsMax) {
    throw new HostError('DOCUMENT_INVALID', `${where}.text is ${text.length} characters, limit ${LIMITS.documentCharsMax}`);
  }
  const document: DocumentInput = { text };
  if (id !== undefined) {
    if (typeof id !== 'string' || id.length > LIMITS.documentIdCharsMax || !DOC_ID_PATTERN.test(id)) {
      throw new HostError('DOCUMENT_INVALID', `${where}.id must be 1..${LIMITS.documentIdCharsMax} characters of [A-Za-z0-9._:-], starting with a letter or digit`);
    }
    document.id = id;
  }
  if (title !== undefined) {
    if (typeof title !== 'string' || title.length > LIMITS.documentTitleCharsMax) {
      throw new HostError('DOCUMENT_INVALID', `${where}.title must be a string of at most ${LIMITS.documentTitleCharsMax} characters`);
    }
    document.title = title;
  }
  if (metadata !== undefined) document.metadata = validateMetadata(metadata, `${where}.metadata`);
  return document;
}

function validateMetadata(metadata: unknown, where: string): Record<string, string> {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new HostError('DOCUMENT_INVALID', `${where} must be an object of strings`);
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataEntriesMax) {
    throw new HostError('DOCUMENT_INVALID', `${where} has ${entries.length} entries, limit ${LIMITS.metadataEntriesMax}`);
  }
  const clean: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (RESERVED_METADATA_KEYS.has(key)) throw new HostError('DOCUMENT_INVALID', `${where} has the key ${JSON.stringify(key)}, which is reserved`);
    if (typeof value !== 'string') throw new HostError('DOCUMENT_INVALID', `${where}.${key} must be a string, got ${typeof value}`);
    if (key.length === 0 || key.length > LIMITS.metadataValueCharsMax || value.length > LIMITS.metadataValueCharsMax) {
      throw new HostError('DOCUMENT_INVALID', `${where}.${key}: keys and values are limited to ${LIMITS.metadataValueCharsMax} characters`);
    }
    clean[key] = value;
  }
  return clean;
}

interface PreparedDocument {
  record: DocumentRecord;
  chunks: { chunk: ChunkRecord; terms: ChunkTerms; vector: Float32Array }[];
  previous: DocumentRecord | undefined;
}

/**
 * Stores validated documents in the scope's tenant. Re-posting a document id replaces it (its old
 * chunks are removed); an unchanged document is left alone. Bumps the index generation once.
 * A costly (remote) embedder embeds the new chunks first, in batches through the tenant's embedding
 * cache; everything after that runs without awaiting, so two ingests never interleave their writes.
 * @throws {HostError} STORAGE_QUOTA when the tenant would exceed its chunk limit (nothing is stored);
 *   EMBED_FAILED when a remote embedder fails (nothing is stored).
 */
export async function ingestDocuments(scope: TenantScope, embedder: Embedder, documents: DocumentInput[]): Promise<IngestResult> {
  const withIds = documents.map((input) => ({ ...input, id: input.id ?? `doc_${randomHex(8)}` }));
  if (!embedder.costly) return ingestNow(scope, embedder, withIds, (text) => embedder.embed(text));
  await prepareIndexVectors(scope, embedder);
  const changed = withIds.filter((input) => scope.store.documents.get(input.id)?.contentHash !== contentHashOf(input));
  const texts = changed.flatMap((input) => chunkText(input.text).map((piece) => embeddedText(input.title ?? input.id, piece.text)));
  const vectors = await embedTexts(scope, embedder, texts);
  const byText = new Map(texts.map((text, i) => [text, vectors[i] as Float32Array]));
  return ingestNow(scope, embedder, withIds, (text) => byText.get(text) ?? embedCached(scope, embedder, text));
}

function ingestNow(
  scope: TenantScope,
  embedder: Embedder,
  documents: (DocumentInput & { id: string })[],
  embed: (text: string) => Float32Array,
): IngestResult {
  const store = scope.store;
  const index = TenantIndex.of(store, embedder);
  const result: IngestResult = { inserted: 0, updated: 0, unchanged: 0, chunks: 0, generation: 0, ids: [] };
  const counters = store.counters();
  let nextRow = counters.nextRow;
  const prepared: PreparedDocument[] = [];
  let chunkDelta = 0;
  for (const input of documents) {
    const id = input.id;
    result.ids.push(id);
    const previous = store.documents.get(id);
    const contentHash = contentHashOf(input);
    if (previous !== undefined && previous.contentHash === contentHash) {
      result.unchanged += 1;
      continue;
    }
    const doc = prepareDocument(scope, embed, input, contentHash, nextRow);
    nextRow += doc.chunks.length;
    chunkDelta += doc.chunks.length - (previous?.rows.length ?? 0);
    prepared.push({ ...doc, previous });
  }
  if (index.size + chunkDelta > LIMITS.chunksPerTenantMax) {
    throw new HostError('STORAGE_QUOTA', `the tenant would hold ${index.size + chunkDelta} chunks, limit ${LIMITS.chunksPerTenantMax}`);
  }
  if (prepared.length > 0) {
    result.generation = writePrepared(scope, prepared, { generation: counters.generation + 1, nextRow });
    for (const doc of prepared) {
      for (const row of doc.previous?.rows ?? []) index.delete(row);
      for (const { chunk, terms, vector } of doc.chunks) index.add(chunk, terms, vector);
      if (doc.previous === undefined) result.inserted += 1;
      else result.updated += 1;
      result.chunks += doc.chunks.length;
    }
  } else {
    result.generation = counters.generation;
  }
  return result;
}

/** What decides whether a re-posted document changed. */
function contentHashOf(input: DocumentInput): string {
  return sha256Hex(JSON.stringify([input.title ?? '', input.metadata ?? {}, input.text]));
}

function prepareDocument(
  scope: TenantScope,
  embed: (text: string) => Float32Array,
  input: DocumentInput & { id: string },
  contentHash: string,
  firstRow: number,
): Omit<PreparedDocument, 'previous'> {
  const title = input.title ?? input.id;
  const metadata = input.metadata ?? {};
  const pieces = chunkText(input.text);
  const chunks = pieces.map((piece, ordinal) => {
    const tokens = tokenize(`${title} ${piece.text}`);
    const chunk: ChunkRecord = {
      row: firstRow + ordinal,
      chunkId: `${input.id}#${ordinal}`,
      docId: input.id,
      ordinal,
      title,
      text: piece.text,
      metadata,
      tag: scope.store.provenanceTag(`${input.id}#${ordinal}`, piece.text),
    };
    const terms: ChunkTerms = { terms: [...termFrequencies(tokens)], length: tokens.length };
    return { chunk, terms, vector: embed(embeddedText(title, piece.text)) };
  });
  const record: DocumentRecord = {
    id: input.id,
    title,
    metadata,
    rows: chunks.map((entry) => entry.chunk.row),
    contentHash,
    chars: input.text.length,
    updatedAt: Date.now(),
  };
  return { record, chunks };
}

function writePrepared(scope: TenantScope, prepared: PreparedDocument[], counters: { generation: number; nextRow: number }): number {
  const store = scope.store;
  store.transaction(() => {
    for (const doc of prepared) {
      for (const row of doc.previous?.rows ?? []) removeRow(scope, row);
      for (const { chunk, terms, vector } of doc.chunks) {
        store.chunks.put(chunk.row, chunk);
        store.chunkTerms.put(chunk.row, terms);
        store.chunkRows.put(chunk.chunkId, chunk.row);
        store.vectors.put(chunk.row, encodeVector(vector));
      }
      store.documents.put(doc.record.id, doc.record);
    }
    store.setCounters(counters);
  });
  return counters.generation;
}

function removeRow(scope: TenantScope, row: number): void {
  const store = scope.store;
  const chunk = store.chunks.get(row);
  if (chunk !== undefined) store.chunkRows.remove(chunk.chunkId);
  store.chunks.remove(row);
  store.chunkTerms.remove(row);
  store.vectors.remove(row);
}

/**
 * Deletes one document and its chunks; bumps the generation.
 * @throws {HostError} DOCUMENT_NOT_FOUND when the tenant has no such document.
 */
export function deleteDocument(scope: TenantScope, embedder: Embedder, docId: string): { generation: number } {
  const store = scope.store;
  const index = TenantIndex.of(store, embedder);
  const previous = store.documents.get(docId);
  if (previous === undefined) throw new HostError('DOCUMENT_NOT_FOUND', `no document has id ${JSON.stringify(docId)}`);
  const counters = store.counters();
  const generation = counters.generation + 1;
  store.transaction(() => {
    for (const row of previous.rows) removeRow(scope, row);
    store.documents.remove(docId);
    store.setCounters({ generation, nextRow: counters.nextRow });
  });
  for (const row of previous.rows) index.delete(row);
  return { generation };
}
