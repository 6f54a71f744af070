/**
 * Master key rotation below the server, including the crashes it must survive: after a rotation
 * only the new key opens the registry and every tenant's environment; a crash between the two
 * directory renames, or before the swap, is recovered at the next open with whichever key the
 * surviving registry needs, and nothing half-rotated is left behind.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { openRegistry, rotateMasterKey } from '../../host/storage/master-rotation.ts';
import type { Registry } from '../../host/storage/registry.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess } from '../../host/tenants/scope.ts';

/** Opens DATA_DIR like the host does, runs `action`, closes. */
async function withDataDir<T>(dataDir: string, action: (registry: Registry, environments: TenantEnvironments) => T | Promise<T>): Promise<T> {
  const { registry } = openRegistry(dataDir, undefined);
  const environments = new TenantEnvironments({ dataDir, registry, openMax: LIMITS.openEnvironmentsMax });
  try {
    return await action(registry, environments);
  } finally {
    await environments.close();
    await registry.close();
  }
}

const keyFile = (dataDir: string) => join(dataDir, 'master.key');
const readKey = (dataDir: string) => readFileSync(keyFile(dataDir), 'utf8').trim();

/** A data directory with one tenant holding a kv value; returns its API key. */
async function seeded(dataDir: string): Promise<string> {
  return withDataDir(dataDir, (registry, environments) => {
    const { apiKey } = createTenant({ registry, environments }, operatorFromLocalAccess(), 'T');
    const scope = mintScopeFromApiKey({ registry, environments }, apiKey);
    scope.store.kvSet('retrieval', 'marker', new Uint8Array([7]));
    scope.release();
    return apiKey;
  });
}

async function readsMarker(dataDir: string, apiKey: string): Promise<boolean> {
  return withDataDir(dataDir, (registry, environments) => {
    const scope = mintScopeFromApiKey({ registry, environments }, apiKey);
    const value = scope.store.kvGet('retrieval', 'marker');
    scope.release();
    return value?.[0] === 7;
  });
}

test('after a rotation the new key opens registry and tenants; the old one is refused', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-rotation-'));
  try {
    const apiKey = await seeded(dataDir);
    const oldKey = readKey(dataDir);
    const result = await withDataDir(dataDir, (registry) => rotateMasterKey(registry, { kind: 'file', keyFile: keyFile(dataDir) }, undefined));
    assert.is(result.tenants, 1);
    assert.not.equal(readKey(dataDir), oldKey);
    assert.ok(await readsMarker(dataDir, apiKey));
    try {
      openRegistry(dataDir, oldKey);
      assert.unreachable('the old key must be refused');
    } catch (error) {
      assert.instance(error, HostError);
      assert.is((error as HostError).code, 'STORAGE_MASTER_KEY');
    }
    assert.not.ok(existsSync(join(dataDir, 'registry-retired')) || existsSync(join(dataDir, 'registry-next')));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a crash between the two renames: the next open adopts the new registry and finishes the key file', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-rotation-'));
  try {
    const apiKey = await seeded(dataDir);
    const oldKey = readKey(dataDir);
    cpSync(join(dataDir, 'registry'), join(dataDir, 'old-copy'), { recursive: true });
    await withDataDir(dataDir, (registry) => rotateMasterKey(registry, { kind: 'file', keyFile: keyFile(dataDir) }, undefined));
    const newKey = readKey(dataDir);
    // The state a crash after `registry → registry-retired` and before `registry-next → registry` leaves.
    renameSync(join(dataDir, 'registry'), join(dataDir, 'registry-next'));
    renameSync(join(dataDir, 'old-copy'), join(dataDir, 'registry-retired'));
    writeFileSync(keyFile(dataDir), `${oldKey}\n`);
    writeFileSync(`${keyFile(dataDir)}.next`, `${newKey}\n`);
    assert.ok(await readsMarker(dataDir, apiKey));
    assert.is(readKey(dataDir), newKey, 'the pending key became the key file');
    for (const leftover of ['registry-next', 'registry-retired', 'master.key.next']) assert.not.ok(existsSync(join(dataDir, leftover)), leftover);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a crash before the swap: the old registry and key stay; the half-made next one is discarded', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-rotation-'));
  try {
    const apiKey = await seeded(dataDir);
    const oldKey = readKey(dataDir);
    cpSync(join(dataDir, 'registry'), join(dataDir, 'old-copy'), { recursive: true });
    await withDataDir(dataDir, (registry) => rotateMasterKey(registry, { kind: 'file', keyFile: keyFile(dataDir) }, undefined));
    const newKey = readKey(dataDir);
    renameSync(join(dataDir, 'registry'), join(dataDir, 'registry-next'));
    renameSync(join(dataDir, 'old-copy'), join(dataDir, 'registry'));
    writeFileSync(keyFile(dataDir), `${oldKey}\n`);
    writeFileSync(`${keyFile(dataDir)}.next`, `${newKey}\n`);
    assert.ok(await readsMarker(dataDir, apiKey));
    assert.is(readKey(dataDir), oldKey);
    for (const leftover of ['registry-next', 'master.key.next']) assert.not.ok(existsSync(join(dataDir, leftover)), leftover);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
