/**
 * The set of open tenant environments: each tenant's LMDB environment is opened lazily on first use,
 * held open while leased (a session or a request), and closed least-recently-used first when more
 * than `openMax` are open. A tenant's directory is `DATA_DIR/tenants/<tenant id>`; its data key is
 * unwrapped from the registry only to open it.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HostError } from '../errors.ts';
import { openKvEnvironment, type KvEnvironment, type KvKey, type KvTable } from './lmdb.ts';
import { tenantMovedError, type Registry, type TenantRecord } from './registry.ts';
import { TenantStore } from './tenant-store.ts';

/** A hold on one tenant's open store. Release it exactly once. */
export interface TenantLease {
  readonly store: TenantStore;
  release(): void;
}

interface OpenEnvironment {
  env: KvEnvironment;
  store: TenantStore;
  leases: number;
  lastUsed: number;
  /** Set by {@link TenantEnvironments.evict}: closed when its last lease ends, and not leased again meanwhile. */
  retiring: boolean;
  /** Above 0 while {@link TenantEnvironments.allowWritesDuring} runs: the move's own writes pass the freeze. */
  writesAllowed: number;
  /** Random per opening, with `writes`: the write mark (see {@link TenantEnvironments.writeMark}). */
  instance: string;
  /** Writes made through this opening (a transaction counts once; an asynchronous write when made and when it lands). */
  writes: number;
}

/** Options for {@link TenantEnvironments}. */
export interface TenantEnvironmentsOptions {
  dataDir: string;
  registry: Registry;
  /** Most environments open at once. */
  openMax: number;
}

/** Opens, leases and closes tenant environments. A stateful resource: call `close()`. */
export class TenantEnvironments {
  #options: TenantEnvironmentsOptions;
  #open = new Map<string, OpenEnvironment>();
  #closing = new Set<Promise<void>>();

  constructor(options: TenantEnvironmentsOptions) {
    this.#options = options;
  }

  /** How many environments are open now. */
  get openCount(): number {
    return this.#open.size;
  }

