/**
 * The tenant lifecycle API. Tenant key: its append-only audit log (`GET /v1/audit`) and its own API
 * keys — list, issue another, revoke one (rotation without the operator). Each acts through the one
 * scope the router minted from the request's key. Operator key: master key rotation while the host
 * serves (storage/master-rotation.ts).
 */
import type { IncomingMessage } from 'node:http';
import { HostError } from '../errors.ts';
import type { HostLogger } from '../log.ts';
import { readAudit } from '../tenants/audit.ts';
import { issueApiKey, revokeApiKey } from '../tenants/lifecycle.ts';
import type { TenantAuthority, TenantScope } from '../tenants/scope.ts';
import type { RotationResult } from '../storage/master-rotation.ts';
import { readJson } from './http.ts';
import type { Route } from './route-types.ts';

/** What the lifecycle routes need. */
export interface LifecycleRouteServices {
  authority: TenantAuthority;
  logger: HostLogger;
  /**
   * Rotates the master key everywhere the registry is open (storage/master-rotation.ts).
   * @throws {HostError} STORAGE_MASTER_KEY as rotateMasterKey does.
   */
  rotateMasterKey(newKey: string | undefined): Promise<RotationResult>;
  /** Ends what a revoked key opened: the sessions it (or a ticket it minted) started, its unredeemed tickets. */
  onKeyRevoked(tenantId: string, keyId: string): Promise<void>;
}

/** The lifecycle routes. */
export function lifecycleRoutes(services: LifecycleRouteServices): Route[] {
  return [
    { method: 'GET', pattern: /^\/v1\/audit$/, auth: 'tenant', handle: (scope, request) => getAudit(scope, request) },
    { method: 'GET', pattern: /^\/v1\/keys$/, auth: 'tenant', handle: (scope) => listKeys(services, scope) },
    { method: 'POST', pattern: /^\/v1\/keys$/, auth: 'tenant', status: 201, handle: (scope) => postKey(services, scope) },
    { method: 'DELETE', pattern: /^\/v1\/keys\/([^/]+)$/, auth: 'tenant', handle: (scope, _request, params) => deleteKey(services, scope, params) },
    { method: 'POST', pattern: /^\/v1\/master-key\/rotate$/, auth: 'operator', handle: (_operator, request) => postRotate(services, request) },
  ];
}

/** `GET /v1/audit?after&limit` → a page of the tenant's audit log, oldest first, with its chain check. */
function getAudit(scope: TenantScope, request: IncomingMessage): unknown {
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
  return readAudit(scope, { after: integerParam(query, 'after', 0), limit: integerParam(query, 'limit', 100) });
}

/**
 * An integer query parameter, or `fallback` when absent.
 * @throws {HostError} HTTP_QUERY_INVALID when it is present and not an integer.
 */
function integerParam(query: URLSearchParams, name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  if (!/^-?\d{1,15}$/.test(raw)) throw new HostError('HTTP_QUERY_INVALID', `${name} must be an integer, got ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw);
}

function listKeys(services: LifecycleRouteServices, scope: TenantScope): unknown {
  const tenant = services.authority.registry.findTenant(scope.tenantId);
  return { keys: tenant === undefined ? [] : services.authority.registry.listApiKeys(tenant) };
}

function postKey(services: LifecycleRouteServices, scope: TenantScope): unknown {
  const issued = issueApiKey(services.authority, scope, 'tenant');
  services.logger.info({ tenant: scope.tenantId, keyId: issued.keyId }, 'api key issued');
  return issued;
}

async function deleteKey(services: LifecycleRouteServices, scope: TenantScope, params: string[]): Promise<unknown> {
  const revoked = revokeApiKey(services.authority, scope, params[0] ?? '', 'tenant');
  services.logger.info({ tenant: scope.tenantId, keyId: revoked.keyId }, 'api key revoked');
  // Revocation cuts access now, not at the next connect: what the key opened is ended too.
  await services.onKeyRevoked(scope.tenantId, revoked.keyId);
  return revoked;
}

/**
 * `POST /v1/master-key/rotate` `{newKey?}` → re-encrypts the registry under a new master key and
 * re-wraps every tenant's data key, while sessions go on. With the key in DATA_DIR/master.key the
 * new key may be omitted (a random one goes into the file; it is never sent back); with
 * CTX_MASTER_KEY it is required, and the operator must set the variable to it before the next restart.
 */
async function postRotate(services: LifecycleRouteServices, request: IncomingMessage): Promise<unknown> {
  const hasBody = Number(request.headers['content-length'] ?? '0') > 0;
  const body = hasBody ? await readJson(request, 4096) : {};
  const newKey = (body as { newKey?: unknown } | null)?.newKey;
  const keys = typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.keys(body) : ['?'];
  if (keys.some((key) => key !== 'newKey') || (newKey !== undefined && typeof newKey !== 'string')) {
    throw new HostError('HTTP_BODY_INVALID', 'body must be {} or {"newKey": "<64 hex characters>"}');
  }
  const result = await services.rotateMasterKey(newKey as string | undefined);
  services.logger.warn({ tenants: result.tenants, keySource: result.keySource, durationMs: Math.round(result.durationMs) }, 'master key rotated');
  const next = result.keySource === 'CTX_MASTER_KEY' ? 'set CTX_MASTER_KEY to the new key before the next restart' : 'the new key is in DATA_DIR/master.key';
  return { rotated: true, ...result, next };
}
