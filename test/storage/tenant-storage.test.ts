/**
 * Invariant 2 at rest: one encrypted environment per tenant, in its own directory; no plaintext on
 * disk; deletion destroys the key first, then the directory; the pool of open environments is
 * bounded; plugin kv state is namespaced and size-capped (each limit on both sides), and the
 * host's own entries beside it (the canary) are outside every plugin's key space.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { ingestDocuments } from '../../host/retrieval/ingest.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { deriveKey, parseMasterKey, unwrapTenantKey } from '../../host/storage/keys.ts';
import { Registry } from '../../host/storage/registry.ts';
import { createTenant, deleteTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantAuthority } from '../../host/tenants/scope.ts';

const MASTER = parseMasterKey('22'.repeat(32), 'test');

function setup(openMax = 8): { dir: string; authority: TenantAuthority; close(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-storage-'));
  const registry = Registry.open(dir, MASTER);
  const environments = new TenantEnvironments({ dataDir: dir, registry, openMax });
  return {
    dir,
    authority: { registry, environments },
    close: async () => {
      await environments.close();
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function expectHostError(action: () => unknown, code: string, message: RegExp): void {
  try {
    action();
  } catch (error) {
    assert.instance(error, HostError);
    assert.equal((error as HostError).code, code);
    assert.match((error as HostError).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('each tenant has its own directory, and no plaintext reaches the data files', async () => {
  const { dir, authority, close } = setup();
  try {
    const a = createTenant(authority, operatorFromLocalAccess(), 'A');
    const b = createTenant(authority, operatorFromLocalAccess(), 'B');
    const scope = mintScopeFromApiKey(authority, a.apiKey);
    await ingestDocuments(scope, createLocalEmbedder(), [{ id: 'secret', text: 'PLAINTEXT-MARKER-7731 lives only in tenant A.' }]);
    scope.release();
    await authority.environments.close();
    assert.equal(readdirSync(join(dir, 'tenants')).sort(), [a.tenant.id, b.tenant.id].sort());
    for (const tenantDir of readdirSync(join(dir, 'tenants'))) {
      const bytes = readFileSync(join(dir, 'tenants', tenantDir, 'data.mdb'));
      assert.not.ok(bytes.includes('PLAINTEXT-MARKER-7731'), `plaintext in ${tenantDir}`);
    }
    assert.not.ok(readFileSync(join(dir, 'registry', 'data.mdb')).includes(a.apiKey.slice(-20)), 'API key plaintext in registry');
  } finally {
    await close();
  }
});

test('delete destroys the key, then the directory: a copy taken before cannot be read', async () => {
  const { dir, authority, close } = setup();
  try {
    const doomed = createTenant(authority, operatorFromLocalAccess(), 'Doomed');
    const scope = mintScopeFromApiKey(authority, doomed.apiKey);
    await ingestDocuments(scope, createLocalEmbedder(), [{ id: 'x', text: 'Something worth stealing.' }]);
    scope.release();
    const copy = join(dir, 'stolen-copy');
    cpSync(join(dir, 'tenants', doomed.tenant.id), copy, { recursive: true });
    const dataKeyBefore = unwrapTenantKey(MASTER, doomed.tenant.id, doomed.tenant.wrappedKey);
    assert.equal(await deleteTenant(authority, operatorFromLocalAccess(), doomed.tenant.id), true);
    assert.not.ok(existsSync(join(dir, 'tenants', doomed.tenant.id)));
    assert.equal(authority.registry.findTenant(doomed.tenant.id), undefined, 'the wrapped key is gone with the record');
    assert.equal(authority.registry.authenticate(doomed.apiKey), undefined);
    // The only copy of the data key was the wrapped one in the registry; it is gone, so the copied
    // pages (which hold no plaintext) cannot be decrypted. We do not open the copy with a guessed
    // key: LMDB reading garbage pages can abort the process natively.
    assert.not.ok(authority.registry.listTenants().some((tenant) => tenant.id === doomed.tenant.id));
    assert.not.ok(readFileSync(join(copy, 'data.mdb')).includes('worth stealing'), 'the copy holds no plaintext');
    assert.equal(dataKeyBefore.length, 32);
  } finally {
    await close();
  }
});

/** Tries to read a copied environment with a key in a child process (see helpers/open-environment.ts). */
function readCopy(path: string, key: string): { check?: unknown; documents?: unknown } | undefined {
  const child = spawnSync(process.execPath, ['--disable-wasm-trap-handler', '--import', 'tsx', 'test/helpers/open-environment.ts', path, key], { encoding: 'utf8', timeout: 60_000 });
  // A child that did not finish (killed at the deadline on a loaded machine) proves nothing either
  // way: it must not pass for "the key does not open it". One that aborts did finish: lmdb-js
  // aborts the process on some pages a wrong key garbles, and that is the key not opening it.
  if (child.error !== undefined) throw new Error(`the reading child did not finish: ${child.error.message}`);
  if (child.status !== 0) return undefined;
  try {
    return JSON.parse(child.stdout) as { check?: unknown; documents?: unknown };
  } catch {
    return undefined;
  }
}