  /** Leases held now on all environments together. */
  get leaseTotal(): number {
    let total = 0;
    for (const entry of this.#open.values()) total += entry.leases;
    return total;
  }

  /** Leases held on a tenant's environment now (0 when it is not open): what tests check for leaks. */
  leaseCount(tenantId: string): number {
    return this.#open.get(tenantId)?.leases ?? 0;
  }

  /**
   * Leases the tenant's store, opening its environment when needed.
   * @throws {HostError} STORAGE_ENV_LIMIT when every open environment is leased;
   *   STORAGE_MASTER_KEY when the tenant's data key cannot be unwrapped or does not decrypt.
   */
  acquire(tenant: TenantRecord): TenantLease {
    let entry = this.#open.get(tenant.id);
    if (entry?.retiring === true) {
      throw new HostError('STORAGE_ENV_LIMIT', `the environment of tenant ${tenant.id} is closing here (the tenant moved); try again shortly`);
    }
    if (entry === undefined) {
      this.#makeRoom();
      entry = this.#openEnvironment(tenant);
      this.#open.set(tenant.id, entry);
    }
    const held = entry;
    held.leases += 1;
    held.lastUsed = performance.now();
    let released = false;
    return {
      store: held.store,
      release: () => {
        if (released) return;
        released = true;
        held.leases -= 1;
        held.lastUsed = performance.now();
        if (held.retiring && held.leases === 0) this.#retire(tenant.id, held);
      },
    };
  }

  #openEnvironment(tenant: TenantRecord): OpenEnvironment {
    const path = this.directoryOf(tenant);
    const isNew = !existsSync(join(path, 'data.mdb'));
    const dataKey = this.#options.registry.unwrapDataKey(tenant);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    const env = openKvEnvironment({ path, encryptionKey: dataKey });
    let entry: OpenEnvironment | undefined;
    let store: TenantStore;
    const counted = (): void => {
      if (entry !== undefined) entry.writes += 1;
    };
    try {
      store = new TenantStore(guardWrites(env, () => this.#assertWritable(tenant.id, entry), counted), createHmac('sha256', dataKey).update('ctx-host/provenance').digest());
      store.initialise(isNew, tenant.id);
    } catch (error) {
      void env.close();
      if (error instanceof HostError) throw error;
      // A wrong key can make LMDB fail while opening its tables (MDB_PAGE_NOTFOUND).
      throw new HostError('STORAGE_MASTER_KEY', `the data key of tenant ${tenant.id} does not decrypt its environment`);
    }
    entry = { env, store, leases: 0, lastUsed: performance.now(), retiring: false, writesAllowed: 0, instance: randomBytes(8).toString('hex'), writes: 0 };
    return entry;
  }

  /**
   * Refuses a write to a tenant that is frozen for a move (TENANT_FROZEN, retryable) or has moved
   * away (TENANT_MOVED): whatever is written after a move's export began would be lost with the old
   * copy, so it is refused instead, and the writer retries at the new host. The state lives in the
   * registry, which every process of the host reads, so a cell restarting mid-move keeps it.
   */
  #assertWritable(tenantId: string, entry: OpenEnvironment | undefined): void {
    if ((entry?.writesAllowed ?? 0) > 0) return;
    const state = this.#options.registry.fleetState(tenantId);
    if (state?.state === 'frozen') {
      throw new HostError('TENANT_FROZEN', `tenant ${tenantId} is being moved to another host and takes no writes for a moment; reads and chats go on, retry shortly`);
    }
    if (state?.state === 'moved') throw tenantMovedError(tenantId, state.to);
  }

  /**
   * The tenant's write mark in this process: equal at two moments only if nothing was written to
   * its environment in between, through this opening of it (a reopened environment has another
   * mark, so a mark never wrongly stays equal). A move copies a tenant while it still takes writes,
   * then freezes it and compares marks: equal, and the copy is already complete.
   * An asynchronous write (caches only) made before a copy and landing after it may be missing
   * from the copy: a cache miss on the new host, never a wrong answer. Undefined when not open.
   */
  writeMark(tenantId: string): string | undefined {
    const entry = this.#open.get(tenantId);
    return entry === undefined ? undefined : `${entry.instance}:${entry.writes}`;
  }

  /**
   * Runs `action` (synchronous: nothing else runs meanwhile) with the tenant's writes allowed
   * despite a freeze: a move's export records itself in the tenant's audit log.
   */
  allowWritesDuring<T>(tenantId: string, action: () => T): T {
    const entry = this.#open.get(tenantId);
    if (entry === undefined) return action();
    entry.writesAllowed += 1;
    try {
      return action();
    } finally {
      entry.writesAllowed -= 1;
    }
  }

  #makeRoom(): void {
    if (this.#open.size < this.#options.openMax) return;
    let victim: [string, OpenEnvironment] | undefined;
    for (const candidate of this.#open) {
      if (candidate[1].leases === 0 && (victim === undefined || candidate[1].lastUsed < victim[1].lastUsed)) victim = candidate;
    }
    if (victim === undefined) {
      throw new HostError('STORAGE_ENV_LIMIT', `all ${this.#options.openMax} open tenant environments are in use`);
    }
    this.#open.delete(victim[0]);
    this.#track(victim[1].env.close());
  }

  #track(closing: Promise<void>): void {
    const tracked = closing.finally(() => this.#closing.delete(tracked));
    this.#closing.add(tracked);
  }

  /** The directory holding a tenant's environment. */
  directoryOf(tenant: TenantRecord): string {
    return join(this.#options.dataDir, 'tenants', tenant.id);
  }

  /**
   * Closes the tenant's environment once nobody leases it (its cell lets go of a tenant that moved
   * to another cell, whose own reads then start from the disk). Until its last lease ends, it is
   * leased to nobody new (STORAGE_ENV_LIMIT, retryable), so no stale in-memory index is served.
   */
  async evict(tenantId: string): Promise<void> {
    const entry = this.#open.get(tenantId);
    if (entry === undefined) return;
    entry.retiring = true;
    if (entry.leases === 0) this.#retire(tenantId, entry);
    await Promise.all(this.#closing);
  }

  #retire(tenantId: string, entry: OpenEnvironment): void {
    if (this.#open.get(tenantId) === entry) this.#open.delete(tenantId);
    this.#track(entry.env.close());
  }

  /**
   * Closes the tenant's environment (whoever still leases it) and removes its directory. The caller
   * has already destroyed the wrapped key in the registry, so the bytes were unreadable before this.
   */
  async destroy(tenant: TenantRecord): Promise<void> {
    const entry = this.#open.get(tenant.id);
    this.#open.delete(tenant.id);
    if (entry !== undefined) await entry.env.close();
    rmSync(this.directoryOf(tenant), { recursive: true, force: true });
  }

  /** Closes every environment. */
  async close(): Promise<void> {
    const entries = [...this.#open.values()];
    this.#open.clear();
    await Promise.all([...entries.map((entry) => entry.env.close()), ...this.#closing]);
  }
}

/**
 * The environment with every write checked first, and counted: a write transaction once at its
 * start (the writes inside it are not checked again), a write outside one each time, an
 * asynchronous one when made and again when it lands. Reads pass untouched.
 */
function guardWrites(env: KvEnvironment, check: () => void, counted: () => void): KvEnvironment {
  let depth = 0;
  const wrapped = new Map<string, KvTable<unknown>>();
  const guard = (): void => {
    if (depth > 0) return;
    check();
    counted();
  };
  const landed = <T>(write: Promise<T>): Promise<T> => write.finally(counted);
  const wrap = <V>(name: string, table: KvTable<V>): KvTable<V> => {
    const known = wrapped.get(name);
    if (known !== undefined) return known as KvTable<V>;
    const guarded: KvTable<V> = {
      get: (key: KvKey, snapshot) => table.get(key, snapshot),
      entries: (range) => table.entries(range),
      count: () => table.count(),
      put: (key, value) => {
        guard();
        table.put(key, value);
      },
      remove: (key) => {
        guard();
        return table.remove(key);
      },
      putLater: (key, value) => {
        try {
          guard();
        } catch (error) {
          return Promise.reject(error);
        }
        return landed(table.putLater(key, value));
      },
      removeLater: (key) => {
        try {
          guard();
        } catch (error) {
          return Promise.reject(error);
        }
        return landed(table.removeLater(key));
      },
    };
    wrapped.set(name, guarded as KvTable<unknown>);
    return guarded;
  };
  return {
    table: ((name: string, encoding: 'structured' | 'binary') => wrap(name, encoding === 'binary' ? env.table(name, 'binary') : env.table(name, 'structured'))) as KvEnvironment['table'],
    tables: () => env.tables().map(({ name, encoding, table }) => ({ name, encoding, table: wrap(name, table) })),
    transaction: <T>(action: () => T): T => {
      guard();
      depth += 1;
      try {
        return env.transaction(action);
      } finally {
        depth -= 1;
      }
    },
    readSnapshot: () => env.readSnapshot(),
    close: () => env.close(),
  };
}
