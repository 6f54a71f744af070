/**
 * The HTTP API (host/DESIGN.md, "HTTP API"). Each tenant route mints a TenantScope from the request's key
 * and releases it when the response is sent; operator routes check the operator key first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { deleteDocument, ingestDocuments, validateDocuments } from '../retrieval/ingest.ts';
import { TenantIndex } from '../retrieval/tenant-index.ts';
import type { HostContext } from '../server.ts';
import { createTenant, deleteTenant } from '../tenants/lifecycle.ts';
import { authenticateOperator, mintScopeFromApiKey, type OperatorCredential, type TenantScope } from '../tenants/scope.ts';
import { patchSettings, readSettings } from '../tenants/settings.ts';
import { bearerToken, readJson, sendJson } from './http.ts';
import { PLUGIN_ROUTES } from './plugin-routes.ts';
import { CACHE_ROUTES } from './cache-routes.ts';
import { OBSERVABILITY_ROUTES } from './observability-routes.ts';
import { PAGE_ROUTES } from './page-routes.ts';
import { TRAINING_ROUTES } from './training-routes.ts';
import { LIFECYCLE_ROUTES } from './lifecycle-routes.ts';
import { SDK_ROUTES } from './sdk-routes.ts';

/** A handler of a tenant route: gets the request's TenantScope (released after the response). */
export type TenantHandler = (context: HostContext, scope: TenantScope, request: IncomingMessage, params: string[]) => Promise<unknown> | unknown;
/** A handler of a route without a key (health, pages). */
export type PublicHandler = (context: HostContext, request: IncomingMessage, params: string[]) => Promise<unknown> | unknown;
/** A handler of an operator route. */
export type OperatorHandler = (context: HostContext, operator: OperatorCredential, request: IncomingMessage, params: string[]) => Promise<unknown> | unknown;

/**
 * One route. A handler returns the JSON body; returning a {@link RawResponse} sends other content.
 * Area modules (plugins, cache, training, …) export their own `Route[]`, listed in ROUTES below.
 */
export interface Route {
  method: string;
  pattern: RegExp;
  auth: 'none' | 'tenant' | 'operator';
  handle: TenantHandler | OperatorHandler | PublicHandler;
  status?: number;
}

/** A non-JSON response from a handler (JSONL exports, pages, metrics text); `headers` are sent besides content-type. */
export class RawResponse {
  constructor(
    readonly contentType: string,
    readonly body: string | Buffer | AsyncIterable<string | Buffer>,
    readonly status = 200,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

const CORE_ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/healthz$/, auth: 'none', handle: (context: HostContext) => ({ ok: true, sessions: countSessions(context) }) },
  { method: 'POST', pattern: /^\/v1\/tenants$/, auth: 'operator', status: 201, handle: postTenant as OperatorHandler },
  { method: 'GET', pattern: /^\/v1\/tenants$/, auth: 'operator', handle: listTenants as OperatorHandler },
  { method: 'DELETE', pattern: /^\/v1\/tenants\/([^/]+)$/, auth: 'operator', handle: removeTenant as OperatorHandler },
  { method: 'POST', pattern: /^\/v1\/tickets$/, auth: 'tenant', status: 201, handle: postTicket as TenantHandler },
  { method: 'GET', pattern: /^\/v1\/config$/, auth: 'tenant', handle: ((_c, scope) => readSettings(scope)) as TenantHandler },
  { method: 'PATCH', pattern: /^\/v1\/config$/, auth: 'tenant', handle: patchConfig as TenantHandler },
  { method: 'POST', pattern: /^\/v1\/documents$/, auth: 'tenant', handle: postDocuments as TenantHandler },
  { method: 'GET', pattern: /^\/v1\/documents$/, auth: 'tenant', handle: listDocuments as TenantHandler },
  { method: 'DELETE', pattern: /^\/v1\/documents\/([^/]+)$/, auth: 'tenant', handle: removeDocument as TenantHandler },
];

/** Every route: the core ones, then each area's. */
const ROUTES: Route[] = [...CORE_ROUTES, ...PLUGIN_ROUTES, ...CACHE_ROUTES, ...OBSERVABILITY_ROUTES, ...PAGE_ROUTES, ...TRAINING_ROUTES, ...LIFECYCLE_ROUTES, ...SDK_ROUTES];

/**
 * Routes one request. Errors propagate to the caller, which sends their wire form.
 * @throws {HostError} HTTP_NOT_FOUND, AUTH_* and whatever the handler throws.
 */
export async function handleApiRequest(context: HostContext, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const candidates = ROUTES.filter((route) => route.pattern.test(url.pathname));
  // HEAD is GET without a body (Node's response drops the body of a HEAD by itself).
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  const route = candidates.find((candidate) => candidate.method === method);
  if (route === undefined) {
    const allowed = candidates.map((candidate) => candidate.method).join(', ');
    throw new HostError('HTTP_NOT_FOUND', allowed === '' ? `no route for ${url.pathname}` : `${request.method} is not allowed on ${url.pathname}; use ${allowed}`);
  }
  const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map((param) => decodeURIComponent(param));
  const status = route.status ?? 200;
  if (route.auth === 'none') return send(response, status, await (route.handle as PublicHandler)(context, request, params));
  if (route.auth === 'operator') {
    const operator = authenticateOperator(context.operatorKey, bearerToken(request));
    return send(response, status, await (route.handle as OperatorHandler)(context, operator, request, params));
  }
  const scope = mintScopeFromApiKey(context.authority, bearerToken(request));
  try {
    const body = await (route.handle as TenantHandler)(context, scope, request, params);
    await send(response, status, body);
  } finally {
    scope.release();
  }
}

