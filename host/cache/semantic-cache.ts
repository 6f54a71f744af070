/**
 * The semantic cache of ONE tenant: answers to earlier questions, kept in that tenant's own
 * environment (TenantStore.semanticCache) and found again by the same question (exact path: one
 * lookup of a digest of namespace and normalised text) or a similar one (similarity path: cosine
 * over the cached question vectors of the same namespace). An instance is derived from one
 * TenantStore, so it can only ever hold, search or return that tenant's entries: there is no lookup
 * that could leave the partition, whatever a key looked like.
 *
 * Disk holds the entries; memory holds the index over them (namespace, generation, size, recency
 * and the question vector of each), rebuilt by one scan when the environment opens, plus the entries
 * whose asynchronous write has not landed yet. Lookups consult memory first, so an entry memory does
 * not know is never served.
 *
 * Every hit is re-validated before it is served: each source chunk must still exist in the tenant's
 * current index with the same provenance tag, and the tag must still verify under this tenant's key. A failed check drops the
 * entry. A similarity-path hit must also pass the verifier (verify.ts): the cached question and the
 * asked one must agree on numbers, negation, opposed words and names, or the hit is refused (the
 * entry stays: it is right for its own question). Writes are asynchronous (lmdb-js batches them):
 * a lost write costs a recomputation, never a wrong answer; a synchronous commit here would cost
 * milliseconds per miss.
 */
import { timingSafeEqual } from 'node:crypto';
import { LIMITS } from '../limits.ts';
import type { Embedder } from '../retrieval/embedder.ts';
import { TenantIndex } from '../retrieval/tenant-index.ts';
import { VectorIndex } from '../retrieval/vector-index.ts';
import type { ChunkRecord, TenantStore } from '../storage/tenant-store.ts';
import { cacheEntryKey, cacheNamespace, type CacheNamespace, type NamespaceParts } from './namespace.ts';
import { questionSignature, vetoReason, type QuestionSignature } from './verify.ts';

/** A source of a cached answer, with the provenance tag it had when the answer was made. */
export interface CachedSource {
  docId: string;
  chunkId: string;
  score: number;
  title: string;
  tag: string;
}

/** What a lookup returns: the original answer and sources, and how it matched. */
export interface CacheHit {
  answer: string;
  sources: { docId: string; chunkId: string; score: number; title: string }[];
  /** Cosine similarity of the questions; 1 for the exact path. */
  similarity: number;
  match: 'exact' | 'semantic';
  /** The entry's key, for {@link SemanticCache.discard}. */
  entry: string;
}

/** The tenant's cache settings as one lookup or write needs them, with the time to judge expiry by. */
export interface CachePolicy {
  /** Cosine similarity the similarity path needs (0..1). */
  threshold: number;
  /** Age after which an entry is never served. */
  ttlMs: number;
  /** Estimated bytes of entries the tenant may keep. */
  quotaBytes: number;
  /** Now, in epoch milliseconds (injected, so tests can move time). */
  now: number;
}

/** Per-tenant counters and sizes (GET /v1/cache/stats; the metrics endpoint reads the same object). */
export interface CacheStats {
  entries: number;
  bytes: number;
  hits: number;
  exactHits: number;
  semanticHits: number;
  misses: number;
  /** Asks that could not use the cache: later turns, cache disabled, or an incomplete namespace. */
  bypassed: number;
  /** Misses the prompt plugin marked not cacheable, so they were not stored. */
  optedOut: number;
  stored: number;
  evicted: number;
  expired: number;
  /** Entries dropped because the index changed (document ingest, update or delete). */
  invalidated: number;
  /** Entries dropped because a source no longer verified. */
  rejected: number;
  /**
   * Similarity-path lookups in which the verifier refused a similar cached question: it asked
   * something else (another number, name, negation or direction).
   */
  vetoed: number;
}

/** The question a similarity-path lookup asks: its text (for the verifier) and its embedding. */
export interface AskedQuestion {
  question: string;
  vector: Float32Array;
}

/** An answer to store. */
export interface CacheWrite {
  namespace: CacheNamespace;
  question: string;
  vector: Float32Array;
  answer: string;
  sources: CachedSource[];
}

