/**
 * The training API. Tenant key: the tenant's own JSONL export and its report, and its opt-in to
 * pools. Operator key: a pool across named tenants, refused unless every one opted in, returned
 * only after the leak audit. Each tenant route acts through the one scope the router minted.
 */
import type { IncomingMessage } from 'node:http';
import type { HostLogger } from '../log.ts';
import { readConsent, recordConsent } from '../training/consent.ts';
import { trainingExportJsonl, trainingExportReport } from '../training/export.ts';
import { buildTrainingPool } from '../training/pool.ts';
import type { OperatorCredential, TenantAuthority, TenantScope } from '../tenants/scope.ts';
import { readJson } from './http.ts';
import { RawResponse, type Route } from './route-types.ts';

/** Bytes of a consent or pool request body. */
const SMALL_BODY_BYTES = 64 * 1024;

/** What the training routes need. */
export interface TrainingRouteServices {
  authority: TenantAuthority;
  logger: HostLogger;
}

/** The training routes. */
export function trainingRoutes(services: TrainingRouteServices): Route[] {
  return [
    { method: 'GET', pattern: /^\/v1\/training\/export$/, auth: 'tenant', handle: (scope) => exportJsonl(services, scope) },
    { method: 'GET', pattern: /^\/v1\/training\/export\/report$/, auth: 'tenant', handle: (scope) => exportReport(services, scope) },
    { method: 'GET', pattern: /^\/v1\/training\/consent$/, auth: 'tenant', handle: (scope) => readConsent(scope) },
    { method: 'PUT', pattern: /^\/v1\/training\/consent$/, auth: 'tenant', handle: (scope, request) => putConsent(services, scope, request) },
    { method: 'POST', pattern: /^\/v1\/training\/pool$/, auth: 'operator', handle: (operator, request) => postPool(services, operator, request) },
  ];
}

function exportJsonl(services: TrainingRouteServices, scope: TenantScope): RawResponse {
  const owner = (token: string) => services.authority.registry.canaryOwner(token);
  return new RawResponse('application/jsonl; charset=utf-8', trainingExportJsonl(scope, owner));
}

function exportReport(services: TrainingRouteServices, scope: TenantScope): unknown {
  return trainingExportReport(scope, (token) => services.authority.registry.canaryOwner(token));
}

async function putConsent(services: TrainingRouteServices, scope: TenantScope, request: IncomingMessage): Promise<unknown> {
  const consent = recordConsent(scope, await readJson(request, SMALL_BODY_BYTES));
  services.logger.info({ tenant: scope.tenantId, pool: consent.pool }, 'training consent recorded');
  return consent;
}

async function postPool(services: TrainingRouteServices, operator: OperatorCredential, request: IncomingMessage): Promise<unknown> {
  const pool = await buildTrainingPool(services.authority, operator, await readJson(request, SMALL_BODY_BYTES));
  const { report } = pool;
  services.logger.info({ pool: report.poolId, tenants: report.tenants, examples: report.examples, dropped: report.dropped.length }, 'training pool built');
  return pool;
}
