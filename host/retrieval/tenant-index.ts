/**
 * A tenant's search index in memory: its vector index and BM25 index, loaded from the tenant's own
 * environment the first time it is needed after the environment opens (so the index survives a
 * restart) and kept in step with every ingest. It is derived from one TenantStore and lives and dies
 * with it, so it can only ever hold that tenant's chunks.
 */
import { LIMITS } from '../limits.ts';
import { LoopSteps } from '../loop-steps.ts';
import type { SearchHit, SearchRequest } from '../sandbox/capabilities.ts';
import type { KvReadSnapshot } from '../storage/lmdb.ts';
import type { ChunkRecord, ChunkTerms, TenantStore } from '../storage/tenant-store.ts';
import { Bm25Index } from './bm25.ts';
import type { Embedder } from './embedder.ts';
import { tokenize } from './tokenize.ts';
import { VectorIndex } from './vector-index.ts';

/** What the index keeps per row to answer searches and filters without touching storage. */
interface RowInfo {
  chunkId: string;
  docId: string;
  metadata: Readonly<Record<string, string>>;
}

/** What a scan of the stored index found: the index, and what the load writes back. */
interface Scan {
  index: TenantIndex;
  /** The stored vectors are another embedder's: all were embedded again. */
  stale: boolean;
  /** Vectors embedded again, by row. */
  rewrites: [number, Float32Array][];
  /** Rows no document lists. */
  orphans: number[];
}

/** One tenant's in-memory search structures. */
export class TenantIndex {
  readonly #vectors: VectorIndex;
  readonly #lexical = new Bm25Index();
  readonly #rows = new Map<number, RowInfo>();
  readonly #rowOfChunk = new Map<string, number>();
  /**
   * Recently read chunk records. Reading a chunk from the encrypted environment costs tens of µs
   * (page decryption), and every ask reads its top k; rows are never reused, so an entry can only
   * go stale by deletion, which removes it here too.
   */
  readonly #records = new Map<number, ChunkRecord>();
  readonly embedderId: string;

  private constructor(embedder: Embedder) {
    this.#vectors = new VectorIndex(embedder.dim);
    this.embedderId = embedder.id;
  }

  /**
   * The index of `store`, loading it on first use. When the stored vectors came from another
   * embedder (a configuration change), every chunk is embedded again and the vectors rewritten.
   */
  static of(store: TenantStore, embedder: Embedder): TenantIndex {
    const index = store.derived(`index:${embedder.id}`, () => TenantIndex.#load(store, embedder));
    return index;
  }

  /**
   * The index of `store`, loaded in steps between which the event loop turns (loop-steps.ts),
   * unless it is loaded already. Whoever goes on to use the index synchronously (a session's host
   * functions, an ingest, the document routes) awaits this first, so that a large
   * tenant's first use after its environment opens (a restart, a cell taking over, a tenant moved
   * here) does not hold its cell for the seconds a whole load takes. Concurrent callers share one
   * load; a synchronous {@link of} meanwhile wins, and the stepwise result is dropped.
   */
  static async ready(store: TenantStore, embedder: Embedder): Promise<TenantIndex> {
    const name = `index:${embedder.id}`;
    const loaded = store.derivedIfBuilt<TenantIndex>(name);
    if (loaded !== undefined) return loaded;
    const run = store.derived(`indexLoading:${embedder.id}`, () => ({ pending: undefined as Promise<TenantIndex> | undefined }));
    run.pending ??= TenantIndex.#loadInSteps(store, embedder).then(
      (index) => {
        run.pending = undefined;
        return index;
      },
      (error: unknown) => {
        run.pending = undefined;
        throw error;
      },
    );
    return run.pending;
  }

  /**
   * {@link #load} in steps, from one read snapshot (so the index is of one moment, whatever commits
   * while it loads; nothing that changes the index commits meanwhile, since every writer awaits
   * {@link ready} first).
   */
  static async #loadInSteps(store: TenantStore, embedder: Embedder): Promise<TenantIndex> {
    const snapshot = store.readSnapshot();
    let scanned: Scan;
    try {
      const scan = TenantIndex.#scan(store, embedder, snapshot);
      const steps = new LoopSteps();
      for (let step = scan.next(); ; step = scan.next()) {
        if (step.done === true) {
          scanned = step.value;
          break;
        }
        if (steps.due) await steps.next();
      }
    } finally {
      snapshot.done();
    }
    // A synchronous load meanwhile wins (derived builds only what is missing); otherwise the write
    // back runs in this same turn.
    return store.derived(`index:${embedder.id}`, () => TenantIndex.#settle(store, embedder, scanned));
  }

