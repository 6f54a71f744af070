/**
 * A tenant export file, played by whoever holds its export key: decrypted, edited and re-sealed, it
 * authenticates — so the import must judge every record as the API would. Each case crafts one
 * malicious edit: an unmetered module (imported only re-vetted and re-metered) and one vetting
 * refuses, a fuel budget far over the ceiling, a negative kv byte count, unknown tables and keys,
 * oversized values, forged chunks, a broken audit chain, too many API keys. Each refusal is
 * TENANT_EXPORT_INVALID naming what was wrong, and leaves nothing on the target: no tenant record,
 * no key, no directory. An honest file with an uploaded plugin still moves, and its plugin runs.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { ingestDocuments } from '../../host/retrieval/ingest.ts';
import { createPluginInstance } from '../../host/sandbox/instance.ts';
import { createMeteringService } from '../../host/sandbox/metering-service.ts';
import { FUEL_EXPORT } from '../../host/sandbox/metering.ts';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { vetPlugin } from '../../host/sandbox/vetting.ts';
import { activePluginModule, readPluginSlot, storePluginVersion } from '../../host/storage/plugin-store.ts';
import { readAudit } from '../../host/tenants/audit.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeForOperator, mintScopeFromApiKey, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { patchSettings } from '../../host/tenants/settings.ts';
import { exportTenantFile, importTenantFile, newExportKey } from '../../host/tenants/tenant-file.ts';
import { storeFeedback } from '../../host/training/feedback.ts';
import { openTestAuthority, type TestAuthority } from '../helpers/authority.ts';
import { entriesOf, openExport, putEntry, removeEntry, sealExport, type OpenedExport } from '../helpers/export-file.ts';
import { assertHostError, memoryTenant, withDeadline } from '../sandbox/harness.ts';
import { compileWat, watFixture } from '../sandbox/wat.ts';

const operator = operatorFromLocalAccess();
const KEY = Buffer.from(newExportKey(), 'hex');
const metering = createMeteringService();
const dir = mkdtempSync(join(tmpdir(), 'ctx-import-'));
const source = openTestAuthority({ hexByte: '61' });
let file = '';
let tenantId = '';
let apiKey = '';
let fileCount = 0;

/** A memory and CPU bomb without metering: it grows memory 16 pages at a time, forever. */
const BOMB = compileWat(`(module (memory (export "memory") 1)
  (func (export "retrieve") (result i32) (loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i32.const 0)))`);

