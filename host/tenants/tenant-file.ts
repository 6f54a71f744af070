/**
 * A tenant's whole data in one file, to move it to another host: every table of its environment
 * (documents, chunks, vectors, caches, plugin state and modules, feedback, settings, its audit log),
 * its control-plane record (name, canary, API key hashes, so its clients' keys keep working) and its
 * data key — so provenance tags, cache entries and feedback stay valid byte for byte.
 *
 * The file is encrypted and authenticated under an export key the operator holds (32 random bytes,
 * like the master key): a JSON header line in the clear (format, version, tenant id, salt, nonce
 * prefix), then frames of `u32 length ‖ AES-256-GCM(sealed records) ‖ tag`. Each frame's nonce and
 * associated data carry its index and the header's hash, and only the last frame is flagged final,
 * so a frame altered, dropped, reordered or cut off — or a header swapped — fails authentication
 * before anything in it is parsed. Records inside a frame are `u32 length ‖ v8.serialize(record)`.
 *
 * Export reads one LMDB read snapshot (a read transaction held open while the file is written, in
 * steps between which the event loop turns): the file is consistent even beside a running host,
 * and a large tenant does not hold the loop for the seconds the whole file takes.
 * Chunk rows an ingest has written but not yet committed (at or past the snapshot's `nextRow`) are
 * left out: the final transaction that would list them in a document has not happened in it.
 * Import registers the tenant without API keys, writes its data, checks the end record's counts,
 * and only then restores its keys; any failure crypto-shreds what was written. The seal proves only
 * that the export key's holder wrote the file — the tenant itself may hold it — so every record is
 * also checked as the API would check it (import-check.ts) and plugin modules are metered again.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { LoopSteps } from '../loop-steps.ts';
import type { KvKey, KvReadSnapshot } from '../storage/lmdb.ts';
import type { MeteringService } from '../sandbox/metering-service.ts';
import type { Registry, TenantControlRecord, TenantRecord } from '../storage/registry.ts';
import type { StoreMeta } from '../storage/tenant-store.ts';
import { appendAudit } from './audit.ts';
import { checkTenantRecord, ImportCheck, importInvalid } from './import-check.ts';
import { deleteTenant } from './lifecycle.ts';
import { mintScopeForOperator, type OperatorCredential, type TenantAuthority, type TenantScope } from './scope.ts';

const FORMAT = 'ctx-tenant-export';
const VERSION = 1;
const TAG_BYTES = 16;
/**
 * Plaintext gathered before a frame is sealed: large enough that framing costs nothing, small
 * enough to decrypt whole, and to import in one step (a frame is parsed and written at once: a
 * 256 KiB frame holds the loop ~25–45 ms here, a 1 MiB one 80–135 ms, for the same total time).
 */
const FRAME_TARGET_BYTES = 256 * 1024;
/** The header line is short; anything longer is not one of our files. */
const HEADER_BYTES_MAX = 4096;
/** Bytes of an entry's key: the longest the host writes is well under this, and LMDB's own limit (1978) is above it. */
const KEY_BYTES_MAX = 1024;

/** The file's clear-text header. */
interface Header {
  format: string;
  version: number;
  tenant: string;
  exportedAt: number;
  salt: string;
  noncePrefix: string;
}

/** What the frames carry. */
type ExportRecord =
  | { kind: 'tenant'; control: TenantControlRecord; dataKey: string }
  | { kind: 'entry'; table: string; key: KvKey; value: unknown }
  | { kind: 'end'; counts: Record<string, number> };

/**
 * Parses an export key: 64 hex characters (32 bytes).
 * @throws {HostError} TENANT_EXPORT_INVALID naming the observed length.
 */
export function parseExportKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(trimmed)) throw new HostError('TENANT_EXPORT_INVALID', `${source}: an export key is 64 hex characters, got ${trimmed.length} characters`);
  return Buffer.from(trimmed, 'hex');
}

