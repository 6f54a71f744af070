/**
 * The control plane: one LMDB environment (`DATA_DIR/registry`) holding tenant records, salted
 * hashes of API keys (never plaintext), each tenant's data key wrapped by the master key, and the
 * map of canary tokens to tenants that the leak guard consults. It holds no tenant documents,
 * vectors, caches or plugin state: those live in each tenant's own environment.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import {
  deriveKey,
  hashSecret,
  masterKeyCheck,
  newTenantDataKey,
  randomHex,
  randomToken,
  unwrapTenantKey,
  verifySecret,
  wrapTenantKey,
  type MasterKey,
  type SecretHash,
  type WrappedKey,
} from './keys.ts';
import { openKvEnvironment, type KvEnvironment, type KvTable } from './lmdb.ts';

/** A tenant as the control plane knows it. `wrappedKey` is null once the tenant is shredded. */
export interface TenantRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly wrappedKey: WrappedKey;
  /** Secret canary token planted in this tenant's stores (see pipeline/guard.ts). */
  readonly canary: string;
}

/** An API key's stored form. The plaintext exists only in the creator's output, once. */
interface ApiKeyRecord {
  tenantId: string;
  secret: SecretHash;
  createdAt: number;
  revokedAt: number | null;
}

/**
 * A tenant's control-plane record as a whole-tenant export carries it: its identity, canary and API
 * key hashes (so its clients' keys keep working on the new host). Never the wrapped data key: that
 * is bound to this host's master key; the export carries the data key inside its own encryption.
 */
export interface TenantControlRecord {
  id: string;
  name: string;
  createdAt: number;
  canary: string;
  apiKeys: (ApiKeyRecord & { keyId: string })[];
}

/** What listing shows about a key: never the secret or its hash. */
export interface ApiKeyInfo {
  keyId: string;
  createdAt: number;
  revokedAt: number | null;
}

/**
 * Where a tenant stands in a fleet, on this host (host/fleet/ moves tenants between hosts). A tenant
 * with no such record and a tenant record serves here normally.
 * - `frozen`: it serves reads and chats, and refuses writes (TENANT_FROZEN) while it is exported.
 * - `incoming`: its copy is being (or was: `complete`) imported from another host; nothing serves
 *   it here until it is activated. `previous` is the tombstone an earlier move out left, restored
 *   if this copy is discarded.
 * - `moved`: the tombstone of a tenant that moved to host `to` (its data stays until it is
 *   shredded): every credential naming it gets TENANT_MOVED, so a stale route never reaches a copy.
 * - `deleted`: the tombstone of a tenant deleted here; its credentials are simply invalid.
 */
export type TenantFleetState =
  | { state: 'frozen'; since: number }
  | { state: 'incoming'; since: number; from: string | null; complete: boolean; previous: { to: string; since: number } | null }
  | { state: 'moved'; since: number; to: string }
  | { state: 'deleted'; since: number };

/** Canary tokens have one fixed shape so the guard can find them with one regular expression. */
export const CANARY_PATTERN = /ctxcanary-[0-9a-f]{24}/g;

/**
 * API keys name their tenant, so a router can send a request to the host that serves it without a
 * lookup: `ctx_<tenant hex>_<key id>_<secret>`. The tenant is not a secret (tickets carry it too);
 * the secret is 43 base64url characters. Keys issued before the fleet (`ctx_<key id>_<secret>`)
 * still authenticate; the two shapes differ in length, so neither can be read as the other.
 */
const API_KEY_PATTERN = /^ctx_([0-9a-f]{16})_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const LEGACY_API_KEY_PATTERN = /^ctx_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** The meta key of the time keys started naming their tenant (see Registry.keyFormatSince). */
const KEY_FORMAT_SINCE_KEY = 'keyFormatSince';
/** The meta key of the tenant count (see Registry.#tenantCount). */
const TENANT_COUNT_KEY = 'tenantCount';
/** Upper bound of the registry's memory map: 100,000 tenants and their keys fit many times over. */
const REGISTRY_MAP_BYTES = 1024 * 1024 * 1024;
const TENANT_ID_PATTERN = /^t_[0-9a-f]{16}$/;

