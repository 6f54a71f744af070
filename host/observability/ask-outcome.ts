/**
 * How one ask ended, as the observability side sees it: ids, outcome, cache status and stage
 * timings. Built from the `done` result or the error the transport sent; it holds no question,
 * answer, context or document text, so anything derived from it (metrics, logs, the console's
 * recent asks) cannot hold them either.
 */
import { HostError, type ErrorCode } from '../errors.ts';
import type { AskResult } from '../protocol.ts';

/** Stage timings of an answered ask, in milliseconds (the `done` frame's `timings`). */
export type AskTimings = AskResult['timings'];

/** Who asked: ids only. */
export interface AskIds {
  tenantId: string;
  sessionId: string;
  askId: string;
}

/** How one ask ended. `at` is epoch milliseconds. */
export type AskOutcome =
  | (AskIds & {
      kind: 'answered';
      at: number;
      cache: 'hit' | 'miss';
      cacheMatch?: 'exact' | 'semantic';
      similarity?: number;
      sources: number;
      timings: AskTimings;
    })
  /** `layer`: for LEAK_BLOCKED, which layer of the guard blocked it (pipeline/guard.ts GuardLayer). */
  | (AskIds & { kind: 'failed'; at: number; code: ErrorCode; layer?: string })
  /** The client went away while the ask ran (its failure then says nothing about the host). */
  | (AskIds & { kind: 'abandoned'; at: number });

/** The outcome of an answered ask: copies ids, cache status and timings; drops answer and sources. */
export function answeredOutcome(ids: AskIds, result: AskResult, at: number = Date.now()): AskOutcome {
  return {
    ...ids,
    kind: 'answered',
    at,
    cache: result.cache,
    ...(result.cacheMatch === undefined ? {} : { cacheMatch: result.cacheMatch }),
    ...(result.similarity === undefined ? {} : { similarity: result.similarity }),
    sources: result.sources.length,
    timings: { ...result.timings },
  };
}

/** The outcome of a failed ask: its error code (`INTERNAL` for an unknown error), or abandoned. */
export function failedOutcome(ids: AskIds, error: unknown, abandoned: boolean, at: number = Date.now()): AskOutcome {
  if (abandoned) return { ...ids, kind: 'abandoned', at };
  const layer = error instanceof HostError && error.code === 'LEAK_BLOCKED' ? error.detail?.['layer'] : undefined;
  return { ...ids, kind: 'failed', at, code: errorCodeOf(error), ...(typeof layer === 'string' ? { layer } : {}) };
}

/** The catalog code of a thrown value; anything that is not a HostError is `INTERNAL`. */
export function errorCodeOf(error: unknown): ErrorCode {
  return error instanceof HostError ? error.code : 'INTERNAL';
}

/** A plugin failure, by code (what the operator view and `ctx_plugin_failures_total` count). */
export function isPluginFailure(code: ErrorCode): boolean {
  return code.startsWith('PLUGIN_');
}

/**
 * The pipeline stages an answered ask ran, with their milliseconds. A cache hit skips retrieval,
 * prompt and model, and an exact hit skips embedding too: their zeros are not latencies and would
 * drag the stage histograms down.
 */
export function stagesRun(outcome: Extract<AskOutcome, { kind: 'answered' }>): [stage: string, ms: number][] {
  const { timings } = outcome;
  if (outcome.cache === 'hit') {
    const stages: [string, number][] = [['cache', timings.cacheMs], ['guard', timings.guardMs]];
    if (outcome.cacheMatch !== 'exact') stages.unshift(['embed', timings.embedMs]);
    return stages;
  }
  return [
    ['embed', timings.embedMs],
    ['cache', timings.cacheMs],
    ['retrieval', timings.retrievalMs],
    ['prompt', timings.promptMs],
    ['guard', timings.guardMs],
    ['model', timings.modelMs],
  ];
}
