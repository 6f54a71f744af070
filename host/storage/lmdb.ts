/**
 * The LMDB adapter: the only file in the repository that imports `lmdb`. Everything else talks to
 * the small {@link KvEnvironment} / {@link KvTable} interface below, so the storage engine can be
 * swapped (and the storage contract suite run against each implementation).
 */
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import { HostError } from '../errors.ts';

/** A key as stored: strings for named records, non-negative integers for row numbers. */
export type KvKey = string | number;

/**
 * A consistent read view of a whole environment that stays the same across event-loop turns (an
 * LMDB read transaction held open), for a long read done in steps: pass it to `get` and `entries`
 * of the environment's tables. Writes after it are not seen. Call `done()` when finished: LMDB
 * cannot reuse the pages it still shows.
 */
export interface KvReadSnapshot {
  done(): void;
}

/** One named table inside an environment. Reads are synchronous (LMDB is memory-mapped). */
export interface KvTable<V> {
  /** The value, from the current state or from `snapshot` (of this table's environment). */
  get(key: KvKey, snapshot?: KvReadSnapshot): V | undefined;
  /** Writes synchronously; inside {@link KvEnvironment.transaction} it joins that transaction. */
  put(key: KvKey, value: V): void;
  /**
   * Writes asynchronously, batched with other pending writes into one commit. Reads see the value
   * once the returned promise settles. For caches, where losing a write on a crash costs nothing.
   */
  putLater(key: KvKey, value: V): Promise<void>;
  /** Removes a key; returns whether it existed. */
  remove(key: KvKey): boolean;
  /** Removes a key asynchronously, batched like {@link putLater} (and ordered with it). */
  removeLater(key: KvKey): Promise<void>;
  /**
   * Iterates entries in key order, optionally from `start` (inclusive) to `end` (exclusive), from
   * the current state or from `snapshot` (then the iteration may span event-loop turns).
   */
  entries(range?: { start?: KvKey; end?: KvKey; limit?: number; snapshot?: KvReadSnapshot }): Iterable<{ key: KvKey; value: V }>;
  /** Number of entries (a full scan of the B-tree leaf pages: fine for stats, not for hot paths). */
  count(): number;
}

/** An open environment: a directory holding named tables. A stateful resource: call `close()`. */
export interface KvEnvironment {
  /** Opens (creating if needed) a table whose values are structured (msgpack) or raw bytes. */
  table<V>(name: string, encoding: 'structured'): KvTable<V>;
  table(name: string, encoding: 'binary'): KvTable<Uint8Array>;
  /** Runs `action` in one synchronous write transaction: all of its writes land, or none. */
  transaction<T>(action: () => T): T;
  /** The tables opened so far, in opening order (whole-tenant export walks them). */
  tables(): { name: string; encoding: 'structured' | 'binary'; table: KvTable<unknown> }[];
  /** A read view of every table as of now, kept until its `done()` (see {@link KvReadSnapshot}). */
  readSnapshot(): KvReadSnapshot;
  /** Waits for pending asynchronous writes and closes the environment. */
  close(): Promise<void>;
}

/** Options for {@link openKvEnvironment}. */
export interface OpenEnvironmentOptions {
  /** Directory of the environment (created if missing). */
  path: string;
  /** A 32-character string key for lmdb-js page encryption, or undefined for none. */
  encryptionKey?: string;
  /** Upper bound of the memory map in bytes. */
  mapSizeBytes?: number;
  /** Named tables the environment may hold. */
  tablesMax?: number;
}

/** Size of the memory map: a ceiling on an environment's data, not memory actually used. */
const MAP_SIZE_BYTES_DEFAULT = 2 * 1024 * 1024 * 1024;

/**
 * Opens an LMDB environment.
 * @throws {HostError} STORAGE_FAILED when the key is not 32 characters or LMDB refuses to open.
 */
export function openKvEnvironment(options: OpenEnvironmentOptions): KvEnvironment {
  if (options.encryptionKey !== undefined && options.encryptionKey.length !== 32) {
    // lmdb-js 3.5.6 aborts the process on a malformed key; refuse before it can.
    throw new HostError('STORAGE_FAILED', `encryptionKey must be 32 characters, got ${options.encryptionKey.length}`);
  }
  let root: RootDatabase;
  try {
    root = open({
      path: options.path,
      maxDbs: options.tablesMax ?? 32,
      mapSize: options.mapSizeBytes ?? MAP_SIZE_BYTES_DEFAULT,
      compression: false,
      ...(options.encryptionKey === undefined ? {} : { encryptionKey: options.encryptionKey }),
    });
  } catch (error) {
    throw new HostError('STORAGE_FAILED', `cannot open environment: ${(error as Error).message}`);
  }
  return new LmdbEnvironment(root);
}