/** The stored form of an entry. */
interface StoredEntry {
  namespace: string;
  generation: number;
  embedderId: string;
  vector: Uint8Array;
  answer: string;
  sources: CachedSource[];
  createdAt: number;
  bytes: number;
  /**
   * The question as asked, for the verifier. Entries written before it was stored lack it: they
   * still serve the exact path, and never the similarity path (unverifiable means refused).
   */
  question?: string;
}

/** What serving an entry needs of it. */
type ServedEntry = Pick<StoredEntry, 'namespace' | 'answer' | 'sources' | 'question'>;

/** #serve's answer when the verifier refused a similar entry: not served, and not dropped either. */
const VETOED = Symbol('vetoed');

/** What memory keeps per entry. */
interface EntryState {
  key: string;
  namespace: string;
  generation: number;
  row: number;
  bytes: number;
  createdAt: number;
  lastUsedAt: number;
  /** When recency was last written to disk. */
  usedSavedAt: number;
}

/** A counter of the cache's statistics (kept in the tenant's meta `cacheStats`). */
export type CacheCounter = Exclude<keyof CacheStats, 'entries' | 'bytes'>;
type Counter = CacheCounter;
type DropReason = 'evicted' | 'expired' | 'invalidated' | 'rejected';

/** Every counter of the cache's statistics: what meta `cacheStats` may hold (an import checks against it). */
export const CACHE_COUNTERS: readonly CacheCounter[] = [
  'hits', 'exactHits', 'semanticHits', 'misses', 'bypassed', 'optedOut', 'stored', 'evicted', 'expired', 'invalidated', 'rejected', 'vetoed',
];

/** Candidates the similarity path re-validates before it gives up: the best may have expired. */
const SIMILAR_CANDIDATES = 4;
/**
 * Float32 cosine of a vector with itself can land a hair under 1; without this slack a tenant that
 * sets threshold 1 ("identical vectors only") would never hit.
 */
const SCORE_EPSILON = 1e-6;
/** Eviction frees down to this share of the quota, so a full cache does not sort on every write. */
const EVICT_TO_SHARE = 0.9;
/** Recency is written to disk at most this often per entry: a write per hit would cost more than the hit. */
const RECENCY_SAVE_MS = 60_000;
/** Counters are written to disk at most this often. */
const STATS_SAVE_MS = 1_000;
/** Estimated bytes of an entry beyond its text and vector (keys, field names, numbers). */
const ENTRY_OVERHEAD_BYTES = 256;

/** One tenant's semantic cache. Obtain it with {@link SemanticCache.of}. */
export class SemanticCache {
  readonly #store: TenantStore;
  readonly #embedder: Embedder;
  readonly #embedderId: string;
  readonly #dim: number;
  /** The cached question vectors, by row; made on the first entry (each index owns a WebAssembly memory). */
  #vectors: VectorIndex | undefined;
  readonly #entries = new Map<string, EntryState>();
  readonly #rows: (EntryState | undefined)[] = [];
  readonly #freeRows: number[] = [];
  /** Entries written with putLater whose write has not landed: disk cannot answer for them yet. */
  readonly #unwritten = new Map<string, StoredEntry>();
  /** The most recently served entries, decoded (a bounded LRU): a hot question skips the storage read. */
  readonly #hot = new Map<string, ServedEntry>();
  /**
   * Chunk records whose provenance tag this cache has verified. A record is an immutable object read
   * from this tenant's store; one re-read from storage is a new object and is verified again.
   */
  readonly #verified = new WeakSet<ChunkRecord>();
  /**
   * The verifier's view of decoded entries' questions, computed on first need. Entries in memory (in
   * flight or hot) keep theirs for as long as they stay; one read from disk is a new object.
   */
  readonly #signatures = new WeakMap<ServedEntry, QuestionSignature | null>();
  readonly #counters: Record<Counter, number>;
  #bytes = 0;
  #statsSavedAt = 0;
  /** The last namespace built for this tenant: asks of one configuration repeat it, and hashing a long system prompt is not free. */
  #lastNamespace: { parts: unknown; namespace: CacheNamespace | undefined } | undefined;

  private constructor(store: TenantStore, embedder: Embedder) {
    this.#store = store;
    this.#embedder = embedder;
    this.#embedderId = embedder.id;
    this.#dim = embedder.dim;
    this.#counters = loadCounters(store.meta.get('cacheStats'));
  }

