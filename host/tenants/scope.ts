/**
 * TenantScope: the only way to reach a tenant's data (host/DESIGN.md, invariant 1). A scope is minted
 * here and only here — by authenticating an API key (in a cell, or in the supervisor, which hands
 * the connection over with the key's id: see {@link mintScopeFromHandoff}), or by an operator
 * command naming the tenant — and cannot be forged elsewhere: its constructor is private, it holds `#private`
 * fields (so no object literal can pass for one), and the mint token is a module-private symbol.
 * A scope is also a lease on the tenant's open environment: release it when the session or request ends.
 */
import assert from 'node:assert/strict';
import { HostError } from '../errors.ts';
import { hashSecret, verifySecret, type SecretHash } from '../storage/keys.ts';
import type { TenantEnvironments, TenantLease } from '../storage/environments.ts';
import type { Registry, TenantRecord } from '../storage/registry.ts';
import type { TenantStore } from '../storage/tenant-store.ts';

const MINT = Symbol('TenantScope.mint');

/** What minting needs: the control plane and the open environments. Built once by the server. */
export interface TenantAuthority {
  readonly registry: Registry;
  readonly environments: TenantEnvironments;
}

/** A capability for one tenant's data. Obtain one from the mint functions below. */
export class TenantScope {
  readonly #tenant: TenantRecord;
  readonly #lease: TenantLease;
  readonly #endUser: string | undefined;
  readonly #keyId: string | undefined;
  #released = false;

  private constructor(mint: symbol, tenant: TenantRecord, lease: TenantLease, minted: Minted) {
    assert.ok(mint === MINT, 'TenantScope is minted only by tenants/scope.ts');
    this.#tenant = tenant;
    this.#lease = lease;
    this.#endUser = minted.endUser;
    this.#keyId = minted.keyId;
  }

  /** @internal Used by the mint functions of this module only. */
  static [MINT](tenant: TenantRecord, lease: TenantLease, minted: Minted): TenantScope {
    return new TenantScope(MINT, tenant, lease, minted);
  }

  /** The tenant's id (for logs, metrics and routing; never a key to data by itself). */
  get tenantId(): string {
    return this.#tenant.id;
  }

  /** The tenant's display name. */
  get tenantName(): string {
    return this.#tenant.name;
  }

  /** The end user a browser ticket named, if any (for per-user cache scope). */
  get endUser(): string | undefined {
    return this.#endUser;
  }

  /**
   * The id of the API key this scope was minted with (directly, or through a ticket that key
   * minted); undefined for operator scopes. Revoking that key ends what it opened.
   */
  get keyId(): string | undefined {
    return this.#keyId;
  }

  /** This tenant's canary token (the guard must never see it in another tenant's context). */
  get canary(): string {
    return this.#tenant.canary;
  }

