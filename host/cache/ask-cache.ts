/**
 * Decides, for one ask, whether and under which namespace it may use the tenant's semantic cache.
 *
 * Only first turns are cached: the key holds no conversation context, and an answer to a later
 * turn depends on the turns before it. (Putting the history into the key instead would make a later
 * turn hit only after the very same conversation, which practically never recurs, at the price of
 * hashing the history on every ask.) The prompt plugin has the last word on writes: an answer it
 * marks not cacheable is never stored.
 */
import type { Embedder } from '../retrieval/embedder.ts';
import type { TenantScope } from '../tenants/scope.ts';
import type { TenantSettings } from '../tenants/settings.ts';
import type { CacheNamespace } from './namespace.ts';
import { SemanticCache, type CachePolicy } from './semantic-cache.ts';

/** What one ask uses the cache with. */
export interface AskCache {
  cache: SemanticCache;
  namespace: CacheNamespace;
  policy: CachePolicy;
}

/** Everything the decision needs about the ask. */
export interface AskCacheInput {
  scope: TenantScope;
  embedder: Embedder;
  settings: TenantSettings;
  /** `modelIdFor(model, routing)` of the model that would answer. */
  modelId: string;
  /** The sha256 of the plugin modules the session runs. */
  plugins: { retrieval: string; prompt: string };
  /** The session has no history yet. */
  firstTurn: boolean;
  /** Epoch milliseconds (the session's clock). */
  now: number;
}

/**
 * The cache handle for this ask, or undefined (counted as bypassed) when the cache is disabled,
 * the ask is not a first turn, or any element of the namespace is missing.
 */
export function askCacheFor(input: AskCacheInput): AskCache | undefined {
  const { scope, embedder, settings } = input;
  const cache = SemanticCache.of(scope.store, embedder);
  const namespace = !settings.cache.enabled || !input.firstTurn ? undefined : cache.namespaceFor({
    tenantId: scope.tenantId,
    modelId: input.modelId,
    embedderId: embedder.id,
    plugins: input.plugins,
    prompt: { systemPrompt: settings.systemPrompt, topK: settings.topK, tokenBudget: settings.tokenBudget },
    generation: scope.store.counters().generation,
    scope: settings.cache.scope,
    endUser: scope.endUser,
  });
  if (namespace === undefined) {
    cache.noteBypass();
    return undefined;
  }
  const policy: CachePolicy = {
    threshold: settings.cache.threshold,
    ttlMs: settings.cache.ttlSeconds * 1000,
    quotaBytes: settings.cache.quotaBytes,
    now: input.now,
  };
  return { cache, namespace, policy };
}
