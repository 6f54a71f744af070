/**
 * What an import trusts of a tenant export file: nothing. The file authenticates only that whoever
 * wrote it held the export key — and that may be the tenant itself, who can decrypt its export,
 * edit it and seal it again. So every record is judged as if it came from the API: the tenant
 * record (its keys within the key limit), every entry's table and key (no table or key this host
 * would not write), its shape and its size (the limits the API enforces), the settings (the same
 * ranges as PATCH /v1/config), the counters (recomputed from the entries, which must agree), the
 * chunks (their provenance tags must verify under the tenant's key) and their documents, the audit
 * chain, and every plugin module (vetted and metered again, like an upload). The first failure
 * refuses the whole import with TENANT_EXPORT_INVALID naming the record and what was wrong.
 *
 * {@link checkTenantRecord} runs before anything is registered, {@link ImportCheck.entry} before
 * each entry is written, and {@link ImportCheck.finish} once all of them are, inside the import's
 * all-or-nothing: the caller crypto-shreds the tenant when any of them throws.
 */
import { CACHE_COUNTERS } from '../cache/semantic-cache.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { validateDocuments } from '../retrieval/ingest.ts';
import type { MeteringService } from '../sandbox/metering-service.ts';
import { unwrapHostMetering } from '../sandbox/remeter.ts';
import { vetPlugin } from '../sandbox/vetting.ts';
import type { KvKey } from '../storage/lmdb.ts';
import type { PluginSlotRecord, PluginVersion, StoredSlot } from '../storage/plugin-store.ts';
import { CANARY_PATTERN, validateTenantName, type TenantControlRecord } from '../storage/registry.ts';
import { pluginKvKeyKind } from '../storage/tenant-store.ts';
import { AUDIT_ACTORS, AUDIT_KINDS, readAudit } from './audit.ts';
import type { TenantScope } from './scope.ts';
import { applyPatch, TENANT_SETTINGS_DEFAULTS } from './settings.ts';

const SLOTS: readonly StoredSlot[] = ['retrieval', 'prompt'];
const SHA256_HEX = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const TENANT_ID = /^t_[0-9a-f]{16}$/;
const CANARY = new RegExp(`^${CANARY_PATTERN.source}$`);
/** Counters of the semantic cache's statistics (cache/semantic-cache.ts keeps them in meta `cacheStats`). */
const CACHE_STAT_NAMES: ReadonlySet<string> = new Set(CACHE_COUNTERS);
/** Characters of the ids and names the host itself writes into cache and feedback records (embedder ids, namespaces, tags). */
const HOST_STRING_CHARS_MAX = 512;
/** Entries of one audit entry's detail (ids, counts and codes, never text; each string within HOST_STRING_CHARS_MAX). */
const AUDIT_DETAIL_ENTRIES_MAX = 16;
/** Bytes of a float32 vector of the largest dimension an embedder may have. */
const VECTOR_BYTES_MAX = LIMITS.embedDimMax * 4;

/**
 * A TENANT_EXPORT_INVALID error (returned, for the caller to throw); `what` names the record and
 * what was wrong with it.
 * @throws never
 */
export function importInvalid(what: string): HostError {
  return new HostError('TENANT_EXPORT_INVALID', `${what}; nothing was imported`);
}

type Fail = (message: string) => never;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && value >= 0;
const isText = (value: unknown, charsMax: number): value is string => typeof value === 'string' && value.length <= charsMax;

/** How a key shows in a message: quoted, control characters escaped, cut short. */
function shown(key: KvKey): string {
  return typeof key === 'number' ? String(key) : JSON.stringify(key.slice(0, 80));
}

/**
 * Checks the file's tenant record: id, name and canary in their forms, a 32-character data key,
 * API key records of the stored shape with distinct ids, at most LIMITS.apiKeysPerTenantMax active.
 * @returns the record, typed.
 * @throws {HostError} TENANT_EXPORT_INVALID naming what was wrong.
 */
