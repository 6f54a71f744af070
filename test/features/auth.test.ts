/**
 * Authentication at the handshake and on the HTTP API: missing, malformed, unknown, revoked and
 * deleted-tenant keys are all refused with 401 before any upgrade; tenant and operator keys do not
 * stand in for each other; tickets are single-use.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';
import { openRaw } from '../helpers/raw-socket.ts';

let host: TestHost;
let tenant: { id: string; apiKey: string };

test.before(async () => {
  host = await startTestHost();
  tenant = await host.createTenant('Auth Co');
});
test.after(async () => {
  await host.close();
});

async function refusedWith(key: string | undefined, code: string, query?: string): Promise<void> {
  const outcome = await openRaw(host.url, { ...(key === undefined ? {} : { key }), ...(query === undefined ? {} : { query }) });
  assert.ok('status' in outcome, 'the upgrade must be refused');
  if (!('status' in outcome)) return;
  assert.equal(outcome.status, 401);
  assert.equal(JSON.parse(outcome.body).error.code, code);
}

test('missing key: 401 AUTH_MISSING_KEY, no upgrade', async () => {
  await refusedWith(undefined, 'AUTH_MISSING_KEY');
});

test('malformed and unknown keys: 401 AUTH_INVALID_KEY', async () => {
  await refusedWith('not-a-key', 'AUTH_INVALID_KEY');
  await refusedWith(`ctx_0123456789abcdef_${'A'.repeat(43)}`, 'AUTH_INVALID_KEY');
  // Right key id, wrong secret: the hash comparison refuses it.
  await refusedWith(tenant.apiKey.slice(0, -4) + 'AAAA', 'AUTH_INVALID_KEY');
});

test('the operator key is not a tenant key, and a tenant key is not the operator key', async () => {
  await refusedWith(OPERATOR_KEY, 'AUTH_INVALID_KEY');
  const response = await host.request('POST', '/v1/tenants', tenant.apiKey, { name: 'x' });
  assert.equal(response.status, 401);
  assert.equal(response.body.error.code, 'AUTH_INVALID_KEY');
});

test('a revoked key is refused; another key of the same tenant still works', async () => {
  const second = host.server.authority.registry.issueApiKey(host.server.authority.registry.findTenant(tenant.id)!);
  const revoked = host.server.authority.registry.revokeApiKey(second);
  assert.equal(revoked?.tenantId, tenant.id);
  await refusedWith(second, 'AUTH_INVALID_KEY');
  const outcome = await openRaw(host.url, { key: tenant.apiKey });
  assert.ok('socket' in outcome);
  if ('socket' in outcome) outcome.socket.close();
});

test('a deleted tenant key is refused on HTTP and WebSocket', async () => {
  const doomed = await host.createTenant('Doomed');
  const deleted = await host.request('DELETE', `/v1/tenants/${doomed.id}`, OPERATOR_KEY);
  assert.equal(deleted.status, 200);
  await refusedWith(doomed.apiKey, 'AUTH_INVALID_KEY');
  const response = await host.request('GET', '/v1/config', doomed.apiKey);
  assert.equal(response.status, 401);
});

test('tickets: a ticket opens one chat, then is spent', async () => {
  const issued = await host.request('POST', '/v1/tickets', tenant.apiKey, { user: 'end-user-1' });
  assert.equal(issued.status, 201);
  const ticket = issued.body.ticket as string;
  const first = await openRaw(host.url, { query: `?ticket=${ticket}` });
  assert.ok('socket' in first, 'a fresh ticket opens a session');
  if ('socket' in first) first.socket.close();
  await refusedWith(undefined, 'AUTH_INVALID_KEY', `?ticket=${ticket}`);
  await refusedWith(undefined, 'AUTH_INVALID_KEY', '?ticket=tkt_forged');
});

test('HTTP API: a missing key is 401 with its code', async () => {
  const response = await host.request('GET', '/v1/config', undefined);
  assert.equal(response.status, 401);
  assert.equal(response.body.error.code, 'AUTH_MISSING_KEY');
});

test.run();
