/**
 * The host functions of one plugin slot, as closures over one TenantScope: what a session hands
 * its plugins (ABI `ctx:host/v1`), and what `ctx-plugin test` hands them over a fixture tenant, so
 * both run plugins against exactly the same host. Nothing here takes a tenant id: the scope is the
 * capability, and the ask's scratch state (its embedding, the chunks it resolved) is read through
 * `current`, so a plugin can only ever reach the tenant and the ask it runs for.
 */
import { embedCached } from '../cache/embedding-cache.ts';
import { LIMITS } from '../limits.ts';
import type { Embedder } from '../retrieval/embedder.ts';
import { TenantIndex } from '../retrieval/tenant-index.ts';
import type { ChunkView, PluginCapabilities } from '../sandbox/capabilities.ts';
import type { TenantScope } from '../tenants/scope.ts';
import type { ResolvedChunk } from './guard.ts';

/** What the host functions know of the ask in progress. */
export interface AskScratch {
  question: string;
  /** The question's embedding: `index_search` without a vector, and `embed` of the question, use it. */
  vector: Float32Array;
  /** Chunks resolved from this tenant's index during this ask: the only ones a context may cite. */
  resolved: Map<string, ResolvedChunk>;
}

/** What {@link tenantCapabilities} closes over. */
export interface CapabilityOptions {
  scope: TenantScope;
  embedder: Embedder;
  slot: 'retrieval' | 'prompt';
  /** The ask in progress, if any. */
  current: () => AskScratch | undefined;
  /** Receives the plugin's log lines (tenant output: never the host log's text). */
  log: PluginCapabilities['log'];
}

/** One of the tenant's chunks, with its provenance tag, through the index's record cache. */
export function readChunk(scope: TenantScope, embedder: Embedder, chunkId: string): (ChunkView & { tag: string }) | undefined {
  const chunk = TenantIndex.of(scope.store, embedder).chunk(scope.store, chunkId);
  if (chunk === undefined) return undefined;
  return { chunkId: chunk.chunkId, docId: chunk.docId, title: chunk.title, text: chunk.text, metadata: chunk.metadata, tag: chunk.tag };
}

/** The host functions of one slot over one tenant scope. */
export function tenantCapabilities(options: CapabilityOptions): PluginCapabilities {
  const { scope, embedder, slot, current } = options;
  return {
    indexSearch: (request) => TenantIndex.of(scope.store, embedder).search(request, current()?.vector ?? null).slice(0, LIMITS.searchHitsMax * 2),
    indexRows: () => TenantIndex.of(scope.store, embedder).size,
    chunkGet: (chunkId) => {
      const view = readChunk(scope, embedder, chunkId);
      if (view === undefined) return undefined;
      const { tag, ...plain } = view;
      const ask = current();
      // A chunk the plugin fetched itself is resolved for this ask too: it came from this tenant.
      ask?.resolved.set(chunkId, { chunkId, docId: view.docId, title: view.title, text: view.text, tag, score: ask.resolved.get(chunkId)?.score ?? 0 });
      return plain;
    },
    kvGet: (key) => scope.store.kvGet(slot, key),
    kvSet: (key, value) => scope.store.kvSet(slot, key, value),
    // The ask's own question is embedded already (and, with a remote embedder, may not have
    // reached the embedding cache yet).
    embed: (text) => {
      const ask = current();
      return ask?.question === text ? ask.vector : embedCached(scope, embedder, text);
    },
    log: options.log,
  };
}

/**
 * Resolves the retrieval plugin's ranked chunk ids through this tenant's index, in rank order,
 * dropping unknown and repeated ids; each resolved chunk joins the ask's resolved set.
 */
export function resolveRanked(scope: TenantScope, embedder: Embedder, ranked: readonly { chunkId: string; score: number }[], ask: AskScratch): ResolvedChunk[] {
  const chunks: ResolvedChunk[] = [];
  const taken = new Set<string>();
  for (const { chunkId, score } of ranked) {
    if (taken.has(chunkId)) continue;
    taken.add(chunkId);
    const view = readChunk(scope, embedder, chunkId);
    if (view === undefined) continue;
    const chunk: ResolvedChunk = { chunkId, docId: view.docId, title: view.title, text: view.text, tag: view.tag, score };
    ask.resolved.set(chunkId, chunk);
    chunks.push(chunk);
  }
  return chunks;
}
