/**
 * The operational routes: `GET /metrics` (Prometheus text), the tenant console's recent asks, and
 * the operator view's overview. Metrics and the overview name tenants and their activity, so they
 * need the operator key; a tenant sees only its own asks, through the scope its key mints.
 */
import type { Observability } from '../observability/observability.ts';
import type { Registry } from '../storage/registry.ts';
import type { OperatorCredential, TenantScope } from '../tenants/scope.ts';
import { RawResponse, type Route } from './route-types.ts';

/** What the observability routes need. */
export interface ObservabilityRouteServices {
  observability: Observability;
  registry: Registry;
  /** The Prometheus text of every part of the host (all cells), and its content type. */
  renderMetrics(): Promise<{ contentType: string; text: string }>;
  /** Live chat sessions per tenant, host-wide. */
  liveSessions(): Promise<ReadonlyMap<string, number>>;
}

/** The observability routes. */
export function observabilityRoutes(services: ObservabilityRouteServices): Route[] {
  return [
    { method: 'GET', pattern: /^\/metrics$/, auth: 'operator', handle: () => metrics(services) },
    { method: 'GET', pattern: /^\/v1\/asks$/, auth: 'tenant', handle: (scope) => recentAsks(services, scope) },
    { method: 'GET', pattern: /^\/v1\/plugins\/log$/, auth: 'tenant', handle: (scope) => pluginLog(services, scope) },
    { method: 'GET', pattern: /^\/v1\/operator\/overview$/, auth: 'operator', handle: (operator) => overview(services, operator) },
  ];
}

/** `GET /metrics` → the host's and the process's series in the Prometheus text format. */
async function metrics(services: ObservabilityRouteServices): Promise<RawResponse> {
  const { contentType, text } = await services.renderMetrics();
  return new RawResponse(contentType, text, 200, { 'cache-control': 'no-store' });
}

/** `GET /v1/asks` → this tenant's recent asks, newest first: ids, outcome, cache status, stage timings. */
function recentAsks(services: ObservabilityRouteServices, scope: TenantScope): unknown {
  return { asks: services.observability.activity.recentAsks(scope) };
}

/**
 * `GET /v1/plugins/log` → the lines this tenant's plugins logged (newest first): plugin output,
 * which may quote the tenant's own data, so it is kept for the tenant rather than in the host log.
 */
function pluginLog(services: ObservabilityRouteServices, scope: TenantScope): unknown {
  return { lines: services.observability.activity.pluginLog(scope) };
}

/**
 * `GET /v1/operator/overview` → every tenant with its live sessions and its counts since the host
 * started (asks, cache hits, leak blocks, plugin failures), and the recent incidents.
 */
async function overview(services: ObservabilityRouteServices, operator: OperatorCredential): Promise<unknown> {
  const { totals, incidents } = services.observability.activity.overview(operator);
  const live = await services.liveSessions();
  const tenants = services.registry.listTenants().map((tenant) => ({
    id: tenant.id,
    name: tenant.name,
    createdAt: tenant.createdAt,
    liveSessions: live.get(tenant.id) ?? 0,
    ...(totals.get(tenant.id) ?? { asks: 0, answered: 0, failed: 0, cacheHits: 0, leakBlocks: 0, pluginFailures: 0 }),
  }));
  const liveSessions = tenants.reduce((sum, tenant) => sum + tenant.liveSessions, 0);
  return { tenants, liveSessions, incidents };
}