async function send(response: ServerResponse, status: number, body: unknown): Promise<void> {
  if (!(body instanceof RawResponse)) return sendJson(response, status, body);
  response.writeHead(body.status, { ...body.headers, 'content-type': body.contentType });
  if (typeof body.body === 'string' || Buffer.isBuffer(body.body)) {
    response.end(body.body);
    return;
  }
  // Streamed bodies (exports) are written as produced, with back-pressure. A client that hangs up
  // never drains: stop there (leaving the loop ends the producer), so the request's scope is released.
  for await (const part of body.body) {
    if (!response.write(part)) await new Promise((resolve) => response.once('drain', resolve).once('close', resolve));
    if (response.destroyed) return;
  }
  response.end();
}

function countSessions(context: HostContext): number {
  let count = 0;
  for (const sessions of context.sessionsByTenant.values()) count += sessions.size;
  return count;
}

async function postTenant(context: HostContext, operator: OperatorCredential, request: IncomingMessage): Promise<unknown> {
  const body = await readJson(request, 64 * 1024);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HostError('TENANT_INVALID', 'body must be {"name": "..."}');
  const unknown = Object.keys(body).filter((key) => key !== 'name');
  if (unknown.length > 0) throw new HostError('TENANT_INVALID', `unknown body key ${JSON.stringify(unknown[0])}`);
  const { tenant, apiKey } = createTenant(context.authority, operator, (body as { name?: unknown }).name as string);
  context.logger.info({ tenant: tenant.id }, 'tenant created');
  return { tenant: { id: tenant.id, name: tenant.name, createdAt: tenant.createdAt }, apiKey };
}

function listTenants(context: HostContext): unknown {
  return {
    tenants: context.authority.registry.listTenants().map((tenant) => ({
      id: tenant.id,
      name: tenant.name,
      createdAt: tenant.createdAt,
      liveSessions: context.sessionsByTenant.get(tenant.id)?.size ?? 0,
    })),
  };
}

async function removeTenant(context: HostContext, operator: OperatorCredential, _request: IncomingMessage, params: string[]): Promise<unknown> {
  const tenantId = params[0] ?? '';
  const deleted = await deleteTenant(context.authority, operator, tenantId, async (tenant) => {
    // Live sessions of a deleted tenant end now: their scope would outlive the data it points to.
    const sessions = [...(context.sessionsByTenant.get(tenant.id) ?? [])];
    await Promise.all(sessions.map((session) => session.close()));
    context.sessionsByTenant.delete(tenant.id);
  });
  if (!deleted) throw new HostError('TENANT_NOT_FOUND', `no tenant has id ${JSON.stringify(tenantId)}`);
  await context.observability.forgetTenant(tenantId);
  context.logger.info({ tenant: tenantId }, 'tenant deleted');
  return { deleted: tenantId };
}

async function postTicket(context: HostContext, scope: TenantScope, request: IncomingMessage): Promise<unknown> {
  const hasBody = Number(request.headers['content-length'] ?? '0') > 0;
  const body = hasBody ? await readJson(request, 4096) : {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HostError('HTTP_BODY_INVALID', 'body must be {"user"?: "..."}');
  const user = (body as { user?: unknown }).user;
  if (user !== undefined && (typeof user !== 'string' || user.length === 0 || user.length > 128)) {
    throw new HostError('HTTP_BODY_INVALID', 'user must be a string of 1..128 characters');
  }
  return context.tickets.issue(scope, user as string | undefined);
}

async function patchConfig(_context: HostContext, scope: TenantScope, request: IncomingMessage): Promise<unknown> {
  return patchSettings(scope, await readJson(request, 64 * 1024));
}

async function postDocuments(context: HostContext, scope: TenantScope, request: IncomingMessage): Promise<unknown> {
  const documents = validateDocuments(await readJson(request, LIMITS.httpBodyBytesMax));
  const result = await ingestDocuments(scope, context.embedder, documents);
  context.logger.info({ tenant: scope.tenantId, inserted: result.inserted, updated: result.updated, chunks: result.chunks }, 'documents ingested');
  return result;
}

function listDocuments(context: HostContext, scope: TenantScope, request: IncomingMessage): unknown {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? '100') || 100, 1), 1000);
  const after = url.searchParams.get('after') ?? undefined;
  const documents = [];
  for (const { value } of scope.store.documents.entries({ ...(after === undefined ? {} : { start: `${after}\u0000` }), limit })) {
    documents.push({ id: value.id, title: value.title, metadata: value.metadata, chunks: value.rows.length, chars: value.chars, updatedAt: value.updatedAt });
  }
  const index = TenantIndex.of(scope.store, context.embedder);
  return { documents, chunks: index.size, generation: scope.store.counters().generation };
}

function removeDocument(context: HostContext, scope: TenantScope, _request: IncomingMessage, params: string[]): unknown {
  const docId = params[0] ?? '';
  return { deleted: docId, ...deleteDocument(scope, context.embedder, docId) };
}