class LmdbEnvironment implements KvEnvironment {
  #root: RootDatabase;
  #tables = new Map<string, { encoding: 'structured' | 'binary'; table: KvTable<unknown> }>();

  constructor(root: RootDatabase) {
    this.#root = root;
  }

  table<V>(name: string, encoding: 'structured' | 'binary'): KvTable<V> {
    const existing = this.#tables.get(name);
    if (existing !== undefined) return existing.table as KvTable<V>;
    const db = this.#root.openDB<V, KvKey>(name, encoding === 'binary' ? { encoding: 'binary' } : {});
    const table = new LmdbTable<V>(db, encoding === 'binary');
    this.#tables.set(name, { encoding, table: table as KvTable<unknown> });
    return table;
  }

  tables(): { name: string; encoding: 'structured' | 'binary'; table: KvTable<unknown> }[] {
    return [...this.#tables].map(([name, { encoding, table }]) => ({ name, encoding, table }));
  }

  transaction<T>(action: () => T): T {
    return this.#root.transactionSync(action);
  }

  readSnapshot(): KvReadSnapshot {
    return new LmdbSnapshot(this.#root.useReadTransaction());
  }

  async close(): Promise<void> {
    await this.#root.close();
  }
}

class LmdbSnapshot implements KvReadSnapshot {
  #transaction: Transaction | undefined;

  constructor(transaction: Transaction) {
    this.#transaction = transaction;
  }

  /** The read transaction. @throws {HostError} STORAGE_FAILED once `done()` ran. */
  get transaction(): Transaction {
    if (this.#transaction === undefined) throw new HostError('STORAGE_FAILED', 'a read snapshot was used after done()');
    return this.#transaction;
  }

  done(): void {
    this.#transaction?.done();
    this.#transaction = undefined;
  }
}

function transactionOf(snapshot: KvReadSnapshot): Transaction {
  if (!(snapshot instanceof LmdbSnapshot)) throw new HostError('STORAGE_FAILED', 'not a read snapshot of this storage');
  return snapshot.transaction;
}

class LmdbTable<V> implements KvTable<V> {
  #db: Database<V, KvKey>;
  #binary: boolean;

  constructor(db: Database<V, KvKey>, binary: boolean) {
    this.#db = db;
    this.#binary = binary;
  }

  get(key: KvKey, snapshot?: KvReadSnapshot): V | undefined {
    const value = snapshot === undefined ? this.#db.get(key) : this.#db.get(key, { transaction: transactionOf(snapshot) });
    // lmdb-js returns a Buffer that aliases a shared read buffer for binary values; copy so that
    // callers can keep it past the next read.
    if (this.#binary && value !== undefined) return new Uint8Array(value as Uint8Array) as V;
    return value;
  }

  put(key: KvKey, value: V): void {
    this.#db.putSync(key, value);
  }

  async putLater(key: KvKey, value: V): Promise<void> {
    await this.#db.put(key, value);
  }

  async removeLater(key: KvKey): Promise<void> {
    await this.#db.remove(key);
  }

  remove(key: KvKey): boolean {
    return this.#db.removeSync(key);
  }

  *entries(range: { start?: KvKey; end?: KvKey; limit?: number; snapshot?: KvReadSnapshot } = {}): Iterable<{ key: KvKey; value: V }> {
    const options: { start?: KvKey; end?: KvKey; limit?: number; transaction?: Transaction } = {};
    if (range.start !== undefined) options.start = range.start;
    if (range.end !== undefined) options.end = range.end;
    if (range.limit !== undefined) options.limit = range.limit;
    if (range.snapshot !== undefined) options.transaction = transactionOf(range.snapshot);
    for (const { key, value } of this.#db.getRange(options)) {
      yield { key, value: this.#binary ? (new Uint8Array(value as Uint8Array) as V) : value };
    }
  }

  count(): number {
    return this.#db.getCount();
  }
}
