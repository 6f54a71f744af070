/**
 * Connection resets at every point of a WebSocket upgrade, as an outsider (no key, a wrong key) and
 * as a tenant's client (a valid key) would send them: before the request is complete, right after
 * its headers, after the 101, while the session starts, and after a handshake the host refuses. The
 * host must stay up, count the errors, answer afterwards, and hold no lease or session for any of
 * them. Before the fix, the first few dozen resets ended the host process (ECONNRESET unhandled).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestHost, OPERATOR_KEY, type TestHost } from '../helpers/host.ts';
import { sampleValue } from '../helpers/prometheus.ts';
import { openTcp, upgradeRequest } from '../helpers/raw-tcp.ts';
import { eventually } from '../helpers/wait.ts';

let host: TestHost;
let tenant: { id: string; apiKey: string };
/** While set, session starts wait for it (the "during session start" case). */
let holdStarts: Promise<void> | undefined;

/** Rounds of each case: enough to land resets on both sides of the host's own steps. */
const ROUNDS = 40;

test.before(async () => {
  host = await startTestHost({ faultHoldSessionStart: async () => holdStarts });
  tenant = await host.createTenant('Reset Co');
  await host.ingest(tenant.apiKey, [{ id: 'd1', title: 'Doc', text: 'Express delivery costs 15 euros.' }]);
});
test.after(async () => {
  await host.close();
});

async function metric(stage: string): Promise<number> {
  const response = await fetch(`${host.url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
  return sampleValue(await response.text(), 'ctx_connection_errors_total', { stage }) ?? 0;
}

/** The host answers, and nothing of the resets is held: no live session, no lease on the tenant's environment. */
async function assertNothingHeld(): Promise<void> {
  await eventually(async () => (await host.server.liveSessions()) === 0, 'no live sessions');
  await eventually(() => host.server.authority.environments.leaseCount(tenant.id) === 0, 'no leases on the tenant environment');
  const health = await host.request('GET', '/healthz', undefined);
  assert.is(health.status, 200);
  assert.is(health.body.sessions, 0);
}

test('no key or a wrong key: resets before the head is complete, right after it, and after the 401', async () => {
  for (let round = 0; round < ROUNDS; round += 1) {
    const partial = await openTcp(host.server.port);
    partial.socket.write(upgradeRequest({ key: 'ctx_wrong' }).slice(0, 40));
    partial.reset();
    const immediate = await openTcp(host.server.port);
    immediate.socket.write(upgradeRequest(round % 2 === 0 ? {} : { key: `ctx_${'0'.repeat(16)}_${'x'.repeat(43)}` }));
    immediate.reset();
    const answered = await openTcp(host.server.port);
    answered.socket.write(upgradeRequest({ key: 'not-a-key' }));
    await answered.waitFor(/^HTTP\/1\.1 401/, 'the 401');
    answered.reset();
  }
  await assertNothingHeld();
  // The host learns of a reset asynchronously: wait for it to be counted rather than assume it was.
  await eventually(async () => (await metric('upgrade')) + (await metric('http')) > 0, 'the resets being counted');
});

test('a valid key: resets right after the head and after the 101 leave no session or lease', async () => {
  const before = await metric('chat');
  for (let round = 0; round < ROUNDS; round += 1) {
    const immediate = await openTcp(host.server.port);
    immediate.socket.write(upgradeRequest({ key: tenant.apiKey }));
    immediate.reset();
    const upgraded = await openTcp(host.server.port);
    upgraded.socket.write(upgradeRequest({ key: tenant.apiKey }));
    await upgraded.waitFor(/^HTTP\/1\.1 101/, 'the 101');
    upgraded.reset();
  }
  await eventually(async () => (await metric('chat')) > before, 'resets after the 101 being counted as chat errors');
  await assertNothingHeld();
});

test('a valid key: a reset while the session is starting leaves no ghost session', async () => {
  let release: () => void = () => undefined;
  holdStarts = new Promise<void>((resolve) => (release = resolve));
  const before = await metric('chat');
  const sockets = [];
  for (let round = 0; round < 10; round += 1) {
    const socket = await openTcp(host.server.port);
    socket.socket.write(upgradeRequest({ key: tenant.apiKey }));
    await socket.waitFor(/^HTTP\/1\.1 101/, 'the 101');
    sockets.push(socket);
  }
  for (const socket of sockets) socket.reset();
  // Every reset has reached the host (each is counted) while the ten starts are still held.
  await eventually(async () => (await metric('chat')) >= before + 10, 'the ten resets are counted');
  holdStarts = undefined;
  release();
  await assertNothingHeld();
});

test('a valid key and a handshake the host refuses (bad version) leave no lease', async () => {
  for (let round = 0; round < ROUNDS; round += 1) {
    const socket = await openTcp(host.server.port);
    socket.socket.write(upgradeRequest({ key: tenant.apiKey, version: '7' }));
    await socket.waitFor(/^HTTP\/1\.1 400/, 'the 400');
    if (round % 2 === 0) socket.reset();
    else socket.socket.end();
  }
  await assertNothingHeld();
});

test('after all of it the host still chats', async () => {
  const client = await host.chat(tenant.apiKey);
  const { result } = await host.ask(client, 'How much does express delivery cost?');
  assert.match(result.answer, /15 euros/);
  client.close();
  await assertNothingHeld();
});

test.run();