/** A fresh export key, as 64 hex characters. */
export function newExportKey(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Writes the scope's tenant to `path` (created with mode 0600, never overwritten) and audits the
 * export in the tenant's log first, so the file holds the record of its own making. The file is one
 * read snapshot taken now; it is written in steps that let the event loop turn (see
 * {@link startTenantExport}).
 * @returns entries written per table.
 * @throws {HostError} STORAGE_FAILED when a single entry is larger than a frame may be.
 */
export async function exportTenantFile(scope: TenantScope, registry: Registry, path: string, exportKey: Buffer, now: number = Date.now()): Promise<Record<string, number>> {
  return startTenantExport(scope, registry, path, exportKey, now).finish();
}

/** An export whose snapshot is taken; `finish` writes the rest of the file. */
export interface PendingExport {
  /**
   * Writes every table from the snapshot, in steps (loop-steps.ts) between which the event loop
   * turns (other tenants' work runs), and closes the file and the snapshot. Call it once, and keep
   * the scope until it settles.
   * @returns entries written per table.
   */
  finish(): Promise<Record<string, number>>;
}

/**
 * Starts an export synchronously: audits it, takes the read snapshot the whole file comes from,
 * and writes the header and the tenant record. A caller that needs to know exactly which writes the
 * file holds (a move's write mark) reads it before its next await.
 */
export function startTenantExport(scope: TenantScope, registry: Registry, path: string, exportKey: Buffer, now: number = Date.now()): PendingExport {
  const record = registry.findTenant(scope.tenantId) as TenantRecord;
  appendAudit(scope, { kind: 'tenant.exported', actor: 'operator' }, now);
  const header: Header = { format: FORMAT, version: VERSION, tenant: scope.tenantId, exportedAt: now, salt: randomBytes(16).toString('base64'), noncePrefix: randomBytes(8).toString('base64') };
  const fd = openSync(path, 'wx', 0o600);
  let snapshot: KvReadSnapshot | undefined;
  try {
    snapshot = scope.store.readSnapshot();
    const writer = new FrameWriter(fd, header, exportKey);
    writer.add({ kind: 'tenant', control: registry.controlRecordOf(record), dataKey: registry.unwrapDataKey(record) });
    const taken = snapshot;
    let started = false;
    return {
      finish: () => {
        if (started) return Promise.reject(new HostError('STORAGE_FAILED', 'an export was finished twice'));
        started = true;
        return writeTables(scope, writer, taken).finally(() => {
          taken.done();
          closeSync(fd);
        });
      },
    };
  } catch (error) {
    snapshot?.done();
    closeSync(fd);
    throw error;
  }
}

async function writeTables(scope: TenantScope, writer: FrameWriter, snapshot: KvReadSnapshot): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  // Rows at or past the snapshot's committed `nextRow` belong to an ingest still writing them, or
  // to one a crash cut short: no document lists them yet, so they stay behind.
  const committedRows = (scope.store.meta.get('counters', snapshot) as StoreMeta | undefined)?.nextRow ?? 0;
  const steps = new LoopSteps();
  for (const { name, table } of scope.store.tables()) {
    counts[name] = 0;
    const rowKeyed = ROW_TABLES.has(name);
    for (const { key, value } of table.entries({ snapshot })) {
      if (rowKeyed && typeof key === 'number' && key >= committedRows) continue;
      writer.add({ kind: 'entry', table: name, key, value });
      counts[name] += 1;
      if (steps.due) await steps.next();
    }
  }
  writer.finish({ kind: 'end', counts });
  return counts;
}

/** Tables keyed by chunk row, whose rows an ingest writes before its final transaction commits them. */
const ROW_TABLES = new Set(['chunks', 'chunkTerms', 'vectors']);

/** Seals records into frames as they come, and writes each frame when it is full. */
class FrameWriter {
  readonly #fd: number;
  readonly #key: Buffer;
  readonly #noncePrefix: Buffer;
  readonly #headerHash: Buffer;
  #parts: Buffer[] = [];
  #bytes = 0;
  #index = 0;