test.before(async () => {
  const created = createTenant(source.authority, operator, 'Movable');
  tenantId = created.tenant.id;
  apiKey = created.apiKey;
  const scope = mintScopeFromApiKey(source.authority, apiKey);
  await ingestDocuments(scope, createLocalEmbedder(), [{ id: 'manual', title: 'Manual', text: 'The red lever releases the brake.', metadata: { lang: 'en' } }]);
  patchSettings(scope, { systemPrompt: 'Be brief.', feedback: { retain: true } });
  storeFeedback(scope, { askId: 'a1', rating: 1, question: 'What releases the brake?', answer: 'The red lever.', sources: [{ docId: 'manual', chunkId: 'manual#0', title: 'Manual', score: 1 }] });
  scope.store.kvSet('retrieval', 'state', new Uint8Array([1, 2, 3]));
  const { report, module } = await vetPlugin(await watFixture('wat-retrieval'), 'retrieval', metering);
  storePluginVersion(scope.store, 'retrieval', { sha256: report.sha256, moduleSha256: report.module.sha256, report }, module);
  scope.release();
  file = join(dir, 'tenant.ctx');
  const exporter = mintScopeForOperator(source.authority, operator, tenantId);
  await exportTenantFile(exporter, source.authority.registry, file, KEY);
  exporter.release();
});
test.after(async () => {
  await source.close();
  await metering.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The honest export, opened for editing. */
const opened = (): OpenedExport => openExport(file, KEY);

/** Seals an edited export into a new file. */
function sealed(edited: OpenedExport, frames?: Record<string, unknown>[][]): string {
  fileCount += 1;
  const path = join(dir, `edited-${fileCount}.ctx`);
  sealExport(path, KEY, edited, frames);
  return path;
}

/** Imports `path` into a fresh host and expects TENANT_EXPORT_INVALID matching `message`, with nothing left behind. */
async function refused(path: string, message: RegExp): Promise<void> {
  const target = openTestAuthority({ hexByte: '62' });
  try {
    let caught: unknown;
    await importTenantFile(target.authority, operator, path, KEY, metering).catch((error: unknown) => (caught = error));
    assert.instance(caught, HostError, `expected a refusal, got ${String(caught)}`);
    assert.is((caught as HostError).code, 'TENANT_EXPORT_INVALID', (caught as HostError).message);
    assert.match((caught as HostError).message, /; nothing was imported$/);
    assert.match((caught as HostError).message.replace(/; nothing was imported$/, ''), message);
    assert.equal(target.authority.registry.listTenants(), [], 'no tenant registered');
    assert.is(target.authority.registry.authenticate(apiKey), undefined, 'the key opens nothing');
    assert.ok(!existsSync(join(target.dir, 'tenants')) || readdirSync(join(target.dir, 'tenants')).length === 0, 'no directory left');
  } finally {
    await target.close();
  }
}

/** Imports `path` into a fresh host (closed by the caller). */
async function imported(path: string): Promise<TestAuthority> {
  const target = openTestAuthority({ hexByte: '63' });
  await importTenantFile(target.authority, operator, path, KEY, metering);
  return target;
}

test('an honest export with an uploaded plugin moves: the plugin is re-metered and runs, with its fuel budget', async () => {
  const target = await imported(file);
  try {
    const scope = mintScopeFromApiKey(target.authority, apiKey);
    const active = activePluginModule(scope.store, 'retrieval');
    assert.ok(active !== null, 'the upload is still the active version');
    const instance = await createPluginInstance(await compilePlugin(active.load()), { slot: 'retrieval', capabilities: memoryTenant().capabilities });
    for (let call = 0; call < 3; call += 1) assert.equal(await instance.retrieve({ query: 'q', k: 1, history: [] }), [{ chunkId: 'wat#0', score: 1 }]);
    await instance.close();
    assert.is(active.version.moduleBytes, active.load().byteLength, 'the version record describes the module stored');
    assert.equal(scope.store.kvGet('retrieval', 'state'), new Uint8Array([1, 2, 3]));
    assert.is(scope.store.plantedCanary(), target.authority.registry.findTenant(tenantId)?.canary);
    assert.ok(readAudit(scope, { limit: 1000 }).verified);
    scope.release();
  } finally {
    await target.close();
  }
});

test('an unvetted, unmetered module in the file is imported only re-vetted and re-metered: fuel and the memory cap hold', async () => {
  const edited = opened();
  const [module] = entriesOf(edited, 'pluginModules');
  assert.ok(module !== undefined);
  module.value = await BOMB;
  const target = await imported(sealed(edited));
  try {
    const scope = mintScopeFromApiKey(target.authority, apiKey);
    const active = activePluginModule(scope.store, 'retrieval');
    assert.ok(active !== null);
    const stored = new WebAssembly.Module(active.load());
    assert.ok(WebAssembly.Module.exports(stored).some((entry) => entry.name === FUEL_EXPORT), 'the stored module is metered');
    const instance = await createPluginInstance(await compilePlugin(active.load()), { slot: 'retrieval', capabilities: memoryTenant().capabilities });
    await assertHostError(withDeadline(instance.retrieve({ query: 'q', k: 1, history: [] }), 10_000), 'PLUGIN_FUEL_EXHAUSTED', 'retrieve ran out of fuel');
    await instance.close();
    scope.release();
  } finally {
    await target.close();
  }
});

test('a module vetting refuses is TENANT_EXPORT_INVALID naming the slot, the version and why', async () => {
  const edited = opened();
  const [module] = entriesOf(edited, 'pluginModules');
  assert.ok(module !== undefined);
  module.value = await compileWat('(module (import "extism:host/env" "http_request" (func (param i64 i64) (result i64))) (memory (export "memory") 1) (func (export "retrieve") (result i32) (i32.const 0)))');
  await refused(sealed(edited), /^pluginModules: the retrieval plugin, version 1: the module imports function "extism:host\/env" "http_request"/);
});

test('settings out of range: pluginFuelPerCall 1e15 is refused naming the setting', async () => {
  const edited = opened();
  const [settings] = entriesOf(edited, 'meta').filter((entry) => entry.key === 'settings');
  assert.ok(settings !== undefined);
  settings.value = { ...settings.value, pluginFuelPerCall: 1e15 };
  await refused(sealed(edited), new RegExp(`^meta settings: pluginFuelPerCall: must be an integer in ${LIMITS.pluginFuelPerCallMin}\\.\\.${LIMITS.pluginFuelPerCallMax}, got 1000000000000000`));
});

test('counters are recomputed: a negative kv byte count, or one that does not match the entries, is refused', async () => {
  const negative = opened();
  putEntry(negative, 'meta', 'kvBytes\u0000retrieval', -5);
  await refused(sealed(negative), /^meta kvBytes\\u0000retrieval: the file says -5 bytes, the retrieval slot's entries hold 3$/);
  const feedback = opened();
  putEntry(feedback, 'meta', 'feedbackCount', 0);
  await refused(sealed(feedback), /^meta feedbackCount: the file says 0, the feedback table holds 1 entries$/);
  const rows = opened();
  const counters = entriesOf(rows, 'meta').find((entry) => entry.key === 'counters');
  assert.ok(counters !== undefined);
  counters.value = { ...counters.value, nextRow: 0 };
  await refused(sealed(rows), /^meta counters: nextRow 0 is not past the last chunk row 0$/);
});

test('unknown tables and keys are refused', async () => {
  const table = opened();
  putEntry(table, 'secrets', 'x', 1);
  await refused(sealed(table), /^the file names a table this host does not have: "secrets"$/);
  const meta = opened();
  putEntry(meta, 'meta', 'operatorKey', 'x');
  await refused(sealed(meta), /^meta: unknown key "operatorKey"$/);
  const slot = opened();
  putEntry(slot, 'plugins', 'storage', { active: null, versions: [], nextVersion: 1 });
  await refused(sealed(slot), /^plugins: unknown key "storage"; the slots are retrieval, prompt$/);
  const kv = opened();
  putEntry(kv, 'pluginKv', 'admin\u0000x', new Uint8Array([1]));
  await refused(sealed(kv), /^pluginKv: key "admin\\u0000x" is not <slot>\\u0000<key> of a plugin slot$/);
  const orphan = opened();
  putEntry(orphan, 'pluginModules', 'prompt\u00007', new Uint8Array([0, 97, 115, 109]));
  await refused(sealed(orphan), /^pluginModules: "prompt\\u00007" belongs to no stored plugin version$/);
});

test('sizes are bounded: an oversized kv value, an overlong document title, too many API keys, an overlong name or key', async () => {
  const kv = opened();
  putEntry(kv, 'pluginKv', 'retrieval\u0000big', new Uint8Array(LIMITS.kvValueBytesMax + 1));
  await refused(sealed(kv), new RegExp(`^pluginKv: the value of "retrieval\\\\u0000big" is ${LIMITS.kvValueBytesMax + 1} bytes, limit ${LIMITS.kvValueBytesMax}$`));
  const title = opened();
  const [document] = entriesOf(title, 'documents');
  assert.ok(document !== undefined);
  document.value = { ...document.value, title: 't'.repeat(LIMITS.documentTitleCharsMax + 1) };
  await refused(sealed(title), /^documents "manual": documents\[0\]\.title must be a string of at most 500 characters$/);
  const keys = opened();
  const control = keys.records[0] as { control: { apiKeys: { keyId: string; revokedAt: number | null }[] } };
  const template = control.control.apiKeys[0];
  assert.ok(template !== undefined);
  for (let i = 1; i <= LIMITS.apiKeysPerTenantMax; i += 1) control.control.apiKeys.push({ ...template, keyId: i.toString(16).padStart(16, '0') });
  await refused(sealed(keys), new RegExp(`^the tenant record holds ${LIMITS.apiKeysPerTenantMax + 1} active API keys, limit ${LIMITS.apiKeysPerTenantMax}$`));
  const name = opened();
  (name.records[0] as { control: { name: string } }).control.name = 'n'.repeat(LIMITS.tenantNameCharsMax + 1);
  await refused(sealed(name), new RegExp(`^the tenant record name must be 1\\.\\.${LIMITS.tenantNameCharsMax} characters, got ${LIMITS.tenantNameCharsMax + 1}$`));
  const key = opened();
  putEntry(key, 'feedback', 'k'.repeat(1025), {});
  await refused(sealed(key), /^record \d+ of the file has a malformed key \(a string of at most 1024 bytes or a row number\)$/);
});

test('forged data: a chunk whose tag does not verify, a document whose chunk is missing, a broken audit chain', async () => {
  const tag = opened();
  const [chunk] = entriesOf(tag, 'chunks');
  assert.ok(chunk !== undefined);
  chunk.value = { ...chunk.value, text: 'The red lever releases nothing.' };
  await refused(sealed(tag), /^chunks 0: the provenance tag of "manual#0" does not verify under the tenant's key$/);
  const missing = opened();
  removeEntry(missing, 'chunks', 0);
  await refused(sealed(missing), /^documents "manual": row 0 is not a chunk of it$/);
  const audit = opened();
  const [first] = entriesOf(audit, 'audit');
  assert.ok(first !== undefined);
  first.value = { ...first.value, actor: 'tenant' };
  await refused(sealed(audit), /^audit: the chain breaks at entry 1$/);
});

test('records out of place: a second tenant record, an end record before the end', async () => {
  const twice = opened();
  twice.records.splice(1, 0, twice.records[0] as Record<string, unknown>);
  await refused(sealed(twice), /^record 1 of the file is a second tenant record$/);
  const early = opened();
  early.records.splice(2, 0, { kind: 'end', counts: {} });
  await refused(sealed(early), /^record 2 of the file is an end record before the end$/);
});

test("the canary: an entry holding another value is refused; an earlier version's file, with the canary at a plugin key, imports with it moved out", async () => {
  const other = opened();
  const [canary] = entriesOf(other, 'pluginKv').filter((entry) => String(entry.key).startsWith('\u0000'));
  assert.ok(canary !== undefined);
  canary.value = new TextEncoder().encode('ctxcanary-000000000000000000000000');
  await refused(sealed(other), /^pluginKv: the canary entry of the (retrieval|prompt) slot is not the tenant's canary$/);
  const legacy = opened();
  const planted = entriesOf(legacy, 'pluginKv').filter((entry) => String(entry.key).startsWith('\u0000'));
  assert.is(planted.length, 2);
  for (const entry of planted) {
    const slot = String(entry.key).split('\u0000').at(-1) as string;
    entry.key = `${slot}\u0000__ctx_canary`;
    const usage = entriesOf(legacy, 'meta').find((candidate) => candidate.key === `kvBytes\u0000${slot}`);
    if (usage === undefined) putEntry(legacy, 'meta', `kvBytes\u0000${slot}`, entry.value.byteLength);
    else usage.value += entry.value.byteLength;
  }
  const target = await imported(sealed(legacy));
  try {
    const scope = mintScopeFromApiKey(target.authority, apiKey);
    for (const slot of ['retrieval', 'prompt']) assert.is(scope.store.kvGet(slot, '__ctx_canary'), undefined, `${slot}: no plugin key reaches the canary`);
    assert.is(scope.store.plantedCanary(), target.authority.registry.findTenant(tenantId)?.canary);
    assert.is(scope.store.meta.get('kvBytes\u0000retrieval'), 3, "only the plugin's own bytes count");
    scope.release();
  } finally {
    await target.close();
  }
});

test.run();
