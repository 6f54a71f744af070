/**
 * The pool's request limits, each on both sides: tenants per pool (at the limit the pool is built,
 * one over is refused) and examples per pool (at the limit built, one over refused); a malformed
 * list is refused before any tenant is read.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { patchSettings } from '../../host/tenants/settings.ts';
import { recordConsent } from '../../host/training/consent.ts';
import type { FeedbackRecord } from '../../host/training/feedback.ts';
import { buildTrainingPool } from '../../host/training/pool.ts';
import { openTestAuthority, type TestAuthority } from '../helpers/authority.ts';

const operator = operatorFromLocalAccess();

async function expectRefusal(action: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  try {
    await action;
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, code);
    assert.match((error as HostError).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** A tenant that opted in, with `examples` positively rated answers seeded in one transaction. */
function consentingTenant(context: TestAuthority, name: string, examples = 0): string {
  const { tenant } = createTenant(context.authority, operator, name);
  const scope = mintScopeForOperator(context.authority, operator, tenant.id);
  try {
    recordConsent(scope, { pool: true });
    patchSettings(scope, { feedback: { retain: true } });
    const now = Date.now();
    scope.store.transaction(() => {
      for (let i = 0; i < examples; i += 1) {
        const record: FeedbackRecord = { askId: `q${i}`, rating: 1, comment: null, question: `Question ${i}?`, answer: `Answer ${i}.`, sources: [], at: now - examples + i };
        scope.store.feedback.put(`${record.at.toString(36).padStart(9, '0')}:q${i}:00000000`, record);
      }
      scope.store.meta.put('feedbackCount', examples);
    });
  } finally {
    scope.release();
  }
  return tenant.id;
}

test('tenants per pool: at the limit the pool is built; one over is refused', async () => {
  const context = openTestAuthority();
  try {
    const ids = Array.from({ length: LIMITS.poolTenantsMax + 1 }, (_, i) => consentingTenant(context, `T${i}`));
    const pool = await buildTrainingPool(context.authority, operator, { tenants: ids.slice(0, LIMITS.poolTenantsMax) });
    assert.is(pool.report.tenants.length, LIMITS.poolTenantsMax);
    await expectRefusal(buildTrainingPool(context.authority, operator, { tenants: ids }), 'TRAINING_POOL_INVALID', /^tenants must name 1\.\.64 tenants, got 65$/);
  } finally {
    await context.close();
  }
});

test('examples per pool: at the limit the pool is built; one over is refused', async () => {
  const context = openTestAuthority();
  try {
    const full = consentingTenant(context, 'Full', LIMITS.poolExamplesMax - 1);
    const one = consentingTenant(context, 'One', 1);
    const other = consentingTenant(context, 'Other', 1);
    const pool = await buildTrainingPool(context.authority, operator, { tenants: [full, one] });
    assert.is(pool.examples.length, LIMITS.poolExamplesMax);
    assert.is(pool.report.examples, LIMITS.poolExamplesMax);
    await expectRefusal(buildTrainingPool(context.authority, operator, { tenants: [full, one, other] }), 'TRAINING_POOL_INVALID', /more than 20000 examples/);
  } finally {
    await context.close();
  }
});

test('a malformed request is refused: no tenants, a tenant twice, not a list, extra keys', async () => {
  const context = openTestAuthority();
  try {
    const id = consentingTenant(context, 'T');
    for (const [body, message] of [
      [{ tenants: [] }, /got 0/],
      [{ tenants: [id, id] }, /names a tenant twice/],
      [{ tenants: id }, /body must be/],
      [{ tenants: [id], extra: 1 }, /body must be/],
      [null, /body must be/],
    ] as const) {
      await expectRefusal(buildTrainingPool(context.authority, operator, body), 'TRAINING_POOL_INVALID', message);
    }
  } finally {
    await context.close();
  }
});

test.run();