/** The control-plane store. A stateful resource: call `close()`. */
export class Registry {
  #env: KvEnvironment;
  #master: MasterKey;
  #meta: KvTable<unknown>;
  #tenants: KvTable<TenantRecord>;
  #apiKeys: KvTable<ApiKeyRecord>;
  #canaries: KvTable<string>;
  /** Decoy records read in place of missing ones, so refusals cost what acceptances cost. */
  #decoys: KvTable<unknown>;
  /** Tenant id → its fleet state here (see {@link TenantFleetState}); no record = serving normally. */
  #fleetStates: KvTable<TenantFleetState>;
  /** API key id → the tenant it belonged to, for keys of tenants that moved away (a legacy key names no tenant). */
  #movedKeys: KvTable<string>;
  /** The registry's directory (`DATA_DIR/registry`). */
  #path = '';
  /** The retired registry of the last rotation closing and being deleted; close() waits for it. */
  #retiring: Promise<void> = Promise.resolve();
  /** Set while another process rotates the master key: writes are refused (see {@link freeze}). */
  #frozen = false;

  private constructor(env: KvEnvironment, master: MasterKey) {
    this.#env = env;
    this.#master = master;
    this.#meta = env.table('meta', 'structured');
    this.#tenants = env.table('tenants', 'structured');
    this.#apiKeys = env.table('apiKeys', 'structured');
    this.#canaries = env.table('canaries', 'structured');
    this.#decoys = env.table('decoys', 'structured');
    this.#fleetStates = env.table('fleetStates', 'structured');
    this.#movedKeys = env.table('movedKeys', 'structured');
  }

