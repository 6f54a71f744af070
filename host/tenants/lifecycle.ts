/**
 * Creating and deleting tenants (operator commands). Creation plants the tenant's canary in its
 * stores; deletion crypto-shreds: the wrapped data key and API keys go first, then the directory.
 */
import { HostError } from '../errors.ts';
import { apiKeyId, type ApiKeyInfo, type Registry, type TenantRecord } from '../storage/registry.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { mintScopeForOperator, type OperatorCredential, type TenantAuthority, type TenantScope } from './scope.ts';

/**
 * Creates a tenant, its environment and its first API key (returned once, in plaintext).
 * @throws {HostError} TENANT_INVALID for a bad name.
 */
export function createTenant(authority: TenantAuthority, operator: OperatorCredential, name: string): { tenant: TenantRecord; apiKey: string } {
  const created = authority.registry.createTenant(name);
  const scope = mintScopeForOperator(authority, operator, created.tenant.id);
  try {
    scope.store.plantCanary(created.tenant.canary);
    appendAudit(scope, { kind: 'tenant.created', actor: 'operator', detail: { name: created.tenant.name } });
    appendAudit(scope, { kind: 'key.created', actor: 'operator', detail: { keyId: apiKeyId(created.apiKey) ?? null } });
  } finally {
    scope.release();
  }
  return created;
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

/**
 * Issues another API key for the scope's tenant (rotation: issue, switch the clients, revoke the old
 * one) and audits it. The key is returned once, in plaintext.
 * @throws {HostError} TENANT_NOT_FOUND when the tenant was deleted meanwhile; TENANT_KEY_LIMIT when
 *   it already has LIMITS.apiKeysPerTenantMax active keys.
 */
export function issueApiKey(authority: TenantAuthority, scope: TenantScope, actor: AuditActor): { keyId: string; apiKey: string } {
  const tenant = authority.registry.findTenant(scope.tenantId);
  if (tenant === undefined) throw new HostError('TENANT_NOT_FOUND', `no tenant has id ${JSON.stringify(scope.tenantId)}`);
  const apiKey = authority.registry.issueApiKey(tenant);
  const keyId = apiKeyId(apiKey) as string;
  appendAudit(scope, { kind: 'key.created', actor, detail: { keyId } });
  return { keyId, apiKey };
}

/**
 * Revokes one of the scope's tenant's API keys and audits it. A tenant may not revoke its last
 * active key (it would lock itself out; the operator can, to suspend a tenant).
 * @throws {HostError} AUTH_INVALID_KEY when the key is not one of this tenant's; TENANT_INVALID for
 *   a tenant revoking its last active key.
 */
export function revokeApiKey(authority: TenantAuthority, scope: TenantScope, keyIdOrKey: string, actor: AuditActor): ApiKeyInfo {
  const registry = authority.registry;
  const keyId = apiKeyId(keyIdOrKey) ?? keyIdOrKey;
  // Another tenant's key is "unknown" here, exactly like a key that does not exist.
  if (registry.apiKeyOwner(keyId) !== scope.tenantId) throw new HostError('AUTH_INVALID_KEY', `this tenant has no API key with id ${JSON.stringify(keyId)}`);
  const tenant = registry.findTenant(scope.tenantId) as TenantRecord;
  const active = registry.listApiKeys(tenant).filter((key) => key.revokedAt === null);
  if (actor === 'tenant' && active.length === 1 && active[0]?.keyId === keyId) {
    throw new HostError('TENANT_INVALID', 'this is the tenant\'s last active API key; issue a new one before revoking it');
  }
  const wasActive = active.some((key) => key.keyId === keyId);
  registry.revokeApiKey(keyId);
  if (wasActive) appendAudit(scope, { kind: 'key.revoked', actor, detail: { keyId } });
  return registry.listApiKeys(tenant).find((key) => key.keyId === keyId) as ApiKeyInfo;
}
