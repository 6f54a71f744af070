/**
 * One tenant's data plane: the tables inside that tenant's own, encrypted LMDB environment. Every
 * kind of tenant data has its table here and nowhere else (host/DESIGN.md, invariant 2). A TenantStore
 * is only ever handed out inside a TenantScope (tenants/scope.ts).
 */
import { createHash, createHmac } from 'node:crypto';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { KvEnvironment, KvKey, KvReadSnapshot, KvTable } from './lmdb.ts';
import { CANARY_PATTERN } from './registry.ts';

/** A stored document (its text lives in its chunks). */
export interface DocumentRecord {
  id: string;
  title: string;
  metadata: Record<string, string>;
  /** Row numbers of its chunks, in order. */
  rows: number[];
  /** SHA-256 of the document text: re-posting an unchanged document is a no-op. */
  contentHash: string;
  chars: number;
  updatedAt: number;
}

/** A stored chunk, addressed by its row number. */
export interface ChunkRecord {
  row: number;
  chunkId: string;
  docId: string;
  ordinal: number;
  title: string;
  text: string;
  metadata: Record<string, string>;
  /** Provenance tag: HMAC(tenant provenance key, chunk id + SHA-256 of text); see provenanceTag(). */
  tag: string;
}

/** A chunk's lexical index entry, kept apart from its text so reading a chunk stays cheap. */
export interface ChunkTerms {
  /** Term frequencies as [term, count] pairs. */
  terms: [string, number][];
  /** Token count (BM25 document length). */
  length: number;
}

/** Counters kept in the `meta` table. */
export interface StoreMeta {
  /** Bumped by every ingest, update or delete: part of every cache namespace. */
  generation: number;
  /** Next free chunk row. Rows are never reused so stale references cannot alias new chunks. */
  nextRow: number;
}

/** The value written to `meta/check` at creation: reading it back proves the data key is right. */
const STORE_CHECK = 'ctx-tenant-store-v1';
/** The plugin slots: the tenant's canary is planted beside the state of each. */
const CANARY_SLOTS = ['retrieval', 'prompt'] as const;
/** Where the canary used to be planted: plugin key `__ctx_canary` of each slot, which plugins could read and delete. */
const LEGACY_CANARY_KEY = '__ctx_canary';
const CANARY_VALUE = new RegExp(`^${CANARY_PATTERN.source}$`);

/** The tables of one tenant environment. A stateful resource owned by storage/environments.ts. */
export class TenantStore {
  readonly #env: KvEnvironment;
  readonly #derived = new Map<string, unknown>();
  readonly #generationListeners: ((generation: number) => void)[] = [];
  /**
   * The counters as this process last read or wrote them. Only this process writes an open
   * environment (the derived indexes assume the same), and every ask reads the generation: the
   * first storage read of an event-loop turn renews LMDB's read transaction, which costs more than
   * a whole cache hit.
   */
  #counters: StoreMeta | undefined;
  /** Documents by id. */
  readonly documents: KvTable<DocumentRecord>;
  /** Chunks by row. */
  readonly chunks: KvTable<ChunkRecord>;
  /** Row → lexical entry (term frequencies and length). */
  readonly chunkTerms: KvTable<ChunkTerms>;
  /** Chunk id → row. */
  readonly chunkRows: KvTable<number>;
  /** Row → float32 vector bytes of the tenant's embedder. */
  readonly vectors: KvTable<Uint8Array>;
  /**
   * Plugin key-value state; a plugin's keys are `<slot>\u0000<key>`. Keys that start with
   * `\u0000` are the host's (the tenant's canary, see {@link plantCanary}): no slot is empty, so no
   * plugin key can ever name one.
   */
  readonly pluginKv: KvTable<Uint8Array>;
  /** Semantic cache entries (cache/ owns their format). */
  readonly semanticCache: KvTable<unknown>;
  /** Semantic cache entry key → when it was last served (epoch ms), saved coarsely (cache/ owns it). */
  readonly semanticCacheUsed: KvTable<number>;
  /** Embedding cache: `<embedder id>\u0000<text hash>` → float32 vector bytes. */
  readonly embeddingCache: KvTable<Uint8Array>;
  /** Feedback on answers, with the ask, the answer and its sources (training/ reads it). */
  readonly feedback: KvTable<unknown>;
  /** Counters and settings. */
  readonly meta: KvTable<unknown>;
  /** Uploaded plugins: slot → its versions and which one is active (storage/plugin-store.ts owns the format). */
  readonly plugins: KvTable<unknown>;
  /** Metered plugin modules: `<slot>\u0000<version>` → module bytes. */
  readonly pluginModules: KvTable<Uint8Array>;
  /** The tenant's append-only audit log: sequence number → entry (tenants/audit.ts owns the format). */
  readonly audit: KvTable<unknown>;