  static #load(store: TenantStore, embedder: Embedder): TenantIndex {
    const scan = TenantIndex.#scan(store, embedder);
    for (let step = scan.next(); ; step = scan.next()) if (step.done === true) return TenantIndex.#settle(store, embedder, step.value);
  }

  /**
   * Builds the index from the store (from `snapshot`, when given), pausing (yielding) after each
   * document and each chunk so that a caller may let the loop turn there.
   */
  static *#scan(store: TenantStore, embedder: Embedder, snapshot?: KvReadSnapshot): Generator<void, Scan> {
    const index = new TenantIndex(embedder);
    const stale = store.meta.get('embedderId', snapshot) !== embedder.id;
    const rewrites: [number, Float32Array][] = [];
    // Only rows a document record lists are live: an ingest writes its rows first and lists them in
    // its last transaction, so rows of an ingest a crash cut short (or replaced rows whose removal
    // it cut short) are listed nowhere. They are dropped (an ingest in progress loads the index
    // before it writes its first row, so none of its rows is taken for such a one).
    const from = snapshot === undefined ? {} : { snapshot };
    const live = new Set<number>();
    for (const { value: document } of store.documents.entries(from)) {
      for (const row of document.rows) live.add(row);
      yield;
    }
    const orphans: number[] = [];
    for (const { value: chunk } of store.chunks.entries(from)) {
      if (!live.has(chunk.row)) orphans.push(chunk.row);
      else {
        let vector = stale ? undefined : decodeVector(store.vectors.get(chunk.row, snapshot), embedder.dim);
        if (vector === undefined) {
          // The same text ingest embeds, so a re-embedded chunk matches a freshly ingested one.
          vector = embedder.embed(embeddedText(chunk.title, chunk.text));
          rewrites.push([chunk.row, vector]);
        }
        index.add(chunk, store.chunkTerms.get(chunk.row, snapshot) ?? { terms: [], length: 0 }, vector);
      }
      yield;
    }
    return { index, stale, rewrites, orphans };
  }

  /** Writes back what a scan found (vectors embedded again, orphan rows dropped) and returns its index. */
  static #settle(store: TenantStore, embedder: Embedder, { index, stale, rewrites, orphans }: Scan): TenantIndex {
    if (rewrites.length > 0 || stale || orphans.length > 0) {
      store.transaction(() => {
        for (const [row, vector] of rewrites) store.vectors.put(row, encodeVector(vector));
        for (const row of orphans) {
          store.chunks.remove(row);
          store.chunkTerms.remove(row);
          store.vectors.remove(row);
        }
        store.meta.put('embedderId', embedder.id);
      });
    }
    return index;
  }

  /** Number of live chunks. */
  get size(): number {
    return this.#rows.size;
  }

  /** Adds one stored chunk with its lexical entry and its vector. */
  add(chunk: ChunkRecord, terms: ChunkTerms, vector: Float32Array): void {
    this.#rows.set(chunk.row, { chunkId: chunk.chunkId, docId: chunk.docId, metadata: chunk.metadata });
    this.#rowOfChunk.set(chunk.chunkId, chunk.row);
    this.#vectors.set(chunk.row, vector);
    this.#lexical.add(chunk.row, new Map(terms.terms), terms.length);
  }

  /** Removes one row. */
  delete(row: number): void {
    const info = this.#rows.get(row);
    if (info === undefined) return;
    this.#rows.delete(row);
    this.#rowOfChunk.delete(info.chunkId);
    this.#records.delete(row);
    this.#vectors.delete(row);
    this.#lexical.delete(row);
  }

  /**
   * One of this tenant's chunks by id, from the record cache or the tenant's store; undefined when
   * the tenant has no such chunk.
   */
  chunk(store: TenantStore, chunkId: string): ChunkRecord | undefined {
    const row = this.#rowOfChunk.get(chunkId);
    if (row === undefined) return undefined;
    let record = this.#records.get(row);
    if (record !== undefined) {
      // Refresh its place: Map iteration order is insertion order, so the first key is the oldest.
      this.#records.delete(row);
    } else {
      record = store.chunks.get(row);
      if (record === undefined) return undefined;
    }
    this.#records.set(row, record);
    if (this.#records.size > LIMITS.chunkRecordsCachedMax) {
      const oldest = this.#records.keys().next();
      if (oldest.done !== true) this.#records.delete(oldest.value);
    }
    return record;
  }

  /**
   * Runs one search. `queryVector` is the ask's embedding, used when the request carries none.
   * Results are this tenant's chunks only: the index holds nothing else.
   */
  search(request: SearchRequest, queryVector: Float32Array | null): SearchHit[] {
    const accept = filterFor(request.filter, this.#rows);
    const hits: SearchHit[] = [];
    if (request.mode.vector) {
      const vector = request.vector ?? queryVector;
      if (vector !== null && vector.length === this.#vectors.dim) {
        for (const { row, score } of this.#vectors.search(vector, request.k, accept)) hits.push(this.#hit(row, score, 1));
      }
    }
    if (request.mode.lexical) {
      const terms = tokenize(request.query);
      for (const { row, score } of this.#lexical.search(terms, request.k, accept)) hits.push(this.#hit(row, score, 2));
    }
    return hits;
  }

  #hit(row: number, score: number, via: 1 | 2): SearchHit {
    const info = this.#rows.get(row);
    // The indexes and #rows change together in add/delete, so a hit always has its row.
    if (info === undefined) throw new Error(`index row ${row} has no info`);
    return { chunkId: info.chunkId, docId: info.docId, score, via };
  }
}

function filterFor(filter: Readonly<Record<string, string>>, rows: Map<number, RowInfo>): ((row: number) => boolean) | undefined {
  const entries = Object.entries(filter);
  if (entries.length === 0) return undefined;
  return (row) => {
    const metadata = rows.get(row)?.metadata;
    return metadata !== undefined && entries.every(([key, value]) => metadata[key] === value);
  };
}

/** The text a chunk's vector is made from: its title gives a short chunk its topic. */
export function embeddedText(title: string, text: string): string {
  return `${title}\n${text}`;
}

/** Float32 vector → bytes for storage. */
export function encodeVector(vector: Float32Array): Uint8Array {
  return new Uint8Array(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength));
}

/** Bytes from storage → Float32 vector, or undefined when absent or of the wrong dimension. */
export function decodeVector(bytes: Uint8Array | undefined, dim: number): Float32Array | undefined {
  if (bytes === undefined || bytes.byteLength !== dim * 4) return undefined;
  const copy = new Uint8Array(bytes);
  return new Float32Array(copy.buffer, 0, dim);
}
