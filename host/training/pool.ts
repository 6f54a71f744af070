/**
 * A training pool: the operator's deliberate, audited act of putting several tenants' examples in
 * one data set (host/DESIGN.md, invariant 6). It is refused, pooling nothing, unless every named tenant
 * has opted in; each tenant's examples are built through that tenant's own scope (one at a time,
 * by the same code as its own export); and the whole pool passes the leak audit before any of it is
 * returned: no canary of any tenant (pooled data leaves every partition, so even a tenant's own
 * canary must not ride along), and no passage of another tenant's chunk (training/leak-audit.ts).
 * Each pooled tenant's audit log records what it contributed and what was dropped.
 */
import { randomUUID } from 'node:crypto';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { loopTurn } from '../loop-steps.ts';
import { holdsForeignCanary, type CanaryOwner } from '../pipeline/guard.ts';
import { appendAudit } from '../tenants/audit.ts';
import { withOperatorScope, type OperatorCredential, type TenantAuthority, type TenantScope } from '../tenants/scope.ts';
import { readConsent } from './consent.ts';
import { tenantExamples, type DroppedExample, type DropReason, type TrainingExample } from './examples.ts';
import { compareWithHost, NearDuplicateAudit, type PooledExample } from './leak-audit.ts';

/** What the audit found and what the pool holds (ids, counts and reasons; no text). */
export interface PoolReport {
  poolId: string;
  tenants: string[];
  /** Examples in the pool after the audit. */
  examples: number;
  dropped: DroppedExample[];
  /** How far the near-duplicate comparison reached: every tenant on the host, and their chunks. */
  comparedTenants: number;
  comparedChunks: number;
}

/** A pool: the report and the examples (OpenAI chat format plus provenance naming each tenant). */
export interface TrainingPool {
  report: PoolReport;
  examples: TrainingExample[];
}

/**
 * Builds a pool of the named tenants' positively rated examples, after the leak audit.
 * @throws {HostError} TRAINING_POOL_INVALID for a malformed list, too many tenants or examples;
 *   TENANT_NOT_FOUND for an unknown tenant; TRAINING_CONSENT_MISSING naming every tenant that has
 *   not opted in (nothing is read beyond the consent records then).
 */
export async function buildTrainingPool(authority: TenantAuthority, operator: OperatorCredential, body: unknown, now: number = Date.now()): Promise<TrainingPool> {
  const tenantIds = validatePoolRequest(body);
  const owner: CanaryOwner = (token) => authority.registry.canaryOwner(token);
  const missing = tenantIds.filter((tenantId) => withOperatorScope(authority, operator, tenantId, (scope) => !readConsent(scope).pool));
  if (missing.length > 0) {
    throw new HostError('TRAINING_CONSENT_MISSING', `tenants ${missing.join(', ')} have not opted in to training pools; nothing was pooled`, { tenants: missing });
  }
  const pooled: PooledExample[] = [];
  const dropped: DroppedExample[] = [];
  for (const tenantId of tenantIds) {
    withOperatorScope(authority, operator, tenantId, (scope) => collect(scope, owner, now, pooled, dropped));
    await loopTurn();
  }
  const audit = new NearDuplicateAudit(pooled);
  const comparedTenants = await compareWithHost(audit, authority, operator);
  const kept: TrainingExample[] = [];
  for (const { id, tenant, example } of pooled) {
    const finding = audit.findings.get(id);
    if (finding === undefined) kept.push(example);
    else dropped.push({ tenant, feedbackId: example.provenance.feedbackId, askId: example.provenance.askId, reason: 'near-duplicate', detail: { ...finding } });
  }
  const report: PoolReport = { poolId: randomUUID(), tenants: tenantIds, examples: kept.length, dropped, comparedTenants, comparedChunks: audit.chunksCompared };
  for (const tenantId of tenantIds) withOperatorScope(authority, operator, tenantId, (scope) => auditContribution(scope, report, kept, now));
  return { report, examples: kept };
}

/**
 * Adds one tenant's examples to the pool (or the dropped list); within the tenant's partition the
 * checks are those of its own export, and then any canary at all drops an example.
 * @throws {HostError} TRAINING_POOL_INVALID once the pool would pass LIMITS.poolExamplesMax.
 */
function collect(scope: TenantScope, owner: CanaryOwner, now: number, pooled: PooledExample[], dropped: DroppedExample[]): void {
  for (const outcome of tenantExamples(scope, owner, now)) {
    if (outcome.kind === 'dropped') {
      dropped.push(outcome.dropped);
      continue;
    }
    const { example, chunks } = outcome;
    if (example.messages.some((message) => holdsForeignCanary(message.content, undefined, owner))) {
      dropped.push({ tenant: scope.tenantId, feedbackId: example.provenance.feedbackId, askId: example.provenance.askId, reason: 'canary' });
      continue;
    }
    if (pooled.length >= LIMITS.poolExamplesMax) {
      throw new HostError('TRAINING_POOL_INVALID', `the pool would hold more than ${LIMITS.poolExamplesMax} examples; pool fewer tenants`);
    }
    pooled.push({ id: pooled.length, tenant: scope.tenantId, example, chunks });
  }
}

function auditContribution(scope: TenantScope, report: PoolReport, kept: TrainingExample[], now: number): void {
  const reasons: Partial<Record<DropReason, number>> = {};
  for (const drop of report.dropped) if (drop.tenant === scope.tenantId) reasons[drop.reason] = (reasons[drop.reason] ?? 0) + 1;
  const contributed = kept.filter((example) => example.provenance.tenant === scope.tenantId).length;
  // Counts only: naming the other tenants (or their chunks) here would tell this tenant about them.
  const detail = { poolId: report.poolId, tenants: report.tenants.length, contributed, ...prefixed(reasons) };
  appendAudit(scope, { kind: 'training.pooled', actor: 'operator', detail }, now);
}

function prefixed(reasons: Partial<Record<DropReason, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(reasons).map(([reason, count]) => [`dropped.${reason}`, count as number]));
}

/**
 * Validates `{tenants: [id, ...]}`: 1..LIMITS.poolTenantsMax distinct tenant ids.
 * @throws {HostError} TRAINING_POOL_INVALID naming what is wrong.
 */
function validatePoolRequest(body: unknown): string[] {
  const tenants = (body as { tenants?: unknown } | null)?.tenants;
  const keys = typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.keys(body) : [];
  if (keys.length !== 1 || !Array.isArray(tenants) || tenants.some((id) => typeof id !== 'string')) {
    throw new HostError('TRAINING_POOL_INVALID', 'body must be {"tenants": ["t_…", …]}');
  }
  if (tenants.length === 0 || tenants.length > LIMITS.poolTenantsMax) {
    throw new HostError('TRAINING_POOL_INVALID', `tenants must name 1..${LIMITS.poolTenantsMax} tenants, got ${tenants.length}`);
  }
  const unique = new Set(tenants as string[]);
  if (unique.size !== tenants.length) throw new HostError('TRAINING_POOL_INVALID', 'tenants names a tenant twice');
  return [...unique];
}
