/**
 * The tenant export file reader (host/tenants/tenant-file.ts `importTenantFile`), played as a
 * careless or hostile carrier of the file, who does not hold the export key:
 *
 * - `tenant-file`: a real export, truncated, bit-flipped, with bytes inserted, deleted or
 *   duplicated; re-framed (frames dropped, repeated, swapped, taken from another export of the same
 *   tenant, their length fields changed, bytes appended); its header line replaced by other JSON.
 * - `tenant-file-sealed`: files sealed correctly with the export key (as only its holder could) but
 *   holding what the exporter never writes: arbitrary plaintext, arbitrary records, records out of
 *   order. The format trusts an authenticated frame, so this is defense in depth.
 *
 * Properties: every such file is refused with TENANT_EXPORT_INVALID (never another error, a crash
 * or a hang), and nothing of it stays: the target host has the tenants it had and no directory of
 * the refused one. A file byte-identical to a real export imports (and is deleted again).
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { createLocalEmbedder } from '../../../host/retrieval/embedder.ts';
import { createMeteringService } from '../../../host/sandbox/metering-service.ts';
import { ingestDocuments } from '../../../host/retrieval/ingest.ts';
import { createTenant, deleteTenant } from '../../../host/tenants/lifecycle.ts';
import { mintScopeForOperator, mintScopeFromApiKey, operatorFromLocalAccess } from '../../../host/tenants/scope.ts';
import { exportTenantFile, importTenantFile, newExportKey } from '../../../host/tenants/tenant-file.ts';
import { openTestAuthority, type TestAuthority } from '../../helpers/authority.ts';
import { mutatedFrom, sameBytes } from '../mutate.ts';
import { ensure, expectHostError, recordInput, runCheck, type FuzzTarget, type OpenTarget } from '../target.ts';

const operator = operatorFromLocalAccess();
const TAG_BYTES = 16;

/** An export file split into its parts. */
interface ParsedFile {
  headerLine: Buffer;
  header: { salt: string; noncePrefix: string } & Record<string, unknown>;
  /** Each frame as stored: the sealed bytes without the length field. */
  frames: Buffer[];
}

