/**
 * Tenant labels stay bounded: the first `max` tenants keep their own label, the next one shares
 * `_other`, a tenant keeps its label, and a deleted tenant's slot goes to the next new tenant.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { createTenantLabels, OTHER_TENANTS } from '../../host/observability/tenant-labels.ts';

const ids = (count: number): string[] => Array.from({ length: count }, (_, index) => `t_${index.toString(16).padStart(16, '0')}`);

test(`metricsTenantLabelsMax (${LIMITS.metricsTenantLabelsMax}) tenants each keep their own label`, () => {
  const labels = createTenantLabels(LIMITS.metricsTenantLabelsMax);
  const tenants = ids(LIMITS.metricsTenantLabelsMax);
  assert.equal(tenants.map((id) => labels.label(id)), tenants);
  assert.is(labels.size, LIMITS.metricsTenantLabelsMax);
});

test('one tenant over the limit shares the _other label; earlier tenants keep theirs', () => {
  const labels = createTenantLabels(LIMITS.metricsTenantLabelsMax);
  const tenants = ids(LIMITS.metricsTenantLabelsMax + 1);
  for (const id of tenants) labels.label(id);
  assert.is(labels.label(tenants.at(-1) ?? ''), OTHER_TENANTS);
  assert.is(labels.label(tenants[0] ?? ''), tenants[0]);
  assert.is(labels.size, LIMITS.metricsTenantLabelsMax);
});

test('a released slot goes to the next new tenant; releasing an unlabelled tenant frees nothing', () => {
  const labels = createTenantLabels(2);
  const [a, b, c, d] = ids(4) as [string, string, string, string];
  labels.label(a);
  labels.label(b);
  assert.is(labels.label(c), OTHER_TENANTS);
  assert.is(labels.release(c), false);
  assert.is(labels.release(a), true);
  assert.is(labels.label(d), d);
  assert.is(labels.label(c), OTHER_TENANTS);
});

test('a bad maximum is a programmer error', () => {
  assert.throws(() => createTenantLabels(-1), (error: unknown) => error instanceof RangeError && /non-negative integer, got -1/.test(error.message));
  assert.throws(() => createTenantLabels(1.5), (error: unknown) => error instanceof RangeError);
});

test.run();