  readonly #provenanceKey: Buffer;

  /** @param provenanceKey a key derived from this tenant's data key, for provenance tags. */
  constructor(env: KvEnvironment, provenanceKey: Buffer) {
    this.#env = env;
    this.#provenanceKey = provenanceKey;
    this.documents = env.table('documents', 'structured');
    this.chunks = env.table('chunks', 'structured');
    this.chunkRows = env.table('chunkRows', 'structured');
    this.chunkTerms = env.table('chunkTerms', 'structured');
    this.vectors = env.table('vectors', 'binary');
    this.pluginKv = env.table('pluginKv', 'binary');
    this.semanticCache = env.table('semanticCache', 'structured');
    this.semanticCacheUsed = env.table('semanticCacheUsed', 'structured');
    this.embeddingCache = env.table('embeddingCache', 'binary');
    this.feedback = env.table('feedback', 'structured');
    this.meta = env.table('meta', 'structured');
    this.plugins = env.table('plugins', 'structured');
    this.pluginModules = env.table('pluginModules', 'binary');
    this.audit = env.table('audit', 'structured');
  }

  /**
   * Writes the check value into a new store, or verifies it in an existing one.
   * @throws {HostError} STORAGE_MASTER_KEY when the data key does not decrypt the store.
   */
  initialise(isNew: boolean, tenantId: string): void {
    if (isNew) {
      this.meta.put('check', STORE_CHECK);
      return;
    }
    let check: unknown;
    try {
      check = this.meta.get('check');
    } catch {
      check = undefined;
    }
    if (check !== STORE_CHECK) {
      throw new HostError('STORAGE_MASTER_KEY', `the data key of tenant ${tenantId} does not decrypt its environment`);
    }
    this.moveLegacyCanaries();
  }

  /**
   * Plants the tenant's canary in the plugin state table — where a bug carrying one tenant's
   * plugin state into another's context would carry it too — under host keys no plugin key can
   * name, so a plugin can neither read nor delete it. Not counted against any slot's kv quota.
   */
  plantCanary(canary: string): void {
    this.transaction(() => {
      for (const slot of CANARY_SLOTS) this.pluginKv.put(hostKvKey(slot), new TextEncoder().encode(canary));
    });
  }

  /** The canary planted in this store (see {@link plantCanary}), if any. */
  plantedCanary(): string | undefined {
    const value = this.pluginKv.get(hostKvKey(CANARY_SLOTS[0]));
    return value === undefined ? undefined : new TextDecoder().decode(value);
  }

  /**
   * Stores made before host keys had their own namespace keep the canary at plugin key
   * `__ctx_canary` of each slot, where the slot's plugin could read and delete it: move it out
   * (and out of the slot's kv usage). A value there that is no canary is the plugin's own, and stays.
   * Opening a store runs it; so does an import, after it wrote an older host's entries.
   */
  moveLegacyCanaries(): void {
    const legacy: { slot: string; value: Uint8Array }[] = [];
    for (const slot of CANARY_SLOTS) {
      const value = this.pluginKv.get(kvKey(slot, LEGACY_CANARY_KEY));
      if (value !== undefined && CANARY_VALUE.test(new TextDecoder().decode(value))) legacy.push({ slot, value });
    }
    if (legacy.length === 0) return;
    this.transaction(() => {
      for (const { slot, value } of legacy) {
        this.pluginKv.put(hostKvKey(slot), value);
        this.pluginKv.remove(kvKey(slot, LEGACY_CANARY_KEY));
        const used = (this.meta.get(kvUsageKey(slot)) as number | undefined) ?? 0;
        this.meta.put(kvUsageKey(slot), Math.max(0, used - value.byteLength));
      }
    });
  }

