/**
 * The embedding cache: key = (embedder id, SHA-256 of the text), value = the vector, in the tenant's
 * own environment. Keys carry the embedder id, so switching embedders never serves a vector of
 * another model.
 *
 * It is used only where it pays: for a `costly` embedder (a remote provider, one network round trip
 * per request). The local embedder takes ~13 µs for a question, less than an LMDB write costs, so
 * its vectors are computed every time and this cache stays empty. With a costly embedder every path
 * goes through it — ingestion, asks and the `embed` host function — and the host function, being
 * synchronous, is served from it alone (a remote call cannot be awaited inside a plugin call).
 */
import type { Embedder } from '../retrieval/embedder.ts';
import { embeddedText, encodeVector } from '../retrieval/tenant-index.ts';
import { sha256Hex } from '../storage/keys.ts';
import type { TenantStore } from '../storage/tenant-store.ts';
import type { TenantScope } from '../tenants/scope.ts';

/**
 * Embeds one text now: directly with a cheap embedder; through the tenant's embedding cache with a
 * costly one, whose miss goes to the embedder (a remote one then refuses with EMBED_FAILED).
 * @throws {HostError} EMBED_FAILED as described.
 */
export function embedCached(scope: TenantScope, embedder: Embedder, text: string): Float32Array {
  if (!embedder.costly) return embedder.embed(text);
  const store = scope.store;
  const stored = cachedVector(store, embedder, text);
  if (stored !== undefined) return stored;
  const vector = embedder.embed(text);
  remember(store, embedder, text, vector);
  return vector;
}

/**
 * Embeds `texts`, in order. A cheap embedder embeds them directly; for a costly one, each text is
 * looked up in the tenant's embedding cache and the misses (each distinct text once) go to the
 * embedder in one batch, then into the cache.
 * @throws {HostError} EMBED_FAILED from the embedder; `signal.reason` when it aborts.
 */
export async function embedTexts(scope: TenantScope, embedder: Embedder, texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
  if (!embedder.costly) return texts.map((text) => embedder.embed(text));
  // Taken before awaiting: the scope may be released while the provider answers.
  const store = scope.store;
  const vectors: (Float32Array | undefined)[] = texts.map((text) => cachedVector(store, embedder, text));
  const missing = [...new Set(texts.filter((_, i) => vectors[i] === undefined))];
  if (missing.length > 0) {
    const embedded = await embedder.embedBatch(missing, signal);
    const byText = new Map(missing.map((text, i) => [text, embedded[i] as Float32Array]));
    for (const [text, vector] of byText) remember(store, embedder, text, vector);
    texts.forEach((text, i) => (vectors[i] ??= byText.get(text)));
  }
  return vectors as Float32Array[];
}

/**
 * For a costly embedder: when the tenant's stored chunk vectors came from another embedder (the
 * host's embedder changed), re-embeds every chunk in batches and records the new embedder, before
 * the tenant's index loads — the index would otherwise re-embed synchronously, which a remote
 * embedder cannot. Runs once per open environment; concurrent callers share the run.
 * @throws {HostError} EMBED_FAILED from the embedder (the next caller tries again).
 */
export async function prepareIndexVectors(scope: TenantScope, embedder: Embedder): Promise<void> {
  if (!embedder.costly) return;
  const store = scope.store;
  const run = store.derived(`indexVectors:${embedder.id}`, () => ({ pending: undefined as Promise<void> | undefined, done: false }));
  if (run.done) return;
  run.pending ??= reembedChunks(scope, store, embedder).then(
    () => {
      run.done = true;
    },
    (error: unknown) => {
      run.pending = undefined;
      throw error;
    },
  );
  await run.pending;
}

async function reembedChunks(scope: TenantScope, store: TenantStore, embedder: Embedder): Promise<void> {
  if (store.meta.get('embedderId') === embedder.id) return;
  const chunks = [...store.chunks.entries()].map(({ value }) => value);
  // The same text ingestion embeds (retrieval/ingest.ts), so these vectors match new ones.
  const vectors = await embedTexts(scope, embedder, chunks.map((chunk) => embeddedText(chunk.title, chunk.text)));
  if (store.meta.get('embedderId') === embedder.id) return;
  store.transaction(() => {
    chunks.forEach((chunk, i) => {
      // A chunk deleted while the provider answered stays deleted.
      if (store.chunks.get(chunk.row) !== undefined) store.vectors.put(chunk.row, encodeVector(vectors[i] as Float32Array));
    });
    store.meta.put('embedderId', embedder.id);
  });
}

function cacheKey(embedder: Embedder, text: string): string {
  return `${embedder.id}\u0000${sha256Hex(text)}`;
}

function cachedVector(store: TenantStore, embedder: Embedder, text: string): Float32Array | undefined {
  const stored = store.embeddingCache.get(cacheKey(embedder, text));
  if (stored === undefined || stored.byteLength !== embedder.dim * 4) return undefined;
  return new Float32Array(stored.buffer, stored.byteOffset, embedder.dim);
}

function remember(store: TenantStore, embedder: Embedder, text: string, vector: Float32Array): void {
  // Asynchronous and batched: a lost cache write costs a recomputation, never correctness.
  store.embeddingCache.putLater(cacheKey(embedder, text), encodeVector(vector)).catch(() => undefined);
}

/**
 * Deletes the tenant's embedding cache (every embedder's vectors).
 * @returns how many vectors were deleted.
 */
export async function clearEmbeddingCache(store: TenantStore): Promise<number> {
  const writes: Promise<void>[] = [];
  for (const { key } of store.embeddingCache.entries()) writes.push(store.embeddingCache.removeLater(key));
  await Promise.all(writes);
  return writes.length;
}
