/**
 * The per-session observer the chat transport reports to: it feeds metrics and the activity log,
 * writes the session's lines at the right levels with ids only, and never throws into the
 * transport's answer path, even when handed something it cannot read.
 */
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { createObservability } from '../../host/observability/observability.ts';
import type { AskResult } from '../../host/protocol.ts';
import { sampleValue } from '../helpers/prometheus.ts';

const TENANT = 't_0123456789abcdef';

function setup() {
  const lines: any[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const observability = createObservability({
    metricsTenantLabelsMax: 10,
    recentAsksPerTenantMax: 10,
    recentAsksTenantsMax: 10,
    incidentsKeptMax: 10,
    pluginLogLinesPerTenantMax: 10,
    liveSessions: () => [],
  });
  const log = logger.child({ tenant: TENANT, session: 's-1' });
  return { lines, observability, observer: observability.session({ tenantId: TENANT, sessionId: 's-1' }, log) };
}

const result: AskResult = {
  answer: 'the secret answer text',
  sources: [{ docId: 'd', chunkId: 'd#0', score: 1, title: 'T', snippet: 'the secret snippet' }],
  cache: 'miss',
  timings: { embedMs: 1, cacheMs: 0, retrievalMs: 1, promptMs: 1, guardMs: 0, modelMs: 3, totalMs: 6 },
};

test('a session: opened, an answer, a plugin failure, an abandoned ask, closed — lines with ids and codes, no text', async () => {
  const { lines, observability, observer } = setup();
  observer.opened({ retrieval: 'r', prompt: 'p' });
  observer.answered('a1', result);
  observer.failed('a2', new HostError('PLUGIN_FAILED', 'retrieve trapped'), false);
  observer.failed('a3', new HostError('MODEL_FAILED', 'the session closed'), true);
  observer.closed();
  assert.equal(lines.map((line) => [line.msg, line.level, line.ask, line.code]), [
    ['session opened', 30, undefined, undefined],
    ['ask answered', 20, 'a1', undefined],
    ['ask failed', 40, 'a2', 'PLUGIN_FAILED'],
    ['ask abandoned: the client left', 20, 'a3', undefined],
    ['session closed', 30, undefined, undefined],
  ]);
  assert.equal([lines[4].answered, lines[4].failed, lines[4].abandoned], [1, 1, 1]);
  assert.not.ok(JSON.stringify(lines).includes('secret'), 'no answer or snippet text');
  const text = await observability.metrics.render();
  assert.is(sampleValue(text, 'ctx_asks_total', { tenant: TENANT, outcome: 'abandoned' }), 1);
  assert.is(sampleValue(text, 'ctx_plugin_failures_total', { tenant: TENANT, code: 'PLUGIN_FAILED' }), 1);
});

test('a leak block is left to the guard to log; a refused session counts by code; a client error is info', async () => {
  const { lines, observability, observer } = setup();
  observer.failed('a1', new HostError('LEAK_BLOCKED', 'blocked', { layer: 'provenance' }), false);
  observer.failed('a2', new HostError('TENANT_ASK_RATE_LIMIT', 'too many'), false);
  observer.refused(new HostError('TENANT_SESSION_LIMIT', 'full'));
  assert.equal(lines.map((line) => [line.msg, line.level, line.code]), [
    ['ask failed', 30, 'TENANT_ASK_RATE_LIMIT'],
    ['session refused', 30, 'TENANT_SESSION_LIMIT'],
  ]);
  const text = await observability.metrics.render();
  assert.is(sampleValue(text, 'ctx_leak_blocks_by_layer_total', { layer: 'provenance' }), 1);
  assert.is(sampleValue(text, 'ctx_session_failures_total', { tenant: TENANT, code: 'TENANT_SESSION_LIMIT' }), 1);
});

test('an observer that cannot read what it is given logs that and does not throw', () => {
  const { lines, observer } = setup();
  assert.not.throws(() => observer.answered('a1', { ...result, timings: undefined } as unknown as AskResult));
  assert.equal(lines.map((line) => [line.msg, line.level]), [['observability failed; the session goes on', 50]]);
});

test.run();