  /**
   * The provenance tag of a chunk for THIS tenant: HMAC-SHA256 under a key only this tenant's
   * environment holds, over the chunk id and the SHA-256 of its text. The guard recomputes it for
   * every chunk before it enters a context, so a chunk from another tenant (or altered text) fails.
   */
  provenanceTag(chunkId: string, text: string): string {
    const digest = createHash('sha256').update(text, 'utf8').digest();
    return createHmac('sha256', this.#provenanceKey).update(chunkId, 'utf8').update('\u0000').update(digest).digest('base64url');
  }

  /** Every table of this tenant's environment with its encoding (the whole-tenant export walks them all). */
  tables(): { name: string; encoding: 'structured' | 'binary'; table: KvTable<unknown> }[] {
    return this.#env.tables();
  }

  /** A read view of every table of this tenant as of now, until its `done()` (for reads done in steps). */
  readSnapshot(): KvReadSnapshot {
    return this.#env.readSnapshot();
  }

  /** Runs `action` as one write transaction over all tables of this tenant. */
  transaction<T>(action: () => T): T {
    try {
      return this.#env.transaction(action);
    } catch (error) {
      // Counters set inside the failed transaction never landed: read them again.
      this.#counters = undefined;
      throw error;
    }
  }

  /** Generation and row counters (a copy). */
  counters(): StoreMeta {
    this.#counters ??= (this.meta.get('counters') as StoreMeta | undefined) ?? { generation: 0, nextRow: 0 };
    return { ...this.#counters };
  }

  /**
   * Replaces the counters (inside the caller's transaction). When the generation changes, every
   * {@link onGenerationChange} listener runs inside that same transaction, so whatever the old
   * generation made unreachable (cache entries) goes with the change that made it so.
   */
  setCounters(counters: StoreMeta): void {
    const previous = this.counters().generation;
    this.meta.put('counters', counters);
    this.#counters = { ...counters };
    if (counters.generation !== previous) for (const listener of this.#generationListeners) listener(counters.generation);
  }

  /**
   * Registers a listener for generation changes, for structures derived from this store (they live
   * and die with it). It runs inside the writer's transaction and must only do synchronous writes.
   */
  onGenerationChange(listener: (generation: number) => void): void {
    this.#generationListeners.push(listener);
  }

  /** A structure {@link derived} built already, or undefined (nothing is built). */
  derivedIfBuilt<T>(name: string): T | undefined {
    return this.#derived.get(name) as T | undefined;
  }

  /**
   * An in-memory structure derived from this store (a search index, say), built once per open
   * environment and dropped with it, so a closed and reopened tenant rebuilds from disk.
   */
  derived<T>(name: string, build: (store: TenantStore) => T): T {
    if (!this.#derived.has(name)) this.#derived.set(name, build(this));
    return this.#derived.get(name) as T;
  }

  /** Reads a plugin's kv value, namespaced by its slot. */
  kvGet(slot: string, key: string): Uint8Array | undefined {
    return this.pluginKv.get(kvKey(slot, key));
  }

  /**
   * Writes (or, for an empty value, deletes) a plugin's kv value, keeping the slot within its byte quota.
   * @throws {HostError} STORAGE_QUOTA when the key, the value or the slot total is over its limit.
   */
  kvSet(slot: string, key: string, value: Uint8Array): void {
    const fullKey = kvKey(slot, key);
    const keyBytes = Buffer.byteLength(key);
    if (keyBytes === 0 || keyBytes > LIMITS.kvKeyBytesMax) {
      throw new HostError('STORAGE_QUOTA', `kv key is ${keyBytes} bytes, allowed 1..${LIMITS.kvKeyBytesMax}`);
    }
    if (value.byteLength > LIMITS.kvValueBytesMax) {
      throw new HostError('STORAGE_QUOTA', `kv value is ${value.byteLength} bytes, limit ${LIMITS.kvValueBytesMax}`);
    }
    this.transaction(() => {
      const usedKey = kvUsageKey(slot);
      const used = (this.meta.get(usedKey) as number | undefined) ?? 0;
      const previous = this.pluginKv.get(fullKey)?.byteLength ?? 0;
      const next = used - previous + value.byteLength;
      if (next > LIMITS.kvBytesPerSlotMax) {
        throw new HostError('STORAGE_QUOTA', `kv total for slot ${slot} would be ${next} bytes, limit ${LIMITS.kvBytesPerSlotMax}`);
      }
      if (value.byteLength === 0) this.pluginKv.remove(fullKey);
      else this.pluginKv.put(fullKey, value);
      this.meta.put(usedKey, next);
    });
  }
}

/**
 * What a key of the plugin state table is: a plugin's own (`<slot>\u0000<key>`), the host's canary
 * entry of a slot, or neither (no key this host writes). For checking entries that come from
 * outside (an import).
 */
export function pluginKvKeyKind(key: KvKey): { kind: 'plugin'; slot: string; key: string } | { kind: 'canary'; slot: string } | undefined {
  if (typeof key !== 'string') return undefined;
  for (const slot of CANARY_SLOTS) {
    if (key === hostKvKey(slot)) return { kind: 'canary', slot };
    if (key.startsWith(`${slot}\u0000`)) return { kind: 'plugin', slot, key: key.slice(slot.length + 1) };
  }
  return undefined;
}

function kvKey(slot: string, key: string): KvKey {
  return `${slot}\u0000${key}`;
}

/** A host key of the plugin state table: it starts with NUL, which no `<slot>\u0000<key>` does. */
function hostKvKey(slot: string): KvKey {
  return `\u0000canary\u0000${slot}`;
}

function kvUsageKey(slot: string): string {
  return `kvBytes\u0000${slot}`;
}