export function checkTenantRecord(record: { control?: unknown; dataKey?: unknown }): { control: TenantControlRecord; dataKey: string } {
  const fail: Fail = (message) => {
    throw importInvalid(`the tenant record ${message}`);
  };
  const { control, dataKey } = record;
  if (!isObject(control)) return fail('is not an object');
  if (typeof control['id'] !== 'string' || !TENANT_ID.test(control['id'])) fail('has a malformed id');
  try {
    validateTenantName(control['name']);
  } catch (error: unknown) {
    if (error instanceof HostError) fail(error.message);
    throw error;
  }
  if (!isTime(control['createdAt'])) fail('has a malformed creation time');
  if (typeof control['canary'] !== 'string' || !CANARY.test(control['canary'])) fail('has a malformed canary');
  if (typeof dataKey !== 'string' || dataKey.length !== 32) fail('has a malformed data key');
  const keys = control['apiKeys'];
  if (!Array.isArray(keys)) return fail('has no API key list');
  const ids = new Set<string>();
  let active = 0;
  for (const key of keys as unknown[]) {
    if (!isObject(key) || typeof key['keyId'] !== 'string' || !KEY_ID.test(key['keyId'])) return fail('holds a malformed API key id');
    const secret = key['secret'];
    const wellFormed = isObject(secret) && secret['salt'] instanceof Uint8Array && secret['salt'].byteLength === 16 && secret['hash'] instanceof Uint8Array && secret['hash'].byteLength === 32;
    if (!wellFormed || !isTime(key['createdAt']) || !(key['revokedAt'] === null || isTime(key['revokedAt']))) fail(`holds a malformed API key ${key['keyId']}`);
    if (ids.has(key['keyId'])) fail(`holds API key ${key['keyId']} twice`);
    ids.add(key['keyId']);
    if (key['revokedAt'] === null) active += 1;
  }
  if (active > LIMITS.apiKeysPerTenantMax) fail(`holds ${active} active API keys, limit ${LIMITS.apiKeysPerTenantMax}`);
  return { control: control as unknown as TenantControlRecord, dataKey: dataKey as string };
}

/** What the entries add up to, for the checks across tables once all of them are in. */
interface Seen {
  documents: Map<string, number[]>;
  chunks: Map<number, { chunkId: string; docId: string }>;
  chunkRows: Map<string, number>;
  terms: Set<number>;
  vectors: Set<number>;
  vectorBytes: number | undefined;
  kvBytes: Map<string, number>;
  cacheEntries: Set<string>;
  cacheUsed: string[];
  feedback: number;
  plugins: Map<StoredSlot, PluginSlotRecord>;
  modules: Set<string>;
  meta: Map<string, unknown>;
}

