/**
 * The per-tenant audit log: entries chain by hash and read back in order; an entry altered or
 * removed behind the module's back is detected where it happened; one tenant never sees another's
 * entries; a burst of blocked-leak entries is capped per minute without losing the count; the page
 * size limit holds on both sides.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { appendAudit, readAudit, type AuditEntry } from '../../host/tenants/audit.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { openTestAuthority } from '../helpers/authority.ts';

function expectHostError(action: () => unknown, code: string, message: RegExp): void {
  try {
    action();
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, code);
    assert.match((error as HostError).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('creation is audited; entries chain and verify; another tenant sees only its own', async () => {
  const { authority, close } = openTestAuthority();
  try {
    const a = createTenant(authority, operatorFromLocalAccess(), 'A');
    const b = createTenant(authority, operatorFromLocalAccess(), 'B');
    const scope = mintScopeFromApiKey(authority, a.apiKey);
    appendAudit(scope, { kind: 'training.consent', actor: 'tenant', detail: { pool: true } });
    const page = readAudit(scope);
    assert.equal(page.entries.map((entry) => entry.kind), ['tenant.created', 'key.created', 'training.consent']);
    assert.equal(page.entries.map((entry) => entry.seq), [1, 2, 3]);
    assert.is(page.entries[1]?.prev, page.entries[0]?.hash);
    assert.ok(page.verified);
    assert.is(page.next, null);
    scope.release();
    const other = mintScopeFromApiKey(authority, b.apiKey);
    assert.equal(readAudit(other).entries.map((entry) => entry.kind), ['tenant.created', 'key.created']);
    other.release();
  } finally {
    await close();
  }
});

test('an entry altered or removed behind the module is detected at that sequence number', async () => {
  const { authority, close } = openTestAuthority();
  try {
    const a = createTenant(authority, operatorFromLocalAccess(), 'A');
    const scope = mintScopeFromApiKey(authority, a.apiKey);
    for (let i = 0; i < 3; i += 1) appendAudit(scope, { kind: 'key.created', actor: 'tenant', detail: { keyId: `k${i}` } });
    const third = scope.store.audit.get(3) as AuditEntry;
    scope.store.audit.put(3, { ...third, detail: { keyId: 'forged' } });
    assert.equal({ verified: readAudit(scope).verified, brokenAt: readAudit(scope).brokenAt }, { verified: false, brokenAt: 3 });
    scope.store.audit.put(3, third);
    assert.ok(readAudit(scope).verified, 'restored');
    scope.store.audit.remove(4);
    assert.equal({ verified: readAudit(scope).verified, brokenAt: readAudit(scope).brokenAt }, { verified: false, brokenAt: 4 });
    scope.release();
  } finally {
    await close();
  }
});

test('pages: after and limit walk the log; limit at the page maximum passes, one over fails', async () => {
  const { authority, close } = openTestAuthority();
  try {
    const a = createTenant(authority, operatorFromLocalAccess(), 'A');
    const scope = mintScopeFromApiKey(authority, a.apiKey);
    for (let i = 0; i < 5; i += 1) appendAudit(scope, { kind: 'key.created', actor: 'tenant', detail: { keyId: `k${i}` } });
    const first = readAudit(scope, { limit: 3 });
    assert.equal(first.entries.map((entry) => entry.seq), [1, 2, 3]);
    assert.is(first.next, 3);
    const second = readAudit(scope, { after: 3, limit: 3 });
    assert.equal(second.entries.map((entry) => entry.seq), [4, 5, 6]);
    assert.ok(second.verified, 'a later page verifies against the entry before it');
    assert.is(readAudit(scope, { limit: LIMITS.auditEntriesPerPageMax }).entries.length, 7);
    expectHostError(() => readAudit(scope, { limit: LIMITS.auditEntriesPerPageMax + 1 }), 'HTTP_QUERY_INVALID', /limit must be an integer in 1\.\.1000, got 1001/);
    expectHostError(() => readAudit(scope, { limit: 0 }), 'HTTP_QUERY_INVALID', /got 0/);
    scope.release();
  } finally {
    await close();
  }
});

test('blocked leaks: the per-minute cap is written in full, one more is counted into the next entry', async () => {
  const { authority, close } = openTestAuthority();
  try {
    const a = createTenant(authority, operatorFromLocalAccess(), 'A');
    const scope = mintScopeFromApiKey(authority, a.apiKey);
    const t0 = 1_700_000_000_000;
    const leak = (at: number) => appendAudit(scope, { kind: 'leak.blocked', actor: 'host', detail: { layer: 'provenance', askId: 'q' } }, at);
    for (let i = 0; i < LIMITS.auditLeakEntriesPerMinuteMax; i += 1) assert.ok(leak(t0 + i), `entry ${i} written`);
    assert.is(leak(t0 + 59_000), undefined, 'one over the cap is held back');
    const next = leak(t0 + 60_000);
    assert.is(next?.detail['suppressed'], 1, 'and counted into the next minute\'s first entry');
    const leaks = readAudit(scope, { limit: 1000 }).entries.filter((entry) => entry.kind === 'leak.blocked');
    assert.is(leaks.length, LIMITS.auditLeakEntriesPerMinuteMax + 1);
    scope.release();
  } finally {
    await close();
  }
});

test.run();
