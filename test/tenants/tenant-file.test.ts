/**
 * The whole-tenant file, played as a careless or hostile carrier of it: a round trip to a host with
 * another master key restores every table byte for byte, the API keys and the audit chain; a wrong
 * key, one altered byte, a missing final frame, a frame over the size limit or an id the target
 * already has are refused with nothing left behind; the frame limit holds on both sides.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { createMeteringService } from '../../host/sandbox/metering-service.ts';
import { ingestDocuments } from '../../host/retrieval/ingest.ts';
import { prepareText } from '../../host/retrieval/prepare-text.ts';
import { readAudit } from '../../host/tenants/audit.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeForOperator, mintScopeFromApiKey, operatorFromLocalAccess, type TenantScope } from '../../host/tenants/scope.ts';
import { patchSettings } from '../../host/tenants/settings.ts';
import { importIncomingTenant } from '../../host/tenants/fleet-ops.ts';
import { exportTenantFile, importTenantFile, newExportKey, startTenantExport } from '../../host/tenants/tenant-file.ts';
import { storeFeedback } from '../../host/training/feedback.ts';
import { openTestAuthority, type TestAuthority } from '../helpers/authority.ts';

const operator = operatorFromLocalAccess();
const KEY = Buffer.from(newExportKey(), 'hex');
const metering = createMeteringService();
test.after(() => metering.close());

/** Every table's entries, for a deep comparison. */
function snapshot(scope: TenantScope): Record<string, [unknown, unknown][]> {
  const tables: Record<string, [unknown, unknown][]> = {};
  for (const { name, table } of scope.store.tables()) tables[name] = [...table.entries()].map(({ key, value }) => [key, value]);
  return tables;
}

