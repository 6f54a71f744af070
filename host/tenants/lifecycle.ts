/**
 * Creating and deleting tenants (operator commands). Creation plants the tenant's canary in its
 * stores and is all or nothing; deletion crypto-shreds: the wrapped data key and API keys go
 * first, then the directory.
 */
import { rmSync } from 'node:fs';
import { HostError } from '../errors.ts';
import { apiKeyId, type ApiKeyInfo, type Registry, type TenantRecord } from '../storage/registry.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { mintScopeForOperator, type OperatorCredential, type TenantAuthority, type TenantScope } from './scope.ts';

/** The steps of {@link createTenant}, in order, each a point where a test may inject a fault. */
export type TenantCreationStep = 'registered' | 'environment' | 'canary' | 'audited';

/** Options of {@link createTenant}. */
export interface CreateTenantOptions {
  /**
   * A fault point for tests: runs after each step with what exists so far, and may throw to fail
   * the creation there.
   */
  faultInject?: (step: TenantCreationStep, created: { tenant: TenantRecord; apiKey: string }) => void;
}

/**
 * Creates a tenant, its environment and its first API key (returned once, in plaintext), all or
 * nothing: the registry record, key and canary are written in one registry transaction; then the
 * environment is opened, the canary planted and the creation audited. When any of that fails, the
 * tenant is forgotten again (record, key and canary in one transaction, which also shreds the data
 * key) and its directory removed, and the failure is rethrown.
 * @throws {HostError} TENANT_INVALID for a bad name or a full registry; STORAGE_ENV_LIMIT,
 *   STORAGE_FAILED when its environment cannot be opened or written (nothing is left then).
 */
export function createTenant(authority: TenantAuthority, operator: OperatorCredential, name: string, options: CreateTenantOptions = {}): { tenant: TenantRecord; apiKey: string } {
  const created = authority.registry.createTenant(name);
  const step = (done: TenantCreationStep) => options.faultInject?.(done, created);
  try {
    step('registered');
    const scope = mintScopeForOperator(authority, operator, created.tenant.id);
    try {
      step('environment');
      scope.store.plantCanary(created.tenant.canary);
      step('canary');
      appendAudit(scope, { kind: 'tenant.created', actor: 'operator', detail: { name: created.tenant.name } });
      appendAudit(scope, { kind: 'key.created', actor: 'operator', detail: { keyId: apiKeyId(created.apiKey) ?? null } });
      step('audited');
    } finally {
      scope.release();
    }
  } catch (error) {
    undoCreation(authority, created.tenant);
    throw error;
  }
  return created;
}

/**
 * Takes back a creation that failed midway. The registry forgets the tenant at once (its key
 * material with it, so whatever reached its directory is unreadable), and the directory is
 * removed now: createTenant is synchronous, and its callers must find nothing left when it throws.
 * Removing the files of an environment that is still open is safe on the POSIX systems the host
 * runs on (the open handle keeps them until it closes); the close itself completes in the background.
 */
function undoCreation(authority: TenantAuthority, tenant: TenantRecord): void {
  authority.registry.forgetTenant(tenant);
  // A close that fails after the files are gone leaves nothing to act on.
  void authority.environments.destroy(tenant).catch(() => undefined);
  rmSync(authority.environments.directoryOf(tenant), { recursive: true, force: true });
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
