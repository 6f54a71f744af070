/**
 * The ticket book: single use, expiry, a share per tenant (at the share passes, one more is
 * refused, another tenant is unaffected), the host-wide bound, and revocation by key and by tenant.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { TicketBook, ticketTenant } from '../../host/tenants/tickets.ts';

const A = 't_000000000000000a';
const B = 't_000000000000000b';

function book(now: { ms: number }, perTenantMax = 3, totalMax = 5) {
  return new TicketBook({ ttlMs: 1_000, perTenantMax, totalMax, clock: () => now.ms });
}

test('a ticket names its tenant, is single-use and expires', () => {
  const now = { ms: 0 };
  const tickets = book(now);
  const { ticket } = tickets.issue({ tenantId: A, keyId: 'k1', endUser: 'u' });
  assert.is(ticketTenant(ticket), A);
  assert.equal(tickets.take(ticket), { tenantId: A, keyId: 'k1', endUser: 'u' });
  assert.is(tickets.take(ticket), undefined, 'used');
  const late = tickets.issue({ tenantId: A, keyId: 'k1', endUser: undefined }).ticket;
  now.ms = 1_001;
  assert.is(tickets.take(late), undefined, 'expired');
  assert.is(ticketTenant('tkt_nope'), undefined);
});

test("a tenant's share: at it passes, one more is refused, another tenant still gets tickets", () => {
  const tickets = book({ ms: 0 });
  for (let i = 0; i < 3; i += 1) tickets.issue({ tenantId: A, keyId: 'k', endUser: undefined });
  let refused: unknown;
  try {
    tickets.issue({ tenantId: A, keyId: 'k', endUser: undefined });
  } catch (error) {
    refused = error;
  }
  assert.instance(refused, HostError);
  assert.is((refused as HostError).code, 'PROTOCOL_RATE_LIMIT');
  assert.match((refused as HostError).message, /this tenant has 3 tickets outstanding, limit 3/);
  tickets.issue({ tenantId: B, keyId: 'k', endUser: undefined });
});

test('the host-wide bound holds, and expired tickets make room again', () => {
  const now = { ms: 0 };
  const tickets = book(now, 3, 4);
  for (let i = 0; i < 3; i += 1) tickets.issue({ tenantId: A, keyId: 'k', endUser: undefined });
  tickets.issue({ tenantId: B, keyId: 'k', endUser: undefined });
  assert.throws(() => tickets.issue({ tenantId: B, keyId: 'k', endUser: undefined }), /4 tickets are outstanding on this host/);
  now.ms = 2_000;
  for (let i = 0; i < 3; i += 1) tickets.issue({ tenantId: B, keyId: 'k', endUser: undefined });
  tickets.issue({ tenantId: A, keyId: 'k', endUser: undefined });
  assert.is(tickets.size, 4, 'the expired ones were swept to make room');
});

test('revoking a key voids the tickets it minted, and only those; forgetting a tenant voids all of its', () => {
  const tickets = book({ ms: 0 }, 5, 10);
  const first = tickets.issue({ tenantId: A, keyId: 'k1', endUser: undefined }).ticket;
  const second = tickets.issue({ tenantId: A, keyId: 'k2', endUser: undefined }).ticket;
  const other = tickets.issue({ tenantId: B, keyId: 'k1', endUser: undefined }).ticket;
  assert.is(tickets.revokeKey(A, 'k1'), 1);
  assert.is(tickets.take(first), undefined);
  tickets.forgetTenant(A);
  assert.is(tickets.take(second), undefined);
  assert.ok(tickets.take(other) !== undefined, "another tenant's ticket with the same key id is untouched");
  assert.is(tickets.size, 0);
});

test.run();