  /**
   * Opens (or creates) the registry under `dataDir`, encrypted with a key derived from the master key.
   * First finishes or discards a master key rotation that a crash cut short (see
   * {@link rotateMasterKey}); `pending` is the new key such a rotation may have left beside the key
   * file, used when it, not `master`, opens the registry ({@link masterKey} tells which did).
   * @throws {HostError} STORAGE_MASTER_KEY when the master key does not match an existing registry;
   *   nothing is written in that case.
   */
  static open(dataDir: string, given: MasterKey, pending?: MasterKey): Registry {
    const path = join(dataDir, 'registry');
    recoverRotation(path);
    const master = pending !== undefined && checkFileMatches(path, pending) && !checkFileMatches(path, given) ? pending : given;
    const existed = existsSync(join(path, 'data.mdb'));
    const expected = masterKeyCheck(master);
    // A plain file beside the registry lets a wrong key be refused before LMDB opens anything
    // (opening would already touch its lock file, and a wrong key makes LMDB print page errors).
    const checkFile = join(path, 'master-key.check');
    if (existed && existsSync(checkFile) && readFileSync(checkFile, 'utf8').trim() !== expected) {
      throw new HostError('STORAGE_MASTER_KEY', `the master key from ${master.source} does not open ${path}: wrong key`);
    }
    mkdirSync(path, { recursive: true, mode: 0o700 });
    const env = openKvEnvironment({ path, encryptionKey: registryEncryptionKey(master), mapSizeBytes: REGISTRY_MAP_BYTES });
    let registry: Registry | undefined;
    let stored: unknown;
    try {
      registry = new Registry(env, master);
      stored = registry.#meta.get('masterKeyCheck');
    } catch {
      // With a wrong key LMDB may fail to read its own pages (MDB_PAGE_NOTFOUND) or read garbage.
      stored = undefined;
    }
    if (registry === undefined || (existed && stored !== expected)) {
      void env.close();
      throw new HostError(
        'STORAGE_MASTER_KEY',
        `the master key from ${master.source} does not open ${path}: wrong key, or a corrupted registry`,
      );
    }
    if (registry.#decoys.get('apiKey') === undefined) registry.#writeDecoys();
    if (registry.#meta.get(KEY_FORMAT_SINCE_KEY) === undefined) registry.#env.transaction(() => registry.#meta.put(KEY_FORMAT_SINCE_KEY, Date.now()));
    if (!existed) {
      registry.#meta.put('masterKeyCheck', expected);
      writeFileSync(checkFile, `${expected}\n`, { mode: 0o600 });
    }
    registry.#path = path;
    return registry;
  }

  /**
   * Refuses writes until {@link follow}: another process is rotating the master key, and a write to
   * this (soon retired) registry would be lost. Reads go on.
   */
  freeze(): void {
    this.#frozen = true;
  }

  /**
   * Follows a rotation another process made: reopens the registry (now encrypted for `next`) in
   * place of the retired one, and accepts writes again.
   * @throws {HostError} STORAGE_MASTER_KEY when `next` does not open the registry.
   */
  follow(next: MasterKey): void {
    const expected = masterKeyCheck(next);
    const env = openKvEnvironment({ path: this.#path, encryptionKey: registryEncryptionKey(next), mapSizeBytes: REGISTRY_MAP_BYTES });
    if (env.table('meta', 'structured').get('masterKeyCheck') !== expected) {
      void env.close();
      throw new HostError('STORAGE_MASTER_KEY', 'the rotated master key does not open the registry');
    }
    const retired = this.#env;
    this.#adopt(env, next);
    this.#retiring = retired.close();
    this.#frozen = false;
  }

  #adopt(env: KvEnvironment, master: MasterKey): void {
    this.#env = env;
    this.#master = master;
    this.#meta = env.table('meta', 'structured');
    this.#tenants = env.table('tenants', 'structured');
    this.#apiKeys = env.table('apiKeys', 'structured');
    this.#canaries = env.table('canaries', 'structured');
    this.#decoys = env.table('decoys', 'structured');
    this.#fleetStates = env.table('fleetStates', 'structured');
    this.#movedKeys = env.table('movedKeys', 'structured');
  }

  #assertWritable(): void {
    if (this.#frozen) throw new HostError('STORAGE_BUSY', 'the master key is being rotated; try again shortly');
  }

  /** Runs `action` as one write transaction, unless a rotation elsewhere has frozen the registry. */
  #write<T>(action: () => T): T {
    this.#assertWritable();
    return this.#env.transaction(action);
  }

  /**
   * Rotates the master key while the host keeps serving. The registry's own encryption key derives
   * from the master key, so it is re-encrypted, not edited: a new registry is written beside the old
   * one (`registry-next`; no dot: lmdb-js takes a path with an extension for a file) with every tenant's data key unwrapped by the old master key and wrapped
   * by the new one, all in one transaction of each environment; the old registry's write
   * transaction is held meanwhile, so no other process (the CLI) can write a record that would be
   * lost. Its check file is written last; then two renames swap the directories and this object
   * switches to the new environment in the same turn of the event loop, so no request ever sees a
   * half-rotated registry. The old directory is deleted once closed: its free pages may still hold
   * records it deleted (a shredded tenant's wrapped key), and they go with it.
   * Tenant environments are untouched: their data keys do not change, only their wrapping.
   * A crash at any point leaves one complete registry that {@link open} recovers.
   * @returns how many tenants were re-wrapped.
   * @throws {HostError} STORAGE_MASTER_KEY when the new key is the current one.
   */
  rotateMasterKey(next: MasterKey): { tenants: number } {
    this.#assertWritable();
    if (next.bytes.equals(this.#master.bytes)) throw new HostError('STORAGE_MASTER_KEY', 'the new master key is the current one');
    const nextPath = `${this.#path}-next`;
    rmSync(nextPath, { recursive: true, force: true });
    mkdirSync(nextPath, { recursive: true, mode: 0o700 });
    const nextEnv = openKvEnvironment({ path: nextPath, encryptionKey: registryEncryptionKey(next), mapSizeBytes: REGISTRY_MAP_BYTES });
    let tenants = 0;
    try {
      this.#env.transaction(() => nextEnv.transaction(() => (tenants = this.#copyInto(nextEnv, next))));
      writeFileSync(join(nextPath, 'master-key.check'), `${masterKeyCheck(next)}\n`, { mode: 0o600 });
    } catch (error) {
      void nextEnv.close().finally(() => rmSync(nextPath, { recursive: true, force: true }));
      throw error;
    }
    const retiredPath = `${this.#path}-retired`;
    renameSync(this.#path, retiredPath);
    renameSync(nextPath, this.#path);
    const retired = this.#env;
    this.#adopt(nextEnv, next);
    this.#retiring = retired.close().finally(() => rmSync(retiredPath, { recursive: true, force: true }));
    return { tenants };
  }

  /** Copies every table into `target`, re-wrapping data keys under `next` and recording its check. @returns tenants copied. */
  #copyInto(target: KvEnvironment, next: MasterKey): number {
    let tenants = 0;
    for (const { name, encoding, table } of this.#env.tables()) {
      const into = encoding === 'binary' ? target.table(name, 'binary') : target.table<unknown>(name, 'structured');
      for (const { key, value } of table.entries()) {
        if (name === 'tenants') {
          const tenant = value as TenantRecord;
          const dataKey = unwrapTenantKey(this.#master, tenant.id, tenant.wrappedKey);
          into.put(key, { ...tenant, wrappedKey: wrapTenantKey(next, tenant.id, dataKey) } as never);
          tenants += 1;
        } else {
          into.put(key, (name === 'meta' && key === 'masterKeyCheck' ? masterKeyCheck(next) : value) as never);
        }
      }
    }
    return tenants;
  }

  /** The master key, for unwrapping tenant data keys in storage/environments.ts. */
  get masterKey(): MasterKey {
    return this.#master;
  }

  /**
   * Creates a tenant with a fresh wrapped data key, a canary and a first API key.
   * @returns the record and the API key in plaintext (shown once, never stored).
   * @throws {HostError} TENANT_INVALID for a bad name.
   */
  createTenant(name: string): { tenant: TenantRecord; apiKey: string } {
    const trimmed = validateTenantName(name);
    const id = `t_${randomHex(8)}`;
    const tenant: TenantRecord = {
      id,
      name: trimmed,
      createdAt: Date.now(),
      wrappedKey: wrapTenantKey(this.#master, id, newTenantDataKey()),
      canary: `ctxcanary-${randomHex(12)}`,
    };
    const apiKey = this.#write(() => {
      const count = this.#tenantCount();
      if (count >= LIMITS.tenantsMax) throw new HostError('TENANT_INVALID', `tenant count is at its limit ${LIMITS.tenantsMax}`);
      this.#tenants.put(id, tenant);
      this.#canaries.put(tenant.canary, id);
      this.#meta.put(TENANT_COUNT_KEY, count + 1);
      return this.#issueKey(id);
    });
    return { tenant, apiKey };
  }

  /**
   * The number of tenants, kept in meta inside the transactions that change it: counting the table
   * walks every record (decrypting its pages), which made each creation cost O(tenants) — about
   * 20 ms at 6,000. A registry from before the counter is counted once.
   */
  #tenantCount(): number {
    const stored = this.#meta.get(TENANT_COUNT_KEY);
    return typeof stored === 'number' ? stored : this.#tenants.count();
  }

  /** Decoys shaped like real records; their secret is random and discarded, so they never match. */
  #writeDecoys(): void {
    const id = `t_${randomHex(8)}`;
    const decoyTenant: TenantRecord = {
      id,
      name: 'decoy',
      createdAt: Date.now(),
      wrappedKey: wrapTenantKey(this.#master, id, newTenantDataKey()),
      canary: `ctxcanary-${randomHex(12)}`,
    };
    this.#env.transaction(() => {
      this.#decoys.put('apiKey', { tenantId: id, secret: hashSecret(randomToken(32)), createdAt: Date.now(), revokedAt: null });
      this.#decoys.put('tenant', decoyTenant);
    });
  }

  /**
   * Issues a new API key for a tenant (key rotation: issue, switch, then revoke the old one).
   * @throws {HostError} TENANT_KEY_LIMIT when the tenant already has LIMITS.apiKeysPerTenantMax active keys.
   */
  issueApiKey(tenant: TenantRecord): string {
    return this.#write(() => {
      let active = 0;
      for (const { value } of this.#apiKeys.entries()) if (value.tenantId === tenant.id && value.revokedAt === null) active += 1;
      if (active >= LIMITS.apiKeysPerTenantMax) {
        throw new HostError('TENANT_KEY_LIMIT', `the tenant already has ${LIMITS.apiKeysPerTenantMax} active API keys (apiKeysPerTenantMax); revoke one before issuing another`);
      }
      return this.#issueKey(tenant.id);
    });
  }

  #issueKey(tenantId: string): string {
    const keyId = randomHex(8);
    const secret = randomToken(32);
    this.#apiKeys.put(keyId, { tenantId, secret: hashSecret(secret), createdAt: Date.now(), revokedAt: null });
    return `ctx_${tenantId.slice(2)}_${keyId}_${secret}`;
  }