  /**
   * The cache of `store` for `embedder`, loaded from disk on first use after the environment opens.
   * It follows the store's generation from then on: entries of an older generation are dropped in
   * the transaction that raises it.
   */
  static of(store: TenantStore, embedder: Embedder): SemanticCache {
    return store.derived(`semanticCache:${embedder.id}`, () => {
      const cache = new SemanticCache(store, embedder);
      cache.#load();
      store.onGenerationChange((generation) => cache.#invalidateBefore(generation));
      return cache;
    });
  }

  /** Scans the stored entries into memory, dropping those no lookup could reach any more. */
  #load(): void {
    const generation = this.#store.counters().generation;
    const used = new Map<string, number>();
    for (const { key, value } of this.#store.semanticCacheUsed.entries()) used.set(String(key), value);
    for (const { key, value } of this.#store.semanticCache.entries()) {
      const entry = value as StoredEntry;
      const id = String(key);
      if (entry.generation !== generation || entry.embedderId !== this.#embedderId || entry.vector?.byteLength !== this.#dim * 4) {
        settleQuietly(this.#store.semanticCache.removeLater(id));
        continue;
      }
      const lastUsedAt = Math.max(entry.createdAt, used.get(id) ?? 0);
      this.#admit({ key: id, namespace: entry.namespace, generation, row: -1, bytes: entry.bytes, createdAt: entry.createdAt, lastUsedAt, usedSavedAt: lastUsedAt }, vectorOf(entry.vector, this.#dim));
      used.delete(id);
    }
    for (const orphan of used.keys()) settleQuietly(this.#store.semanticCacheUsed.removeLater(orphan));
  }

  /**
   * {@link cacheNamespace} for this tenant, remembering the last one built. The memo is keyed by the
   * parts themselves — every field, nested ones too, compared by value against a copy taken when it
   * was built — so an element added to the parts can never be answered with a namespace made
   * without it. Parts that cannot be copied as plain data are not remembered.
   */
  namespaceFor(parts: NamespaceParts): CacheNamespace | undefined {
    const last = this.#lastNamespace;
    if (last !== undefined && samePlainData(last.parts, parts)) return last.namespace;
    const namespace = cacheNamespace(parts);
    let copy: unknown;
    try {
      copy = structuredClone(parts);
    } catch {
      this.#lastNamespace = undefined;
      return namespace;
    }
    this.#lastNamespace = { parts: copy, namespace };
    return namespace;
  }

  /**
   * The exact path: the entry for this namespace and normalised question, if it is still valid.
   * Counts a hit when it serves one; a miss is counted by {@link lookupSimilar}, which follows.
   */
  lookupExact(namespace: CacheNamespace, question: string, policy: CachePolicy): CacheHit | undefined {
    const state = this.#entries.get(cacheEntryKey(namespace, question));
    if (state === undefined || state.namespace !== namespace.key) return undefined;
    const hit = this.#serve(state, 1, 'exact', policy);
    return hit === VETOED ? undefined : hit;
  }

  /**
   * The similarity path: the most similar cached question of the same namespace at or above the
   * threshold whose entry is still valid and which the verifier accepts as the same question.
   * Counts the hit, or the miss of the whole lookup (and, when the verifier refused a candidate, a veto).
   */
  lookupSimilar(namespace: CacheNamespace, asked: AskedQuestion, policy: CachePolicy): CacheHit | undefined {
    const { vector } = asked;
    if (this.#vectors !== undefined && vector.length === this.#dim && this.#entries.size > 0) {
      const candidates = this.#vectors.search(vector, SIMILAR_CANDIDATES, (row) => this.#rows[row]?.namespace === namespace.key);
      let signature: QuestionSignature | undefined;
      let vetoed = false;
      for (const { row, score } of candidates) {
        if (score < policy.threshold - SCORE_EPSILON) break;
        const state = this.#rows[row];
        if (state === undefined) continue;
        // Only once a candidate clears the threshold: a plain miss pays nothing for the verifier.
        signature ??= questionSignature(asked.question);
        const hit = this.#serve(state, Math.min(1, score), 'semantic', policy, signature);
        if (hit === VETOED) vetoed = true;
        else if (hit !== undefined) return hit;
      }
      if (vetoed) this.#count('vetoed');
    }
    this.#count('misses');
    return undefined;
  }

  /**
   * Serves an entry that matched: expired or invalid entries are dropped; on the similarity path
   * (`asked` given) an entry whose question the verifier refuses is left in place, unserved.
   */
  #serve(state: EntryState, similarity: number, match: CacheHit['match'], policy: CachePolicy, asked?: QuestionSignature): CacheHit | undefined | typeof VETOED {
    if (policy.now - state.createdAt >= policy.ttlMs) {
      this.#drop(state, 'expired');
      return undefined;
    }
    const stored = this.#read(state.key);
    if (stored === undefined || stored.namespace !== state.namespace) {
      this.#drop(state, 'rejected');
      return undefined;
    }
    if (asked !== undefined) {
      const cached = this.#signatureOf(stored);
      if (cached === null || vetoReason(cached, asked) !== undefined) return VETOED;
    }
    if (!this.#sourcesVerify(stored.sources)) {
      this.#drop(state, 'rejected');
      return undefined;
    }
    this.#keepHot(state.key, stored);
    state.lastUsedAt = Math.max(state.lastUsedAt, policy.now);
    if (state.lastUsedAt - state.usedSavedAt >= RECENCY_SAVE_MS) {
      state.usedSavedAt = state.lastUsedAt;
      settleQuietly(this.#store.semanticCacheUsed.putLater(state.key, state.lastUsedAt));
    }
    this.#count('hits');
    this.#count(match === 'exact' ? 'exactHits' : 'semanticHits', policy.now);
    const sources = stored.sources.map(({ docId, chunkId, score, title }) => ({ docId, chunkId, score, title }));
    return { answer: stored.answer, sources, similarity, match, entry: state.key };
  }

  /** The verifier's view of an entry's question; null when the entry has none (written before questions were kept). */
  #signatureOf(entry: ServedEntry): QuestionSignature | null {
    let signature = this.#signatures.get(entry);
    if (signature === undefined) {
      signature = typeof entry.question === 'string' ? questionSignature(entry.question) : null;
      this.#signatures.set(entry, signature);
    }
    return signature;
  }

  /**
   * The entry from memory (in flight or hot) or from disk. Reading does not make it hot: a candidate
   * the verifier refuses must not push a served entry out of the LRU.
   */
  #read(key: string): ServedEntry | undefined {
    const entry = this.#unwritten.get(key) ?? this.#hot.get(key);
    if (entry !== undefined) return entry;
    const stored = this.#store.semanticCache.get(key) as StoredEntry | undefined;
    if (stored === undefined) return undefined;
    return { namespace: stored.namespace, answer: stored.answer, sources: stored.sources, ...(typeof stored.question === 'string' ? { question: stored.question } : {}) };
  }

  /** Makes a served entry the most recently used of the hot LRU. */
  #keepHot(key: string, entry: ServedEntry): void {
    this.#hot.delete(key);
    this.#hot.set(key, entry);
    if (this.#hot.size > LIMITS.cacheHotEntriesPerTenantMax) this.#hot.delete(this.#hot.keys().next().value as string);
  }

  /**
   * Every source still exists in this tenant's current index with the tag it had, and the tag
   * verifies under this tenant's key: a chunk that changed, moved to another document or never was
   * this tenant's fails.
   */
  #sourcesVerify(sources: readonly CachedSource[]): boolean {
    const store = this.#store;
    const index = sources.length === 0 ? undefined : TenantIndex.of(store, this.#embedder);
    for (const source of sources) {
      const chunk = index?.chunk(store, source.chunkId);
      if (chunk === undefined || chunk.docId !== source.docId || chunk.tag !== source.tag) return false;
      if (this.#verified.has(chunk)) continue;
      if (!equalText(source.tag, store.provenanceTag(chunk.chunkId, chunk.text))) return false;
      this.#verified.add(chunk);
    }
    return true;
  }

  /**
   * Stores an answer, evicting expired and then least recently used entries to stay within the
   * quota. Returns false, storing nothing, when the index changed since the namespace was built (the
   * answer may rest on chunks that are gone) or the entry alone is larger than the quota.
   */
  store(write: CacheWrite, policy: CachePolicy): boolean {
    const { namespace } = write;
    if (this.#store.counters().generation !== namespace.generation || write.vector.length !== this.#dim) return false;
    const bytes = entryBytes(write);
    if (bytes > policy.quotaBytes) return false;
    const key = cacheEntryKey(namespace, write.question);
    const previous = this.#entries.get(key);
    if (previous !== undefined) this.#forget(previous);
    this.#makeRoom(bytes, policy);
    const entry: StoredEntry = {
      namespace: namespace.key,
      generation: namespace.generation,
      embedderId: this.#embedderId,
      vector: new Uint8Array(write.vector.buffer.slice(write.vector.byteOffset, write.vector.byteOffset + write.vector.byteLength)),
      answer: write.answer,
      sources: write.sources,
      createdAt: policy.now,
      bytes,
      question: write.question,
    };
    const state = { key, namespace: namespace.key, generation: namespace.generation, row: -1, bytes, createdAt: policy.now, lastUsedAt: policy.now, usedSavedAt: policy.now };
    this.#admit(state, write.vector);
    this.#unwritten.set(key, entry);
    this.#store.semanticCache.putLater(key, entry).then(
      () => {
        if (this.#unwritten.get(key) === entry) this.#unwritten.delete(key);
      },
      () => {
        // The write is lost: forget the entry rather than keep one that a reload would not have.
        if (this.#unwritten.get(key) === entry) this.#forget(state);
      },
    );
    this.#count('stored', policy.now);
    return true;
  }

  /** Frees room for `incoming` bytes and one more entry: expired entries first, then the least recently used. */
  #makeRoom(incoming: number, policy: CachePolicy): void {
    const fits = (share: number): boolean =>
      this.#bytes + incoming <= policy.quotaBytes * share && this.#entries.size + 1 <= LIMITS.cacheEntriesPerTenantMax * share;
    if (fits(1)) return;
    for (const state of [...this.#entries.values()]) {
      if (policy.now - state.createdAt >= policy.ttlMs) this.#drop(state, 'expired');
    }
    if (fits(1)) return;
    const byRecency = [...this.#entries.values()].sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    for (const state of byRecency) {
      if (fits(EVICT_TO_SHARE)) break;
      this.#drop(state, 'evicted');
    }
  }

  /** Drops an entry whose answer the caller refused to serve (the leak guard blocked it). */
  discard(entry: string): void {
    const state = this.#entries.get(entry);
    if (state !== undefined) this.#drop(state, 'rejected');
  }

  /** Records an ask that could not use the cache. */
  noteBypass(): void {
    this.#count('bypassed');
  }

  /** Records a miss the prompt plugin marked not cacheable. */
  noteOptOut(): void {
    this.#count('optedOut');
  }

  /**
   * Deletes every entry of this tenant's semantic cache, on disk too (including entries memory had
   * already let go of). Counters are kept: they are history, not cached data.
   * @returns how many entries were deleted.
   */
  async clear(): Promise<number> {
    // Entries whose write is still in flight are removed too: the removes are ordered after it.
    const keys = new Set<string>(this.#entries.keys());
    for (const { key } of this.#store.semanticCache.entries()) keys.add(String(key));
    for (const state of [...this.#entries.values()]) this.#forget(state);
    const writes: Promise<unknown>[] = [];
    for (const key of keys) writes.push(this.#store.semanticCache.removeLater(key));
    for (const { key } of this.#store.semanticCacheUsed.entries()) writes.push(this.#store.semanticCacheUsed.removeLater(key));
    await Promise.all(writes);
    return keys.size;
  }

  /** Counters and sizes. */
  stats(): CacheStats {
    return { entries: this.#entries.size, bytes: this.#bytes, ...this.#counters };
  }

  /** Runs inside the transaction that raises the generation: no entry of an older one can be reached again. */
  #invalidateBefore(generation: number): void {
    for (const state of [...this.#entries.values()]) {
      if (state.generation >= generation) continue;
      // A write still in flight lands after this transaction; a remove queued behind it follows it to
      // disk. Queued once the transaction is over: lmdb-js runs a write issued inside one at once.
      if (this.#unwritten.has(state.key)) queueMicrotask(() => settleQuietly(this.#store.semanticCache.removeLater(state.key)));
      this.#forget(state);
      // Synchronous removes join the caller's transaction: the entries go with the change that killed them.
      this.#store.semanticCache.remove(state.key);
      this.#store.semanticCacheUsed.remove(state.key);
      this.#counters.invalidated += 1;
    }
  }

  #admit(state: EntryState, vector: Float32Array): void {
    state.row = this.#freeRows.pop() ?? this.#rows.length;
    this.#rows[state.row] = state;
    this.#vectors ??= new VectorIndex(this.#dim);
    this.#vectors.set(state.row, vector);
    this.#entries.set(state.key, state);
    this.#bytes += state.bytes;
  }

  /** Removes an entry from memory only. */
  #forget(state: EntryState): void {
    if (this.#entries.get(state.key) !== state) return;
    this.#entries.delete(state.key);
    this.#unwritten.delete(state.key);
    this.#hot.delete(state.key);
    this.#rows[state.row] = undefined;
    this.#vectors?.delete(state.row);
    this.#freeRows.push(state.row);
    this.#bytes -= state.bytes;
  }

  /** Removes an entry from memory and (asynchronously) from disk, counting why. */
  #drop(state: EntryState, reason: DropReason): void {
    this.#forget(state);
    settleQuietly(this.#store.semanticCache.removeLater(state.key));
    settleQuietly(this.#store.semanticCacheUsed.removeLater(state.key));
    this.#count(reason);
  }

  /** Counts an event; with `now`, also saves the counters when they have not been saved for a while. */
  #count(counter: Counter, now?: number): void {
    this.#counters[counter] += 1;
    if (now === undefined || now - this.#statsSavedAt < STATS_SAVE_MS) return;
    this.#statsSavedAt = now;
    settleQuietly(this.#store.meta.putLater('cacheStats', { ...this.#counters }));
  }
}

/**
 * The tenant's cache counters and sizes (loading the cache on first use). For GET /v1/cache/stats
 * and the metrics endpoint.
 */
export function semanticCacheStats(store: TenantStore, embedder: Embedder): CacheStats {
  return SemanticCache.of(store, embedder).stats();
}

/**
 * Lets an asynchronous cache write fail without an unhandled rejection. A lost write is harmless by
 * construction: memory, not disk, decides what is served, and a reload re-validates and re-expires.
 */
function settleQuietly(write: Promise<unknown>): void {
  write.catch(() => undefined);
}

/**
 * Deep equality of plain data (objects, arrays, primitives): the same own keys — a key holding
 * undefined counts — and equal values. Anything else (a class instance, a function) is equal only to
 * itself, so an unexpected value can only cause a memo miss, never a false match.
 */
function samePlainData(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b) || !isPlain(a) || !isPlain(b)) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  // for…in with own-key checks, not Object.keys: this runs on every ask and allocates nothing.
  let keys = 0;
  for (const key in left) {
    if (!Object.hasOwn(left, key)) continue;
    keys++;
    if (!Object.hasOwn(right, key) || !samePlainData(left[key], right[key])) return false;
  }
  for (const key in right) if (Object.hasOwn(right, key)) keys--;
  return keys === 0;
}

/** Whether an object is a plain object or array, the only kinds of value namespace parts hold. */
function isPlain(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === Array.prototype || prototype === null;
}

function loadCounters(saved: unknown): Record<Counter, number> {
  const counters = {} as Record<Counter, number>;
  for (const name of CACHE_COUNTERS) {
    const value = typeof saved === 'object' && saved !== null ? (saved as Record<string, unknown>)[name] : undefined;
    counters[name] = typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
  }
  return counters;
}

function entryBytes(write: CacheWrite): number {
  let bytes = ENTRY_OVERHEAD_BYTES + write.vector.byteLength + Buffer.byteLength(write.answer) + Buffer.byteLength(write.question);
  for (const source of write.sources) {
    bytes += 16 + Buffer.byteLength(source.docId) + Buffer.byteLength(source.chunkId) + Buffer.byteLength(source.title) + source.tag.length;
  }
  return bytes;
}

function vectorOf(bytes: Uint8Array, dim: number): Float32Array {
  const copy = new Uint8Array(bytes);
  return new Float32Array(copy.buffer, 0, dim);
}

function equalText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