  constructor(fd: number, header: Header, exportKey: Buffer) {
    const line = Buffer.from(`${JSON.stringify(header)}\n`);
    writeSync(fd, line);
    this.#fd = fd;
    this.#key = frameKey(exportKey, header);
    this.#noncePrefix = Buffer.from(header.noncePrefix, 'base64');
    this.#headerHash = createHash('sha256').update(line).digest();
  }

  add(record: ExportRecord): void {
    const bytes = serialize(record);
    if (bytes.length + 4 > LIMITS.exportFrameBytesMax) throw new HostError('STORAGE_FAILED', `an entry of ${bytes.length} bytes does not fit a frame of ${LIMITS.exportFrameBytesMax}`);
    if (this.#bytes + bytes.length + 4 > LIMITS.exportFrameBytesMax) this.#flush(false);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    this.#parts.push(length, bytes);
    this.#bytes += bytes.length + 4;
    if (this.#bytes >= FRAME_TARGET_BYTES) this.#flush(false);
  }

  finish(end: ExportRecord): void {
    if (this.#bytes > 0) this.#flush(false);
    this.add(end);
    this.#flush(true);
  }

  #flush(final: boolean): void {
    const cipher = createCipheriv('aes-256-gcm', this.#key, frameNonce(this.#noncePrefix, this.#index));
    cipher.setAAD(frameAad(this.#headerHash, this.#index, final));
    const sealed = Buffer.concat([cipher.update(Buffer.concat(this.#parts)), cipher.final(), cipher.getAuthTag()]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(sealed.length);
    writeSync(this.#fd, length);
    writeSync(this.#fd, sealed);
    this.#parts = [];
    this.#bytes = 0;
    this.#index += 1;
  }
}

/**
 * Imports a tenant from `path` under its own id. The file is trusted for nothing but having been
 * sealed with the export key: every record is checked as the API would check it (see
 * import-check.ts) and every plugin module is vetted and metered again. Nothing is usable until
 * every frame authenticated, every entry passed and landed, the counts matched and the checks across
 * tables passed; on any failure the partial tenant is crypto-shredded.
 * @returns the tenant record and entries imported per table.
 * @throws {HostError} TENANT_EXPORT_INVALID for a malformed, altered or truncated file, a wrong key,
 *   or a record the API would refuse (the message names it); TENANT_EXISTS when this host already
 *   has the tenant, its canary or one of its keys; PLUGIN_BUSY when the metering queue is full.
 */
export async function importTenantFile(
  authority: TenantAuthority,
  operator: OperatorCredential,
  path: string,
  exportKey: Buffer,
  metering: MeteringService,
  now: number = Date.now(),
): Promise<{ tenant: TenantRecord; counts: Record<string, number> }> {
  const reader = new FrameReader(path, exportKey);
  let tenant: TenantRecord | undefined;
  try {
    const firstFrame = reader.next();
    const first = firstFrame?.records[0];
    if (firstFrame === undefined || first?.kind !== 'tenant') throw invalid('the file does not start with a tenant record');
    const { control, dataKey } = checkTenantRecord(first);
    tenant = authority.registry.adoptTenant(control, dataKey);
    const scope = mintScopeForOperator(authority, operator, tenant.id);
    try {
      const check = new ImportCheck(scope, control.canary);
      const counts = await writeEntries(scope, reader, firstFrame, check);
      await check.finish(metering);
      authority.registry.restoreApiKeys(tenant, control.apiKeys);
      appendAudit(scope, { kind: 'tenant.imported', actor: 'operator', detail: { exportedAt: reader.header.exportedAt } }, now);
      return { tenant, counts };
    } finally {
      scope.release();
    }
  } catch (error) {
    if (tenant !== undefined && !(error instanceof HostError && error.code === 'TENANT_EXISTS')) await deleteTenant(authority, operator, tenant.id);
    throw error;
  } finally {
    reader.close();
  }
}

/**
 * Writes the entries of every frame, from the first one (which also held the tenant record) on,
 * into the scope's tables, a transaction per frame, each entry checked before it is written, and
 * checks the end record's counts. The tenant is not usable until the import finishes, so the event
 * loop may turn between frames.
 */
async function writeEntries(scope: TenantScope, reader: FrameReader, first: { records: ExportRecord[]; final: boolean }, check: ImportCheck): Promise<Record<string, number>> {
  const tables = new Map(scope.store.tables().map((entry) => [entry.name, entry]));
  const counts: Record<string, number> = {};
  let index = 0;
  const steps = new LoopSteps();
  for (let frame: typeof first | undefined = first; frame !== undefined; frame = reader.next()) {
    // Frames are about 256 KiB: between them the event loop turns once a step's time is spent.
    if (steps.due) await steps.next();
    const current = frame;
    scope.store.transaction(() => {
      for (const [at, record] of current.records.entries()) {
        const position = index;
        index += 1;
        if (position === 0) continue;
        if (record.kind === 'end' && current.final && at === current.records.length - 1) continue;
        if (record.kind === 'tenant') throw invalid(`record ${position} of the file is a second tenant record`);
        if (record.kind !== 'entry') throw invalid(`record ${position} of the file is ${record.kind === 'end' ? 'an end record before the end' : 'of an unknown kind'}`);
        const { table, key, value } = record;
        const target = typeof table === 'string' ? tables.get(table) : undefined;
        if (target === undefined) throw invalid(`the file names a table this host does not have: ${JSON.stringify(String(table)).slice(0, 60)}`);
        const wellFormedKey = typeof key === 'string' ? Buffer.byteLength(key) <= KEY_BYTES_MAX : Number.isSafeInteger(key) && key >= 0;
        if (!wellFormedKey) throw invalid(`record ${position} of the file has a malformed key (a string of at most ${KEY_BYTES_MAX} bytes or a row number)`);
        if (target.encoding === 'binary' && !(value instanceof Uint8Array)) throw invalid(`table ${table} holds bytes; the file has another value`);
        check.entry(table, key, value);
        target.table.put(key, value);
        counts[table] = (counts[table] ?? 0) + 1;
      }
    });
    const end = frame.records.at(-1);
    if (frame.final) {
      if (end?.kind !== 'end' || !isCountRecord(end.counts)) throw invalid('the final frame has no end record');
      const expected = Object.entries(end.counts).filter(([, count]) => count > 0);
      const mismatch = expected.find(([table, count]) => counts[table] !== count) ?? Object.entries(counts).find(([table, count]) => end.counts[table] !== count);
      if (mismatch !== undefined) throw invalid(`table ${mismatch[0]} holds ${counts[mismatch[0]] ?? 0} entries, the end record says ${end.counts[mismatch[0]] ?? 0}`);
      return counts;
    }
  }
  throw invalid('the file ends before its final frame: it is truncated');
}

function isCountRecord(value: unknown): value is Record<string, number> {
  return typeof value === 'object' && value !== null && Object.values(value).every((count) => typeof count === 'number');
}

/** Reads, authenticates and parses frames one at a time. */
class FrameReader {
  readonly header: Header;
  readonly #fd: number;
  readonly #key: Buffer;
  readonly #noncePrefix: Buffer;
  readonly #headerHash: Buffer;
  #offset: number;
  #index = 0;
  #done = false;

  constructor(path: string, exportKey: Buffer) {
    this.#fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(HEADER_BYTES_MAX);
      const read = readSync(this.#fd, head, 0, HEADER_BYTES_MAX, 0);
      const end = head.subarray(0, read).indexOf(0x0a);
      if (end < 0) throw invalid('the file has no header line');
      const line = head.subarray(0, end + 1);
      this.header = parseHeader(line);
      this.#key = frameKey(exportKey, this.header);
      this.#noncePrefix = Buffer.from(this.header.noncePrefix, 'base64');
      this.#headerHash = createHash('sha256').update(line).digest();
      this.#offset = line.length;
    } catch (error) {
      closeSync(this.#fd);
      throw error;
    }
  }

  /** The next frame's records, or undefined after the final frame. */
  next(): { records: ExportRecord[]; final: boolean } | undefined {
    if (this.#done) return undefined;
    const length = this.#read(4, 'a frame length')?.readUInt32BE(0);
    if (length === undefined) throw invalid('the file ends before its final frame: it is truncated');
    if (length < TAG_BYTES || length > LIMITS.exportFrameBytesMax + TAG_BYTES) {
      throw invalid(`frame ${this.#index} is ${length} bytes, limit ${LIMITS.exportFrameBytesMax + TAG_BYTES}`);
    }
    const sealed = this.#read(length, `frame ${this.#index}`);
    if (sealed === undefined) throw invalid('the file ends inside a frame: it is truncated');
    const final = this.#atEnd();
    const plain = this.#open(sealed, final);
    this.#index += 1;
    this.#done = final;
    return { records: parseRecords(plain), final };
  }

  /** Decrypts a frame; a frame that is not the final one but claims to be (or the reverse) fails here too. */
  #open(sealed: Buffer, final: boolean): Buffer {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, frameNonce(this.#noncePrefix, this.#index));
      decipher.setAAD(frameAad(this.#headerHash, this.#index, final));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw invalid(`frame ${this.#index} does not authenticate: a wrong export key, or the file was altered or cut short`);
    }
  }

  #read(length: number, what: string): Buffer | undefined {
    const buffer = Buffer.alloc(length);
    const read = readSync(this.#fd, buffer, 0, length, this.#offset);
    if (read === 0 && what === 'a frame length') return undefined;
    if (read < length) return undefined;
    this.#offset += length;
    return buffer;
  }

  #atEnd(): boolean {
    return readSync(this.#fd, Buffer.alloc(1), 0, 1, this.#offset) === 0;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function parseHeader(line: Buffer): Header {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line.toString('utf8'));
  } catch {
    throw invalid('the header line is not JSON: this is not a tenant export');
  }
  // Valid JSON need not be an object (`null`, `3`, `[]`): none of those is a header.
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('the header line is not a JSON object: this is not a tenant export');
  const header = parsed as Partial<Header>;
  if (header.format !== FORMAT) throw invalid('this is not a tenant export');
  if (header.version !== VERSION) throw invalid(`export format version ${String(header.version)} is not supported (this host reads ${VERSION})`);
  if (typeof header.tenant !== 'string' || typeof header.salt !== 'string' || typeof header.noncePrefix !== 'string' || typeof header.exportedAt !== 'number') {
    throw invalid('the header is incomplete');
  }
  return header as Header;
}

/** Splits an authenticated frame into records (authentic, not trusted: each is checked before it is written). */
function parseRecords(plain: Buffer): ExportRecord[] {
  const records: ExportRecord[] = [];
  for (let offset = 0; offset < plain.length; ) {
    if (offset + 4 > plain.length) throw invalid('a frame ends inside a record length');
    const length = plain.readUInt32BE(offset);
    if (offset + 4 + length > plain.length) throw invalid('a record runs past the end of its frame');
    let record: unknown;
    try {
      record = deserialize(plain.subarray(offset + 4, offset + 4 + length));
    } catch {
      throw invalid('a record does not deserialize');
    }
    if (typeof record !== 'object' || record === null || typeof (record as { kind?: unknown }).kind !== 'string') throw invalid('a record is not an object with a kind');
    records.push(record as ExportRecord);
    offset += 4 + length;
  }
  return records;
}

function frameKey(exportKey: Buffer, header: Header): Buffer {
  return Buffer.from(hkdfSync('sha256', exportKey, Buffer.from(header.salt, 'base64'), 'ctx-host/tenant-export', 32));
}

function frameNonce(prefix: Buffer, index: number): Buffer {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0, 0, 8);
  nonce.writeUInt32BE(index, 8);
  return nonce;
}

function frameAad(headerHash: Buffer, index: number, final: boolean): Buffer {
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail.writeUInt8(final ? 1 : 0, 4);
  return Buffer.concat([headerHash, tail]);
}

function invalid(message: string): HostError {
  return importInvalid(message);
}