  /**
   * Resolves an API key to its tenant, in time independent of why a key is refused.
   * Returns undefined for malformed, unknown, revoked keys and keys of deleted tenants.
   */
  authenticate(apiKey: string): TenantRecord | undefined {
    return this.authenticateKey(apiKey)?.tenant;
  }

  /**
   * {@link authenticate}, also naming the key's id (what a session opened with the key records, so
   * that revoking the key can end it).
   */
  authenticateKey(apiKey: string): { tenant: TenantRecord; keyId: string } | undefined {
    // Every path does the same work — one key record read, one HMAC, one tenant record read — so
    // the time taken does not tell a malformed key from an unknown key id or a wrong secret. Where
    // no real record exists, a decoy record of the same shape is read in its place. A key of either
    // shape goes the same way; one that names a tenant must name the key's own.
    const parsed = parseApiKey(apiKey);
    const record = (parsed === undefined ? undefined : this.#apiKeys.get(parsed.keyId)) ?? undefined;
    const keyRecord = record ?? (this.#decoys.get('apiKey') as ApiKeyRecord);
    const ok = verifySecret(parsed?.secret ?? 'x', keyRecord.secret);
    const tenant = (record === undefined ? undefined : this.#tenants.get(record.tenantId)) ?? (this.#decoys.get('tenant') as TenantRecord);
    const named = parsed?.tenantId === undefined || parsed.tenantId === keyRecord.tenantId;
    if (!ok || !named || record === undefined || record.revokedAt !== null || tenant.id !== record.tenantId) return undefined;
    return { tenant, keyId: (parsed as ParsedApiKey).keyId };
  }

  /** Whether `keyId` is a live (not revoked) key of `tenantId`: a handed-over connection is checked again with it. */
  keyIsActive(keyId: string, tenantId: string): boolean {
    const record = this.#apiKeys.get(keyId);
    return record !== undefined && record.tenantId === tenantId && record.revokedAt === null;
  }

  /** Revokes one key by its id or by the whole key. */
  revokeApiKey(keyIdOrKey: string): { keyId: string; tenantId: string } | undefined {
    const keyId = apiKeyId(keyIdOrKey) ?? keyIdOrKey;
    const record = this.#apiKeys.get(keyId);
    if (record === undefined) return undefined;
    if (record.revokedAt === null) this.#write(() => this.#apiKeys.put(keyId, { ...record, revokedAt: Date.now() }));
    return { keyId, tenantId: record.tenantId };
  }

  /** The tenant owning an API key, given its id or the whole key (revoked keys too); undefined when unknown. */
  apiKeyOwner(keyIdOrKey: string): string | undefined {
    return this.#apiKeys.get(apiKeyId(keyIdOrKey) ?? keyIdOrKey)?.tenantId;
  }

  /** Lists a tenant's keys (ids and dates only). */
  listApiKeys(tenant: TenantRecord): ApiKeyInfo[] {
    const keys: ApiKeyInfo[] = [];
    for (const { key, value } of this.#apiKeys.entries()) {
      if (value.tenantId === tenant.id) keys.push({ keyId: String(key), createdAt: value.createdAt, revokedAt: value.revokedAt });
    }
    return keys;
  }

  /**
   * Every tenant's live (unrevoked) keys, ids and creation times, in one pass over the key table: the
   * fleet's router routes keys of the legacy shape (which name no tenant) by their id.
   */
  liveKeysByTenant(): Map<string, { id: string; createdAt: number }[]> {
    const byTenant = new Map<string, { id: string; createdAt: number }[]>();
    for (const { key, value } of this.#apiKeys.entries()) {
      if (value.revokedAt !== null) continue;
      const keys = byTenant.get(value.tenantId) ?? [];
      keys.push({ id: String(key), createdAt: value.createdAt });
      byTenant.set(value.tenantId, keys);
    }
    return byTenant;
  }

  /**
   * When this registry was first opened by a host that issues keys naming their tenant: keys created
   * before it may be of the legacy shape (the fleet routes those by key id), none created after.
   */
  keyFormatSince(): number {
    const since = this.#meta.get(KEY_FORMAT_SINCE_KEY);
    return typeof since === 'number' ? since : 0;
  }

  /** Finds a tenant record by id, for operator commands that name a tenant. */
  findTenant(tenantId: string): TenantRecord | undefined {
    if (!TENANT_ID_PATTERN.test(tenantId)) return undefined;
    return this.#tenants.get(tenantId);
  }

  /** All tenant records (control-plane data only). */
  listTenants(): TenantRecord[] {
    return [...this.#tenants.entries()].map((entry) => entry.value);
  }

  /**
   * Unwraps a tenant's data key from its CURRENT record, so a record read before a master key
   * rotation still opens its environment after it.
   * @throws {HostError} STORAGE_MASTER_KEY when it does not unwrap (TENANT_NOT_FOUND never: a
   *   forgotten tenant falls back to the record given, which the caller already had).
   */
  unwrapDataKey(tenant: TenantRecord): string {
    const current = this.#tenants.get(tenant.id) ?? tenant;
    return unwrapTenantKey(this.#master, current.id, current.wrappedKey);
  }

  /** The control-plane part of a whole-tenant export. */
  controlRecordOf(tenant: TenantRecord): TenantControlRecord {
    const apiKeys: TenantControlRecord['apiKeys'] = [];
    for (const { key, value } of this.#apiKeys.entries()) if (value.tenantId === tenant.id) apiKeys.push({ ...value, keyId: String(key) });
    return { id: tenant.id, name: tenant.name, createdAt: tenant.createdAt, canary: tenant.canary, apiKeys };
  }

  /**
   * Registers an imported tenant under its own id and canary with its data key wrapped by THIS
   * host's master key — without API keys, so nobody can use it before its data is complete
   * ({@link restoreApiKeys} finishes the import).
   * @throws {HostError} TENANT_EXISTS when the id, the canary or one of the key ids is taken here;
   *   TENANT_INVALID for a malformed record.
   */
  adoptTenant(control: TenantControlRecord, dataKey: string): TenantRecord {
    this.#assertWritable();
    if (!TENANT_ID_PATTERN.test(control.id) || !new RegExp(`^${CANARY_PATTERN.source}$`).test(control.canary) || dataKey.length !== 32) {
      throw new HostError('TENANT_INVALID', 'the imported tenant record is malformed');
    }
    const tenant: TenantRecord = {
      id: control.id,
      name: validateTenantName(control.name),
      createdAt: control.createdAt,
      wrappedKey: wrapTenantKey(this.#master, control.id, dataKey),
      canary: control.canary,
    };
    this.#env.transaction(() => {
      const taken = this.#tenants.get(tenant.id) !== undefined || this.#canaries.get(tenant.canary) !== undefined
        || control.apiKeys.some((key) => this.#apiKeys.get(key.keyId) !== undefined);
      if (taken) throw new HostError('TENANT_EXISTS', `this host already has tenant ${tenant.id}, its canary or one of its API keys`);
      const count = this.#tenantCount();
      if (count >= LIMITS.tenantsMax) throw new HostError('TENANT_INVALID', `tenant count is at its limit ${LIMITS.tenantsMax}`);
      this.#tenants.put(tenant.id, tenant);
      this.#canaries.put(tenant.canary, tenant.id);
      this.#meta.put(TENANT_COUNT_KEY, count + 1);
    });
    return tenant;
  }

  /** Restores an imported tenant's API key hashes (the last step of an import). */
  restoreApiKeys(tenant: TenantRecord, keys: TenantControlRecord['apiKeys']): void {
    this.#write(() => {
      for (const { keyId, secret, createdAt, revokedAt } of keys) this.#apiKeys.put(keyId, { tenantId: tenant.id, secret, createdAt, revokedAt });
    });
  }

  /** Which tenant owns a canary token, if any. */
  canaryOwner(token: string): string | undefined {
    return this.#canaries.get(token);
  }

  /**
   * Crypto-shreds a tenant's record: its wrapped data key, its API keys and its canary go first, in
   * one transaction, so the data directory is unreadable before it is removed.
   */
  forgetTenant(tenant: TenantRecord): void {
    this.#write(() => {
      for (const { key, value } of this.#apiKeys.entries()) {
        if (value.tenantId === tenant.id) this.#apiKeys.remove(key);
      }
      this.#canaries.remove(tenant.canary);
      const count = this.#tenantCount();
      if (this.#tenants.remove(tenant.id)) this.#meta.put(TENANT_COUNT_KEY, Math.max(0, count - 1));
    });
  }

  /**
   * Refuses a credential that names a tenant this host does not serve now: one that moved away or is
   * still arriving (TENANT_MOVED; the detail names the host it moved to), or, on a fleet host
   * (`fleetMember`), one it has never held, which only a router sending it astray can bring here.
   * A serving or frozen tenant passes, and so does a deleted one (its credentials are just invalid).
   * @throws {HostError} TENANT_MOVED.
   */
  assertServedHere(tenantId: string, fleetMember: boolean): void {
    const state = this.#fleetStates.get(tenantId);
    if (state?.state === 'moved') throw tenantMovedError(tenantId, state.to);
    if (state?.state === 'incoming') throw tenantMovedError(tenantId, undefined, 'is still arriving at this host');
    if (fleetMember && state === undefined && this.#tenants.get(tenantId) === undefined) throw tenantMovedError(tenantId, undefined, 'is not served by this host');
  }

  /** The tenant's fleet state on this host; undefined when it serves here normally (or was never here). */
  fleetState(tenantId: string): TenantFleetState | undefined {
    return this.#fleetStates.get(tenantId);
  }

  /** Sets (or, with undefined, clears) the tenant's fleet state on this host. */
  setFleetState(tenantId: string, state: TenantFleetState | undefined): void {
    if (!TENANT_ID_PATTERN.test(tenantId)) throw new HostError('TENANT_INVALID', `tenant id must be t_ and 16 hex characters, got ${JSON.stringify(tenantId.slice(0, 40))}`);
    this.#write(() => {
      if (state === undefined) this.#fleetStates.remove(tenantId);
      else this.#fleetStates.put(tenantId, state);
    });
  }

  /** Every tenant with a fleet state on this host (frozen, incoming, and the tombstones). */
  fleetStates(): { tenantId: string; state: TenantFleetState }[] {
    return [...this.#fleetStates.entries()].map(({ key, value }) => ({ tenantId: String(key), state: value }));
  }

  /**
   * Remembers which tenant the given key ids belonged to, for a tenant moving away: a key of the
   * legacy shape names no tenant, and once the tenant's records are gone only this tells that it
   * moved (TENANT_MOVED) rather than never existed.
   */
  rememberMovedKeys(tenantId: string, keyIds: readonly string[]): void {
    this.#write(() => {
      for (const keyId of keyIds) this.#movedKeys.put(keyId, tenantId);
    });
  }

  /** Forgets moved-key entries (the tenant came back to this host). */
  forgetMovedKeys(keyIds: readonly string[]): void {
    this.#write(() => {
      for (const keyId of keyIds) this.#movedKeys.remove(keyId);
    });
  }

  /** The tenant that owned a key id before it moved away from this host, if any. */
  movedKeyTenant(keyId: string): string | undefined {
    return this.#movedKeys.get(keyId);
  }

  /** Stores the operator key's hash (first start without CTX_OPERATOR_KEY). */
  setOperatorKeyHash(hash: SecretHash): void {
    this.#write(() => this.#meta.put('operatorKey', hash));
  }

  /** The stored operator key hash, if one was generated. */
  operatorKeyHash(): SecretHash | undefined {
    return this.#meta.get('operatorKey') as SecretHash | undefined;
  }

  /** Closes the environment. */
  async close(): Promise<void> {
    await this.#retiring;
    await this.#env.close();
  }
}

