/**
 * The plugin store in a real tenant environment: versions per slot (the oldest dropped first),
 * rollback and the built-in, and the per-tenant byte quota on both sides.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { parseMasterKey } from '../../host/storage/keys.ts';
import { activePluginModule, readPluginSlot, rollbackPlugin, storePluginVersion, useBuiltinPlugin } from '../../host/storage/plugin-store.ts';
import { Registry } from '../../host/storage/registry.ts';
import { AskQuota } from '../../host/tenants/ask-quota.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantScope } from '../../host/tenants/scope.ts';

async function withScope(run: (scope: TenantScope) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-plugin-store-'));
  const registry = Registry.open(dir, parseMasterKey('33'.repeat(32), 'test'));
  const environments = new TenantEnvironments({ dataDir: dir, registry, openMax: 4 });
  const authority = { registry, environments };
  const { apiKey } = createTenant(authority, operatorFromLocalAccess(), 'store');
  const scope = mintScopeFromApiKey(authority, apiKey);
  try {
    run(scope);
  } finally {
    scope.release();
    await environments.close();
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const upload = (n: number) => ({ sha256: `sha-${n}`, moduleSha256: `module-${n}`, report: { n } });

test('versions: each upload becomes active, the oldest beyond the limit is dropped, rollback and built-in work', async () => {
  await withScope((scope) => {
    const store = scope.store;
    for (let n = 1; n <= LIMITS.pluginVersionsPerSlotMax + 1; n += 1) storePluginVersion(store, 'retrieval', upload(n), Uint8Array.of(n));
    const record = readPluginSlot(store, 'retrieval');
    assert.equal(record.versions.map((v) => v.version), [2, 3, 4, 5]);
    assert.is(record.active, 5);
    assert.equal(activePluginModule(store, 'retrieval')?.load(), Uint8Array.of(5));
    assert.is(rollbackPlugin(store, 'retrieval').active, 4);
    assert.equal(activePluginModule(store, 'retrieval')?.load(), Uint8Array.of(4));
    assert.is(useBuiltinPlugin(store, 'retrieval').active, null);
    assert.is(activePluginModule(store, 'retrieval'), null);
    assert.is(activePluginModule(store, 'prompt'), null, 'the other slot is untouched');
  });
});

test('pluginStoreBytesPerTenantMax: uploads up to the quota are stored; one byte over is STORAGE_QUOTA and stores nothing', async () => {
  await withScope((scope) => {
    const store = scope.store;
    const quota = LIMITS.pluginStoreBytesPerTenantMax;
    const third = Math.floor(quota / 3);
    storePluginVersion(store, 'retrieval', upload(1), new Uint8Array(third));
    storePluginVersion(store, 'prompt', upload(2), new Uint8Array(third));
    let caught: unknown;
    try {
      storePluginVersion(store, 'prompt', upload(3), new Uint8Array(quota - 2 * third + 1));
    } catch (error: unknown) {
      caught = error;
    }
    assert.instance(caught, HostError);
    assert.is((caught as HostError).code, 'STORAGE_QUOTA');
    assert.is((caught as HostError).message, `plugin modules would take ${quota + 1} bytes, over the tenant's quota of ${quota}; delete or replace older versions`);
    assert.equal(readPluginSlot(store, 'prompt').versions.map((v) => v.sha256), ['sha-2'], 'the refused upload left nothing behind');
    storePluginVersion(store, 'prompt', upload(3), new Uint8Array(quota - 2 * third));
    assert.equal(readPluginSlot(store, 'prompt').versions.map((v) => v.sha256), ['sha-2', 'sha-3']);
  });
});

test('AskQuota: the quota passes in a window, one more is TENANT_ASK_RATE_LIMIT, the next window starts over, tenants count apart', () => {
  let now = 1_000_000;
  const quota = new AskQuota(2, () => now);
  quota.admit('a');
  quota.admit('a');
  quota.admit('b');
  assert.throws(() => quota.admit('a'), (error: unknown) => error instanceof HostError && error.code === 'TENANT_ASK_RATE_LIMIT' && error.message === 'the tenant asked 2 questions in this minute, its quota is 2; try again in 60 s');
  now += 60_000;
  quota.admit('a');
});

test.run();
