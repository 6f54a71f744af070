/**
 * Invariant 1: a TenantScope cannot be forged. The type checker refuses construction and object
 * literals (the `@ts-expect-error` lines fail `npm test` if they ever compile), and at run time the
 * private constructor cannot be reached without the module's mint symbol.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { parseMasterKey } from '../../host/storage/keys.ts';
import { Registry } from '../../host/storage/registry.ts';
import {
  mintScopeForOperator,
  mintScopeFromApiKey,
  operatorFromLocalAccess,
  TenantScope,
  type TenantAuthority,
} from '../../host/tenants/scope.ts';

function authority(): { authority: TenantAuthority; close(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-scope-'));
  const registry = Registry.open(dir, parseMasterKey('11'.repeat(32), 'test'));
  const environments = new TenantEnvironments({ dataDir: dir, registry, openMax: 4 });
  return {
    authority: { registry, environments },
    close: async () => {
      await environments.close();
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('type level: a scope cannot be constructed or faked outside tenants/scope.ts', () => {
  const attempts = () => {
    // @ts-expect-error the constructor is private
    new TenantScope(Symbol('forged'), {}, {}, undefined);
    // @ts-expect-error an object literal lacks the #private fields
    const literal: TenantScope = { tenantId: 't_0000000000000000', tenantName: 'x', store: {}, release() {} };
    return literal;
  };
  assert.type(attempts, 'function');
});

test('run time: the constructor refuses anything but the mint symbol', () => {
  const Forge = TenantScope as unknown as new (...args: unknown[]) => TenantScope;
  assert.throws(() => new Forge(Symbol('TenantScope.mint'), {}, {}, undefined), /minted only by tenants\/scope\.ts/);
});

test('minting: a key mints its own tenant scope and nothing else', async () => {
  const { authority: auth, close } = authority();
  try {
    const a = auth.registry.createTenant('A');
    const b = auth.registry.createTenant('B');
    const scope = mintScopeFromApiKey(auth, a.apiKey);
    assert.equal(scope.tenantId, a.tenant.id);
    assert.not.equal(scope.tenantId, b.tenant.id);
    scope.release();
    assert.throws(() => scope.store, /used after release/);
    try {
      mintScopeFromApiKey(auth, 'ctx_nope');
      assert.unreachable();
    } catch (error) {
      assert.instance(error, HostError);
      assert.equal((error as HostError).code, 'AUTH_INVALID_KEY');
      assert.equal((error as HostError).message, 'the API key is unknown or revoked');
    }
    const operatorScope = mintScopeForOperator(auth, operatorFromLocalAccess(), b.tenant.id);
    assert.equal(operatorScope.tenantId, b.tenant.id);
    operatorScope.release();
    try {
      mintScopeForOperator(auth, operatorFromLocalAccess(), 't_ffffffffffffffff');
      assert.unreachable();
    } catch (error) {
      assert.equal((error as HostError).code, 'TENANT_NOT_FOUND');
    }
  } finally {
    await close();
  }
});

test.run();
