/**
 * The prom-client adapter: what each ask outcome adds to which series, stage histograms that
 * leave out the stages a cache hit skipped, the bounded tenant label, and a deleted tenant's series
 * going away with its label.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AskOutcome } from '../../host/observability/ask-outcome.ts';
import { createHostMetrics } from '../../host/observability/metrics.ts';
import { OTHER_TENANTS } from '../../host/observability/tenant-labels.ts';
import { parseSamples, sampleValue } from '../helpers/prometheus.ts';

const A = 't_aaaaaaaaaaaaaaaa';
const B = 't_bbbbbbbbbbbbbbbb';
const timings = { embedMs: 2, cacheMs: 0.5, retrievalMs: 3, promptMs: 1, guardMs: 0.25, modelMs: 40, totalMs: 47 };
const ids = { sessionId: 's', askId: 'a1', at: 0 };
const miss = (tenantId: string): AskOutcome => ({ ...ids, tenantId, kind: 'answered', cache: 'miss', sources: 1, timings });
const exactHit = (tenantId: string): AskOutcome => ({
  ...ids,
  tenantId,
  kind: 'answered',
  cache: 'hit',
  cacheMatch: 'exact',
  similarity: 1,
  sources: 1,
  timings: { ...timings, embedMs: 0, retrievalMs: 0, promptMs: 0, modelMs: 0, totalMs: 0.8 },
});

test('an answered miss counts the ask and the miss and observes every stage', async () => {
  const metrics = createHostMetrics({ tenantLabelsMax: 10, liveSessions: () => [] });
  metrics.askEnded(miss(A));
  const text = await metrics.render();
  assert.is(sampleValue(text, 'ctx_asks_total', { tenant: A, outcome: 'answered' }), 1);
  assert.is(sampleValue(text, 'ctx_cache_lookups_total', { tenant: A, result: 'miss' }), 1);
  for (const stage of ['embed', 'cache', 'retrieval', 'prompt', 'guard', 'model']) {
    assert.is(sampleValue(text, 'ctx_ask_stage_duration_seconds_count', { stage }), 1, stage);
  }
  assert.is(sampleValue(text, 'ctx_ask_stage_duration_seconds_sum', { stage: 'model' }), 0.04);
  assert.is(sampleValue(text, 'ctx_ask_duration_seconds_count', { tenant: A, cache: 'miss' }), 1);
  assert.is(sampleValue(text, 'ctx_ask_stage_duration_seconds_bucket', { stage: 'model', le: '0.025' }), 0);
  assert.is(sampleValue(text, 'ctx_ask_stage_duration_seconds_bucket', { stage: 'model', le: '0.05' }), 1);
  assert.ok(sampleValue(text, 'process_cpu_user_seconds_total') !== undefined, 'process metrics are included');
  assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
});

test('an exact cache hit observes only the cache and guard stages', async () => {
  const metrics = createHostMetrics({ tenantLabelsMax: 10, liveSessions: () => [] });
  metrics.askEnded(exactHit(A));
  const text = await metrics.render();
  assert.is(sampleValue(text, 'ctx_cache_lookups_total', { tenant: A, result: 'hit' }), 1);
  assert.is(sampleValue(text, 'ctx_ask_stage_duration_seconds_count', { stage: 'cache' }), 1);
  assert.is(sampleValue(text, 'ctx_ask_stage_duration_seconds_count', { stage: 'guard' }), 1);
  for (const stage of ['embed', 'retrieval', 'prompt', 'model']) assert.is(sampleValue(text, 'ctx_ask_stage_duration_seconds_count', { stage }), undefined, stage);
});

test('failures count by code; plugin failures and leak blocks have their own series; abandoned asks are no errors', async () => {
  const metrics = createHostMetrics({ tenantLabelsMax: 10, liveSessions: () => [] });
  metrics.askEnded({ ...ids, tenantId: A, kind: 'failed', code: 'PLUGIN_FUEL_EXHAUSTED' });
  metrics.askEnded({ ...ids, tenantId: A, kind: 'failed', code: 'LEAK_BLOCKED' });
  metrics.askEnded({ ...ids, tenantId: A, kind: 'failed', code: 'MODEL_TIMEOUT' });
  metrics.askEnded({ ...ids, tenantId: A, kind: 'abandoned' });
  metrics.sessionFailed(A, 'PLUGIN_LOAD_FAILED');
  metrics.sessionFailed(A, 'TENANT_SESSION_LIMIT');
  const text = await metrics.render();
  assert.is(sampleValue(text, 'ctx_asks_total', { tenant: A, outcome: 'failed' }), 3);
  assert.is(sampleValue(text, 'ctx_asks_total', { tenant: A, outcome: 'abandoned' }), 1);
  assert.is(sampleValue(text, 'ctx_ask_errors_total', { tenant: A, code: 'MODEL_TIMEOUT' }), 1);
  assert.is(sampleValue(text, 'ctx_plugin_failures_total', { tenant: A, code: 'PLUGIN_FUEL_EXHAUSTED' }), 1);
  assert.is(sampleValue(text, 'ctx_plugin_failures_total', { tenant: A, code: 'PLUGIN_LOAD_FAILED' }), 1);
  assert.is(sampleValue(text, 'ctx_plugin_failures_total', { tenant: A, code: 'MODEL_TIMEOUT' }), undefined);
  assert.is(sampleValue(text, 'ctx_leak_blocks_total', { tenant: A }), 1);
  assert.is(sampleValue(text, 'ctx_session_failures_total', { tenant: A, code: 'TENANT_SESSION_LIMIT' }), 1);
});

test('live sessions are read at each scrape; tenants past the label limit share _other', async () => {
  let live: [string, number][] = [[A, 2], [B, 3]];
  const metrics = createHostMetrics({ tenantLabelsMax: 1, liveSessions: () => live });
  metrics.askEnded(miss(A));
  metrics.askEnded(miss(B));
  let text = await metrics.render();
  assert.is(sampleValue(text, 'ctx_live_sessions', { tenant: A }), 2);
  assert.is(sampleValue(text, 'ctx_live_sessions', { tenant: OTHER_TENANTS }), 3);
  assert.is(sampleValue(text, 'ctx_asks_total', { tenant: OTHER_TENANTS, outcome: 'answered' }), 1);
  assert.not.ok(text.includes(B), 'the tenant past the limit is not named');
  live = [[A, 0]];
  text = await metrics.render();
  assert.is(sampleValue(text, 'ctx_live_sessions', { tenant: A }), undefined, 'a tenant without sessions has no series');
});

test("a deleted tenant's series go, and its label is free for the next tenant", async () => {
  const metrics = createHostMetrics({ tenantLabelsMax: 1, liveSessions: () => [] });
  metrics.askEnded(miss(A));
  metrics.askEnded({ ...ids, tenantId: A, kind: 'failed', code: 'LEAK_BLOCKED' });
  await metrics.forgetTenant(A);
  let text = await metrics.render();
  assert.equal(parseSamples(text).filter((sample) => sample.labels['tenant'] === A), []);
  metrics.askEnded(miss(B));
  text = await metrics.render();
  assert.is(sampleValue(text, 'ctx_asks_total', { tenant: B, outcome: 'answered' }), 1);
});

test.run();
