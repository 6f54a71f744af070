/**
 * The tenant lifecycle API. Tenant key: its append-only audit log (`GET /v1/audit`) and its own API
 * keys — list, issue another, revoke one (rotation without the operator). Each acts through the one
 * scope the router minted from the request's key. Operator key: master key rotation while the host
 * serves (storage/master-rotation.ts).
 */
import type { IncomingMessage } from 'node:http';
import { HostError } from '../errors.ts';
import type { HostContext } from '../server.ts';
import { readAudit } from '../tenants/audit.ts';
import { issueApiKey, revokeApiKey } from '../tenants/lifecycle.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { rotateMasterKey } from '../storage/master-rotation.ts';
import { readJson } from './http.ts';
import type { OperatorHandler, Route, TenantHandler } from './routes.ts';

/** The lifecycle routes, listed in routes.ts. */
export const LIFECYCLE_ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/v1\/audit$/, auth: 'tenant', handle: getAudit as TenantHandler },
  { method: 'GET', pattern: /^\/v1\/keys$/, auth: 'tenant', handle: listKeys as TenantHandler },
  { method: 'POST', pattern: /^\/v1\/keys$/, auth: 'tenant', status: 201, handle: postKey as TenantHandler },
  { method: 'DELETE', pattern: /^\/v1\/keys\/([^/]+)$/, auth: 'tenant', handle: deleteKey as TenantHandler },
  { method: 'POST', pattern: /^\/v1\/master-key\/rotate$/, auth: 'operator', handle: postRotate as OperatorHandler },
];

/** `GET /v1/audit?after&limit` → a page of the tenant's audit log, oldest first, with its chain check. */
function getAudit(_context: HostContext, scope: TenantScope, request: IncomingMessage): unknown {
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

function listKeys(context: HostContext, scope: TenantScope): unknown {
  const tenant = context.authority.registry.findTenant(scope.tenantId);
  return { keys: tenant === undefined ? [] : context.authority.registry.listApiKeys(tenant) };
}

function postKey(context: HostContext, scope: TenantScope): unknown {
  const issued = issueApiKey(context.authority, scope, 'tenant');
  context.logger.info({ tenant: scope.tenantId, keyId: issued.keyId }, 'api key issued');
  return issued;
}

function deleteKey(context: HostContext, scope: TenantScope, _request: IncomingMessage, params: string[]): unknown {
  const revoked = revokeApiKey(context.authority, scope, params[0] ?? '', 'tenant');
  context.logger.info({ tenant: scope.tenantId, keyId: revoked.keyId }, 'api key revoked');
  return revoked;
}

/**
 * `POST /v1/master-key/rotate` `{newKey?}` → re-encrypts the registry under a new master key and
 * re-wraps every tenant's data key, while sessions go on. With the key in DATA_DIR/master.key the
 * new key may be omitted (a random one goes into the file; it is never sent back); with
 * CTX_MASTER_KEY it is required, and the operator must set the variable to it before the next restart.
 */
async function postRotate(context: HostContext, _operator: unknown, request: IncomingMessage): Promise<unknown> {
  const hasBody = Number(request.headers['content-length'] ?? '0') > 0;
  const body = hasBody ? await readJson(request, 4096) : {};
  const newKey = (body as { newKey?: unknown } | null)?.newKey;
  const keys = typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.keys(body) : ['?'];
  if (keys.some((key) => key !== 'newKey') || (newKey !== undefined && typeof newKey !== 'string')) {
    throw new HostError('HTTP_BODY_INVALID', 'body must be {} or {"newKey": "<64 hex characters>"}');
  }
  const result = rotateMasterKey(context.authority.registry, context.masterKeySource, newKey as string | undefined);
  context.logger.warn({ tenants: result.tenants, keySource: result.keySource, durationMs: Math.round(result.durationMs) }, 'master key rotated');
  const next = result.keySource === 'CTX_MASTER_KEY' ? 'set CTX_MASTER_KEY to the new key before the next restart' : 'the new key is in DATA_DIR/master.key';
  return { rotated: true, ...result, next };
}
