/**
 * The host as `npm start` runs it: a supervisor and cell processes (two cells and a standby), real
 * sockets handed between processes. Each test plays an attack or a failure on one tenant and
 * checks that another tenant, on the same host, never notices:
 * - chat and HTTP of a tenant are served by the cell its id hashes to;
 * - `kill -9` of one cell: its clients reconnect and answer (the standby took the slot), the other
 *   cell's clients keep their sessions;
 * - a connection handed to a cell killed at that moment reaches the cell that took its slot over;
 * - connections reset during the upgrade leave no session and no lease in any cell;
 * - a tenant burning its whole budget from four sessions is moved to the quarantine cell while the
 *   others keep answering;
 * - revoking a key ends the sessions it opened and voids the tickets it minted.
 * No assertion depends on speed: waits are for conditions, with deadlines.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { rendezvousSlot } from '../../host/cells/placement.ts';
import { connect, requestTicket, type ChatClient, type ClientStatus } from '../../sdk/client/node.ts';
import { within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { openTcp, upgradeRequest } from '../helpers/raw-tcp.ts';
import { eventually } from '../helpers/wait.ts';
import { fixturePlugin } from '../sandbox/harness.ts';

let host: TestHost;
/** One tenant placed on each regular cell slot. */
const onSlot: { id: string; apiKey: string }[] = [];

const DOC = { id: 'hours', title: 'Opening hours', text: 'The shop opens at nine in the morning and closes at six.' };

test.before(async () => {
  host = await startTestHost({ processes: true, config: { workers: 2 } });
  for (let made = 0; onSlot.filter(Boolean).length < 2 && made < 40; made += 1) {
    const tenant = await host.createTenant(`tenant ${made}`);
    const slot = rendezvousSlot(tenant.id, 2);
    if (onSlot[slot] === undefined) onSlot[slot] = tenant;
  }
  for (const tenant of onSlot) await host.ingest(tenant.apiKey, [DOC]);
});
test.after(async () => {
  await host.close();
});

interface CellHealth {
  slot: number;
  pid: number;
  state: string;
  sessions?: number;
  leases?: number;
  quarantine?: boolean;
}

async function health(): Promise<{ sessions: number; cells: CellHealth[]; quarantinedTenants: number; standby: string }> {
  return (await host.request('GET', '/healthz', undefined)).body;
}

async function asksOpening(client: ChatClient): Promise<void> {
  const { result } = await host.ask(client, 'When does the shop open?');
  assert.match(result.answer, /nine/);
}

test("chat and HTTP of a tenant are served by the cell its id hashes to, and only there", async () => {
  const [first, second] = onSlot as [{ id: string; apiKey: string }, { id: string; apiKey: string }];
  const client = await host.chat(first.apiKey);
  await asksOpening(client);
  await eventually(async () => (await health()).cells[0]?.sessions === 1, 'the session counted in its own cell');
  const cells = (await health()).cells;
  assert.is(cells[1]?.sessions, 0, 'the other cell holds none of it');
  // The document posted over HTTP was indexed by the same cell that answers the chat.
  assert.is((await host.request('GET', '/v1/documents', second.apiKey)).body.chunks, 1);
  client.close();
  await eventually(async () => (await health()).sessions === 0, 'the session ends');
});

test('kill -9 of one cell: its clients reconnect and answer; the other cell\'s clients never notice', async () => {
  const [victim, bystander] = onSlot as [{ id: string; apiKey: string }, { id: string; apiKey: string }];
  const statuses = { victim: [] as ClientStatus[], bystander: [] as ClientStatus[] };
  const victimClient = await within(connect({ url: host.url, apiKey: victim.apiKey, reconnect: { delayMsInitial: 50, attemptsMax: 40 }, onStatus: (s) => statuses.victim.push(s) }), 'victim connect');
  const bystanderClient = await within(connect({ url: host.url, apiKey: bystander.apiKey, onStatus: (s) => statuses.bystander.push(s) }), 'bystander connect');
  try {
    await asksOpening(victimClient);
    await asksOpening(bystanderClient);
    const before = await health();
    const victimPid = before.cells[0]?.pid as number;
    const bystanderSession = bystanderClient.session;
    process.kill(victimPid, 'SIGKILL');
    await eventually(() => statuses.victim.some((status) => status.state === 'ready' && status.reconnected), 'the victim reconnects', 30_000);
    await asksOpening(victimClient);
    const after = await health();
    assert.not.equal(after.cells[0]?.pid, victimPid, 'another process serves the slot');
    assert.is(after.cells[1]?.pid, before.cells[1]?.pid);
    await asksOpening(bystanderClient);
    assert.is(bystanderClient.session, bystanderSession, 'the bystander kept its session');
    assert.equal(statuses.bystander.filter((status) => status.state !== 'ready'), [], 'and never saw a reconnect');
  } finally {
    victimClient.close();
    bystanderClient.close();
  }
  await eventually(async () => (await health()).standby === 'ready', 'a new standby is ready', 60_000);
});

