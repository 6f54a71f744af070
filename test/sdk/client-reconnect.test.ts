/**
 * The client library keeps a chat up: after the server drops the connection it reconnects with
 * exponential backoff and jitter, fails what was in flight with CLIENT_CONNECTION_LOST, sends what
 * was asked meanwhile on the new session, gives up after its attempts, does not reconnect after a
 * policy close (1008), and finds a silent connection by its heartbeat. A scripted WebSocket server
 * produces each failure on cue.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChatError, connect, type ChatClient, type ClientStatus } from '../../sdk/client/node.ts';
import { within } from '../helpers/deadline.ts';
import { eventually } from '../helpers/wait.ts';
import { startChatServer, type ChatServer } from './chat-server.ts';

let server: ChatServer;
const clients: ChatClient[] = [];

test.before.each(async () => {
  server = await startChatServer();
});
test.after.each(async () => {
  for (const client of clients.splice(0)) client.close();
  await server.close();
});

const waitFor = (condition: () => boolean, what: string): Promise<void> => eventually(condition, what);

async function rejection(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await within(promise, 'a promise expected to reject');
  } catch (error: unknown) {
    assert.instance(error, ChatError);
    return error as ChatError;
  }
  throw new Error('expected a rejection');
}

async function open(statuses: ClientStatus[], options: Partial<Parameters<typeof connect>[0]> = {}): Promise<ChatClient> {
  const client = await within(
    connect({ url: server.url, apiKey: 'ctx_test', heartbeat: false, onStatus: (status) => statuses.push(status), ...options }),
    'connect',
  );
  clients.push(client);
  return client;
}

test('after a drop: in-flight asks fail CLIENT_CONNECTION_LOST, the client backs off, reconnects, and sends asks made meanwhile', async () => {
  const statuses: ClientStatus[] = [];
  // random() = 0.5 puts every delay at 3/4 of its window: 30, 60, 120 ms for a 40 ms initial window.
  const client = await open(statuses, { reconnect: { delayMsInitial: 40, delayMsMax: 1_000, random: () => 0.5, attemptsMax: 5 } });
  assert.is(client.session, 's1');
  server.script.holdAsks = true;
  const inFlight = client.ask('first');
  await waitFor(() => server.received.some(({ frame }) => frame['type'] === 'ask'), 'the ask reaching the server');
  // The next two reconnects are refused (a host restarting), the third succeeds.
  server.script.refuse = { status: 503, code: 'STORAGE_ENV_LIMIT', message: 'busy', times: 2 };
  server.dropAll();
  const lost = await rejection(inFlight.result);
  assert.is(lost.code, 'CLIENT_CONNECTION_LOST');
  assert.is(lost.askId, inFlight.id);
  assert.ok(lost.retryable);
  assert.is(client.state, 'reconnecting');
  server.script.holdAsks = false;
  const queued = client.ask('second');
  const answered = await within(queued.result, 'the queued ask');
  assert.is(answered.answer, 'answer to second');
  assert.is(client.session, 's2');
  const reconnecting = statuses.filter((status): status is Extract<ClientStatus, { state: 'reconnecting' }> => status.state === 'reconnecting');
  assert.equal(reconnecting.map((status) => [status.attempt, status.delayMs]), [[1, 30], [2, 60], [3, 120]]);
  assert.is(reconnecting[1]?.error.code, 'STORAGE_ENV_LIMIT', 'a refusal during reconnect carries the host code');
  assert.equal(statuses.at(-1), { state: 'ready', session: 's2', reconnected: true });
  // The server saw each attempt no sooner than its delay after the one before.
  const [, second, third, fourth] = server.attempts as [number, number, number, number];
  assert.ok(third - second >= 60 - 5 && fourth - third >= 120 - 5, `gaps ${third - second} and ${fourth - third} ms`);
  assert.ok(server.received.some(({ session, frame }) => session === 's2' && frame['text'] === 'second'));
});

test('a cell restarting: its close (1013) and the upgrades it refuses meanwhile (503 CELL_UNAVAILABLE) are retried', async () => {
  const statuses: ClientStatus[] = [];
  const client = await open(statuses, { reconnect: { delayMsInitial: 20, attemptsMax: 5 } });
  server.script.refuse = { status: 503, code: 'CELL_UNAVAILABLE', message: 'the cell process is gone', times: 2 };
  server.closeAll(1013, 'CELL_UNAVAILABLE', 'the cell serving this tenant is restarting');
  await waitFor(() => statuses.some((status) => status.state === 'ready' && status.reconnected), 'the reconnect');
  const reconnecting = statuses.filter((status): status is Extract<ClientStatus, { state: 'reconnecting' }> => status.state === 'reconnecting');
  assert.equal(reconnecting.map((status) => status.error.code), ['CELL_UNAVAILABLE', 'CELL_UNAVAILABLE', 'CELL_UNAVAILABLE']);
  assert.ok(new ChatError('CELL_UNAVAILABLE', 'x').retryable);
  assert.is((await within(client.ask('still there?').result, 'an ask after the restart')).answer, 'answer to still there?');
});

test('gives up after attemptsMax: closed resolves with CLIENT_RECONNECT_FAILED and queued asks fail with it', async () => {
  const statuses: ClientStatus[] = [];
  const client = await open(statuses, { reconnect: { delayMsInitial: 20, attemptsMax: 2 } });
  await server.close();
  await waitFor(() => client.state === 'reconnecting', 'the drop being noticed');
  const queued = client.ask('anyone?');
  const closed = await within(client.closed, 'giving up');
  assert.is(closed.error?.code, 'CLIENT_RECONNECT_FAILED');
  assert.match(closed.error?.message ?? '', /gave up after 2 reconnect attempts; the last failed with: could not connect/);
  assert.is((await rejection(queued.result)).code, 'CLIENT_RECONNECT_FAILED');
  assert.is(client.state, 'closed');
  assert.is((await rejection(client.ask('after').result)).code, 'CLIENT_CLOSED');
  server = await startChatServer();
});

test('a policy close (1008) ends the client with the host code and no reconnect', async () => {
  const statuses: ClientStatus[] = [];
  const client = await open(statuses, { reconnect: { delayMsInitial: 10 } });
  server.closeAll(1008, 'PROTOCOL_RATE_LIMIT', 'more than 200 frames in 10000 ms');
  const closed = await within(client.closed, 'the close');
  assert.is(closed.code, 1008);
  assert.is(closed.error?.code, 'PROTOCOL_RATE_LIMIT');
  assert.is(closed.error?.message, 'more than 200 frames in 10000 ms');
  // Closed is final (its timers are stopped, a reconnect in progress is abandoned), so nothing can
  // be attempted later; no sleep is needed to see that none was.
  assert.is(client.state, 'closed');
  assert.is(server.attempts.length, 1, 'no reconnect attempt');
  assert.not.ok(statuses.some((status) => status.state === 'reconnecting'));
});

test('reconnect: false ends the client at the first drop', async () => {
  const client = await open([], { reconnect: false });
  server.dropAll();
  const closed = await within(client.closed, 'the close');
  assert.is(closed.error?.code, 'CLIENT_CLOSED');
  assert.is(server.attempts.length, 1);
});

test('the heartbeat finds a connection that stopped answering and reconnects', async () => {
  const statuses: ClientStatus[] = [];
  const client = await open(statuses, { heartbeat: { intervalMs: 30, timeoutMs: 60 }, reconnect: { delayMsInitial: 10 } });
  server.script.pong = false;
  // At least one reconnect: on a loaded machine a pong can also miss its 60 ms after pongs resume,
  // and that is a reconnect too, so neither the count nor the session name is pinned.
  await waitFor(() => server.sessions.length >= 2, 'a reconnect after the missing pong');
  server.script.pong = true;
  await waitFor(() => client.state === 'ready' && client.session !== 's1', 'a new session');
  const dropped = statuses.find((status) => status.state === 'reconnecting');
  assert.match(dropped?.state === 'reconnecting' ? dropped.error.message : '', /no pong within 60 ms/);
});

test('close() ends everything: no reconnect, pending asks fail CLIENT_CLOSED, closed resolves 1000', async () => {
  const statuses: ClientStatus[] = [];
  const client = await open(statuses, { reconnect: { delayMsInitial: 10 } });
  server.script.holdAsks = true;
  const pending = client.ask('held');
  await waitFor(() => server.received.some(({ frame }) => frame['type'] === 'ask'), 'the ask reaching the server');
  client.close();
  assert.is((await rejection(pending.result)).code, 'CLIENT_CLOSED');
  assert.equal(await within(client.closed, 'closed'), { code: 1000, reason: 'client closed' });
  assert.is(client.state, 'closed', 'final: no reconnect can follow');
  assert.is(server.attempts.length, 1);
  assert.not.ok(statuses.some((status) => status.state === 'reconnecting'));
});

test('a refused upgrade reports the host code and HTTP status (Node)', async () => {
  server.script.refuse = { status: 401, code: 'AUTH_INVALID_KEY', message: 'the API key is unknown or revoked' };
  const error = await rejection(connect({ url: server.url, apiKey: 'ctx_wrong' }));
  assert.is(error.code, 'AUTH_INVALID_KEY');
  assert.is(error.status, 401);
  assert.is(error.message, 'the API key is unknown or revoked');
  assert.not.ok(error.retryable);
});

test('the first connect is tried once: no host, CLIENT_CONNECT_FAILED at once', async () => {
  await server.close();
  const statuses: ClientStatus[] = [];
  // A retry would wait at least 30 s (half of a 60 s window): failing within the deadline shows none.
  const error = await rejection(connect({ url: server.url, apiKey: 'ctx_test', reconnect: { delayMsInitial: 60_000, delayMsMax: 60_000 }, onStatus: (status) => statuses.push(status) }));
  assert.is(error.code, 'CLIENT_CONNECT_FAILED');
  assert.match(error.message, /could not connect to ws:\/\/127\.0\.0\.1:\d+\/v1\/chat/);
  assert.not.ok(statuses.some((status) => status.state === 'reconnecting'), 'no reconnect scheduled');
  server = await startChatServer();
});

test.run();
