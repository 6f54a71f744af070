/**
 * Recent activity kept in memory for the consoles: each tenant's recent asks (ids, outcome, cache
 * status and stage timings; never text) and its plugins' log lines (plugin output, which may quote
 * the tenant's data: the reason it is shown to that tenant only, and never written to the host
 * log) for the tenant console, and, for the operator view, the
 * recent incidents (leak blocks and plugin failures) and per-tenant totals. Everything is bounded
 * (LIMITS.recentAsksPerTenantMax, recentAsksTenantsMax, incidentsKeptMax, incidentsPerTenantMax) and lost on restart:
 * this is a view of what is happening, not a record (the audit log and the metrics are those).
 *
 * A tenant's asks are read with that tenant's TenantScope, the totals and incidents with an
 * OperatorCredential: like tenant data elsewhere, nothing here is handed out for a bare tenant id.
 */
import assert from 'node:assert/strict';
import type { ErrorCode } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { OperatorCredential, TenantScope } from '../tenants/scope.ts';
import { isPluginFailure, type AskOutcome, type AskTimings } from './ask-outcome.ts';

/** One recent ask as the tenant console shows it. */
export interface RecentAsk {
  at: number;
  session: string;
  id: string;
  outcome: AskOutcome['kind'];
  code?: ErrorCode;
  cache?: 'hit' | 'miss';
  cacheMatch?: 'exact' | 'semantic';
  similarity?: number;
  sources?: number;
  timings?: AskTimings;
}

/** A leak block or plugin failure, for the operator view. */
export interface Incident {
  at: number;
  tenantId: string;
  sessionId: string;
  /** Absent when a session failed to start. */
  askId?: string;
  code: ErrorCode;
  /** For a leak block: the guard layer that blocked it. */
  layer?: string;
}

/** One line a tenant's plugin logged (through Extism's log functions, or its error message). */
export interface PluginLogLine {
  at: number;
  session: string;
  slot: 'retrieval' | 'prompt';
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Cut to LIMITS.pluginLogLineCharsMax. */
  message: string;
}

/** Per-tenant counts since the host started. */
export interface TenantTotals {
  asks: number;
  answered: number;
  failed: number;
  cacheHits: number;
  leakBlocks: number;
  pluginFailures: number;
}

/** Bounds of the log (LIMITS values, lower in tests). */
export interface ActivityLimits {
  recentAsksPerTenantMax: number;
  recentAsksTenantsMax: number;
  incidentsKeptMax: number;
  /** Incidents kept per tenant; LIMITS.incidentsPerTenantMax when not given. */
  incidentsPerTenantMax?: number;
  pluginLogLinesPerTenantMax: number;
}

/** The activity log. */
export interface ActivityLog {
  askEnded(outcome: AskOutcome): void;
  sessionFailed(event: { tenantId: string; sessionId: string; code: ErrorCode; at?: number }): void;
  /** Keeps a plugin's log line for its tenant's console. */
  pluginLogged(tenantId: string, line: PluginLogLine): void;
  /** The scope's tenant's recent asks, newest first. */
  recentAsks(scope: TenantScope): RecentAsk[];
  /** The scope's tenant's plugin log lines, newest first. */
  pluginLog(scope: TenantScope): PluginLogLine[];
  /** Per-tenant totals and recent incidents (newest first), for the operator. */
  overview(operator: OperatorCredential): { totals: ReadonlyMap<string, TenantTotals>; incidents: Incident[] };
  /** Forgets a deleted tenant's asks, plugin log and totals (its incidents stay: they are the operator's record). */
  forgetTenant(tenantId: string): void;
}

