/**
 * One place the chat transport reports to: each session's start, asks and end go to the metrics,
 * the activity log (the consoles' recent asks and incidents) and the session's structured log
 * lines. What is reported is ids, codes, cache status and timings — never a question, an answer,
 * a document's text or a key — so none of the three can hold them.
 */
import { ERROR_CATALOG, type ErrorCode } from '../errors.ts';
import type { HostLogger } from '../log.ts';
import type { AskResult } from '../protocol.ts';
import { createActivityLog, type ActivityLimits, type ActivityLog } from './activity.ts';
import { answeredOutcome, errorCodeOf, failedOutcome, isPluginFailure } from './ask-outcome.ts';
import { createHostMetrics, type HostMetrics } from './metrics.ts';

/** What the chat transport tells about one session. */
export interface SessionObserver {
  /** The session is ready (its `ready` frame was sent). */
  opened(plugins: { retrieval: string; prompt: string }): void;
  /** The session could not start; `error` is what the client was sent. */
  refused(error: unknown): void;
  answered(askId: string, result: AskResult): void;
  /** An ask failed; `abandoned` when the client had gone already. */
  failed(askId: string, error: unknown, abandoned: boolean): void;
  /** The connection ended. */
  closed(): void;
}

/** The host's observability: metrics, activity, and a per-session observer for the transport. */
export interface Observability {
  readonly metrics: HostMetrics;
  readonly activity: ActivityLog;
  /** An observer for one chat session; `log` is the session's logger (it carries tenant and session ids). */
  session(ids: { tenantId: string; sessionId: string }, log: HostLogger): SessionObserver;
  /** Forgets a deleted tenant: its metric series and label, its recent asks and totals. */
  forgetTenant(tenantId: string): Promise<void>;
}

/** Options of {@link createObservability}. */
export interface ObservabilityOptions extends ActivityLimits {
  metricsTenantLabelsMax: number;
  /** Live sessions per tenant id, read at every scrape. */
  liveSessions(): Iterable<readonly [tenantId: string, sessions: number]>;
}

/** Creates the host's observability. */
export function createObservability(options: ObservabilityOptions): Observability {
  const metrics = createHostMetrics({ tenantLabelsMax: options.metricsTenantLabelsMax, liveSessions: options.liveSessions });
  const activity = createActivityLog(options);
  return {
    metrics,
    activity,
    session: (ids, log) => observeSession(ids, log, metrics, activity),
    async forgetTenant(tenantId) {
      activity.forgetTenant(tenantId);
      await metrics.forgetTenant(tenantId);
    },
  };
}

function observeSession(ids: { tenantId: string; sessionId: string }, log: HostLogger, metrics: HostMetrics, activity: ActivityLog): SessionObserver {
  const openedAt = performance.now();
  let opened = false;
  const counts = { answered: 0, failed: 0, abandoned: 0 };
  // Counting must never change what the client gets: the transport calls these in its answer path.
  const guarded =
    <A extends unknown[]>(report: (...args: A) => void) =>
    (...args: A): void => {
      try {
        report(...args);
      } catch (error) {
        log.error({ err: error }, 'observability failed; the session goes on');
      }
    };
  return guardAll(guarded, {
    opened(plugins) {
      opened = true;
      log.info({ plugins }, 'session opened');
    },
    refused(error) {
      const code = errorCodeOf(error);
      metrics.sessionFailed(ids.tenantId, code);
      activity.sessionFailed({ ...ids, code });
      log[levelFor(code)]({ code }, 'session refused');
    },
    answered(askId, result) {
      counts.answered += 1;
      const outcome = answeredOutcome({ ...ids, askId }, result);
      metrics.askEnded(outcome);
      activity.askEnded(outcome);
      log.debug({ ask: askId, cache: result.cache, sources: result.sources.length, totalMs: round(result.timings.totalMs) }, 'ask answered');
    },
    failed(askId, error, abandoned) {
      const outcome = failedOutcome({ ...ids, askId }, error, abandoned);
      counts[outcome.kind === 'abandoned' ? 'abandoned' : 'failed'] += 1;
      metrics.askEnded(outcome);
      activity.askEnded(outcome);
      // A leak block has its own error-level line, with the guard layer, from the guard's reportLeakBlock.
      if (outcome.kind === 'failed' && outcome.code !== 'LEAK_BLOCKED') log[levelFor(outcome.code)]({ ask: askId, code: outcome.code }, 'ask failed');
      else if (outcome.kind === 'abandoned') log.debug({ ask: askId }, 'ask abandoned: the client left');
    },
    closed() {
      if (opened) log.info({ ...counts, ms: round(performance.now() - openedAt) }, 'session closed');
    },
  });
}

/** Wraps every method of an observer with `guard`. */
function guardAll(guard: <A extends unknown[]>(report: (...args: A) => void) => (...args: A) => void, observer: SessionObserver): SessionObserver {
  return {
    opened: guard(observer.opened),
    refused: guard(observer.refused),
    answered: guard(observer.answered),
    failed: guard(observer.failed),
    closed: guard(observer.closed),
  };
}

/**
 * The log level of an error code: plugin failures and other server-side errors are warnings, and
 * what a client did wrong (4xx) is info.
 */
function levelFor(code: ErrorCode): 'warn' | 'info' {
  if (isPluginFailure(code) || ERROR_CATALOG[code].http >= 500) return 'warn';
  return 'info';
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
