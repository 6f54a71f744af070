/**
 * The embedding cache: key = (embedder id, SHA-256 of the text), value = the vector, in the tenant's
 * own environment. Used by ingestion, by asks and by the `embed` host function, so a text is embedded
 * once per tenant and embedder. Keys carry the embedder id, so switching embedders never serves a
 * vector of another model.
 */
import type { Embedder } from '../retrieval/embedder.ts';
import { sha256Hex } from '../storage/keys.ts';
import type { TenantScope } from '../tenants/scope.ts';

/** Embeds `text` through the scope's embedding cache. */
export function embedCached(scope: TenantScope, embedder: Embedder, text: string): Float32Array {
  const table = scope.store.embeddingCache;
  const key = `${embedder.id}\u0000${sha256Hex(text)}`;
  const stored = table.get(key);
  if (stored !== undefined && stored.byteLength === embedder.dim * 4) {
    return new Float32Array(stored.buffer, stored.byteOffset, embedder.dim);
  }
  const vector = embedder.embed(text);
  // Asynchronous and batched: a lost cache write costs a recomputation, never correctness.
  table.putLater(key, new Uint8Array(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength))).catch(() => undefined);
  return vector;
}
