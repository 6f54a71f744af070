/**
 * The semantic cache's namespace (host/DESIGN.md, invariant 5): a digest of everything that changes an
 * answer apart from the question itself. Two asks can share a cache entry only when every element
 * is equal; an element that is missing or malformed yields no namespace at all, so the caller does
 * not cache (fail closed) rather than caching under a broader key.
 *
 * The elements, and why each is there:
 * - tenant id: entries already live in the tenant's own environment; the id is hashed in as well so
 *   that even a bug that shared one table could not match across tenants;
 * - model id with its routing (modelIdFor): another model or LoRA adapter answers differently;
 * - embedder id: similarity scores of two embedders are not comparable;
 * - retrieval and prompt plugin sha256: the plugins decide the context;
 * - prompt config: system prompt, topK and token budget decide the context too;
 * - index generation: any ingest, update or delete may change which chunks answer;
 * - scope: `tenant`, or `user` with the end user's id, so one user's entries never answer another.
 */
import { createHash } from 'node:crypto';

/** Bump when the entry format or the meaning of any element changes: old entries stop matching. */
const NAMESPACE_VERSION = 'ctx-semantic-cache-v1';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Everything a namespace is made of. Optional-looking fields are typed loosely on purpose: callers pass what they have. */
export interface NamespaceParts {
  tenantId: string;
  /** `modelIdFor(model, routing)`. */
  modelId: string | undefined;
  embedderId: string | undefined;
  plugins: { retrieval: string; prompt: string } | undefined;
  prompt: { systemPrompt: string; topK: number; tokenBudget: number } | undefined;
  /** `store.counters().generation` read before retrieval runs. */
  generation: number | undefined;
  /** `user` scope needs the end user's id; `tenant` scope ignores `endUser`. */
  scope: 'tenant' | 'user';
  endUser: string | undefined;
}

/** A complete namespace: its digest, and the generation it was built for (checked again at write time). */
export interface CacheNamespace {
  /** base64url SHA-256 of every element. */
  readonly key: string;
  readonly generation: number;
}

/**
 * Builds the namespace, or returns undefined when any element is missing or malformed, or when
 * `parts` holds an element this function does not know (it would otherwise be left out of the key).
 * @throws never
 */
export function cacheNamespace(parts: NamespaceParts): CacheNamespace | undefined {
  const { tenantId, modelId, embedderId, plugins, prompt, generation, scope, endUser, ...unknown } = parts;
  // Every element is taken above: an element added to NamespaceParts but not to the digest below
  // fails to compile here, and one that reaches this function untyped means no namespace at all.
  const untaken: Record<string, never> = unknown;
  if (Object.keys(untaken).length > 0) return undefined;
  if (!nonEmpty(tenantId) || !nonEmpty(modelId) || !nonEmpty(embedderId)) return undefined;
  if (plugins === undefined || !SHA256_HEX.test(plugins.retrieval) || !SHA256_HEX.test(plugins.prompt)) return undefined;
  if (prompt === undefined || typeof prompt.systemPrompt !== 'string') return undefined;
  if (!Number.isInteger(prompt.topK) || !Number.isInteger(prompt.tokenBudget)) return undefined;
  if (generation === undefined || !Number.isInteger(generation) || generation < 0) return undefined;
  if (scope !== 'tenant' && scope !== 'user') return undefined;
  if (scope === 'user' && !nonEmpty(endUser)) return undefined;
  // JSON of an array: every element is delimited and typed, so no two element lists share a digest.
  const canonical = JSON.stringify([
    NAMESPACE_VERSION,
    tenantId,
    modelId,
    embedderId,
    plugins.retrieval,
    plugins.prompt,
    prompt.systemPrompt,
    prompt.topK,
    prompt.tokenBudget,
    generation,
    scope === 'user' ? ['user', endUser] : ['tenant'],
  ]);
  return { key: createHash('sha256').update(canonical, 'utf8').digest('base64url'), generation };
}

/**
 * The exact-path form of a question: Unicode NFKC, lower case, runs of white space as one space,
 * trimmed. Punctuation is kept: "Is it 5?" and "Is it 5." may differ, and the similarity path
 * catches what normalisation leaves apart.
 */
export function normalizeQuestion(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();
}

/** The key of the entry for `question` in `namespace`: the exact path is one lookup of it. */
export function cacheEntryKey(namespace: CacheNamespace, question: string): string {
  return createHash('sha256').update(namespace.key, 'utf8').update('\u0000').update(normalizeQuestion(question), 'utf8').digest('base64url');
}

function nonEmpty(value: string | undefined): value is string {
  return typeof value === 'string' && value.length > 0;
}
