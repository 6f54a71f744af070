/**
 * A host's side of a move, through its real HTTP API (two hosts in this process): a frozen tenant
 * reads and chats but refuses writes; the export streams into the other host's import as a copy
 * that serves nothing until it is activated; the retired source answers every credential with
 * TENANT_MOVED naming the new host (HTTP 421, a refused upgrade, 1012 for its live sessions), and
 * after the shred keeps only a tombstone. Every step refuses a state it does not fit.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { apiKeyId } from '../../host/storage/registry.ts';
import { newExportKey } from '../../host/tenants/tenant-file.ts';
import { spoolBody } from '../../host/transport/fleet-routes.ts';
import { operatorFromLocalAccess, withOperatorScope } from '../../host/tenants/scope.ts';
import { storedCount, storeFeedback, sweepFeedbackRetention } from '../../host/training/feedback.ts';
import { pino } from 'pino';
import { HostError } from '../../host/errors.ts';
import { connect, type ChatClient } from '../../sdk/client/node.ts';
import { within } from '../helpers/deadline.ts';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';
import { openTcp, upgradeRequest } from '../helpers/raw-tcp.ts';
import { eventually } from '../helpers/wait.ts';

const DOCS = [{ id: 'hours', title: 'Hours', text: 'The Larkspur workshop opens at nine and closes at six on weekdays.' }];
const QUESTION = 'When does the workshop open?';

let one: TestHost;
let two: TestHost;
const clients: ChatClient[] = [];

test.before(async () => {
  [one, two] = await Promise.all([
    startTestHost({ config: { fleetHost: 'one' } }),
    startTestHost({ config: { fleetHost: 'two' } }),
  ]);
});
test.after(async () => {
  for (const client of clients) client.close();
  await Promise.all([one?.close(), two?.close()]);
});

async function op(host: TestHost, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await within(
    fetch(host.url + path, {
      method,
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
    `${method} ${path}`,
  );
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text), headers: response.headers };
}

/** Streams the source's export into the target's import, as the controller does. */
async function transfer(from: TestHost, to: TestHost, tenantId: string, fromName: string, key = newExportKey()): Promise<{ status: number; body: any }> {
  const exported = await within(fetch(`${from.url}/v1/tenants/${tenantId}/export`, { headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'ctx-export-key': key } }), 'export');
  if (exported.status !== 200) return { status: exported.status, body: await exported.json() };
  const imported = await within(
    fetch(`${to.url}/v1/tenants/${tenantId}/import?from=${fromName}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'ctx-export-key': key, 'content-type': 'application/octet-stream' },
      body: exported.body,
      duplex: 'half',
    } as RequestInit),
    'import',
  );
  return { status: imported.status, body: await imported.json() };
}

async function answer(host: TestHost, apiKey: string): Promise<string> {
  const client = await host.chat(apiKey);
  clients.push(client);
  const { result } = await host.ask(client, QUESTION);
  client.close();
  return result.answer;
}

test('a frozen tenant reads and chats, refuses every write with TENANT_FROZEN, and writes again once unfrozen', async () => {
  const tenant = await one.createTenant('Frozen');
  await one.ingest(tenant.apiKey, DOCS);
  assert.is((await one.request('PATCH', '/v1/config', tenant.apiKey, { feedback: { retain: true } })).status, 200);
  const client = await one.chat(tenant.apiKey);
  clients.push(client);
  const frozen = await op(one, 'POST', `/v1/tenants/${tenant.id}/freeze`);
  assert.equal([frozen.status, frozen.body.state], [200, 'frozen']);
  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/freeze`)).body.state, 'frozen', 'freezing twice is harmless');

  const write = await one.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'new', text: 'A new text.' }] });
  assert.equal([write.status, write.body.error.code], [503, 'TENANT_FROZEN']);
  assert.match(write.body.error.message, /retry shortly/);
  assert.equal((await one.request('PATCH', '/v1/config', tenant.apiKey, { topK: 4 })).body.error.code, 'TENANT_FROZEN');
  assert.equal((await one.request('DELETE', '/v1/documents/hours', tenant.apiKey)).body.error.code, 'TENANT_FROZEN');
  const read = await one.request('GET', '/v1/documents', tenant.apiKey);
  assert.equal([read.status, read.body.documents.map((document: any) => document.id)], [200, ['hours']]);

  const { result } = await one.ask(client, QUESTION);
  assert.match(result.answer, /nine/, 'the live session answers');
  const refused = await client.feedback(result.id, 1).then(() => 'accepted', (error: { code: string }) => error.code);
  assert.is(refused, 'TENANT_FROZEN', 'feedback is a write: refused, and the client can tell it may retry');
  assert.match(await answer(one, tenant.apiKey), /nine/, 'a new session opens and answers');

  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/unfreeze`)).body.state, 'serving');
  assert.is((await one.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'new', text: 'A new text.' }] })).status, 200);
  const again = await one.ask(client, QUESTION);
  await within(client.feedback(again.result.id, 1), 'feedback after the unfreeze');
});

test('a move between two hosts: incoming serves nothing, the retired source answers TENANT_MOVED naming the target, the shred leaves a tombstone', async () => {
  const tenant = await one.createTenant('Traveller');
  const other = await one.createTenant('Stayer');
  await one.ingest(tenant.apiKey, DOCS);
  await one.ingest(other.apiKey, [{ id: 'other', title: 'Hours', text: 'The Stayer workshop opens at ten and sells only tandems.' }]);
  const legacyKey = `ctx_${apiKeyId(tenant.apiKey)}_${tenant.apiKey.slice(-43)}`;
  assert.is((await one.request('GET', '/v1/config', legacyKey)).status, 200, 'a key of the legacy shape authenticates');

  const notFrozen = await transfer(one, two, tenant.id, 'one');
  assert.equal([notFrozen.status, notFrozen.body.error.code], [409, 'TENANT_STATE_CONFLICT'], 'no export of a tenant that still takes writes');
  await op(one, 'POST', `/v1/tenants/${tenant.id}/freeze`);
  const badKey = await fetch(`${one.url}/v1/tenants/${tenant.id}/export`, { headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'ctx-export-key': 'abc' } });
  assert.equal([badKey.status, ((await badKey.json()) as any).error.code], [400, 'TENANT_EXPORT_INVALID']);
  const moved = await transfer(one, two, tenant.id, 'one');
  assert.equal([moved.status, moved.body.state, moved.body.complete], [200, 'incoming', true], JSON.stringify(moved.body));
  assert.ok(moved.body.entries > 0);

  const early = await two.request('GET', '/v1/documents', tenant.apiKey);
  assert.equal([early.status, early.body.error.code], [421, 'TENANT_MOVED'], 'an incoming copy serves nothing');
  assert.is((await one.request('GET', '/v1/documents', tenant.apiKey)).status, 200, 'the source still serves reads');
  assert.equal((await op(two, 'POST', `/v1/tenants/${tenant.id}/freeze`)).body.error.code, 'TENANT_STATE_CONFLICT');

  let closedWith: number | undefined;
  const session = await within(connect({ url: one.url, apiKey: tenant.apiKey, reconnect: false, onStatus: (status) => {
    if (status.state === 'closed') closedWith = status.code;
  } }), 'a session on the source');
  clients.push(session);
  const retired = await op(one, 'POST', `/v1/tenants/${tenant.id}/retire`, { to: 'two' });
  assert.equal([retired.status, retired.body.state, retired.body.to], [200, 'moved', 'two']);
  await eventually(() => closedWith !== undefined, 'the live session on the source closes');
  assert.is(closedWith, 1012, 'its live session closes with 1012: the client reconnects');
  assert.equal((await op(two, 'POST', `/v1/tenants/${tenant.id}/activate`)).body.state, 'serving');

  const stale = await one.request('GET', '/v1/documents', tenant.apiKey);
  assert.equal([stale.status, stale.body.error.code, stale.body.error.detail.host], [421, 'TENANT_MOVED', 'two']);
  const staleResponse = await fetch(`${one.url}/v1/documents`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
  assert.is(staleResponse.headers.get('ctx-tenant-host'), 'two', 'the router learns the new host from the answer');
  assert.is((await one.request('GET', '/v1/documents', legacyKey)).body.error.code, 'TENANT_MOVED', 'a legacy key too');
  const tcp = await openTcp(one.server.port);
  tcp.socket.write(upgradeRequest({ key: tenant.apiKey }));
  await tcp.waitFor(/\r\n\r\n\{.*\}$/s, 'the refused upgrade');
  assert.match(tcp.received(), /^HTTP\/1\.1 421 Misdirected Request\r\n/);
  assert.match(tcp.received(), /ctx-tenant-host: two\r\n/);
  assert.match(tcp.received(), /"code":"TENANT_MOVED"/);
  tcp.socket.destroy();

  assert.match(await answer(two, tenant.apiKey), /nine/, 'the target answers from the moved data, with the same key');
  assert.is((await two.request('GET', '/v1/config', legacyKey)).status, 200, 'and the legacy key');
  assert.match(await answer(one, other.apiKey), /ten/, 'the other tenant on the source is untouched');

  const shred = await op(one, 'POST', `/v1/tenants/${tenant.id}/shred`);
  assert.equal([shred.status, shred.body.state, shred.body.hasData], [200, 'moved', false]);
  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/shred`)).body.hasData, false, 'shredding again is harmless');
  assert.is((await one.request('GET', '/v1/documents', legacyKey)).body.error.code, 'TENANT_MOVED', 'the legacy key, with its records gone');
  assert.is((await one.request('GET', '/v1/documents', tenant.apiKey)).body.error.detail.host, 'two');
  const listing = await op(one, 'GET', '/v1/fleet/tenants');
  assert.equal(listing.body.host, 'one');
  assert.ok(listing.body.tombstones.some((entry: any) => entry.id === tenant.id && entry.to === 'two'));
  assert.not.ok(listing.body.tenants.some((entry: any) => entry.id === tenant.id));
  const onTwo = (await op(two, 'GET', '/v1/fleet/tenants')).body.tenants.find((entry: any) => entry.id === tenant.id);
  assert.equal([onTwo.state, onTwo.keys.map((key: any) => key.id)], ['serving', [apiKeyId(tenant.apiKey)]]);
});

