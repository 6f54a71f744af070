/**
 * The cache API (tenant key): the tenant's cache counters and sizes, and deleting its caches. Both
 * act on the caller's own environment only: the scope the router minted from the key is the only
 * way in.
 */
import { clearEmbeddingCache } from '../cache/embedding-cache.ts';
import { SemanticCache, semanticCacheStats } from '../cache/semantic-cache.ts';
import type { HostLogger } from '../log.ts';
import type { Embedder } from '../retrieval/embedder.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { readSettings } from '../tenants/settings.ts';
import type { Route } from './route-types.ts';

/** What the cache routes need. */
export interface CacheRouteServices {
  embedder: Embedder;
  logger: HostLogger;
}

/** The cache routes. */
export function cacheRoutes(services: CacheRouteServices): Route[] {
  return [
    { method: 'GET', pattern: /^\/v1\/cache\/stats$/, auth: 'tenant', handle: (scope) => cacheStats(services, scope) },
    { method: 'DELETE', pattern: /^\/v1\/cache$/, auth: 'tenant', handle: (scope) => clearCaches(services, scope) },
  ];
}

/** `GET /v1/cache/stats` → the semantic cache's counters and sizes, its quota, and the embedding cache's size. */
function cacheStats(services: CacheRouteServices, scope: TenantScope): unknown {
  const settings = readSettings(scope).cache;
  return {
    ...semanticCacheStats(scope.store, services.embedder),
    quotaBytes: settings.quotaBytes,
    enabled: settings.enabled,
    scope: settings.scope,
    // A full scan of the table's leaves: fine for an admin call, and the table is small unless the embedder is remote.
    embeddingCacheEntries: scope.store.embeddingCache.count(),
  };
}

/** `DELETE /v1/cache` → deletes every semantic cache entry and every cached embedding of the tenant. */
async function clearCaches(services: CacheRouteServices, scope: TenantScope): Promise<unknown> {
  const entries = await SemanticCache.of(scope.store, services.embedder).clear();
  const embeddings = await clearEmbeddingCache(scope.store);
  services.logger.info({ tenant: scope.tenantId, entries, embeddings }, 'caches cleared');
  return { deleted: { entries, embeddings } };
}
