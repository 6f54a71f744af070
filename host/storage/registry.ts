/**
 * The control plane: one LMDB environment (`DATA_DIR/registry`) holding tenant records, salted
 * hashes of API keys (never plaintext), each tenant's data key wrapped by the master key, and the
 * map of canary tokens to tenants that the leak guard consults. It holds no tenant documents,
 * vectors, caches or plugin state: those live in each tenant's own environment.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/** What listing shows about a key: never the secret or its hash. */
export interface ApiKeyInfo {
  keyId: string;
  createdAt: number;
  revokedAt: number | null;
}

/** Canary tokens have one fixed shape so the guard can find them with one regular expression. */
export const CANARY_PATTERN = /ctxcanary-[0-9a-f]{24}/g;

const API_KEY_PATTERN = /^ctx_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
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

  private constructor(env: KvEnvironment, master: MasterKey) {
    this.#env = env;
    this.#master = master;
    this.#meta = env.table('meta', 'structured');
    this.#tenants = env.table('tenants', 'structured');
    this.#apiKeys = env.table('apiKeys', 'structured');
    this.#canaries = env.table('canaries', 'structured');
    this.#decoys = env.table('decoys', 'structured');
  }

  /**
   * Opens (or creates) the registry under `dataDir`, encrypted with a key derived from the master key.
   * @throws {HostError} STORAGE_MASTER_KEY when the master key does not match an existing registry;
   *   nothing is written in that case.
   */
  static open(dataDir: string, master: MasterKey): Registry {
    const path = join(dataDir, 'registry');
    const existed = existsSync(join(path, 'data.mdb'));
    const expected = masterKeyCheck(master);
    // A plain file beside the registry lets a wrong key be refused before LMDB opens anything
    // (opening would already touch its lock file, and a wrong key makes LMDB print page errors).
    const checkFile = join(path, 'master-key.check');
    if (existed && existsSync(checkFile) && readFileSync(checkFile, 'utf8').trim() !== expected) {
      throw new HostError('STORAGE_MASTER_KEY', `the master key from ${master.source} does not open ${path}: wrong key`);
    }
    mkdirSync(path, { recursive: true, mode: 0o700 });
    const encryptionKey = deriveKey(master, 'registry').subarray(0, 24).toString('base64url');
    const env = openKvEnvironment({ path, encryptionKey, mapSizeBytes: 1024 * 1024 * 1024 });
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
    if (!existed) {
      registry.#meta.put('masterKeyCheck', expected);
      writeFileSync(checkFile, `${expected}\n`, { mode: 0o600 });
    }
    return registry;
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
    if (this.#tenants.count() >= LIMITS.tenantsMax) {
      throw new HostError('TENANT_INVALID', `tenant count is at its limit ${LIMITS.tenantsMax}`);
    }
    const id = `t_${randomHex(8)}`;
    const tenant: TenantRecord = {
      id,
      name: trimmed,
      createdAt: Date.now(),
      wrappedKey: wrapTenantKey(this.#master, id, newTenantDataKey()),
      canary: `ctxcanary-${randomHex(12)}`,
    };
    const apiKey = this.#env.transaction(() => {
      this.#tenants.put(id, tenant);
      this.#canaries.put(tenant.canary, id);
      return this.#issueKey(id);
    });
    return { tenant, apiKey };
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

  /** Issues a new API key for a tenant (key rotation: issue, switch, then revoke the old one). */
  issueApiKey(tenant: TenantRecord): string {
    return this.#env.transaction(() => this.#issueKey(tenant.id));
  }

  #issueKey(tenantId: string): string {
    const keyId = randomHex(8);
    const secret = randomToken(32);
    this.#apiKeys.put(keyId, { tenantId, secret: hashSecret(secret), createdAt: Date.now(), revokedAt: null });
    return `ctx_${keyId}_${secret}`;
  }

  /**
   * Resolves an API key to its tenant, in time independent of why a key is refused.
   * Returns undefined for malformed, unknown, revoked keys and keys of deleted tenants.
   */
  authenticate(apiKey: string): TenantRecord | undefined {
    // Every path does the same work — one key record read, one HMAC, one tenant record read — so
    // the time taken does not tell a malformed key from an unknown key id or a wrong secret. Where
    // no real record exists, a decoy record of the same shape is read in its place.
    const match = API_KEY_PATTERN.exec(apiKey);
    const record = (match?.[1] === undefined ? undefined : this.#apiKeys.get(match[1])) ?? undefined;
    const keyRecord = record ?? (this.#decoys.get('apiKey') as ApiKeyRecord);
    const ok = verifySecret(match?.[2] ?? 'x', keyRecord.secret);
    const tenant = (record === undefined ? undefined : this.#tenants.get(record.tenantId)) ?? (this.#decoys.get('tenant') as TenantRecord);
    if (!ok || record === undefined || record.revokedAt !== null || tenant.id !== record.tenantId) return undefined;
    return tenant;
  }



  /** Revokes one key by its id (the 16 hex characters after `ctx_`) or by the whole key. */
  revokeApiKey(keyIdOrKey: string): { keyId: string; tenantId: string } | undefined {
    const keyId = API_KEY_PATTERN.exec(keyIdOrKey)?.[1] ?? keyIdOrKey;
    const record = this.#apiKeys.get(keyId);
    if (record === undefined) return undefined;
    if (record.revokedAt === null) this.#apiKeys.put(keyId, { ...record, revokedAt: Date.now() });
    return { keyId, tenantId: record.tenantId };
  }

  /** Lists a tenant's keys (ids and dates only). */
  listApiKeys(tenant: TenantRecord): ApiKeyInfo[] {
    const keys: ApiKeyInfo[] = [];
    for (const { key, value } of this.#apiKeys.entries()) {
      if (value.tenantId === tenant.id) keys.push({ keyId: String(key), createdAt: value.createdAt, revokedAt: value.revokedAt });
    }
    return keys;
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

  /** Which tenant owns a canary token, if any. */
  canaryOwner(token: string): string | undefined {
    return this.#canaries.get(token);
  }

  /**
   * Crypto-shreds a tenant's record: its wrapped data key, its API keys and its canary go first, in
   * one transaction, so the data directory is unreadable before it is removed.
   */
  forgetTenant(tenant: TenantRecord): void {
    this.#env.transaction(() => {
      for (const { key, value } of this.#apiKeys.entries()) {
        if (value.tenantId === tenant.id) this.#apiKeys.remove(key);
      }
      this.#canaries.remove(tenant.canary);
      this.#tenants.remove(tenant.id);
    });
  }

  /** Stores the operator key's hash (first start without CTX_OPERATOR_KEY). */
  setOperatorKeyHash(hash: SecretHash): void {
    this.#meta.put('operatorKey', hash);
  }

  /** The stored operator key hash, if one was generated. */
  operatorKeyHash(): SecretHash | undefined {
    return this.#meta.get('operatorKey') as SecretHash | undefined;
  }

  /** Closes the environment. */
  async close(): Promise<void> {
    await this.#env.close();
  }
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