  /**
   * The tenant's store.
   * @throws {assert.AssertionError} when used after release (a programmer error).
   */
  get store(): TenantStore {
    assert.ok(!this.#released, `TenantScope of ${this.#tenant.id} used after release`);
    return this.#lease.store;
  }

  /** Whether {@link release} was called. */
  get released(): boolean {
    return this.#released;
  }

  /** Ends the lease; the scope is unusable afterwards. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#lease.release();
  }
}

/** How a scope was minted: the key behind it and the end user a ticket named. */
interface Minted {
  keyId: string | undefined;
  endUser: string | undefined;
}

function mint(authority: TenantAuthority, tenant: TenantRecord, minted: Minted): TenantScope {
  const lease = authority.environments.acquire(tenant);
  return TenantScope[MINT](tenant, lease, minted);
}

/**
 * Mints a scope for the tenant owning `apiKey`.
 * @throws {HostError} AUTH_INVALID_KEY for malformed, unknown or revoked keys (same time for each);
 *   TENANT_MOVED when the tenant moved to another host or is still arriving here.
 */
export function mintScopeFromApiKey(authority: TenantAuthority, apiKey: string): TenantScope {
  const found = authority.registry.authenticateKey(apiKey);
  if (found === undefined) throw new HostError('AUTH_INVALID_KEY', 'the API key is unknown or revoked');
  // A copy that moved away (or is still arriving) is not this tenant's serving copy: a request that
  // reached it by a stale route must not read or write it.
  authority.registry.assertServedHere(found.tenant.id, false);
  return mint(authority, found.tenant, { keyId: found.keyId, endUser: undefined });
}

/**
 * What the supervisor established when it authenticated a chat upgrade (an API key, or a ticket
 * that key minted) before it handed the connection to the tenant's cell over their private channel.
 */
export interface UpgradeHandoff {
  tenantId: string;
  /** The key behind the connection: checked again here, so a key revoked meanwhile opens nothing. */
  keyId: string;
  /** The end user a ticket named. */
  endUser?: string;
}

/**
 * Mints the scope of a connection the supervisor authenticated and handed over: the cell checks
 * again that the key is a live key of that tenant, so the handoff alone (a tenant id) opens nothing.
 * Only the cell's intake of handed connections calls this.
 * @throws {HostError} AUTH_INVALID_KEY when the key was revoked or the tenant deleted since;
 *   TENANT_MOVED when the tenant moved away since.
 */
export function mintScopeFromHandoff(authority: TenantAuthority, handoff: UpgradeHandoff): TenantScope {
  const tenant = authority.registry.findTenant(handoff.tenantId);
  if (tenant === undefined || !authority.registry.keyIsActive(handoff.keyId, handoff.tenantId)) {
    throw new HostError('AUTH_INVALID_KEY', 'the API key or ticket was revoked, or its tenant deleted');
  }
  authority.registry.assertServedHere(tenant.id, false);
  return mint(authority, tenant, { keyId: handoff.keyId, endUser: handoff.endUser });
}

/** Proof that the caller is the operator. Minted by {@link authenticateOperator} or by local CLI access. */
export class OperatorCredential {
  readonly #via: string;
  private constructor(mintToken: symbol, via: string) {
    assert.ok(mintToken === MINT, 'OperatorCredential is minted only by tenants/scope.ts');
    this.#via = via;
  }
  /** @internal */
  static [MINT](via: string): OperatorCredential {
    return new OperatorCredential(MINT, via);
  }
  /** How the operator was recognised ("http", "cli", or "host" for the host's own jobs). */
  get via(): string {
    return this.#via;
  }
}

/** How the operator key is checked: a hash from CTX_OPERATOR_KEY or one stored at first start. */
export interface OperatorKeyCheck {
  hash: SecretHash;
}

/** Builds the operator-key check from a configured key (hashed in memory; the plaintext is dropped). */
export function operatorKeyCheck(plaintext: string): OperatorKeyCheck {
  return { hash: hashSecret(plaintext) };
}

/**
 * Verifies an operator key in constant time.
 * @throws {HostError} AUTH_INVALID_KEY when it does not match.
 */
export function authenticateOperator(check: OperatorKeyCheck, presented: string): OperatorCredential {
  if (!verifySecret(presented, check.hash)) throw new HostError('AUTH_INVALID_KEY', 'the operator key is not valid');
  return OperatorCredential[MINT]('http');
}

/** For the operator CLI, which proves itself by holding the data directory and the master key. */
export function operatorFromLocalAccess(): OperatorCredential {
  return OperatorCredential[MINT]('cli');
}

/** For the host's own maintenance jobs on the operator's behalf (the feedback retention sweep). */
export function operatorForHost(): OperatorCredential {
  return OperatorCredential[MINT]('host');
}

/**
 * Mints a scope for an operator command that names a tenant (export, delete, demo set-up).
 * @throws {HostError} TENANT_NOT_FOUND when no tenant has that id.
 */
export function mintScopeForOperator(authority: TenantAuthority, operator: OperatorCredential, tenantId: string): TenantScope {
  assert.ok(operator instanceof OperatorCredential);
  const tenant = authority.registry.findTenant(tenantId);
  if (tenant === undefined) throw new HostError('TENANT_NOT_FOUND', `no tenant has id ${JSON.stringify(tenantId)}`);
  return mint(authority, tenant, { keyId: undefined, endUser: undefined });
}

/**
 * Runs `action` with an operator scope for the tenant and releases it afterwards, for operator jobs
 * that visit tenants one at a time (pools, CLI commands). When `action` returns a promise, the
 * scope is released once it settles, not before.
 * @throws {HostError} TENANT_NOT_FOUND when no tenant has that id; whatever `action` throws.
 */
export function withOperatorScope<T>(authority: TenantAuthority, operator: OperatorCredential, tenantId: string, action: (scope: TenantScope) => T): T {
  const scope = mintScopeForOperator(authority, operator, tenantId);
  let result: T;
  try {
    result = action(scope);
  } catch (error) {
    scope.release();
    throw error;
  }
  if (result instanceof Promise) return result.finally(() => scope.release()) as T;
  scope.release();
  return result;
}