test('steps refuse the states they do not fit; an incoming copy can be discarded', async () => {
  const tenant = await one.createTenant('Careful');
  await one.ingest(tenant.apiKey, DOCS);
  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/shred`)).body.error.code, 'TENANT_STATE_CONFLICT', 'a serving tenant is never shredded');
  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/retire`, { to: 'two' })).body.error.code, 'TENANT_STATE_CONFLICT', 'nor retired before it is frozen');
  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/activate`)).body.state, 'serving', 'activating a serving tenant changes nothing');
  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/retire`, { to: 'Not A Host' })).body.error.code, 'FLEET_INVALID');
  assert.equal((await op(one, 'POST', '/v1/tenants/t_0123456789abcdef/freeze')).body.error.code, 'TENANT_NOT_FOUND');

  await op(one, 'POST', `/v1/tenants/${tenant.id}/freeze`);
  assert.equal((await transfer(one, one, tenant.id, 'one')).body.error.code, 'TENANT_EXISTS', 'a host does not import a tenant it serves');
  assert.equal((await transfer(one, two, tenant.id, 'one')).body.state, 'incoming');
  assert.equal((await transfer(one, two, tenant.id, 'one')).body.complete, true, 'a repeated import replaces the incoming copy');
  const discarded = await op(two, 'POST', `/v1/tenants/${tenant.id}/shred`);
  assert.equal([discarded.body.state, discarded.body.hasData], ['absent', false], 'the incoming copy is gone without a trace');
  assert.equal((await op(one, 'POST', `/v1/tenants/${tenant.id}/unfreeze`)).body.state, 'serving', 'rolled back: the source serves and writes');
  assert.is((await one.request('POST', '/v1/documents', tenant.apiKey, { documents: DOCS })).status, 200);
});

