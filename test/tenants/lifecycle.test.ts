/**
 * Creating a tenant is all or nothing: the registry record, its API key and canary, and its
 * environment (check value, canary, audit entries) either all exist afterwards or none does. A
 * fault is injected after each step, and a real one (no environment slot free) before the
 * environment opens; each time the registry is as before, the key opens nothing, the canary is
 * nobody's and no directory is left.
 */
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import type { TenantRecord } from '../../host/storage/registry.ts';
import { createTenant, type TenantCreationStep } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { openTestAuthority, type TestAuthority } from '../helpers/authority.ts';

const operator = operatorFromLocalAccess();
const STEPS: TenantCreationStep[] = ['registered', 'environment', 'canary', 'audited'];

/** Asserts that nothing of `tenant` is left: no record, no key, no canary owner, no directory. */
function assertGone(host: TestAuthority, created: { tenant: TenantRecord; apiKey: string }, tenantsBefore: number): void {
  const { registry, environments } = host.authority;
  assert.is(registry.findTenant(created.tenant.id), undefined, 'no tenant record');
  assert.is(registry.listTenants().length, tenantsBefore, 'the tenant count is as before');
  assert.is(registry.authenticate(created.apiKey), undefined, 'its API key opens nothing');
  assert.is(registry.apiKeyOwner(created.apiKey), undefined, 'its API key record is gone');
  assert.is(registry.canaryOwner(created.tenant.canary), undefined, 'its canary is nobody\'s');
  assert.not.ok(existsSync(environments.directoryOf(created.tenant)), 'no directory left');
}

test('a fault after any step of tenant creation leaves nothing behind', async () => {
  const host = openTestAuthority();
  try {
    const survivor = createTenant(host.authority, operator, 'Survivor');
    for (const failAt of STEPS) {
      const before = host.authority.registry.listTenants().length;
      let created: { tenant: TenantRecord; apiKey: string } | undefined;
      try {
        createTenant(host.authority, operator, `Doomed ${failAt}`, {
          faultInject: (step, partial) => {
            created = partial;
            if (step === failAt) throw new Error(`injected fault after ${step}`);
          },
        });
        assert.unreachable('creation must fail');
      } catch (error) {
        assert.instance(error, Error);
        assert.is((error as Error).message, `injected fault after ${failAt}`, 'the fault itself is what the caller sees');
      }
      assert.ok(created !== undefined, `the fault point after ${failAt} ran`);
      assertGone(host, created, before);
    }
    const scope = mintScopeFromApiKey(host.authority, survivor.apiKey);
    assert.is(scope.store.plantedCanary(), survivor.tenant.canary, 'the tenant created before is untouched');
    scope.release();
    const after = createTenant(host.authority, operator, 'After the faults');
    assert.ok(host.authority.registry.authenticate(after.apiKey) !== undefined, 'creation works again');
  } finally {
    await host.close();
  }
});

test('a real fault: every environment slot leased, so the new environment cannot open; nothing is left', async () => {
  const host = openTestAuthority({ openMax: 1 });
  try {
    const holder = createTenant(host.authority, operator, 'Holder');
    const held = mintScopeFromApiKey(host.authority, holder.apiKey);
    const before = host.authority.registry.listTenants().length;
    let created: { tenant: TenantRecord; apiKey: string } | undefined;
    try {
      createTenant(host.authority, operator, 'No room', { faultInject: (_step, partial) => void (created = partial) });
      assert.unreachable('creation must fail');
    } catch (error) {
      assert.instance(error, HostError);
      assert.is((error as HostError).code, 'STORAGE_ENV_LIMIT');
    }
    assert.equal(host.authority.registry.listTenants().map((tenant) => tenant.name), ['Holder'], 'no half-created tenant is registered');
    assert.ok(created !== undefined);
    assertGone(host, created, before);
    held.release();
  } finally {
    await host.close();
  }
});

test('a creation that succeeds passes every step once, in order', async () => {
  const host = openTestAuthority();
  try {
    const seen: TenantCreationStep[] = [];
    const { tenant, apiKey } = createTenant(host.authority, operator, 'Whole', { faultInject: (step) => void seen.push(step) });
    assert.equal(seen, STEPS);
    const scope = mintScopeFromApiKey(host.authority, apiKey);
    assert.is(scope.tenantId, tenant.id);
    assert.is(scope.store.plantedCanary(), tenant.canary);
    scope.release();
  } finally {
    await host.close();
  }
});

test.run();
