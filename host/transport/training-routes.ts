/**
 * The training API. Tenant key: the tenant's own JSONL export and its report, and its opt-in to
 * pools. Operator key: a pool across named tenants, refused unless every one opted in, returned
 * only after the leak audit. Each tenant route acts through the one scope the router minted.
 */
import type { IncomingMessage } from 'node:http';
import type { HostContext } from '../server.ts';
import { readConsent, recordConsent } from '../training/consent.ts';
import { trainingExportJsonl, trainingExportReport } from '../training/export.ts';
import { buildTrainingPool } from '../training/pool.ts';
import type { OperatorCredential, TenantScope } from '../tenants/scope.ts';
import { readJson } from './http.ts';
import { RawResponse, type OperatorHandler, type Route, type TenantHandler } from './routes.ts';

/** Bytes of a consent or pool request body. */
const SMALL_BODY_BYTES = 64 * 1024;

/** The training routes, listed in routes.ts. */
export const TRAINING_ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/v1\/training\/export$/, auth: 'tenant', handle: exportJsonl as TenantHandler },
  { method: 'GET', pattern: /^\/v1\/training\/export\/report$/, auth: 'tenant', handle: exportReport as TenantHandler },
  { method: 'GET', pattern: /^\/v1\/training\/consent$/, auth: 'tenant', handle: ((_c, scope) => readConsent(scope)) as TenantHandler },
  { method: 'PUT', pattern: /^\/v1\/training\/consent$/, auth: 'tenant', handle: putConsent as TenantHandler },
  { method: 'POST', pattern: /^\/v1\/training\/pool$/, auth: 'operator', handle: postPool as OperatorHandler },
];

function exportJsonl(context: HostContext, scope: TenantScope): RawResponse {
  const owner = (token: string) => context.authority.registry.canaryOwner(token);
  return new RawResponse('application/jsonl; charset=utf-8', trainingExportJsonl(scope, owner));
}

function exportReport(context: HostContext, scope: TenantScope): unknown {
  return trainingExportReport(scope, (token) => context.authority.registry.canaryOwner(token));
}

async function putConsent(context: HostContext, scope: TenantScope, request: IncomingMessage): Promise<unknown> {
  const consent = recordConsent(scope, await readJson(request, SMALL_BODY_BYTES));
  context.logger.info({ tenant: scope.tenantId, pool: consent.pool }, 'training consent recorded');
  return consent;
}

async function postPool(context: HostContext, operator: OperatorCredential, request: IncomingMessage): Promise<unknown> {
  const pool = await buildTrainingPool(context.authority, operator, await readJson(request, SMALL_BODY_BYTES));
  const { report } = pool;
  context.logger.info({ pool: report.poolId, tenants: report.tenants, examples: report.examples, dropped: report.dropped.length }, 'training pool built');
  return pool;
}
