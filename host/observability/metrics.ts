/**
 * The metrics adapter: the only file that imports prom-client. It turns ask outcomes and session
 * events into Prometheus series for `GET /metrics`: asks by outcome, errors by code, cache hits and
 * misses, per-stage latency histograms, plugin failures by code, leak blocks and live sessions.
 *
 * Tenant-labelled series go through {@link createTenantLabels}, so their number stays bounded
 * whatever the number of tenants. Each host gets its own registry (tests run several hosts in one
 * process); only the process-wide figures (CPU, memory, event loop, GC) are collected once per
 * process, since prom-client installs observers for them that live as long as the process.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.ts';
import { isPluginFailure, stagesRun, type AskOutcome } from './ask-outcome.ts';
import { createTenantLabels } from './tenant-labels.ts';

/** Latency buckets in seconds: sub-millisecond cache hits up to a slow model's half minute. */
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the host reports to its metrics. */
export interface HostMetrics {
  /** The content type of {@link HostMetrics.render}'s text (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** The host's series and the process's, in the Prometheus text format. */
  render(): Promise<string>;
  /** The same series as data, for the supervisor to add up across cells (the process's only when `withProcess`). */
  json(withProcess: boolean): Promise<MetricsPart>;
  /** Counts one ended ask: outcome, error code, cache result, stage latencies, plugin failure, leak block. */
  askEnded(outcome: AskOutcome): void;
  /** Counts a session that could not start (session limit, plugin load failure, …). */
  sessionFailed(tenantId: string, code: ErrorCode): void;
  /** Drops a deleted tenant's series and frees its label for another tenant. */
  forgetTenant(tenantId: string): Promise<void>;
  /**
   * Counts a network error on one connection (a reset, a broken pipe) by where it happened; the
   * connection ends, nothing else does.
   */
  connectionError(stage: ConnectionStage): void;
}

/** One process's (or one cell's) series as data: what {@link aggregateMetrics} adds up. */
export type MetricsPart = object[];

/** Prometheus text content type (format 0.0.4). */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * Adds up the series of several cells (and the supervisor) into one Prometheus text: counters and
 * histograms are summed, as prom-client's cluster aggregator does for its workers.
 */
export async function aggregateMetrics(parts: readonly MetricsPart[]): Promise<string> {
  return AggregatorRegistry.aggregate([...parts]).metrics();
}

/** The supervisor's own series: what happens before a connection reaches a cell. */
export interface SupervisorMetrics {
  /** Counts a network error that ended one connection at the supervisor. */
  connectionError(stage: ConnectionStage): void;
  /** Counts a cell process that ended without being asked to (a crash, a kill). */
  cellRestarted(slot: number): void;
  /** Counts a chat connection handed to a cell that ended before taking it, and handed again. */
  handoverRetried(): void;
  /** Counts a request the supervisor answered itself because no cell could take it. */
  refused(code: string): void;
  /** The series as data, with the process's. */
  json(): Promise<MetricsPart>;
}

/** Creates the supervisor's metrics, in a registry of their own. */
export function createSupervisorMetrics(): SupervisorMetrics {
  const registry = new Registry();
  const registers = [registry];
  const connectionErrors = new Counter({
    name: 'ctx_connection_errors_total',
    help: 'Network errors (resets, broken pipes) that ended one connection, by stage (http, upgrade, chat).',
    labelNames: ['stage'],
    registers,
  });
  const restarts = new Counter({ name: 'ctx_cell_restarts_total', help: 'Cell processes that ended unasked (crash, kill) and were replaced, by slot.', labelNames: ['slot'], registers });
  const handovers = new Counter({ name: 'ctx_handover_retries_total', help: 'Chat connections handed to a cell that ended before taking them, and handed to its successor.', registers });
  const refusals = new Counter({ name: 'ctx_supervisor_refusals_total', help: 'Requests and upgrades the supervisor refused itself, by error code.', labelNames: ['code'], registers });
  return {
    connectionError: (stage) => connectionErrors.inc({ stage }),
    cellRestarted: (slot) => restarts.inc({ slot: String(slot) }),
    handoverRetried: () => handovers.inc(),
    refused: (code) => refusals.inc({ code }),
    json: async () => [...(await processMetrics().getMetricsAsJSON()), ...(await registry.getMetricsAsJSON())] as MetricsPart,
  };
}

/** Where a connection was when it failed: reading an HTTP request, in a WebSocket upgrade, or in a chat session. */
export type ConnectionStage = 'http' | 'upgrade' | 'chat';

/** Options of {@link createHostMetrics}. */
export interface HostMetricsOptions {
  /** Tenants with their own label value (LIMITS.metricsTenantLabelsMax). */
  tenantLabelsMax: number;
  /** Live sessions per tenant id, read at every scrape. */
  liveSessions(): Iterable<readonly [tenantId: string, sessions: number]>;
}

let processRegistry: Registry | undefined;