test('a connection handed to a cell as it is killed is not lost: the first connect after kill -9 opens a session', async () => {
  const [victim] = onSlot as [{ id: string; apiKey: string }];
  await eventually(async () => (await health()).standby === 'ready', 'a standby is ready', 60_000);
  const victimPid = (await health()).cells[0]?.pid as number;
  process.kill(victimPid, 'SIGKILL');
  // At once, before the supervisor has seen the exit: the connection goes to the dying cell first.
  const frames = new Packr({ useRecords: false, mapsAsObjects: true });
  const socket = new WebSocket(`${host.url.replace('http', 'ws')}/v1/chat`, { headers: { authorization: `Bearer ${victim.apiKey}` } });
  try {
    const first = await within(
      new Promise<{ type: string }>((resolve, reject) => {
        socket.once('message', (data: Buffer) => resolve(frames.unpack(data) as { type: string }));
        socket.once('error', reject);
        socket.once('close', (code) => reject(new Error(`closed with ${code} before a frame`)));
      }),
      'the first frame after the kill',
      60_000,
    );
    assert.is(first.type, 'ready');
  } finally {
    socket.terminate();
  }
  assert.not.equal((await health()).cells[0]?.pid, victimPid, 'the successor serves the slot');
  await eventually(async () => (await health()).standby === 'ready', 'a new standby is ready', 60_000);
});

test('connections reset during the upgrade, or refused by it, leave no session and no lease in any cell', async () => {
  for (const tenant of onSlot) {
    for (let round = 0; round < 20; round += 1) {
      const immediate = await openTcp(host.server.port);
      immediate.socket.write(upgradeRequest({ key: tenant.apiKey }));
      immediate.reset();
      const upgraded = await openTcp(host.server.port);
      upgraded.socket.write(upgradeRequest({ key: tenant.apiKey }));
      await upgraded.waitFor(/^HTTP\/1\.1 101/, 'the 101');
      upgraded.reset();
      const refused = await openTcp(host.server.port);
      refused.socket.write(upgradeRequest({ key: tenant.apiKey, version: '7' }));
      await refused.waitFor(/^HTTP\/1\.1 400/, 'the 400');
      refused.reset();
    }
  }
  await eventually(async () => {
    const cells = (await health()).cells;
    return cells.every((cell) => cell.sessions === 0 && cell.leases === 0);
  }, 'every cell back to no sessions and no leases');
  const client = await host.chat(onSlot[0]?.apiKey as string);
  await asksOpening(client);
  client.close();
});

test('revoking a key ends the sessions it opened and voids the tickets it minted; the other key goes on', async () => {
  const tenant = onSlot[1] as { id: string; apiKey: string };
  const second = await host.request('POST', '/v1/keys', tenant.apiKey);
  assert.is(second.status, 201);
  const { ticket } = await requestTicket({ url: host.url, apiKey: second.body.apiKey });
  const statuses: ClientStatus[] = [];
  const doomed = await within(connect({ url: host.url, apiKey: second.body.apiKey, onStatus: (s) => statuses.push(s) }), 'connect with the second key');
  const kept = await host.chat(tenant.apiKey);
  await asksOpening(doomed);
  const revoked = await host.request('DELETE', `/v1/keys/${second.body.keyId}`, tenant.apiKey);
  assert.is(revoked.status, 200);
  const closed = await within(doomed.closed, 'the revoked key\'s session closing');
  assert.is(closed.code, 1008);
  const refused = await openTcp(host.server.port);
  refused.socket.write(upgradeRequest({ query: `?ticket=${ticket}` }));
  await refused.waitFor(/^HTTP\/1\.1 401/, 'the 401 for the voided ticket');
  refused.reset();
  await asksOpening(kept);
  kept.close();
});

test('a tenant burning its whole budget from four sessions is moved to the quarantine cell; its neighbour keeps answering', async () => {
  const neighbour = onSlot[0] as { id: string; apiKey: string };
  let burner: { id: string; apiKey: string } | undefined;
  for (let made = 0; burner === undefined && made < 40; made += 1) {
    const tenant = await host.createTenant(`burner ${made}`);
    if (rendezvousSlot(tenant.id, 2) === 0) burner = tenant;
  }
  assert.ok(burner !== undefined, 'a burner on the neighbour\'s cell');
  const upload = await fetch(`${host.url}/v1/plugins/retrieval`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${burner.apiKey}`, 'content-type': 'application/wasm' },
    body: await fixturePlugin('cpu-and-memory'),
  });
  assert.is(upload.status, 201);
  const burners = await Promise.all(Array.from({ length: 4 }, () => within(connect({ url: host.url, apiKey: (burner as { apiKey: string }).apiKey, reconnect: { delayMsInitial: 50, attemptsMax: 40 } }), 'burner connect')));
  let burning = true;
  const burns = burners.map(async (client) => {
    let failures = 0;
    while (burning) {
      await client.ask('spin').result.then(
        () => undefined,
        () => (failures += 1),
      );
    }
    return failures;
  });
  const client = await host.chat(neighbour.apiKey);
  try {
    await eventually(async () => (await health()).quarantinedTenants === 1, 'the burner is quarantined', 60_000);
    const cells = (await health()).cells;
    assert.ok(cells.some((cell) => cell.quarantine === true && cell.state === 'ready'), 'a quarantine cell serves it');
    for (let i = 0; i < 5; i += 1) await asksOpening(client);
    await eventually(async () => ((await health()).cells.find((cell) => cell.quarantine === true)?.sessions ?? 0) > 0, 'the burner\'s clients reconnected to the quarantine cell', 30_000);
  } finally {
    burning = false;
    assert.ok((await Promise.all(burns)).reduce((sum, failures) => sum + failures, 0) >= 5, 'the burner kept spending its budget');
    for (const burnerClient of burners) burnerClient.close();
    client.close();
  }
});

test.run();
