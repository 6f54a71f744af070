/**
 * A tenant's recorded opt-in to training pools (host/DESIGN.md, invariant 6): without it, no pool may
 * include the tenant's examples. Kept in the tenant's own environment, changed only with the
 * tenant's key (`PUT /v1/training/consent`), and every change goes into its audit log.
 */
import { HostError } from '../errors.ts';
import { appendAudit } from '../tenants/audit.ts';
import type { TenantScope } from '../tenants/scope.ts';

/** The tenant's pooling decision. */
export interface PoolConsent {
  /** The tenant allows its positively rated examples into pools with other tenants' examples. */
  pool: boolean;
  /** When it last changed (epoch ms); null when it never did. */
  changedAt: number | null;
}

const CONSENT_KEY = 'trainingConsent';

/** The scope's current decision; no record means no consent. */
export function readConsent(scope: TenantScope): PoolConsent {
  return (scope.store.meta.get(CONSENT_KEY) as PoolConsent | undefined) ?? { pool: false, changedAt: null };
}

/**
 * Records the tenant's decision from a request body `{pool: boolean}` and audits a change.
 * @throws {HostError} HTTP_BODY_INVALID for any other body.
 */
export function recordConsent(scope: TenantScope, body: unknown, now: number = Date.now()): PoolConsent {
  const keys = typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.keys(body) : [];
  const pool = (body as { pool?: unknown } | null)?.pool;
  if (keys.length !== 1 || typeof pool !== 'boolean') throw new HostError('HTTP_BODY_INVALID', 'body must be {"pool": true} or {"pool": false}');
  const current = readConsent(scope);
  if (current.pool === pool) return current;
  const next: PoolConsent = { pool, changedAt: now };
  scope.store.transaction(() => {
    scope.store.meta.put(CONSENT_KEY, next);
    appendAudit(scope, { kind: 'training.consent', actor: 'tenant', detail: { pool } }, now);
  });
  return next;
}