async function expectRefusal(action: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  try {
    await action;
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, code);
    assert.match((error as HostError).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** A source host with one well-filled tenant exported to a file; the caller closes both. */
async function exported(): Promise<{ source: TestAuthority; file: string; tenantId: string; apiKey: string; dir: string }> {
  const source = openTestAuthority({ hexByte: '51' });
  const { tenant, apiKey } = createTenant(source.authority, operator, 'Movable');
  const scope = mintScopeFromApiKey(source.authority, apiKey);
  await ingestDocuments(scope, createLocalEmbedder(), [
    { id: 'manual', title: 'Manual', text: 'The red lever releases the brake. Oil the chain every month.', metadata: { lang: 'en' } },
  ]);
  patchSettings(scope, { systemPrompt: 'Be brief.', feedback: { retain: true } });
  storeFeedback(scope, { askId: 'a1', rating: 1, question: 'What releases the brake?', answer: 'The red lever [manual#0].', sources: [{ docId: 'manual', chunkId: 'manual#0', title: 'Manual', score: 1 }] });
  scope.store.kvSet('retrieval', 'state', new Uint8Array([1, 2, 3]));
  scope.release();
  const dir = mkdtempSync(join(tmpdir(), 'ctx-export-'));
  const file = join(dir, 'tenant.ctx');
  const exporter = mintScopeForOperator(source.authority, operator, tenant.id);
  await exportTenantFile(exporter, source.authority.registry, file, KEY);
  exporter.release();
  return { source, file, tenantId: tenant.id, apiKey, dir };
}

type Exported = Awaited<ReturnType<typeof exported>>;

/** Runs `body` with {@link exported}'s tenant, then closes its host and removes the file. */
async function withExported(body: (fixture: Exported) => Promise<void>): Promise<void> {
  const fixture = await exported();
  try {
    await body(fixture);
  } finally {
    await fixture.source.close();
    rmSync(fixture.dir, { recursive: true, force: true });
  }
}

/** {@link withExported} with a second, empty host (master key `hexByte` × 32) to import into. */
async function withTarget(hexByte: string, body: (fixture: Exported, target: TestAuthority) => Promise<void>): Promise<void> {
  await withExported(async (fixture) => {
    const target = openTestAuthority({ hexByte });
    try {
      await body(fixture, target);
    } finally {
      await target.close();
    }
  });
}

test('round trip to a host with another master key: every table equal, keys work, the audit chain goes on', async () => {
  await withTarget('52', async ({ source, file, tenantId, apiKey }, target) => {
    const before = mintScopeForOperator(source.authority, operator, tenantId);
    const original = snapshot(before);
    before.release();
    assert.not.ok(readFileSync(file).includes('red lever'), 'no plaintext in the file');
    const { tenant, counts } = await importTenantFile(target.authority, operator, file, KEY, metering);
    assert.is(tenant.id, tenantId);
    assert.is(counts['chunks'], 1);
    const scope = mintScopeFromApiKey(target.authority, apiKey);
    const restored = snapshot(scope);
    // The import appends to the audit log (and moves its head); everything else is as it was.
    for (const [name, entries] of Object.entries(original)) {
      if (name === 'audit') assert.equal(restored[name]?.slice(0, entries.length), entries, 'the audit log carries on from the exported one');
      else if (name === 'meta') assert.equal(restored[name]?.filter(([key]) => key !== 'auditHead'), entries.filter(([key]) => key !== 'auditHead'));
      else assert.equal(restored[name], entries, `table ${name}`);
    }
    assert.ok((original['chunks']?.length ?? 0) > 0 && (original['feedback']?.length ?? 0) > 0 && (original['pluginKv']?.length ?? 0) > 0, 'the tenant had data to move');
    assert.is(scope.store.provenanceTag('manual#0', 'The red lever releases the brake. Oil the chain every month.'), (original['chunks']?.[0]?.[1] as { tag: string }).tag, 'same data key: tags still verify');
    const audit = readAudit(scope, { limit: 1000 });
    assert.ok(audit.verified);
    assert.equal(audit.entries.slice(-2).map((entry) => entry.kind), ['tenant.exported', 'tenant.imported']);
    scope.release();
  });
});

test('an export taken while an ingest has written rows but not committed them imports, without those rows', async () => {
  await withTarget('53', async ({ source, tenantId, dir }, target) => {
    const scope = mintScopeForOperator(source.authority, operator, tenantId);
    const rowsBefore = [...scope.store.chunks.entries()].length;
    // The ingest's steps pause once rows are written and the final transaction (the one that lists
    // them in a document) has not run, as a cell's scheduler may between two slices.
    let resume: () => void = () => undefined;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    let inGap: () => void = () => undefined;
    const gap = new Promise<void>((resolve) => (inGap = resolve));
    let pausedOnce = false;
    const text = Array.from({ length: 300 }, (_, i) => `Sentence ${i} tells how the blue valve number ${i} is opened.`).join(' ');
    const ingest = ingestDocuments(scope, createLocalEmbedder(), [{ id: 'valves', title: 'Valves', text }], {
      prepare: async (documents, local) => documents.map((document) => prepareText(document, local)),
      slice: async (work) => {
        if (!pausedOnce && [...scope.store.chunks.entries()].length > rowsBefore) {
          pausedOnce = true;
          inGap();
          await resumed;
        }
        return work();
      },
    });
    await gap;
    assert.ok(scope.store.documents.get('valves') === undefined, 'the document is not committed yet');
    const file = join(dir, 'mid-ingest.ctx');
    await exportTenantFile(scope, source.authority.registry, file, KEY);
    resume();
    const result = await ingest;
    assert.ok(result.chunks > 0);
    scope.release();
    const { counts } = await importTenantFile(target.authority, operator, file, KEY, metering);
    assert.is(counts['chunks'], rowsBefore, 'only the committed chunks travelled');
    const imported = mintScopeForOperator(target.authority, operator, tenantId);
    assert.is(imported.store.documents.get('valves'), undefined);
    assert.ok(imported.store.documents.get('manual') !== undefined);
    imported.release();
  });
});

test('an export is one snapshot: what is written after it starts is not in the file, and the loop turns while it is written', async () => {
  await withTarget('54', async ({ source, tenantId, dir }, target) => {
    const scope = mintScopeForOperator(source.authority, operator, tenantId);
    // 15 MiB of plugin state: sealing and writing it is far more than one step of work.
    for (let i = 0; i < 240; i += 1) scope.store.kvSet('prompt', `blob-${i}`, randomBytes(64 * 1024));
    const file = join(dir, 'snapshot.ctx');
    const kvBefore = [...scope.store.pluginKv.entries()].length;
    const pending = startTenantExport(scope, source.authority.registry, file, KEY);
    // Written after the snapshot, before the file is: neither may appear in it.
    scope.store.kvSet('retrieval', 'after', new Uint8Array([9]));
    scope.store.kvSet('prompt', 'blob-0', new Uint8Array([1]));
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const turnsBefore = turns;
    const counts = await pending.finish();
    ticking = false;
    assert.ok(turns > turnsBefore, 'the event loop turned while the file was written');
    assert.is(counts['pluginKv'], kvBefore, 'the plugin state as of the snapshot');
    scope.release();
    const { tenant } = await importTenantFile(target.authority, operator, file, KEY, metering);
    const imported = mintScopeForOperator(target.authority, operator, tenant.id);
    assert.is(imported.store.kvGet('retrieval', 'after'), undefined, 'a write after the snapshot is not in the file');
    assert.is(imported.store.kvGet('prompt', 'blob-0')?.byteLength, 64 * 1024, 'nor is a change after it');
    assert.equal(imported.store.kvGet('retrieval', 'state'), new Uint8Array([1, 2, 3]));
    imported.release();
  });
});

test('an export started twice is refused the second time', async () => {
  await withExported(async ({ source, tenantId, dir }) => {
    const scope = mintScopeForOperator(source.authority, operator, tenantId);
    const pending = startTenantExport(scope, source.authority.registry, join(dir, 'twice.ctx'), KEY);
    await pending.finish();
    await expectRefusal(pending.finish(), 'STORAGE_FAILED', /finished twice/);
    scope.release();
  });
});

test('a second import of a tenant while one runs on the host is refused; the first completes, and a later one replaces it', async () => {
  await withTarget('55', async ({ file, tenantId }, target) => {
    const first = importIncomingTenant(target.authority, operator, tenantId, 'one', file, KEY, metering);
    await expectRefusal(importIncomingTenant(target.authority, operator, tenantId, 'one', file, KEY, metering), 'TENANT_STATE_CONFLICT', /already running/);
    const done = await first;
    assert.equal([done.status.state, done.status.complete], ['incoming', true]);
    const again = await importIncomingTenant(target.authority, operator, tenantId, 'one', file, KEY, metering);
    assert.equal([again.status.state, again.status.complete], ['incoming', true], 'once it ended, a repeated import replaces the copy');
  });
});

test('a wrong key, an altered byte, a cut-off end: refused, and nothing is left on the target', async () => {
  await withTarget('53', async ({ file, dir }, target) => {
    const bytes = readFileSync(file);
    const altered = Buffer.from(bytes);
    const middle = Math.floor(bytes.length / 2);
    altered[middle] = (altered[middle] as number) ^ 0x01;
    writeFileSync(join(dir, 'altered.ctx'), altered);
    const headerEnd = bytes.indexOf(0x0a) + 1;
    const firstFrame = headerEnd + 4 + bytes.readUInt32BE(headerEnd);
    writeFileSync(join(dir, 'truncated.ctx'), bytes.subarray(0, firstFrame));
    await expectRefusal(importTenantFile(target.authority, operator, file, Buffer.from(newExportKey(), 'hex'), metering), 'TENANT_EXPORT_INVALID', /frame 0 does not authenticate: a wrong export key/);
    await expectRefusal(importTenantFile(target.authority, operator, join(dir, 'altered.ctx'), KEY, metering), 'TENANT_EXPORT_INVALID', /does not authenticate/);
    await expectRefusal(importTenantFile(target.authority, operator, join(dir, 'truncated.ctx'), KEY, metering), 'TENANT_EXPORT_INVALID', /frame 0 does not authenticate|truncated/);
    assert.equal(target.authority.registry.listTenants(), [], 'no tenant registered');
    assert.ok(!existsSync(join(target.dir, 'tenants')) || readdirSync(join(target.dir, 'tenants')).length === 0, 'no directory left');
  });
});

test('importing a tenant the host already has is TENANT_EXISTS and changes nothing', async () => {
  await withExported(async ({ source, file, tenantId, apiKey }) => {
    await expectRefusal(importTenantFile(source.authority, operator, file, KEY, metering), 'TENANT_EXISTS', new RegExp(`already has tenant ${tenantId}`));
    const scope = mintScopeFromApiKey(source.authority, apiKey);
    assert.is(scope.store.chunks.count(), 1, 'the existing tenant is untouched');
    scope.release();
  });
});

test('frame size: a frame at the limit is read; one byte over is refused before it is decrypted', async () => {
  const source = openTestAuthority({ hexByte: '54' });
  const target = openTestAuthority({ hexByte: '55' });
  const dir = mkdtempSync(join(tmpdir(), 'ctx-export-'));
  try {
    const { tenant } = createTenant(source.authority, operator, 'Big');
    const scope = mintScopeForOperator(source.authority, operator, tenant.id);
    // One plugin module that fills a frame to the byte: 4 length bytes plus the serialised record.
    const probe = (size: number) => ({ kind: 'entry', table: 'pluginModules', key: 'retrieval\u00001', value: new Uint8Array(size) });
    const { serialize } = await import('node:v8');
    let size = LIMITS.exportFrameBytesMax - 4 - serialize(probe(0)).length;
    while (serialize(probe(size)).length + 4 > LIMITS.exportFrameBytesMax) size -= 1;
    scope.store.pluginModules.put('retrieval\u00001', new Uint8Array(size));
    const file = join(dir, 'big.ctx');
    await exportTenantFile(scope, source.authority.registry, file, KEY);
    scope.release();
    const bytes = readFileSync(file);
    const headerEnd = bytes.indexOf(0x0a) + 1;
    const sizes: number[] = [];
    for (let offset = headerEnd; offset < bytes.length; offset += 4 + bytes.readUInt32BE(offset)) sizes.push(bytes.readUInt32BE(offset));
    assert.ok(sizes.includes(LIMITS.exportFrameBytesMax + 16), `a frame is exactly at the limit: ${sizes.join(', ')}`);
    // The frame at the limit is read and authenticated; its one entry is then judged like any
    // other, and refused for what it is (no real entry is this large): not for the frame's size.
    await expectRefusal(importTenantFile(target.authority, operator, file, KEY, metering), 'TENANT_EXPORT_INVALID', /^pluginModules: "retrieval\\u00001" belongs to no stored plugin version/);
    const over = Buffer.concat([bytes.subarray(0, headerEnd), Buffer.from([0x01, 0x00, 0x00, 0x11])]);
    writeFileSync(join(dir, 'over.ctx'), over);
    const other = openTestAuthority({ hexByte: '56' });
    try {
      await expectRefusal(importTenantFile(other.authority, operator, join(dir, 'over.ctx'), KEY, metering), 'TENANT_EXPORT_INVALID', /frame 0 is 16777233 bytes, limit 16777232/);
    } finally {
      await other.close();
    }
  } finally {
    await target.close();
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
