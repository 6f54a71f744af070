/**
 * Creating and deleting tenants (operator commands). Creation plants the tenant's canary in its
 * stores; deletion crypto-shreds: the wrapped data key and API keys go first, then the directory.
 */
import type { Registry, TenantRecord } from '../storage/registry.ts';
import { mintScopeForOperator, type OperatorCredential, type TenantAuthority } from './scope.ts';

/**
 * Creates a tenant, its environment and its first API key (returned once, in plaintext).
 * @throws {HostError} TENANT_INVALID for a bad name.
 */
export function createTenant(authority: TenantAuthority, operator: OperatorCredential, name: string): { tenant: TenantRecord; apiKey: string } {
  const created = authority.registry.createTenant(name);
  const scope = mintScopeForOperator(authority, operator, created.tenant.id);
  try {
    plantCanary(scope.store.kvSet.bind(scope.store), created.tenant.canary);
  } finally {
    scope.release();
  }
  return created;
}

/**
 * Plants the tenant's canary where a cross-tenant bug would carry it: plugin state of both slots.
 * A copy of these values showing up in another tenant's context is what the guard looks for.
 */
function plantCanary(kvSet: (slot: string, key: string, value: Uint8Array) => void, canary: string): void {
  for (const slot of ['retrieval', 'prompt']) kvSet(slot, '__ctx_canary', new TextEncoder().encode(canary));
}

/**
 * Deletes a tenant: forget its key material (crypto-shred), then remove its directory.
 * @returns false when no tenant has that id.
 */
export async function deleteTenant(
  authority: TenantAuthority,
  _operator: OperatorCredential,
  tenantId: string,
  beforeDestroy?: (tenant: TenantRecord) => Promise<void>,
): Promise<boolean> {
  const registry: Registry = authority.registry;
  const tenant = registry.findTenant(tenantId);
  if (tenant === undefined) return false;
  registry.forgetTenant(tenant);
  await beforeDestroy?.(tenant);
  await authority.environments.destroy(tenant);
  return true;
}