test('a fleet host answers a key of a tenant it never held with TENANT_MOVED, and of a tenant deleted here with AUTH_INVALID_KEY', async () => {
  const stranger = await two.createTenant('Stranger');
  const astray = await one.request('GET', '/v1/config', stranger.apiKey);
  assert.equal([astray.status, astray.body.error.code], [421, 'TENANT_MOVED']);
  assert.is(astray.body.error.detail.host, undefined, 'this host cannot tell where it is');
  const doomed = await one.createTenant('Doomed');
  assert.is((await op(one, 'DELETE', `/v1/tenants/${doomed.id}`)).status, 200);
  const gone = await one.request('GET', '/v1/config', doomed.apiKey);
  assert.equal([gone.status, gone.body.error.code], [401, 'AUTH_INVALID_KEY']);
  const forged = `ctx_${stranger.id.slice(2)}_${apiKeyId(doomed.apiKey)}_${doomed.apiKey.slice(-43)}`;
  assert.equal((await two.request('GET', '/v1/config', forged)).body.error.code, 'AUTH_INVALID_KEY', 'a key naming another tenant than its own is refused');
});

test('the feedback retention sweep passes over a tenant in the middle of a move and sweeps the others', async () => {
  const moving = await one.createTenant('Sweep Mover');
  const staying = await one.createTenant('Sweep Stayer');
  const authority = one.server.authority;
  const operator = operatorFromLocalAccess();
  const later = Date.now() + 400 * 24 * 3600 * 1000;
  for (const tenant of [moving, staying]) {
    assert.is((await one.request('PATCH', '/v1/config', tenant.apiKey, { feedback: { retain: true, retentionDays: 1 } })).status, 200);
    withOperatorScope(authority, operator, tenant.id, (scope) => storeFeedback(scope, { askId: 'a1', rating: 1, question: 'q', answer: 'a', sources: [] }));
  }
  await op(one, 'POST', `/v1/tenants/${moving.id}/freeze`);
  await sweepFeedbackRetention(authority, pino({ level: 'silent' }), later);
  const count = (tenantId: string) => withOperatorScope(authority, operator, tenantId, (scope) => storedCount(scope.store));
  assert.equal([count(moving.id), count(staying.id)], [1, 0], 'the frozen tenant is left for its next host; the other is swept');
  await op(one, 'POST', `/v1/tenants/${moving.id}/unfreeze`);
});