/** The registry's LMDB encryption key: derived from the master key, so a new master key means a new registry file. */
function registryEncryptionKey(master: MasterKey): string {
  return deriveKey(master, 'registry').subarray(0, 24).toString('base64url');
}

function checkFileMatches(path: string, master: MasterKey): boolean {
  const checkFile = join(path, 'master-key.check');
  return existsSync(checkFile) && readFileSync(checkFile, 'utf8').trim() === masterKeyCheck(master);
}

/**
 * Finishes or discards a master key rotation a crash cut short. `registry-next` is complete once
 * its check file exists (written last). Cut before the swap: the old registry is whole, the next
 * one goes. Cut between the two renames: the next one is whole and becomes the registry. Cut after:
 * only the retired directory is left to delete.
 */
function recoverRotation(path: string): void {
  const next = `${path}-next`;
  const retired = `${path}-retired`;
  if (existsSync(next)) {
    if (!existsSync(join(path, 'data.mdb')) && existsSync(join(next, 'master-key.check'))) renameSync(next, path);
    else rmSync(next, { recursive: true, force: true });
  }
  if (existsSync(retired) && existsSync(join(path, 'data.mdb'))) rmSync(retired, { recursive: true, force: true });
}

/**
 * TENANT_MOVED for a tenant this host does not serve; `host`, when known, is where it went: the
 * detail carries it, and the router reads it from the response to correct its map.
 */