/** Checks one import's entries as they come, then across tables. One instance per import. */
export class ImportCheck {
  readonly #scope: TenantScope;
  readonly #canary: string;
  readonly #storeCheck: unknown;
  readonly #seen: Seen = {
    documents: new Map(),
    chunks: new Map(),
    chunkRows: new Map(),
    terms: new Set(),
    vectors: new Set(),
    vectorBytes: undefined,
    kvBytes: new Map(SLOTS.map((slot) => [slot, 0])),
    cacheEntries: new Set(),
    cacheUsed: [],
    feedback: 0,
    plugins: new Map(),
    modules: new Set(),
    meta: new Map(),
  };

  /** @param scope the imported tenant's (new, empty) store; its check value is read now, before any entry overwrites it. */
  constructor(scope: TenantScope, canary: string) {
    this.#scope = scope;
    this.#canary = canary;
    this.#storeCheck = scope.store.meta.get('check');
  }

  /**
   * Checks one entry before it is written.
   * @throws {HostError} TENANT_EXPORT_INVALID naming the table, the key and what was wrong.
   */
  entry(table: string, key: KvKey, value: unknown): void {
    const label = table === 'meta' && typeof key === 'string' ? `meta ${JSON.stringify(key).slice(1, -1)}` : `${table} ${shown(key)}`;
    const fail: Fail = (message) => {
      throw importInvalid(`${label}: ${message}`);
    };
    switch (table) {
      case 'documents':
        return this.#document(key, value, fail);
      case 'chunks':
        return this.#chunk(key, value, fail);
      case 'chunkRows':
        if (typeof key !== 'string' || !isCount(value)) fail('must map a chunk id to a row');
        this.#seen.chunkRows.set(key as string, value as number);
        return;
      case 'chunkTerms':
        return this.#terms(key, value, fail);
      case 'vectors':
        return this.#vector(key, value, fail);
      case 'pluginKv':
        return this.#pluginKv(key, value);
      case 'semanticCache':
        return this.#cacheEntry(key, value, fail);
      case 'semanticCacheUsed':
        if (typeof key !== 'string' || !isTime(value)) fail('must map a cache entry to a time');
        this.#seen.cacheUsed.push(key as string);
        return;
      case 'embeddingCache':
        if (typeof key !== 'string' || !/^[^\u0000]{1,512}\u0000[0-9a-f]{64}$/.test(key)) fail('is not <embedder id>\\u0000<text hash>');
        return checkVector(value, fail);
      case 'feedback':
        return this.#feedback(key, value, fail);
      case 'meta':
        return this.#meta(key, value);
      case 'plugins':
        return this.#pluginSlot(key, value);
      case 'pluginModules':
        return this.#module(key, value);
      case 'audit':
        return this.#audit(key, value, fail);
      default:
        throw importInvalid(`the file names a table this host does not have: ${JSON.stringify(table.slice(0, 60))}`);
    }
  }

  #document(key: KvKey, value: unknown, fail: Fail): void {
    if (!isObject(value) || value['id'] !== key) return fail('is not a document record under its own id');
    try {
      // The API's own checks: id, title and metadata as POST /v1/documents would take them.
      validateDocuments({ documents: [{ id: value['id'], title: value['title'], text: '-', metadata: value['metadata'] }] });
    } catch (error: unknown) {
      if (error instanceof HostError) fail(error.message);
      throw error;
    }
    const rows = value['rows'];
    if (!Array.isArray(rows) || rows.length > LIMITS.chunksPerTenantMax || !rows.every(isCount)) fail('has a malformed row list');
    if (typeof value['contentHash'] !== 'string' || !SHA256_HEX.test(value['contentHash'])) fail('has a malformed content hash');
    if (!isCount(value['chars']) || value['chars'] > LIMITS.documentCharsMax) fail(`has ${String(value['chars'])} characters, limit ${LIMITS.documentCharsMax}`);
    if (!isTime(value['updatedAt'])) fail('has a malformed update time');
    this.#seen.documents.set(key as string, rows as number[]);
  }

  #chunk(key: KvKey, value: unknown, fail: Fail): void {
    if (!isObject(value) || value['row'] !== key || !isCount(key)) return fail('is not a chunk record under its own row');
    const { chunkId, docId, ordinal, title, text, metadata, tag } = value;
    if (typeof docId !== 'string' || !isCount(ordinal) || chunkId !== `${docId}#${ordinal}`) fail('has a malformed chunk id');
    if (!isText(title, LIMITS.documentTitleCharsMax)) fail(`has a title over ${LIMITS.documentTitleCharsMax} characters`);
    if (typeof text !== 'string' || text.length === 0 || text.length > LIMITS.chunkTargetCharsMax) fail(`must have 1..${LIMITS.chunkTargetCharsMax} characters of text`);
    try {
      validateDocuments({ documents: [{ id: docId, text: '-', metadata }] });
    } catch (error: unknown) {
      if (error instanceof HostError) fail(error.message);
      throw error;
    }
    if (tag !== this.#scope.store.provenanceTag(chunkId as string, text as string)) fail(`the provenance tag of ${JSON.stringify(chunkId)} does not verify under the tenant's key`);
    this.#seen.chunks.set(key, { chunkId: chunkId as string, docId: docId as string });
  }

  #terms(key: KvKey, value: unknown, fail: Fail): void {
    if (!isCount(key) || !isObject(value) || !isCount(value['length']) || !Array.isArray(value['terms'])) return fail('is not a lexical entry of a row');
    const terms = value['terms'] as unknown[];
    // A chunk's terms come from its title and text.
    if (terms.length > LIMITS.documentTitleCharsMax + LIMITS.chunkTargetCharsMax) fail(`has ${terms.length} terms`);
    for (const term of terms) {
      if (!Array.isArray(term) || term.length !== 2 || typeof term[0] !== 'string' || term[0].length === 0 || term[0].length > LIMITS.tokenCharsMax || !isCount(term[1]) || term[1] === 0) {
        fail(`holds a malformed term (terms are 1..${LIMITS.tokenCharsMax} characters with a positive count)`);
      }
    }
    this.#seen.terms.add(key);
  }

  #vector(key: KvKey, value: unknown, fail: Fail): void {
    if (!isCount(key)) return fail('is not a row');
    checkVector(value, fail);
    const bytes = (value as Uint8Array).byteLength;
    if (this.#seen.vectorBytes !== undefined && bytes !== this.#seen.vectorBytes) fail(`has ${bytes / 4} dimensions, the others ${this.#seen.vectorBytes / 4}`);
    this.#seen.vectorBytes = bytes;
    this.#seen.vectors.add(key);
  }

  #pluginKv(key: KvKey, value: unknown): void {
    const kind = pluginKvKeyKind(key);
    if (kind === undefined) throw importInvalid(`pluginKv: key ${shown(key)} is not <slot>\\u0000<key> of a plugin slot`);
    const bytes = value as Uint8Array;
    if (kind.kind === 'canary') {
      if (new TextDecoder().decode(bytes) !== this.#canary) throw importInvalid(`pluginKv: the canary entry of the ${kind.slot} slot is not the tenant's canary`);
      return;
    }
    const keyBytes = Buffer.byteLength(kind.key);
    if (keyBytes === 0 || keyBytes > LIMITS.kvKeyBytesMax) throw importInvalid(`pluginKv: the key of ${shown(key)} is ${keyBytes} bytes, allowed 1..${LIMITS.kvKeyBytesMax}`);
    if (bytes.byteLength === 0 || bytes.byteLength > LIMITS.kvValueBytesMax) {
      throw importInvalid(`pluginKv: the value of ${shown(key)} is ${bytes.byteLength} bytes, limit ${LIMITS.kvValueBytesMax}`);
    }
    this.#seen.kvBytes.set(kind.slot, (this.#seen.kvBytes.get(kind.slot) ?? 0) + bytes.byteLength);
  }

  #cacheEntry(key: KvKey, value: unknown, fail: Fail): void {
    if (typeof key !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(key) || !isObject(value)) return fail('is not a cache entry');
    if (this.#seen.cacheEntries.size >= LIMITS.cacheEntriesPerTenantMax) fail(`is one cache entry more than the limit of ${LIMITS.cacheEntriesPerTenantMax}`);
    const { namespace, generation, embedderId, vector, answer, sources, createdAt, bytes } = value;
    if (!isText(namespace, HOST_STRING_CHARS_MAX) || !isCount(generation) || !isText(embedderId, HOST_STRING_CHARS_MAX) || !isTime(createdAt) || !isCount(bytes)) fail('is not a cache entry');
    checkVector(vector, fail);
    if (!isText(answer, LIMITS.answerCharsMax)) fail(`has an answer over ${LIMITS.answerCharsMax} characters`);
    checkSources(sources, fail);
    this.#seen.cacheEntries.add(key);
  }

  #feedback(key: KvKey, value: unknown, fail: Fail): void {
    if (typeof key !== 'string' || !/^[0-9a-z]{9}:[^\u0000]{1,128}:[0-9a-f]{8}$/.test(key) || !isObject(value)) return fail('is not a rating');
    this.#seen.feedback += 1;
    if (this.#seen.feedback > LIMITS.feedbackEntriesPerTenantMax) fail(`is one rating more than the limit of ${LIMITS.feedbackEntriesPerTenantMax}`);
    const { askId, rating, comment, question, answer, sources, at } = value;
    if (typeof askId !== 'string' || askId.length === 0 || askId.length > LIMITS.askIdCharsMax || (rating !== 1 && rating !== -1) || !isTime(at)) fail('is not a rating');
    if (!(comment === null || isText(comment, LIMITS.feedbackCommentCharsMax))) fail(`has a comment over ${LIMITS.feedbackCommentCharsMax} characters`);
    if (!isText(question, LIMITS.askTextCharsMax)) fail(`has a question over ${LIMITS.askTextCharsMax} characters`);
    if (!isText(answer, LIMITS.answerCharsMax)) fail(`has an answer over ${LIMITS.answerCharsMax} characters`);
    checkSources(sources, fail);
  }

  #meta(key: KvKey, value: unknown): void {
    const name = typeof key === 'string' ? key : '';
    const fail: Fail = (message) => {
      throw importInvalid(`meta ${JSON.stringify(name).slice(1, -1)}: ${message}`);
    };
    if (name.startsWith('kvBytes\u0000') && SLOTS.some((slot) => name === `kvBytes\u0000${slot}`)) {
      this.#seen.meta.set(name, value);
      return;
    }
    switch (name) {
      case 'check':
        if (value !== this.#storeCheck) fail('is not the check value of a tenant store');
        return;
      case 'counters':
        if (!isObject(value) || !isCount(value['generation']) || !isCount(value['nextRow'])) fail('must be {generation, nextRow} of non-negative integers');
        break;
      case 'settings':
        try {
          // The ranges of PATCH /v1/config, applied to the defaults.
          // Within the hard ceiling, not this host's: a stored fuel budget above the operator's
          // ceiling is clamped to it whenever it is read (tenants/settings.ts readSettings).
          applyPatch(TENANT_SETTINGS_DEFAULTS, value, { pluginFuelPerCallMax: LIMITS.pluginFuelPerCallMax });
        } catch (error: unknown) {
          if (error instanceof HostError) fail(error.message);
          throw error;
        }
        break;
      case 'feedbackCount':
        break;
      case 'auditHead':
        if (!isObject(value) || !isCount(value['seq']) || typeof value['hash'] !== 'string' || !SHA256_HEX.test(value['hash'])) fail('must be {seq, hash}');
        break;
      case 'trainingConsent':
        if (!isObject(value) || typeof value['pool'] !== 'boolean' || !(value['changedAt'] === null || isTime(value['changedAt']))) fail('must be {pool, changedAt}');
        break;
      case 'cacheStats':
        if (!isObject(value) || Object.entries(value).some(([stat, count]) => !CACHE_STAT_NAMES.has(stat) || !isTime(count))) fail('must hold the cache counters as non-negative numbers');
        break;
      case 'embedderId':
        if (typeof value !== 'string' || value.length === 0 || value.length > HOST_STRING_CHARS_MAX) fail('must be an embedder id');
        break;
      default:
        throw importInvalid(`meta: unknown key ${shown(key)}`);
    }
    this.#seen.meta.set(name, value);
  }

  #pluginSlot(key: KvKey, value: unknown): void {
    if (typeof key !== 'string' || !(SLOTS as readonly string[]).includes(key)) throw importInvalid(`plugins: unknown key ${shown(key)}; the slots are ${SLOTS.join(', ')}`);
    const fail: Fail = (message) => {
      throw importInvalid(`plugins ${key}: ${message}`);
    };
    if (!isObject(value) || !Array.isArray(value['versions']) || !isCount(value['nextVersion']) || !(value['active'] === null || isCount(value['active']))) return fail('is not a slot record');
    const versions = value['versions'] as unknown[];
    if (versions.length > LIMITS.pluginVersionsPerSlotMax) fail(`keeps ${versions.length} versions, limit ${LIMITS.pluginVersionsPerSlotMax}`);
    let previous = 0;
    for (const version of versions) {
      if (!isObject(version) || !isCount(version['version']) || version['version'] <= previous || version['version'] >= (value['nextVersion'] as number)) fail('has versions out of order');
      const { sha256, uploadedAt } = version as Record<string, unknown>;
      if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256) || !isTime(uploadedAt)) fail(`version ${String((version as Record<string, unknown>)['version'])} is malformed`);
      previous = (version as Record<string, unknown>)['version'] as number;
    }
    if (value['active'] !== null && !versions.some((version) => (version as PluginVersion).version === value['active'])) fail(`its active version ${String(value['active'])} is not one it keeps`);
    this.#seen.plugins.set(key as StoredSlot, value as unknown as PluginSlotRecord);
  }

  #module(key: KvKey, value: unknown): void {
    if (typeof key !== 'string' || !(value instanceof Uint8Array)) throw importInvalid(`pluginModules: ${shown(key)} is not a module`);
    this.#seen.modules.add(key);
  }

  #audit(key: KvKey, value: unknown, fail: Fail): void {
    if (!isCount(key) || !isObject(value) || value['seq'] !== key) return fail('is not an audit entry under its own sequence number');
    const { at, kind, actor, detail, prev, hash } = value;
    if (!isTime(at) || !(AUDIT_KINDS as readonly unknown[]).includes(kind) || !(AUDIT_ACTORS as readonly unknown[]).includes(actor)) fail('is not an audit entry');
    if (typeof prev !== 'string' || !SHA256_HEX.test(prev) || typeof hash !== 'string' || !SHA256_HEX.test(hash)) fail('has malformed hashes');
    const flat = isObject(detail) && Object.keys(detail).length <= AUDIT_DETAIL_ENTRIES_MAX
      && Object.values(detail).every((item) => item === null || typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item)) || isText(item, HOST_STRING_CHARS_MAX));
    if (!flat) fail(`must have a flat detail of at most ${AUDIT_DETAIL_ENTRIES_MAX} ids, counts and codes`);
  }

  /**
   * Once every entry is written: checks across tables, compares each stored counter with the one
   * recomputed from the entries, vets and meters every plugin module again and stores the result,
   * and plants the tenant's canary (taking an older host's canary entries out of the plugin key space).
   * @throws {HostError} TENANT_EXPORT_INVALID naming what was wrong; PLUGIN_BUSY when the metering queue is full.
   */
  async finish(metering: MeteringService): Promise<void> {
    this.#checkIndex();
    this.#checkCounters();
    this.#checkAudit();
    const unknownUse = this.#seen.cacheUsed.find((key) => !this.#seen.cacheEntries.has(key));
    if (unknownUse !== undefined) throw importInvalid(`semanticCacheUsed ${shown(unknownUse)}: names no cache entry`);
    await this.#revetPlugins(metering);
    const store = this.#scope.store;
    store.moveLegacyCanaries();
    store.plantCanary(this.#canary);
  }

  /** Documents, chunks, their rows, lexical entries and vectors describe one another exactly. */
  #checkIndex(): void {
    const { documents, chunks, chunkRows, terms, vectors } = this.#seen;
    if (chunks.size > LIMITS.chunksPerTenantMax) throw importInvalid(`chunks: the file holds ${chunks.size}, limit ${LIMITS.chunksPerTenantMax}`);
    const listed = new Set<number>();
    for (const [docId, rows] of documents) {
      for (const row of rows) {
        if (chunks.get(row)?.docId !== docId || listed.has(row)) throw importInvalid(`documents ${shown(docId)}: row ${row} is not a chunk of it`);
        listed.add(row);
      }
    }
    for (const [row, chunk] of chunks) {
      if (!listed.has(row)) throw importInvalid(`chunks ${row}: no document lists it`);
      if (chunkRows.get(chunk.chunkId) !== row) throw importInvalid(`chunkRows ${shown(chunk.chunkId)}: does not name row ${row}`);
      if (!terms.has(row)) throw importInvalid(`chunkTerms ${row}: missing for chunk ${shown(chunk.chunkId)}`);
      if (!vectors.has(row)) throw importInvalid(`vectors ${row}: missing for chunk ${shown(chunk.chunkId)}`);
    }
    if (chunkRows.size !== chunks.size) throw importInvalid(`chunkRows: ${chunkRows.size} entries for ${chunks.size} chunks`);
    const strayTerms = [...terms].find((row) => !chunks.has(row));
    if (strayTerms !== undefined) throw importInvalid(`chunkTerms ${strayTerms}: belongs to no chunk`);
    const strayVector = [...vectors].find((row) => !chunks.has(row));
    if (strayVector !== undefined) throw importInvalid(`vectors ${strayVector}: belongs to no chunk`);
  }

  /** Every counter the host keeps in meta agrees with the entries it counts. */
  #checkCounters(): void {
    const { meta, chunks, kvBytes, feedback } = this.#seen;
    const counters = meta.get('counters') as { nextRow: number } | undefined;
    let lastRow = -1;
    for (const row of chunks.keys()) lastRow = Math.max(lastRow, row);
    if (lastRow >= 0 && (counters?.nextRow ?? 0) <= lastRow) {
      throw importInvalid(`meta counters: nextRow ${counters?.nextRow ?? 0} is not past the last chunk row ${lastRow}`);
    }
    for (const slot of SLOTS) {
      const held = kvBytes.get(slot) ?? 0;
      if (held > LIMITS.kvBytesPerSlotMax) throw importInvalid(`pluginKv: the ${slot} slot's entries hold ${held} bytes, limit ${LIMITS.kvBytesPerSlotMax}`);
      const claimed = meta.get(`kvBytes\u0000${slot}`) ?? 0;
      if (claimed !== held) throw importInvalid(`meta kvBytes\\u0000${slot}: the file says ${JSON.stringify(claimed)} bytes, the ${slot} slot's entries hold ${held}`);
    }
    const claimedFeedback = meta.get('feedbackCount') ?? 0;
    if (claimedFeedback !== feedback) throw importInvalid(`meta feedbackCount: the file says ${JSON.stringify(claimedFeedback)}, the feedback table holds ${feedback} entries`);
  }

  /** The audit log verifies link by link, and its head in meta names its last entry. */
  #checkAudit(): void {
    let last: { seq: number; hash: string } | undefined;
    for (let after = 0; ; ) {
      const page = readAudit(this.#scope, { after, limit: LIMITS.auditEntriesPerPageMax });
      if (page.brokenAt !== undefined) throw importInvalid(`audit: the chain breaks at entry ${page.brokenAt}`);
      const tail = page.entries.at(-1);
      if (tail !== undefined) last = { seq: tail.seq, hash: tail.hash };
      if (page.next === null) break;
      after = page.next;
    }
    const head = this.#seen.meta.get('auditHead') as { seq: number; hash: string } | undefined;
    if (head?.seq !== last?.seq || head?.hash !== last?.hash) throw importInvalid('meta auditHead: does not name the last entry of the audit log');
  }

  /**
   * Vets and meters every stored module again, like an upload, and stores what metering made of it
   * with a record that describes it. The module this host once metered loses that metering's
   * exports first (sandbox/remeter.ts); anything else goes to vetting as it is.
   */
  async #revetPlugins(metering: MeteringService): Promise<void> {
    const store = this.#scope.store;
    const { plugins, modules } = this.#seen;
    const expected = new Set<string>();
    const results: { slot: StoredSlot; record: PluginSlotRecord }[] = [];
    const stored: { key: string; module: Uint8Array }[] = [];
    for (const [slot, record] of plugins) {
      const versions: PluginVersion[] = [];
      for (const version of record.versions) {
        const key = `${slot}\u0000${version.version}`;
        expected.add(key);
        const bytes = store.pluginModules.get(key);
        if (bytes === undefined) throw importInvalid(`pluginModules: the ${slot} plugin, version ${version.version}, has no module`);
        let vetted;
        try {
          vetted = await vetPlugin(unwrapHostMetering(bytes), slot, metering);
        } catch (error: unknown) {
          if (error instanceof HostError && error.code === 'PLUGIN_INVALID') throw importInvalid(`pluginModules: the ${slot} plugin, version ${version.version}: ${error.message}`);
          throw error;
        }
        stored.push({ key, module: vetted.module });
        versions.push({ ...version, moduleSha256: vetted.report.module.sha256, moduleBytes: vetted.module.byteLength, report: vetted.report });
      }
      results.push({ slot, record: { ...record, versions } });
    }
    const stray = [...modules].find((key) => !expected.has(key));
    if (stray !== undefined) throw importInvalid(`pluginModules: ${shown(stray)} belongs to no stored plugin version`);
    const total = stored.reduce((sum, { module }) => sum + module.byteLength, 0);
    if (total > LIMITS.pluginStoreBytesPerTenantMax) throw importInvalid(`pluginModules: ${total} bytes once metered, over the tenant's quota of ${LIMITS.pluginStoreBytesPerTenantMax}`);
    store.transaction(() => {
      for (const { key, module } of stored) store.pluginModules.put(key, module);
      for (const { slot, record } of results) store.plugins.put(slot, record);
    });
  }
}

/** A float32 vector as stored: bytes, a whole number of floats, at most LIMITS.embedDimMax of them. */
function checkVector(value: unknown, fail: Fail): void {
  if (!(value instanceof Uint8Array) || value.byteLength === 0 || value.byteLength % 4 !== 0 || value.byteLength > VECTOR_BYTES_MAX) {
    fail(`must be a vector of 1..${LIMITS.embedDimMax} float32 values`);
  }
}

/** The sources of a cached or rated answer: at most LIMITS.retrievedChunksMax, each a few ids and a score. */
function checkSources(sources: unknown, fail: Fail): void {
  if (!Array.isArray(sources) || sources.length > LIMITS.retrievedChunksMax) return fail(`must have at most ${LIMITS.retrievedChunksMax} sources`);
  for (const source of sources as unknown[]) {
    const ok = isObject(source) && isText(source['docId'], LIMITS.documentIdCharsMax) && isText(source['chunkId'], HOST_STRING_CHARS_MAX)
      && isText(source['title'], LIMITS.documentTitleCharsMax) && typeof source['score'] === 'number' && Number.isFinite(source['score']) && isText(source['tag'], HOST_STRING_CHARS_MAX);
    if (!ok) fail('has a malformed source');
  }
}
