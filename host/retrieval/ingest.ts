/**
 * Document ingestion for one tenant: validate the whole batch first, then chunk, tokenize and embed
 * (off the event loop in a cell), then write the chunks in small steps where nothing reads them and
 * make the batch visible in ONE final transaction of the tenant's own environment (so a bad batch
 * stores nothing), then bring the in-memory index up to date, step by step.
 */
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { randomHex, sha256Hex } from '../storage/keys.ts';
import type { ChunkRecord, ChunkTerms, DocumentRecord } from '../storage/tenant-store.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { embedCached, embedTexts, prepareIndexVectors } from '../cache/embedding-cache.ts';
import type { Embedder } from './embedder.ts';
import { prepareText, type PreparedText } from './prepare-text.ts';
import { embeddedText, encodeVector, TenantIndex } from './tenant-index.ts';
import type { DocumentInput } from './document-input.ts';

export { validateDocuments, type DocumentInput } from './document-input.ts';

/** What an ingest did. */
export interface IngestResult {
  inserted: number;
  updated: number;
  unchanged: number;
  chunks: number;
  generation: number;
  ids: string[];
}

/** How an ingest runs its heavy parts: preparation off the loop, writes in scheduler slices. */
export interface IngestSteps {
  /**
   * Prepares documents (prepare-text.ts), embedding the chunks with `local` when given (the local
   * embedder; a remote one embeds afterwards). A cell does it in its ingest worker.
   */
  prepare(documents: readonly { title: string; text: string }[], local: Embedder | undefined): Promise<PreparedText[]>;
  /** Runs one bounded step on the loop when the tenant's turn comes (a cell's scheduler). */
  slice<T>(work: () => T): Promise<T>;
}

/** Steps for tools without a cell (the CLI, the demo seed, tests): everything in place, at once. */
export const INLINE_STEPS: IngestSteps = {
  prepare: async (documents, local) => documents.map((document) => prepareText(document, local)),
  slice: async (work) => work(),
};

/** Chunks written per step (one write transaction each): keeps each step well inside a scheduler slice. */
const ROWS_PER_STEP = 256;

/** One changed document on its way in. */
interface ChangedDocument {
  input: DocumentInput & { id: string };
  contentHash: string;
  previous: DocumentRecord | undefined;
}

/**
 * Ingests run one at a time per tenant: each allocates rows from the tenant's counters, and a
 * second one reading them before the first's final write would hand out the same rows.
 */
const ingestTails = new WeakMap<object, Promise<unknown>>();

/**
 * Stores validated documents in the scope's tenant. Re-posting a document id replaces it (its old
 * chunks are removed); an unchanged document is left alone. Bumps the index generation once.
 *
 * The heavy work is spread out (see {@link IngestSteps}): the documents are prepared off the event
 * loop (or embedded by a remote embedder, through the tenant's embedding cache), then the new chunk
 * rows are written in small transactions past the tenant's last committed row, where nothing reads
 * them, and one final transaction makes the batch visible all at once: the documents' records, the
 * chunk-id map, the removal of replaced rows and the counters. A crash before it leaves the rows
 * unreferenced, and the next index load drops them. So a batch still lands whole or not at all.
 * @throws {HostError} STORAGE_QUOTA when the tenant would exceed its chunk limit (nothing is stored);
 *   EMBED_FAILED when a remote embedder fails (nothing is stored).
 */
export async function ingestDocuments(scope: TenantScope, embedder: Embedder, documents: DocumentInput[], steps: IngestSteps = INLINE_STEPS): Promise<IngestResult> {
  const store = scope.store;
  const before = ingestTails.get(store) ?? Promise.resolve();
  const run = before.then(() => ingestNow(scope, embedder, documents, steps));
  ingestTails.set(store, run.catch(() => undefined));
  return run;
}

