/**
 * The operational routes: `GET /metrics` (Prometheus text), the tenant console's recent asks, and
 * the operator view's overview. Metrics and the overview name tenants and their activity, so they
 * need the operator key; a tenant sees only its own asks, through the scope its key mints.
 */
import type { HostContext } from '../server.ts';
import type { OperatorCredential, TenantScope } from '../tenants/scope.ts';
import { RawResponse, type OperatorHandler, type Route, type TenantHandler } from './routes.ts';

/** The observability routes, listed in routes.ts. */
export const OBSERVABILITY_ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/metrics$/, auth: 'operator', handle: metrics as OperatorHandler },
  { method: 'GET', pattern: /^\/v1\/asks$/, auth: 'tenant', handle: recentAsks as TenantHandler },
  { method: 'GET', pattern: /^\/v1\/plugins\/log$/, auth: 'tenant', handle: pluginLog as TenantHandler },
  { method: 'GET', pattern: /^\/v1\/operator\/overview$/, auth: 'operator', handle: overview as OperatorHandler },
];

/** `GET /metrics` → the host's and the process's series in the Prometheus text format. */
async function metrics(context: HostContext): Promise<RawResponse> {
  const { metrics: host } = context.observability;
  return new RawResponse(host.contentType, await host.render(), 200, { 'cache-control': 'no-store' });
}

/** `GET /v1/asks` → this tenant's recent asks, newest first: ids, outcome, cache status, stage timings. */
function recentAsks(context: HostContext, scope: TenantScope): unknown {
  return { asks: context.observability.activity.recentAsks(scope) };
}

/**
 * `GET /v1/plugins/log` → the lines this tenant's plugins logged (newest first): plugin output,
 * which may quote the tenant's own data, so it is kept for the tenant rather than in the host log.
 */
function pluginLog(context: HostContext, scope: TenantScope): unknown {
  return { lines: context.observability.activity.pluginLog(scope) };
}

/**
 * `GET /v1/operator/overview` → every tenant with its live sessions and its counts since the host
 * started (asks, cache hits, leak blocks, plugin failures), and the recent incidents.
 */
function overview(context: HostContext, operator: OperatorCredential): unknown {
  const { totals, incidents } = context.observability.activity.overview(operator);
  const tenants = context.authority.registry.listTenants().map((tenant) => ({
    id: tenant.id,
    name: tenant.name,
    createdAt: tenant.createdAt,
    liveSessions: context.sessionsByTenant.get(tenant.id)?.size ?? 0,
    ...(totals.get(tenant.id) ?? { asks: 0, answered: 0, failed: 0, cacheHits: 0, leakBlocks: 0, pluginFailures: 0 }),
  }));
  const liveSessions = tenants.reduce((sum, tenant) => sum + tenant.liveSessions, 0);
  return { tenants, liveSessions, incidents };
}
