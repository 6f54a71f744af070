/**
 * Feedback retention below the server: nothing is kept while retention is off; the per-tenant entry
 * limit holds on both sides (at the limit nothing goes, one more drops the oldest); turning
 * retention off deletes what was kept at the next purge.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { patchSettings } from '../../host/tenants/settings.ts';
import { purgeFeedback, retainedFeedback, storedCount, storeFeedback, type FeedbackRecord } from '../../host/training/feedback.ts';
import { openTestAuthority } from '../helpers/authority.ts';

const rating = (askId: string) => ({ askId, rating: 1 as const, question: `question ${askId}`, answer: 'answer', sources: [] });

test('nothing is stored while retention is off; turning it off deletes what was kept', async () => {
  const { authority, close } = openTestAuthority();
  try {
    const scope = mintScopeFromApiKey(authority, createTenant(authority, operatorFromLocalAccess(), 'T').apiKey);
    assert.is(storeFeedback(scope, rating('off')), false);
    assert.is(storedCount(scope.store), 0);
    patchSettings(scope, { feedback: { retain: true } });
    assert.is(storeFeedback(scope, rating('on')), true);
    assert.equal([...retainedFeedback(scope)].map(({ record }) => record.askId), ['on']);
    patchSettings(scope, { feedback: { retain: false } });
    assert.equal([...retainedFeedback(scope)], [], 'not read once retention is off');
    assert.is(purgeFeedback(scope), 1);
    assert.is([...scope.store.feedback.entries()].length, 0);
    scope.release();
  } finally {
    await close();
  }
});

test('entries per tenant: at the limit nothing is dropped; one more drops the oldest', async () => {
  const { authority, close } = openTestAuthority();
  try {
    const scope = mintScopeFromApiKey(authority, createTenant(authority, operatorFromLocalAccess(), 'T').apiKey);
    patchSettings(scope, { feedback: { retain: true } });
    const now = Date.now();
    // Seeded in one transaction: storing 100,000 ratings one by one would take minutes of commits.
    const seeded = LIMITS.feedbackEntriesPerTenantMax - 1;
    scope.store.transaction(() => {
      for (let i = 0; i < seeded; i += 1) {
        const at = now - seeded + i;
        const record: FeedbackRecord = { ...rating(`s${i}`), comment: null, sources: [], at };
        scope.store.feedback.put(`${at.toString(36).padStart(9, '0')}:s${i}:00000000`, record);
      }
      scope.store.meta.put('feedbackCount', seeded);
    });
    storeFeedback(scope, rating('at-limit'), now);
    assert.is(storedCount(scope.store), LIMITS.feedbackEntriesPerTenantMax);
    const first = () => ([...scope.store.feedback.entries({ limit: 1 })][0]?.value as FeedbackRecord).askId;
    assert.is(first(), 's0', 'at the limit the oldest is kept');
    storeFeedback(scope, rating('over'), now + 1);
    assert.is(storedCount(scope.store), LIMITS.feedbackEntriesPerTenantMax);
    assert.is(first(), 's1', 'one over drops the oldest');
    assert.is(scope.store.feedback.count(), LIMITS.feedbackEntriesPerTenantMax, 'the stored count matches the table');
    scope.release();
  } finally {
    await close();
  }
});

test.run();
