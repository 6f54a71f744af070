/**
 * The client library against a real host: typed errors carry the host's protocol codes (an ask
 * refused, a session limit, a refused key, an HTTP error); feedback resolves once the host
 * accepted it; a browser-style ticket connects, and `getTicket` lets the client come back after
 * the host restarts on the same port, while a lone single-use ticket cannot.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChatError, connect, requestTicket, type ChatClient, type ClientStatus } from '../../sdk/client/node.ts';
import { hostRequest } from '../../sdk/client/http.ts';
import { within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

const SHIPPING = { id: 'shipping', title: 'Shipping', text: 'Express delivery arrives the next working day and costs 15 euros.' };

async function rejection(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await within(promise, 'a promise expected to reject');
  } catch (error: unknown) {
    assert.instance(error, ChatError);
    return error as ChatError;
  }
  throw new Error('expected a rejection');
}

async function waitFor(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  await within(
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
    })(),
    what,
    ms,
  );
}

test('typed errors: an ask the host refuses, a refused key (401), a session limit, an HTTP error body', async () => {
  const host = await startTestHost({ limits: { sessionsPerTenantMax: 1 } });
  try {
    const tenant = await host.createTenant('Typed');
    const client = await host.chat(tenant.apiKey);
    const refused = await rejection(client.ask('x'.repeat(4_001)).result);
    assert.is(refused.code, 'PROTOCOL_BAD_FRAME');
    assert.match(refused.message, /ask\.text/);
    assert.is(refused.askId, 'a1');
    const limit = await rejection(connect({ url: host.url, apiKey: tenant.apiKey }));
    assert.is(limit.code, 'TENANT_SESSION_LIMIT');
    assert.ok(limit.retryable);
    const badKey = await rejection(connect({ url: host.url, apiKey: 'ctx_0000000000000000_nope' }));
    assert.is(badKey.code, 'AUTH_INVALID_KEY');
    assert.is(badKey.status, 401);
    const http = await rejection(hostRequest(host.url, '/v1/plugins/retrieval', { method: 'PUT', apiKey: tenant.apiKey, body: new Uint8Array([0, 1, 2]), contentType: 'application/wasm' }));
    assert.is(http.code, 'PLUGIN_INVALID');
    assert.is(http.status, 422);
  } finally {
    await host.close();
  }
});

test('feedback resolves once the host accepted it and rejects with the host code when it did not', async () => {
  const host = await startTestHost();
  try {
    const tenant = await host.createTenant('Feedback');
    await host.ingest(tenant.apiKey, [SHIPPING]);
    const client = await host.chat(tenant.apiKey);
    const { result } = await host.ask(client, 'How much does express delivery cost?');
    await within(client.feedback(result.id, 1, 'clear and right'), 'feedback');
    await within(client.feedback(result.id, -1), 'a second rating of the same answer');
    const unknown = await rejection(client.feedback('a99', 1));
    assert.is(unknown.code, 'PROTOCOL_BAD_FRAME');
    assert.match(unknown.message, /names no recent answer of this session/);
  } finally {
    await host.close();
  }
});

test('tickets: connect once with a ticket; getTicket brings the client back after a host restart on the same port', async () => {
  const first = await startTestHost();
  const tenant = await first.createTenant('Tickets');
  await first.ingest(tenant.apiKey, [SHIPPING]);
  const { url, port, dataDir } = { url: first.url, port: first.server.port, dataDir: first.dataDir };
  const statuses: ClientStatus[] = [];
  const clients: ChatClient[] = [];
  let second: TestHost | undefined;
  try {
    const { ticket } = await requestTicket({ url, apiKey: tenant.apiKey, user: 'end-user-1' });
    const once = await within(connect({ url, ticket, reconnect: { delayMsInitial: 50, attemptsMax: 3 } }), 'ticket connect');
    // Retries every 50–100 ms for as long as a loaded machine may take to restart the host: with
    // growing delays the reconnect could come long after the host is back, past the deadline.
    const reconnect = { delayMsInitial: 100, delayMsMax: 100, attemptsMax: 1_000 };
    const renewing = await within(
      connect({ url, getTicket: async () => (await requestTicket({ url, apiKey: tenant.apiKey })).ticket, reconnect, onStatus: (status) => statuses.push(status) }),
      'getTicket connect',
    );
    clients.push(once, renewing);
    const { result } = await first.ask(renewing, 'How much does express delivery cost?');
    const firstSession = renewing.session;
    await first.close({ keepData: true });
    second = await startTestHost({ dataDir, config: { port } });
    await waitFor(() => renewing.state === 'ready' && renewing.session !== firstSession, 'the reconnect to the restarted host');
    assert.ok(statuses.some((status) => status.state === 'reconnecting'));
    const again = await second.ask(renewing, 'How much does express delivery cost?');
    assert.match(again.result.answer, /15 euros/);
    const stale = await rejection(renewing.feedback(result.id, 1));
    assert.is(stale.code, 'CLIENT_STALE_ASK');
    const ended = await within(once.closed, 'the single-ticket client ending');
    assert.is(ended.error?.code, 'CLIENT_RECONNECT_FAILED');
    assert.match(ended.error?.message ?? '', /a ticket is single-use: pass getTicket/);
  } finally {
    for (const client of clients) client.close();
    if (second !== undefined) await second.close();
    else await first.close();
  }
});

test.run();