function parseFile(bytes: Buffer): ParsedFile {
  const end = bytes.indexOf(0x0a);
  const headerLine = bytes.subarray(0, end + 1);
  const frames: Buffer[] = [];
  for (let offset = end + 1; offset < bytes.length; ) {
    const length = bytes.readUInt32BE(offset);
    frames.push(bytes.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return { headerLine, header: JSON.parse(headerLine.toString('utf8')) as ParsedFile['header'], frames };
}

function joinFile(headerLine: Buffer, frames: readonly Buffer[], lengthOf: (frame: Buffer, index: number) => number = (frame) => frame.length): Buffer {
  const parts: Buffer[] = [headerLine];
  frames.forEach((frame, index) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(lengthOf(frame, index) >>> 0);
    parts.push(length, frame);
  });
  return Buffer.concat(parts);
}

/**
 * Seals and opens frames as the file format says (the module header of tenant-file.ts): the
 * key holder's side, so the fuzzer can make authentic files with contents of its choosing.
 */
class Sealer {
  readonly headerLine: Buffer;
  readonly #key: Buffer;
  readonly #prefix: Buffer;
  readonly #headerHash: Buffer;

  constructor(exportKey: Buffer, header: Record<string, unknown> & { salt: string; noncePrefix: string }) {
    this.headerLine = Buffer.from(`${JSON.stringify(header)}\n`);
    this.#key = Buffer.from(hkdfSync('sha256', exportKey, Buffer.from(header.salt, 'base64'), 'ctx-host/tenant-export', 32));
    this.#prefix = Buffer.from(header.noncePrefix, 'base64');
    this.#headerHash = createHash('sha256').update(this.headerLine).digest();
  }

  seal(plain: Buffer, index: number, final: boolean): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.#key, this.#nonce(index));
    cipher.setAAD(this.#aad(index, final));
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }

  open(sealed: Buffer, index: number, final: boolean): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', this.#key, this.#nonce(index));
    decipher.setAAD(this.#aad(index, final));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  }

  /** A whole file whose frames hold `plains`, the last flagged final. */
  file(plains: readonly Buffer[]): Buffer {
    return joinFile(this.headerLine, plains.map((plain, index) => this.seal(plain, index, index === plains.length - 1)));
  }

  #nonce(index: number): Buffer {
    const nonce = Buffer.alloc(12);
    this.#prefix.copy(nonce, 0, 0, 8);
    nonce.writeUInt32BE(index, 8);
    return nonce;
  }

  #aad(index: number, final: boolean): Buffer {
    const tail = Buffer.alloc(5);
    tail.writeUInt32BE(index, 0);
    tail.writeUInt8(final ? 1 : 0, 4);
    return Buffer.concat([this.#headerHash, tail]);
  }
}

/** Records as a frame's plaintext holds them: `u32 length ‖ v8.serialize(record)` each. */
function recordsPlain(records: readonly unknown[]): Buffer {
  return Buffer.concat(records.flatMap((record) => {
    const bytes = serialize(record);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return [length, bytes];
  }));
}

function plainRecords(plain: Buffer): unknown[] {
  const records: unknown[] = [];
  for (let offset = 0; offset < plain.length; offset += 4 + plain.readUInt32BE(offset)) {
    records.push(deserialize(plain.subarray(offset + 4, offset + 4 + plain.readUInt32BE(offset))));
  }
  return records;
}

/**
 * A file sealed with `exportKey` whose frames hold `frames` (each a list of records), as only the
 * key's holder could make it.
 */
export function sealedFile(exportKey: Buffer, frames: readonly (readonly unknown[])[]): Buffer {
  const header = { format: 'ctx-tenant-export', version: 1, tenant: 't_0000000000000000', exportedAt: 0, salt: randomBytes(16).toString('base64'), noncePrefix: randomBytes(8).toString('base64') };
  return new Sealer(exportKey, header).file(frames.map(recordsPlain));
}

/** Everything both targets share: a source tenant's exports, and the host that imports. */
/**
 * The metering service imports re-meter plugin modules with (its worker starts only for a file that
 * holds one, and is unreferenced, so it never keeps the run alive).
 */
const metering = createMeteringService();

interface Fixture {
  key: Buffer;
  source: TestAuthority;
  target: TestAuthority;
  dir: string;
  /** Two exports of the same tenant (different salts), and the same records re-sealed one per frame. */
  exports: { a: Buffer; b: Buffer; multi: Buffer };
  /** The records of the export, in order. */
  records: unknown[];
  header: ParsedFile['header'];
}

async function openFixture(): Promise<Fixture> {
  const key = Buffer.from(newExportKey(), 'hex');
  const source = openTestAuthority({ hexByte: '61' });
  const target = openTestAuthority({ hexByte: '62' });
  const dir = mkdtempSync(join(tmpdir(), 'ctx-fuzz-export-'));
  const { tenant, apiKey } = createTenant(source.authority, operator, 'Fuzzed');
  const scope = mintScopeFromApiKey(source.authority, apiKey);
  await ingestDocuments(scope, createLocalEmbedder(), [
    { id: 'one', title: 'One', text: 'The first document of the tenant that is moved around.' },
    { id: 'two', title: 'Two', text: 'A second document, so that there are a few tables to fill.' },
  ]);
  scope.store.kvSet('retrieval', 'state', new Uint8Array([7, 8, 9]));
  scope.release();
  const exportTo = async (name: string): Promise<Buffer> => {
    const path = join(dir, name);
    const exporter = mintScopeForOperator(source.authority, operator, tenant.id);
    try {
      await exportTenantFile(exporter, source.authority.registry, path, key);
    } finally {
      exporter.release();
    }
    return readFileSync(path);
  };
  const a = await exportTo('a.ctx');
  const b = await exportTo('b.ctx');
  const parsed = parseFile(a);
  const sealer = new Sealer(key, parsed.header);
  const records = parsed.frames.flatMap((frame, index) => plainRecords(sealer.open(frame, index, index === parsed.frames.length - 1)));
  const multi = sealer.file(records.map((record) => recordsPlain([record])));
  return { key, source, target, dir, exports: { a, b, multi }, records, header: parsed.header };
}

async function closeFixture(fixture: Fixture): Promise<void> {
  await fixture.target.close();
  await fixture.source.close();
  rmSync(fixture.dir, { recursive: true, force: true });
}

/**
 * Imports `bytes` into the target host; it must be refused with TENANT_EXPORT_INVALID and leave
 * nothing — unless it is one of `genuine`, which must import, or `authentic` says a file sealed
 * with the key may (its records may happen to make a whole export). What imports is deleted again.
 */
async function checkImport(target: string, fixture: Fixture, bytes: Uint8Array, genuine: readonly Uint8Array[], authentic = false): Promise<void> {
  const registry = fixture.target.authority.registry;
  const before = registry.listTenants().map((tenant) => tenant.id);
  const path = join(fixture.dir, 'fuzzed.ctx');
  writeFileSync(path, bytes);
  recordInput(target, bytes);
  let imported: string | undefined;
  try {
    imported = (await importTenantFile(fixture.target.authority, operator, path, fixture.key, metering)).tenant.id;
  } catch (error: unknown) {
    expectHostError(target, error, ['TENANT_EXPORT_INVALID']);
  }
  if (imported !== undefined) {
    await deleteTenant(fixture.target.authority, operator, imported);
    ensure(authentic || genuine.some((file) => sameBytes(file, bytes)), 'a changed file was imported');
    return;
  }
  ensure(!genuine.some((file) => sameBytes(file, bytes)), 'a genuine export was refused');
  const after = registry.listTenants().map((tenant) => tenant.id);
  ensure(after.length === before.length && after.every((id) => before.includes(id)), `the refused import left a tenant behind: ${after.join(', ')}`);
  for (const id of after.filter((candidate) => !before.includes(candidate))) ensure(!existsSync(join(fixture.target.dir, 'tenants', id)), `a directory of ${id} stayed`);
}

/** A re-framing of the file: its frames rearranged, replaced or mis-sized. */
type Reframe =
  | { kind: 'drop'; at: number }
  | { kind: 'repeat'; at: number }
  | { kind: 'swap'; at: number; with: number }
  | { kind: 'foreign'; at: number }
  | { kind: 'length'; at: number; delta: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'foreign-header' };

const reframeArbitrary: fc.Arbitrary<Reframe> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
  fc.record({ kind: fc.constant('foreign' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('length' as const), at: fc.nat(), delta: fc.oneof(fc.integer({ min: -20, max: 20 }), fc.constantFrom(-0x1_0000_0000, 0x7fff_ffff, 16 * 1024 * 1024)) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.constant({ kind: 'foreign-header' as const }),
);

function reframe(base: Buffer, other: Buffer, ops: readonly Reframe[]): Buffer {
  const file = parseFile(base);
  const foreign = parseFile(other);
  let headerLine = file.headerLine;
  const frames = [...file.frames];
  const lengths = new Map<number, number>();
  let tail = Buffer.alloc(0);
  for (const op of ops) {
    const at = 'at' in op ? op.at : 0;
    const index = frames.length === 0 ? 0 : at % frames.length;
    if (op.kind === 'drop') frames.splice(index, 1);
    else if (op.kind === 'repeat' && frames.length > 0) frames.splice(index, 0, frames[index] as Buffer);
    else if (op.kind === 'swap' && frames.length > 0) {
      const other = op.with % frames.length;
      [frames[index], frames[other]] = [frames[other] as Buffer, frames[index] as Buffer];
    } else if (op.kind === 'foreign' && foreign.frames.length > 0) frames[index] = foreign.frames[at % foreign.frames.length] as Buffer;
    else if (op.kind === 'length') lengths.set(index, op.delta);
    else if (op.kind === 'append') tail = Buffer.concat([tail, op.bytes]);
    else if (op.kind === 'foreign-header') headerLine = foreign.headerLine;
  }
  return Buffer.concat([joinFile(headerLine, frames, (frame, index) => frame.length + (lengths.get(index) ?? 0)), tail]);
}

export const tenantFileTarget: FuzzTarget = {
  name: 'tenant-file',
  summary: 'importTenantFile of real exports truncated, bit-flipped, re-framed or with another header, without the key',
  testRuns: 120,
  async open(): Promise<OpenTarget> {
    const fixture = await openFixture();
    const { a, b, multi } = fixture.exports;
    const genuine = [a, b, multi];
    const headerJson = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.record({ format: fc.oneof(fc.constant('ctx-tenant-export'), fc.jsonValue({ maxDepth: 1 })), version: fc.oneof(fc.constant(1), fc.jsonValue({ maxDepth: 1 })), tenant: fc.jsonValue({ maxDepth: 1 }), exportedAt: fc.jsonValue({ maxDepth: 1 }), salt: fc.oneof(fc.constant(fixture.header.salt), fc.string()), noncePrefix: fc.oneof(fc.constant(fixture.header.noncePrefix), fc.string()) }, { requiredKeys: [] }),
    );
    const property = fc.asyncProperty(
      // Weighted toward the single-frame export: a change there fails before anything is written,
      // while one past the first frame of `multi` costs a tenant environment made and destroyed.
      fc.oneof(
        { arbitrary: mutatedFrom(a, 3), weight: 4 },
        { arbitrary: mutatedFrom(multi, 3), weight: 1 },
        { arbitrary: fc.tuple(fc.constantFrom(a, a, multi), fc.nat()).map(([file, at]) => file.subarray(0, at % (file.length + 1))), weight: 2 },
        { arbitrary: fc.tuple(fc.constantFrom(a, multi), fc.array(reframeArbitrary, { minLength: 1, maxLength: 3 })).map(([file, ops]) => reframe(file, b, ops)), weight: 2 },
        { arbitrary: fc.tuple(headerJson, fc.constantFrom(multi, a)).map(([header, file]) => Buffer.concat([Buffer.from(`${JSON.stringify(header) ?? ''}\n`), file.subarray(file.indexOf(0x0a) + 1)])), weight: 2 },
        { arbitrary: fc.constantFrom(a, multi), weight: 1 },
      ),
      async (bytes) => checkImport('tenant-file', fixture, bytes, genuine),
    );
    return { check: (params) => runCheck(property, params), close: () => closeFixture(fixture) };
  },
};

export const tenantFileSealedTarget: FuzzTarget = {
  name: 'tenant-file-sealed',
  summary: 'importTenantFile of files sealed with the export key but holding arbitrary plaintext or records, in any order',
  testRuns: 60,
  async open(): Promise<OpenTarget> {
    const fixture = await openFixture();
    const sealer = new Sealer(fixture.key, { ...fixture.header, salt: randomBytes(16).toString('base64') });
    const genuineRecords = fc.constantFrom(...fixture.records);
    const record: fc.Arbitrary<unknown> = fc.oneof(
      genuineRecords,
      genuineRecords.map((value) => ({ ...(value as object), kind: 'entry', table: 'no-such-table' })),
      genuineRecords.map((value) => ({ ...(value as object), counts: { chunks: 999 } })),
      fc.record({ kind: fc.constantFrom('tenant', 'entry', 'end', 'other'), table: fc.oneof(fc.constantFrom('chunks', 'kv', 'meta'), fc.string()), key: fc.oneof(fc.string(), fc.nat()), value: fc.anything({ maxDepth: 1 }), counts: fc.dictionary(fc.string(), fc.integer()), control: fc.anything({ maxDepth: 1 }), dataKey: fc.string() }, { requiredKeys: ['kind'] }),
      fc.anything({ maxDepth: 2 }),
    );
    const plain: fc.Arbitrary<Buffer> = fc.oneof(
      { arbitrary: fc.array(record, { minLength: 1, maxLength: 4 }).map(recordsPlain), weight: 4 },
      { arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)), weight: 1 },
      { arbitrary: fc.array(record, { minLength: 1, maxLength: 3 }).chain((records) => mutatedFrom(recordsPlain(records), 2)).map((bytes) => Buffer.from(bytes)), weight: 1 },
    );
    const property = fc.asyncProperty(
      fc.array(plain, { minLength: 1, maxLength: 4 }).map((plains) => sealer.file(plains)),
      async (bytes) => checkImport('tenant-file-sealed', fixture, bytes, [], true),
    );
    return { check: (params) => runCheck(property, params), close: () => closeFixture(fixture) };
  },
};