test('import body limit: at the limit it is spooled, one byte over is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-spool-'));
  try {
    const body = (bytes: number, declared?: number) => Object.assign(Readable.from([Buffer.alloc(bytes)]), { headers: declared === undefined ? {} : { 'content-length': String(declared) } });
    assert.is(await spoolBody(body(1000), join(dir, 'a'), 1000), 1000);
    await spoolBody(body(1001), join(dir, 'b'), 1000).then(
      () => assert.unreachable('over the limit'),
      (error: HostError) => assert.equal([error.code, error.message], ['HTTP_BODY_TOO_LARGE', 'body is over 1000 bytes']),
    );
    await spoolBody(body(0, LIMITS.tenantImportBytesMax + 1), join(dir, 'c'), LIMITS.tenantImportBytesMax).then(
      () => assert.unreachable('declared over the limit'),
      (error: HostError) => assert.equal(error.code, 'HTTP_BODY_TOO_LARGE'),
    );
    assert.is(await spoolBody(body(10, LIMITS.tenantImportBytesMax), join(dir, 'd'), LIMITS.tenantImportBytesMax), 10, 'declared at the limit is read');
    writeFileSync(join(dir, 'e'), '');
    await spoolBody(body(1), join(dir, 'e'), 1000).then(() => assert.unreachable('never overwrites'), () => undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