async function ingestNow(scope: TenantScope, embedder: Embedder, documents: DocumentInput[], steps: IngestSteps): Promise<IngestResult> {
  const store = scope.store;
  if (embedder.costly) await prepareIndexVectors(scope, embedder);
  const result: IngestResult = { inserted: 0, updated: 0, unchanged: 0, chunks: 0, generation: 0, ids: [] };
  const changed: ChangedDocument[] = [];
  for (const document of documents) {
    const input = { ...document, id: document.id ?? `doc_${randomHex(8)}` };
    result.ids.push(input.id);
    const contentHash = await steps.slice(() => contentHashOf(input));
    const previous = store.documents.get(input.id);
    if (previous !== undefined && previous.contentHash === contentHash) result.unchanged += 1;
    else changed.push({ input, contentHash, previous });
  }
  if (changed.length === 0) {
    result.generation = store.counters().generation;
    return result;
  }
  const texts = changed.map(({ input }) => ({ title: input.title ?? input.id, text: input.text }));
  const prepared = await steps.prepare(texts, embedder.costly ? undefined : embedder);
  const vectorsOf = await vectorSource(scope, embedder, changed, prepared);
  const index = await TenantIndex.ready(store, embedder);
  const chunkDelta = prepared.reduce((sum, text, i) => sum + text.pieces.length - (changed[i]?.previous?.rows.length ?? 0), 0);
  if (index.size + chunkDelta > LIMITS.chunksPerTenantMax) {
    throw new HostError('STORAGE_QUOTA', `the tenant would hold ${index.size + chunkDelta} chunks, limit ${LIMITS.chunksPerTenantMax}`);
  }
  // New rows go past the last committed row: nothing reads them until the final write.
  let nextRow = store.counters().nextRow;
  const built: { doc: ChangedDocument; record: DocumentRecord; rows: { chunk: ChunkRecord; terms: ChunkTerms; vector: Float32Array }[] }[] = [];
  for (const [i, doc] of changed.entries()) {
    const text = prepared[i] as PreparedText;
    // In steps too: each row's provenance tag is an HMAC, a million-character document ~1,300 of them.
    const rows: { chunk: ChunkRecord; terms: ChunkTerms; vector: Float32Array }[] = [];
    for (let from = 0; from < text.pieces.length; from += ROWS_PER_STEP) {
      const first = nextRow;
      rows.push(...(await steps.slice(() => buildRows(scope, doc, text, first, from, ROWS_PER_STEP, (ordinal) => vectorsOf(i, ordinal)))));
    }
    nextRow += rows.length;
    built.push({ doc, record: documentRecord(doc, rows.map((row) => row.chunk.row)), rows });
  }
  const all = built.flatMap((entry) => entry.rows);
  for (let start = 0; start < all.length; start += ROWS_PER_STEP) {
    const batch = all.slice(start, start + ROWS_PER_STEP);
    await steps.slice(() =>
      store.transaction(() => {
        for (const { chunk, terms, vector } of batch) {
          store.chunks.put(chunk.row, chunk);
          store.chunkTerms.put(chunk.row, terms);
          store.vectors.put(chunk.row, encodeVector(vector));
        }
      }),
    );
  }
  result.generation = await steps.slice(() => {
    const counters = store.counters();
    const generation = counters.generation + 1;
    store.transaction(() => {
      for (const { doc, record, rows } of built) {
        for (const row of doc.previous?.rows ?? []) removeRow(scope, row);
        for (const { chunk } of rows) store.chunkRows.put(chunk.chunkId, chunk.row);
        store.documents.put(record.id, record);
      }
      store.setCounters({ generation, nextRow: Math.max(counters.nextRow, nextRow) });
    });
    return generation;
  });
  for (const { doc, rows } of built) {
    await steps.slice(() => {
      for (const row of doc.previous?.rows ?? []) index.delete(row);
    });
    for (let start = 0; start < rows.length; start += ROWS_PER_STEP) {
      await steps.slice(() => {
        for (const { chunk, terms, vector } of rows.slice(start, start + ROWS_PER_STEP)) index.add(chunk, terms, vector);
      });
    }
    if (doc.previous === undefined) result.inserted += 1;
    else result.updated += 1;
    result.chunks += rows.length;
  }
  return result;
}

/**
 * Where each new chunk's vector comes from: the ingest worker's (local embedder), or a remote
 * embedder's, fetched in batches through the tenant's embedding cache before anything is written.
 */
async function vectorSource(
  scope: TenantScope,
  embedder: Embedder,
  changed: ChangedDocument[],
  prepared: PreparedText[],
): Promise<(document: number, ordinal: number) => Float32Array> {
  if (!embedder.costly) {
    return (document, ordinal) => {
      const vectors = prepared[document]?.vectors as Float32Array;
      return vectors.subarray(ordinal * embedder.dim, (ordinal + 1) * embedder.dim);
    };
  }
  const texts = changed.flatMap(({ input }, i) => (prepared[i]?.pieces ?? []).map((piece) => embeddedText(input.title ?? input.id, piece)));
  const vectors = await embedTexts(scope, embedder, texts);
  const byText = new Map(texts.map((text, i) => [text, vectors[i] as Float32Array]));
  return (document, ordinal) => {
    const input = changed[document]?.input as DocumentInput & { id: string };
    const text = embeddedText(input.title ?? input.id, prepared[document]?.pieces[ordinal] ?? '');
    return byText.get(text) ?? embedCached(scope, embedder, text);
  };
}

/** What decides whether a re-posted document changed. */
function contentHashOf(input: DocumentInput): string {
  return sha256Hex(JSON.stringify([input.title ?? '', input.metadata ?? {}, input.text]));
}

function buildRows(
  scope: TenantScope,
  doc: ChangedDocument,
  text: PreparedText,
  firstRow: number,
  from: number,
  count: number,
  vectorOf: (ordinal: number) => Float32Array,
): { chunk: ChunkRecord; terms: ChunkTerms; vector: Float32Array }[] {
  const { input } = doc;
  const title = input.title ?? input.id;
  const metadata = input.metadata ?? {};
  return text.pieces.slice(from, from + count).map((piece, offset) => {
    const ordinal = from + offset;
    const chunkId = `${input.id}#${ordinal}`;
    const chunk: ChunkRecord = {
      row: firstRow + ordinal,
      chunkId,
      docId: input.id,
      ordinal,
      title,
      text: piece,
      metadata,
      tag: scope.store.provenanceTag(chunkId, piece),
    };
    return { chunk, terms: text.terms[ordinal] ?? { terms: [], length: 0 }, vector: vectorOf(ordinal) };
  });
}

function documentRecord(doc: ChangedDocument, rows: number[]): DocumentRecord {
  return {
    id: doc.input.id,
    title: doc.input.title ?? doc.input.id,
    metadata: doc.input.metadata ?? {},
    rows,
    contentHash: doc.contentHash,
    chars: doc.input.text.length,
    updatedAt: Date.now(),
  };
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
 * Deletes one document and its chunks; bumps the generation. Loads the tenant's index in steps
 * first if it is not loaded yet (TenantIndex.ready).
 * @throws {HostError} DOCUMENT_NOT_FOUND when the tenant has no such document.
 */
export async function deleteDocument(scope: TenantScope, embedder: Embedder, docId: string): Promise<{ generation: number }> {
  const store = scope.store;
  const index = await TenantIndex.ready(store, embedder);
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