/** The process-wide default metrics, registered once per process: they hold no tenant data. */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** Creates a host's metrics with a registry of its own. */
export function createHostMetrics(options: HostMetricsOptions): HostMetrics {
  const registry = new Registry();
  const labels = createTenantLabels(options.tenantLabelsMax);
  const registers = [registry];
  const asks = new Counter({ name: 'ctx_asks_total', help: 'Asks that ended, by tenant and outcome (answered, failed, abandoned).', labelNames: ['tenant', 'outcome'], registers });
  const askErrors = new Counter({ name: 'ctx_ask_errors_total', help: 'Asks that ended in an error, by tenant and error code.', labelNames: ['tenant', 'code'], registers });
  const cache = new Counter({ name: 'ctx_cache_lookups_total', help: 'Answered asks by semantic cache result (hit or miss), by tenant.', labelNames: ['tenant', 'result'], registers });
  const stages = new Histogram({
    name: 'ctx_ask_stage_duration_seconds',
    help: 'Time of each pipeline stage an answered ask ran (embed, cache, retrieval, prompt, guard, model).',
    labelNames: ['stage'],
    buckets: LATENCY_BUCKETS_S,
    registers,
  });
  const total = new Histogram({
    name: 'ctx_ask_duration_seconds',
    help: 'Time from ask to done of answered asks, by tenant and cache result.',
    labelNames: ['tenant', 'cache'],
    buckets: LATENCY_BUCKETS_S,
    registers,
  });
  const pluginFailures = new Counter({ name: 'ctx_plugin_failures_total', help: 'Plugin failures (asks and session starts), by tenant and error code.', labelNames: ['tenant', 'code'], registers });
  const leakBlocks = new Counter({ name: 'ctx_leak_blocks_total', help: 'Asks the leak guard blocked (LEAK_BLOCKED), by tenant.', labelNames: ['tenant'], registers });
  const leakLayers = new Counter({ name: 'ctx_leak_blocks_by_layer_total', help: 'Asks the leak guard blocked, by the guard layer that blocked them.', labelNames: ['layer'], registers });
  const sessionFailures = new Counter({ name: 'ctx_session_failures_total', help: 'Chat sessions that could not start, by tenant and error code.', labelNames: ['tenant', 'code'], registers });
  new Gauge({
    name: 'ctx_live_sessions',
    help: 'Live chat sessions, by tenant.',
    labelNames: ['tenant'],
    registers,
    collect() {
      this.reset();
      for (const [tenantId, sessions] of options.liveSessions()) if (sessions > 0) this.inc({ tenant: labels.label(tenantId) }, sessions);
    },
  });
  const connectionErrors = new Counter({
    name: 'ctx_connection_errors_total',
    help: 'Network errors (resets, broken pipes) that ended one connection, by stage (http, upgrade, chat).',
    labelNames: ['stage'],
    registers,
  });
  const tenantLabelled = [asks, askErrors, cache, total, pluginFailures, leakBlocks, sessionFailures];

  const countFailure = (tenant: string, code: ErrorCode): void => {
    if (isPluginFailure(code)) pluginFailures.inc({ tenant, code });
    if (code === 'LEAK_BLOCKED') leakBlocks.inc({ tenant });
  };

  return {
    contentType: registry.contentType,
    render: async () => (await processMetrics().metrics()) + (await registry.metrics()),
    json: async (withProcess) => [...(withProcess ? await processMetrics().getMetricsAsJSON() : []), ...(await registry.getMetricsAsJSON())] as MetricsPart,
    askEnded(outcome) {
      const tenant = labels.label(outcome.tenantId);
      asks.inc({ tenant, outcome: outcome.kind });
      if (outcome.kind === 'failed') {
        askErrors.inc({ tenant, code: outcome.code });
        countFailure(tenant, outcome.code);
        if (outcome.code === 'LEAK_BLOCKED') leakLayers.inc({ layer: outcome.layer ?? 'unknown' });
      }
      if (outcome.kind !== 'answered') return;
      cache.inc({ tenant, result: outcome.cache });
      for (const [stage, ms] of stagesRun(outcome)) stages.observe({ stage }, ms / 1000);
      total.observe({ tenant, cache: outcome.cache }, outcome.timings.totalMs / 1000);
    },
    sessionFailed(tenantId, code) {
      const tenant = labels.label(tenantId);
      sessionFailures.inc({ tenant, code });
      countFailure(tenant, code);
    },
    connectionError(stage) {
      connectionErrors.inc({ stage });
    },
    async forgetTenant(tenantId) {
      if (!labels.release(tenantId)) return;
      for (const metric of tenantLabelled) await removeTenantSeries(metric, tenantId);
    },
  };
}

/** Removes every series of `metric` whose tenant label is `tenantId` (histograms: all buckets). */
async function removeTenantSeries(metric: Counter | Histogram, tenantId: string): Promise<void> {
  const seen = new Set<string>();
  for (const { labels } of (await metric.get()).values) {
    if (labels['tenant'] !== tenantId) continue;
    // A histogram reports each bucket with an `le` label; the series itself is keyed without it.
    const { le: _le, ...series } = labels;
    const key = JSON.stringify(series);
    if (seen.has(key)) continue;
    seen.add(key);
    metric.remove(series as Record<string, string | number>);
  }
}