/** Creates an empty activity log. */
export function createActivityLog(limits: ActivityLimits): ActivityLog {
  // Map order is insertion order: re-inserting a tenant on each event makes the first key the least recent.
  const recentByTenant = new Map<string, { asks: RecentAsk[]; pluginLog: PluginLogLine[] }>();
  const totals = new Map<string, TenantTotals>();
  const incidents: Incident[] = [];
  const incidentsPerTenantMax = limits.incidentsPerTenantMax ?? LIMITS.incidentsPerTenantMax;

  const totalsOf = (tenantId: string): TenantTotals => {
    let entry = totals.get(tenantId);
    if (entry === undefined) {
      entry = { asks: 0, answered: 0, failed: 0, cacheHits: 0, leakBlocks: 0, pluginFailures: 0 };
      totals.set(tenantId, entry);
    }
    return entry;
  };
  const noteIncident = (incident: Incident): void => {
    const counts = totalsOf(incident.tenantId);
    if (incident.code === 'LEAK_BLOCKED') counts.leakBlocks += 1;
    else if (isPluginFailure(incident.code)) counts.pluginFailures += 1;
    else return;
    // The tenant's own oldest goes first, so a noisy tenant rotates its own incidents out, not others'.
    let own = 0;
    let oldestOwn = -1;
    incidents.forEach((kept, index) => {
      if (kept.tenantId !== incident.tenantId) return;
      own += 1;
      oldestOwn = index;
    });
    if (own >= incidentsPerTenantMax) incidents.splice(oldestOwn, 1);
    incidents.unshift(incident);
    if (incidents.length > limits.incidentsKeptMax) incidents.pop();
  };
  /** The tenant's recent lists, moved to the most recent end (and the least recent tenant dropped past the bound). */
  const recentOf = (tenantId: string): { asks: RecentAsk[]; pluginLog: PluginLogLine[] } => {
    const recent = recentByTenant.get(tenantId) ?? { asks: [], pluginLog: [] };
    recentByTenant.delete(tenantId);
    recentByTenant.set(tenantId, recent);
    if (recentByTenant.size > limits.recentAsksTenantsMax) recentByTenant.delete(recentByTenant.keys().next().value as string);
    return recent;
  };
  const readRecent = (scope: TenantScope) => {
    assert.ok(scope instanceof TenantScope, 'reading recent activity needs a TenantScope');
    return recentByTenant.get(scope.tenantId) ?? { asks: [], pluginLog: [] };
  };

  return {
    askEnded(outcome) {
      countAsk(totalsOf(outcome.tenantId), outcome);
      if (outcome.kind === 'failed') {
        const { at, tenantId, sessionId, askId, code, layer } = outcome;
        noteIncident({ at, tenantId, sessionId, askId, code, ...(layer === undefined ? {} : { layer }) });
      }
      pushNewest(recentOf(outcome.tenantId).asks, recentAskOf(outcome), limits.recentAsksPerTenantMax);
    },
    sessionFailed({ tenantId, sessionId, code, at = Date.now() }) {
      noteIncident({ at, tenantId, sessionId, code });
    },
    pluginLogged(tenantId, line) {
      const message = line.message.length > LIMITS.pluginLogLineCharsMax ? `${line.message.slice(0, LIMITS.pluginLogLineCharsMax - 1)}…` : line.message;
      pushNewest(recentOf(tenantId).pluginLog, { ...line, message }, limits.pluginLogLinesPerTenantMax);
    },
    recentAsks: (scope) => readRecent(scope).asks.map((ask) => ({ ...ask })),
    pluginLog: (scope) => readRecent(scope).pluginLog.map((line) => ({ ...line })),
    overview(operator) {
      assert.ok(operator instanceof OperatorCredential, 'overview needs an OperatorCredential');
      return { totals: new Map([...totals].map(([id, counts]) => [id, { ...counts }])), incidents: incidents.map((incident) => ({ ...incident })) };
    },
    forgetTenant(tenantId) {
      recentByTenant.delete(tenantId);
      totals.delete(tenantId);
    },
  };
}

/** The console's view of an outcome: the same ids, cache status and timings, copied. */
function recentAskOf(outcome: AskOutcome): RecentAsk {
  const ask: RecentAsk = { at: outcome.at, session: outcome.sessionId, id: outcome.askId, outcome: outcome.kind };
  if (outcome.kind === 'failed') return { ...ask, code: outcome.code };
  if (outcome.kind !== 'answered') return ask;
  return {
    ...ask,
    cache: outcome.cache,
    sources: outcome.sources,
    timings: { ...outcome.timings },
    ...(outcome.cacheMatch === undefined ? {} : { cacheMatch: outcome.cacheMatch }),
    ...(outcome.similarity === undefined ? {} : { similarity: outcome.similarity }),
  };
}

/** Adds an ended ask to its tenant's totals. */
function countAsk(counts: TenantTotals, outcome: AskOutcome): void {
  counts.asks += 1;
  if (outcome.kind === 'answered') {
    counts.answered += 1;
    if (outcome.cache === 'hit') counts.cacheHits += 1;
  } else if (outcome.kind === 'failed') counts.failed += 1;
}

/** Puts `item` first and drops the oldest past `max`. */
function pushNewest<T>(list: T[], item: T, max: number): void {
  list.unshift(item);
  if (list.length > max) list.pop();
}