test('copy, delete, then prove: the copy opened with its key before reads; after, no key the host still has opens it', async () => {
  const { dir, authority, close } = setup();
  try {
    const doomed = createTenant(authority, operatorFromLocalAccess(), 'Doomed');
    const survivor = createTenant(authority, operatorFromLocalAccess(), 'Survivor');
    const scope = mintScopeFromApiKey(authority, doomed.apiKey);
    await ingestDocuments(scope, createLocalEmbedder(), [{ id: 'ledger', text: 'Something worth stealing.' }]);
    scope.release();
    await authority.environments.close();
    const copy = join(dir, 'stolen-copy');
    cpSync(join(dir, 'tenants', doomed.tenant.id), copy, { recursive: true });
    const keyBefore = unwrapTenantKey(MASTER, doomed.tenant.id, doomed.tenant.wrappedKey);
    // Control: the method works, so a failure below means the key is missing, not the method.
    assert.equal(readCopy(copy, keyBefore), { check: 'ctx-tenant-store-v1', documents: ['ledger'] });
    assert.equal(await deleteTenant(authority, operatorFromLocalAccess(), doomed.tenant.id), true);
    assert.equal(authority.registry.findTenant(doomed.tenant.id), undefined);
    assert.equal(authority.registry.authenticate(doomed.apiKey), undefined, 'its API keys are refused');
    assert.equal(authority.registry.canaryOwner(doomed.tenant.canary), undefined);
    // Every key the host can still produce: the other tenants' data keys, the master-derived keys, a fresh one.
    const candidates = [
      ...authority.registry.listTenants().map((tenant) => authority.registry.unwrapDataKey(tenant)),
      deriveKey(MASTER, 'registry').subarray(0, 24).toString('base64url'),
      deriveKey(MASTER, 'wrap').subarray(0, 24).toString('base64url'),
      randomBytes(24).toString('base64url'),
    ];
    assert.ok(candidates.length >= 4 && authority.registry.listTenants().some((tenant) => tenant.id === survivor.tenant.id));
    for (const key of candidates) {
      const read = readCopy(copy, key);
      assert.not.ok(read?.check === 'ctx-tenant-store-v1' || JSON.stringify(read?.documents ?? []).includes('ledger'), 'the copy opened with a key the host still has');
    }
  } finally {
    await close();
  }
});

test('open environments are bounded: at the limit all open; one over needs an idle one', async () => {
  const { authority, close } = setup(2);
  try {
    const tenants = ['A', 'B', 'C'].map((name) => createTenant(authority, operatorFromLocalAccess(), name));
    const a = mintScopeFromApiKey(authority, tenants[0]!.apiKey);
    const b = mintScopeFromApiKey(authority, tenants[1]!.apiKey);
    assert.equal(authority.environments.openCount, 2);
    expectHostError(() => mintScopeFromApiKey(authority, tenants[2]!.apiKey), 'STORAGE_ENV_LIMIT', /all 2 open tenant environments are in use/);
    a.release();
    const c = mintScopeFromApiKey(authority, tenants[2]!.apiKey);
    assert.equal(authority.environments.openCount, 2);
    b.release();
    c.release();
  } finally {
    await close();
  }
});

