/**
 * The core HTTP API: health, tenants (operator), browser tickets, tenant settings and documents.
 * Handlers are closures over the capabilities the area is handed ({@link CoreRouteServices}), never
 * over a host-wide context object.
 */
import type { IncomingMessage } from 'node:http';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { HostLogger } from '../log.ts';
import type { Embedder } from '../retrieval/embedder.ts';
import { deleteDocument, type DocumentInput, type IngestResult } from '../retrieval/ingest.ts';
import { TenantIndex } from '../retrieval/tenant-index.ts';
import { createTenant, deleteTenant } from '../tenants/lifecycle.ts';
import type { OperatorCredential, TenantAuthority, TenantScope } from '../tenants/scope.ts';
import { patchSettings, readSettings, type SettingsBounds } from '../tenants/settings.ts';
import { readJson, readJsonBytes } from './http.ts';
import type { Route } from './route-types.ts';

/** What the core routes need. */
export interface CoreRouteServices {
  authority: TenantAuthority;
  embedder: Embedder;
  logger: HostLogger;
  /** The operator's bounds on tenant settings (the fuel ceiling, say). */
  settingsBounds: SettingsBounds;
  /** Live chat sessions per tenant (tenants without any may be absent). */
  liveSessions(): Promise<ReadonlyMap<string, number>>;
  /** Issues a single-use chat ticket for the scope's tenant. @throws {HostError} PROTOCOL_RATE_LIMIT over the tenant's share. */
  issueTicket(scope: TenantScope, endUser: string | undefined): Promise<{ ticket: string; expiresAt: number }>;
  /**
   * Parses and validates a `POST /v1/documents` body (off the event loop in a cell: an 8 MB body of
   * a million small objects holds a loop ~180 ms in JSON.parse, and a refused body costs no quota).
   * @throws {HostError} HTTP_BODY_INVALID, DOCUMENT_INVALID (see retrieval/document-input.ts).
   */
  parseDocuments(scope: TenantScope, body: Uint8Array): Promise<DocumentInput[]>;
  /** Stores validated documents (in bounded steps, under the tenant's ingest quota). */
  ingest(scope: TenantScope, documents: DocumentInput[]): Promise<IngestResult>;
  /** Ends what a tenant being deleted still has open (its sessions, tickets), before its data goes. */
  closeTenant(tenantId: string): Promise<void>;
  /** Forgets a deleted tenant's activity and metric series. */
  forgetTenant(tenantId: string): Promise<void>;
}

/** The core routes. */
export function coreRoutes(services: CoreRouteServices): Route[] {
  const { authority, embedder, logger } = services;
  return [
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      auth: 'none',
      handle: async () => ({ ok: true, sessions: sum(await services.liveSessions()) }),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/tenants$/,
      auth: 'operator',
      status: 201,
      handle: async (operator, request) => {
        const body = await readJson(request, 64 * 1024);
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HostError('TENANT_INVALID', 'body must be {"name": "..."}');
        const unknown = Object.keys(body).filter((key) => key !== 'name');
        if (unknown.length > 0) throw new HostError('TENANT_INVALID', `unknown body key ${JSON.stringify(unknown[0])}`);
        const { tenant, apiKey } = createTenant(authority, operator, (body as { name?: unknown }).name as string);
        logger.info({ tenant: tenant.id }, 'tenant created');
        return { tenant: { id: tenant.id, name: tenant.name, createdAt: tenant.createdAt }, apiKey };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/tenants$/,
      auth: 'operator',
      handle: async () => {
        const live = await services.liveSessions();
        return {
          tenants: authority.registry.listTenants().map((tenant) => ({
            id: tenant.id,
            name: tenant.name,
            createdAt: tenant.createdAt,
            liveSessions: live.get(tenant.id) ?? 0,
          })),
        };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/tenants\/([^/]+)$/,
      auth: 'operator',
      handle: async (operator: OperatorCredential, _request, params) => {
        const tenantId = params[0] ?? '';
        // Live sessions of a deleted tenant end now: their scope would outlive the data it points to.
        const deleted = await deleteTenant(authority, operator, tenantId, (tenant) => services.closeTenant(tenant.id));
        if (!deleted) throw new HostError('TENANT_NOT_FOUND', `no tenant has id ${JSON.stringify(tenantId)}`);
        // A tombstone, so that on a fleet host its keys are invalid (401), not "served elsewhere" (421).
        authority.registry.setFleetState(tenantId, { state: 'deleted', since: Date.now() });
        await services.forgetTenant(tenantId);
        logger.info({ tenant: tenantId }, 'tenant deleted');
        return { deleted: tenantId };
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/tickets$/,
      auth: 'tenant',
      status: 201,
      handle: async (scope, request) => {
        const hasBody = Number(request.headers['content-length'] ?? '0') > 0;
        const body = hasBody ? await readJson(request, 4096) : {};
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HostError('HTTP_BODY_INVALID', 'body must be {"user"?: "..."}');
        const user = (body as { user?: unknown }).user;
        if (user !== undefined && (typeof user !== 'string' || user.length === 0 || user.length > 128)) {
          throw new HostError('HTTP_BODY_INVALID', 'user must be a string of 1..128 characters');
        }
        return services.issueTicket(scope, user as string | undefined);
      },
    },
    { method: 'GET', pattern: /^\/v1\/config$/, auth: 'tenant', handle: (scope) => readSettings(scope, services.settingsBounds) },
    {
      method: 'PATCH',
      pattern: /^\/v1\/config$/,
      auth: 'tenant',
      handle: async (scope, request) => patchSettings(scope, await readJson(request, 64 * 1024), services.settingsBounds),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/documents$/,
      auth: 'tenant',
      handle: async (scope, request) => {
        const documents = await services.parseDocuments(scope, await readJsonBytes(request, LIMITS.httpBodyBytesMax));
        const result = await services.ingest(scope, documents);
        logger.info({ tenant: scope.tenantId, inserted: result.inserted, updated: result.updated, chunks: result.chunks }, 'documents ingested');
        return result;
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/documents$/,
      auth: 'tenant',
      handle: async (scope, request: IncomingMessage) => {
        const index = await TenantIndex.ready(scope.store, embedder);
        const url = new URL(request.url ?? '/', 'http://localhost');
        const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? '100') || 100, 1), 1000);
        const after = url.searchParams.get('after') ?? undefined;
        const documents = [];
        for (const { value } of scope.store.documents.entries({ ...(after === undefined ? {} : { start: `${after}\u0000` }), limit })) {
          documents.push({ id: value.id, title: value.title, metadata: value.metadata, chunks: value.rows.length, chars: value.chars, updatedAt: value.updatedAt });
        }
        return { documents, chunks: index.size, generation: scope.store.counters().generation };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/documents\/([^/]+)$/,
      auth: 'tenant',
      handle: async (scope, _request, params) => {
        const docId = params[0] ?? '';
        return { deleted: docId, ...(await deleteDocument(scope, embedder, docId)) };
      },
    },
  ];
}

function sum(counts: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const count of counts.values()) total += count;
  return total;
}