export function tenantMovedError(tenantId: string, host: string | undefined, why = host === undefined ? 'is not served by this host' : `moved to host ${host}`): HostError {
  return new HostError('TENANT_MOVED', `tenant ${tenantId} ${why}; retry through the router`, { tenant: tenantId, ...(host === undefined ? {} : { host }) });
}

/** An API key's parts: the tenant it names (keys of the fleet shape), its id and its secret. */
interface ParsedApiKey {
  tenantId: string | undefined;
  keyId: string;
  secret: string;
}

/** Splits an API key of either shape; undefined when it is neither. */
function parseApiKey(apiKey: string): ParsedApiKey | undefined {
  const current = API_KEY_PATTERN.exec(apiKey);
  if (current !== null) return { tenantId: `t_${current[1] as string}`, keyId: current[2] as string, secret: current[3] as string };
  const legacy = LEGACY_API_KEY_PATTERN.exec(apiKey);
  if (legacy !== null) return { tenantId: undefined, keyId: legacy[1] as string, secret: legacy[2] as string };
  return undefined;
}

/** The id part of a whole API key of either shape (16 hex characters), or undefined when it is not one. */
export function apiKeyId(apiKey: string): string | undefined {
  return parseApiKey(apiKey)?.keyId;
}

/**
 * The tenant an API key names (`ctx_<tenant hex>_…`), for routing only: it proves nothing, and a
 * key of the legacy shape names none (undefined).
 */
export function apiKeyTenant(apiKey: string): string | undefined {
  return parseApiKey(apiKey)?.tenantId;
}

/** Whether `tenantId` is shaped like a tenant id (`t_` and 16 hex characters). */
export function isTenantId(tenantId: string): boolean {
  return TENANT_ID_PATTERN.test(tenantId);
}

/**
 * Validates a tenant display name.
 * @throws {HostError} TENANT_INVALID naming the problem.
 */
export function validateTenantName(name: unknown): string {
  if (typeof name !== 'string') throw new HostError('TENANT_INVALID', `name must be a string, got ${typeof name}`);
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > LIMITS.tenantNameCharsMax) {
    throw new HostError('TENANT_INVALID', `name must be 1..${LIMITS.tenantNameCharsMax} characters, got ${trimmed.length}`);
  }
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) throw new HostError('TENANT_INVALID', 'name must not contain control characters');
  return trimmed;
}