test('plugin kv: namespaced by slot, size-capped on both sides of each limit', async () => {
  const { authority, close } = setup();
  try {
    const { apiKey } = createTenant(authority, operatorFromLocalAccess(), 'KV');
    const scope = mintScopeFromApiKey(authority, apiKey);
    const store = scope.store;
    store.kvSet('retrieval', 'k', new Uint8Array([1]));
    assert.equal(store.kvGet('prompt', 'k'), undefined, 'another slot does not see it');
    assert.equal([...(store.kvGet('retrieval', 'k') ?? [])], [1]);
    store.kvSet('retrieval', 'v'.repeat(LIMITS.kvKeyBytesMax), new Uint8Array(LIMITS.kvValueBytesMax));
    expectHostError(() => store.kvSet('retrieval', 'v'.repeat(LIMITS.kvKeyBytesMax + 1), new Uint8Array(1)), 'STORAGE_QUOTA', /kv key is 257 bytes/);
    expectHostError(() => store.kvSet('retrieval', 'big', new Uint8Array(LIMITS.kvValueBytesMax + 1)), 'STORAGE_QUOTA', /kv value is 65537 bytes, limit 65536/);
    store.kvSet('retrieval', 'k', new Uint8Array(0));
    assert.equal(store.kvGet('retrieval', 'k'), undefined, 'an empty value deletes');
    scope.release();
  } finally {
    await close();
  }
});

test('kv total per slot: filling to the quota passes, one byte over fails', async () => {
  const { authority, close } = setup();
  try {
    const { apiKey } = createTenant(authority, operatorFromLocalAccess(), 'Quota');
    const scope = mintScopeFromApiKey(authority, apiKey);
    const store = scope.store;
    const slot = 'prompt';
    // The canary planted beside the slot's state is the host's: it takes none of the slot's quota.
    const full = Math.floor(LIMITS.kvBytesPerSlotMax / LIMITS.kvValueBytesMax);
    for (let i = 0; i < full; i += 1) store.kvSet(slot, `fill-${i}`, new Uint8Array(LIMITS.kvValueBytesMax));
    const rest = LIMITS.kvBytesPerSlotMax - full * LIMITS.kvValueBytesMax;
    if (rest > 0) store.kvSet(slot, 'rest', new Uint8Array(rest));
    expectHostError(() => store.kvSet(slot, 'one-more', new Uint8Array(1)), 'STORAGE_QUOTA', /would be 16777217 bytes, limit 16777216/);
    scope.release();
  } finally {
    await close();
  }
});

test('a store whose canary sits at the old plugin key __ctx_canary has it moved out of the plugin key space when it opens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-storage-'));
  const open = () => {
    const registry = Registry.open(dir, MASTER);
    return { registry, environments: new TenantEnvironments({ dataDir: dir, registry, openMax: 4 }) };
  };
  const first = open();
  const { tenant, apiKey } = createTenant(first, operatorFromLocalAccess(), 'Legacy');
  const encoded = new TextEncoder().encode(tenant.canary);
  let scope = mintScopeFromApiKey(first, apiKey);
  // The layout of earlier versions: the canary written through the plugin kv API of each slot.
  for (const { key } of [...scope.store.pluginKv.entries()]) scope.store.pluginKv.remove(key);
  for (const slot of ['retrieval', 'prompt']) scope.store.kvSet(slot, '__ctx_canary', encoded);
  scope.store.kvSet('prompt', 'mine', new Uint8Array([1, 2]));
  scope.store.kvSet('retrieval', '__ctx_other', new Uint8Array([3]));
  assert.equal(scope.store.kvGet('prompt', '__ctx_canary'), encoded, 'the old layout: a plugin could read it');
  scope.release();
  await first.environments.close();
  await first.registry.close();
  const second = open();
  try {
    scope = mintScopeFromApiKey(second, apiKey);
    for (const slot of ['retrieval', 'prompt']) assert.is(scope.store.kvGet(slot, '__ctx_canary'), undefined, `${slot}: moved out`);
    assert.is(scope.store.plantedCanary(), tenant.canary, 'still planted, as a host entry');
    assert.equal(scope.store.kvGet('prompt', 'mine'), new Uint8Array([1, 2]), "the plugin's own state stays");
    assert.equal(scope.store.kvGet('retrieval', '__ctx_other'), new Uint8Array([3]));
    assert.is(scope.store.meta.get('kvBytes\u0000prompt'), 2, "the canary no longer counts against the slot's quota");
    assert.is(scope.store.meta.get('kvBytes\u0000retrieval'), 1);
    scope.release();
  } finally {
    await second.environments.close();
    await second.registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
