/**
 * A real fleet (HAProxy and three host processes on loopback; the controller in this process):
 * tenants are created on the least-loaded host and routed by the tenant their credentials name; a
 * tenant moves while its client chats, rates answers and uploads documents through the router,
 * and afterwards every acknowledged document and rating is there, the client saw one reconnect,
 * and a tenant on the same hosts never saw a frame of the moving one; a stale router entry costs
 * one TENANT_MOVED answer, after which the client reaches the right host.
 */
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { connect, type ChatClient, type ClientStatus } from '../../sdk/client/node.ts';
import { within } from '../helpers/deadline.ts';
import { startTestFleet, type TestFleet } from '../helpers/fleet.ts';
import { mustOpen, openRaw, type RawSocket } from '../helpers/raw-socket.ts';
import { eventually } from '../helpers/wait.ts';

let fleet: TestFleet;
const clients: ChatClient[] = [];
const sockets: RawSocket[] = [];

test.before(async () => {
  fleet = await startTestFleet();
});
test.after(async () => {
  for (const client of clients) client.close();
  for (const socket of sockets) socket.close();
  await fleet?.stop();
});

/** A GET with node:http: unlike fetch, it shows a 421 instead of retrying it on a new connection. */
function plainGet(url: string, key: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: any }> {
  return within(
    new Promise((resolve, reject) => {
      const request = httpGet(url, { headers: { authorization: `Bearer ${key}` }, agent: false }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text) }));
      });
      request.on('error', reject);
    }),
    `GET ${url}`,
  );
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Tenant = { id: string; apiKey: string; host: string };
async function create(name: string): Promise<Tenant> {
  const created = await within(fleet.fleet.controller.createTenant(name), `create ${name}`, 30_000);
  return { id: created.tenant.id, apiKey: created.apiKey, host: created.host };
}

test('new tenants go to the least-loaded host; every credential routes to the tenant\'s host', async () => {
  const first = [await create('Alpha One'), await create('Alpha Two'), await create('Alpha Three')];
  assert.equal(first.map((tenant) => tenant.host), ['h1', 'h2', 'h3'], 'an empty fleet fills its hosts in turn');
  const fourth = await create('Alpha Four');
  assert.is(fourth.host, 'h1', 'ties go to the first host by name');
  const counts = (await fleet.fleet.controller.view()).hosts.map((host) => host.tenants);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts stay even: ${counts.join(', ')}`);
  const tenant = fourth;
  // Only the tenant's own host has it: any other host would answer TENANT_MOVED.
  assert.is((await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'd', title: 'Hours', text: 'The Four workshop opens at eight.' }] })).status, 200);
  assert.is((await fleet.request('GET', '/v1/config', tenant.apiKey)).status, 200, 'a key that names its tenant');
  const ticket = await fleet.request('POST', '/v1/tickets', tenant.apiKey);
  assert.is(ticket.status, 201);
  const outcome = await openRaw(fleet.url, { query: `?ticket=${ticket.body.ticket}` });
  assert.ok('socket' in outcome, `a ticket is redeemed, so it reached the host that issued it: ${JSON.stringify(outcome)}`);
  if ('socket' in outcome) sockets.push(outcome.socket);
  const status = await fleet.request('GET', `/v1/tenants/${tenant.id}/fleet`, undefined);
  assert.is(status.status, 401, 'an operator path needs the operator key');
  const operatorStatus = await fetch(`${fleet.url}/v1/tenants/${tenant.id}/fleet`, { headers: { authorization: `Bearer ${'fleet-test-operator-key-0123456789'}` } });
  assert.equal(((await operatorStatus.json()) as any).state, 'serving', 'an operator path naming the tenant reaches its host');
  const health = await fleet.request('GET', '/healthz', undefined);
  assert.equal([health.status, health.body.ok], [200, true], 'a request naming no tenant goes to any healthy host');
});

test('a client chats with A while A moves: every acknowledged document and rating arrives, one reconnect, and B never sees a frame of A', async () => {
  const a = await create('Alpha Mover');
  const b = await create('Beta Stayer');
  const source = a.host;
  if (b.host !== source) await within(fleet.fleet.controller.moveTenant(b.id, source), 'B joins A on its host', 60_000);
  const target = fleet.fleet.hosts.map((host) => host.name).find((name) => name !== source) as string;
  assert.is((await fleet.request('PATCH', '/v1/config', a.apiKey, { feedback: { retain: true } })).status, 200);
  const alphaDocs = [{ id: 'alpha-hours', title: 'Hours', text: 'The ALPHAWORD workshop opens at nine and closes at six.' }];
  assert.is((await fleet.request('POST', '/v1/documents', a.apiKey, { documents: alphaDocs })).status, 200);
  assert.is((await fleet.request('POST', '/v1/documents', b.apiKey, { documents: [{ id: 'beta-hours', title: 'Hours', text: 'The BETAWORD workshop opens at ten.' }] })).status, 200);

  const statuses: ClientStatus[] = [];
  const client = await within(connect({ url: fleet.url, apiKey: a.apiKey, onStatus: (status) => statuses.push(status) }), 'A connects through the router');
  clients.push(client);
  const beta = await mustOpen(fleet.url, b.apiKey, '?encoding=json');
  sockets.push(beta);
  const betaFrames: any[] = [];

  let running = true;
  let moved = false;
  // A loop's first failure stops every loop and fails the test (never an unhandled rejection).
  let loopFailure: unknown;
  const guard = (loop: Promise<void>) =>
    loop.catch((error: unknown) => {
      loopFailure ??= error;
      running = false;
    });
  const noLoopFailure = () => {
    if (loopFailure !== undefined) throw loopFailure;
  };
  const ackedDocs: string[] = [];
  const ackedRatings: string[] = [];
  const afterMove = { docs: 0, ratings: 0 };
  const ingestLoop = guard((async () => {
    for (let n = 0; running; ) {
      const id = `w-${n}`;
      const answer = await fleet.request('POST', '/v1/documents', a.apiKey, { documents: [{ id, title: `Note ${n}`, text: `ALPHAWORD note ${n} about the workshop.` }] }).catch(() => undefined);
      if (answer?.status === 200) {
        ackedDocs.push(id);
        if (moved) afterMove.docs += 1;
        n += 1;
      } else {
        assert.ok(answer === undefined || [421, 503].includes(answer.status), `a write during the move is refused with a retryable status, got ${answer?.status} ${JSON.stringify(answer?.body)}`);
      }
      await sleep(30);
    }
  })());
  const chatLoop = guard((async () => {
    while (running) {
      try {
        const handle = client.ask('When does the workshop open?');
        await within(handle.result, 'an ask', 30_000);
        await within(client.feedback(handle.id, 1), 'a rating', 30_000);
        ackedRatings.push(handle.id);
        if (moved) afterMove.ratings += 1;
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        assert.ok(['TENANT_FROZEN', 'TENANT_MOVED', 'CLIENT_CONNECTION_LOST', 'CLIENT_STALE_ASK'].includes(code), `only retryable failures during a move, got ${code}: ${(error as Error).message}`);
      }
      await sleep(30);
    }
  })());
  const betaLoop = guard((async () => {
    for (let n = 0; running; n += 1) {
      beta.sendFrame({ type: 'ask', id: `b${n}`, text: 'When does the workshop open?' });
      // A generous deadline: the move's export and import hold the cell a while on a loaded machine.
      betaFrames.push(await beta.next((frame) => frame.type === 'done' || frame.type === 'error', `B's answer ${n}`, 60_000));
      await sleep(30);
    }
  })());

  let move: Awaited<ReturnType<typeof fleet.fleet.controller.moveTenant>>;
  try {
    await eventually(() => (noLoopFailure(), ackedDocs.length >= 3 && ackedRatings.length >= 3), 'A writes before the move', 60_000);
    move = await within(fleet.fleet.controller.moveTenant(a.id, target), 'the move', 120_000);
    moved = true;
    assert.is(move.step, 'done');
    await eventually(() => (noLoopFailure(), afterMove.docs >= 3 && afterMove.ratings >= 3), 'A writes again, on the new host', 60_000);
  } finally {
    // Stop the loops whatever happened: a loop left running outlives the fleet and the test file.
    running = false;
    const ended = Promise.allSettled([ingestLoop, chatLoop, betaLoop]);
    await within(ended, 'the loops end', 60_000).catch(() => undefined);
  }
  noLoopFailure();

  const documents = await fleet.request('GET', '/v1/documents?limit=1000', a.apiKey);
  const stored = new Set(documents.body.documents.map((document: any) => document.id));
  for (const id of ackedDocs) assert.ok(stored.has(id), `acknowledged document ${id} is on the new host`);
  const exported = await fetch(`${fleet.url}/v1/training/export`, { headers: { authorization: `Bearer ${a.apiKey}` } });
  const lines = (await exported.text()).trimEnd().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));
  const report = await fleet.request('GET', '/v1/training/export/report', a.apiKey);
  const rated = new Set([...lines.map((line: any) => line.provenance.askId), ...report.body.dropped.map((drop: any) => drop.askId)]);
  for (const id of ackedRatings) assert.ok(rated.has(id), `acknowledged rating of ${id} is on the new host`);

  const reconnects = statuses.filter((status) => status.state === 'ready' && status.reconnected).length;
  assert.is(reconnects, 1, 'the client reconnected once, to the new host');
  assert.not.ok(statuses.some((status) => status.state === 'closed'), 'and never gave up');
  assert.equal(await fleet.servingCopies(a.id), [target], 'exactly one serving copy, on the target');
  const old = await fleet.hostRequest(source, 'GET', `/v1/tenants/${a.id}/fleet`);
  assert.equal([old.body.state, old.body.to, old.body.hasData], ['moved', target, false], 'the source keeps a tombstone only');
  assert.ok(move.writableAt !== undefined && move.frozenAt !== undefined && move.writableAt >= move.frozenAt);

  assert.ok(betaFrames.length >= 3, 'B chatted throughout');
  const betaText = JSON.stringify(betaFrames);
  assert.not.match(betaText, /ALPHAWORD|alpha-hours|w-\d/, "B never sees A's data");
  assert.not.ok(betaText.includes(a.id), "nor A's id");
  for (const frame of betaFrames) assert.is(frame.type, 'done', `B's asks are answered: ${JSON.stringify(frame)}`);
  for (const frame of betaFrames) for (const source of frame.sources) assert.is(source.docId, 'beta-hours');
});

test('a stale router entry: one TENANT_MOVED answer corrects it; a client ends up at the right host', async () => {
  const c = await create('Gamma Stale');
  assert.is((await fleet.request('POST', '/v1/documents', c.apiKey, { documents: [{ id: 'g', title: 'Hours', text: 'The GAMMA workshop opens at seven.' }] })).status, 200);
  const target = fleet.fleet.hosts.map((host) => host.name).find((name) => name !== c.host) as string;
  await within(fleet.fleet.controller.moveTenant(c.id, target), 'the move', 120_000);

  await fleet.fleet.router.setTenantEntryRaw(c.id, c.host);
  const stale = await plainGet(`${fleet.url}/v1/documents`, c.apiKey);
  assert.equal([stale.status, stale.headers['ctx-tenant-host'], stale.body.error.code, stale.body.error.detail.host], [421, target, 'TENANT_MOVED', target], 'the old host says where the tenant went');
  assert.is((await fleet.fleet.router.tenantRoutes()).get(c.id), target, 'and the router corrected its map from that answer');
  assert.is((await plainGet(`${fleet.url}/v1/documents`, c.apiKey)).status, 200, 'the retry reaches the right host');

  await fleet.fleet.router.setTenantEntryRaw(c.id, c.host);
  assert.is((await fleet.request('GET', '/v1/documents', c.apiKey)).status, 200, 'fetch retries a 421 on a new connection by itself (the Fetch standard): one call is enough');

  await fleet.fleet.router.setTenantEntryRaw(c.id, c.host);
  let attempts = 0;
  let client: ChatClient | undefined;
  while (client === undefined) {
    attempts += 1;
    client = await connect({ url: fleet.url, apiKey: c.apiKey }).catch((error: { code: string; retryable: boolean }) => {
      assert.equal([error.code, error.retryable], ['TENANT_MOVED', true], 'a refused chat upgrade is retryable');
      return undefined;
    });
    assert.ok(attempts <= 3, 'the client gets through after one refusal');
  }
  clients.push(client);
  const { answer } = await within(client.ask('When does the workshop open?').result, 'an answer from the right host');
  assert.match(answer, /seven/);

  const third = fleet.fleet.hosts.map((host) => host.name).find((name) => name !== c.host && name !== target) as string;
  await fleet.fleet.router.setTenantEntryRaw(c.id, third);
  const astray = await plainGet(`${fleet.url}/v1/documents`, c.apiKey);
  assert.equal([astray.status, astray.body.error.code, astray.headers['ctx-tenant-host']], [421, 'TENANT_MOVED', undefined], 'a host that never had the tenant says so, without a 401');
  const report = await fleet.fleet.controller.refresh();
  assert.ok(report.corrected >= 1, 'the controller corrects what no host can');
  assert.is((await plainGet(`${fleet.url}/v1/documents`, c.apiKey)).status, 200);
});

test('writes during the pre-copy: a writer that pauses is caught up by another pre-copy; one that never does is copied again frozen; a quiet tenant keeps its first pre-copy; every write arrives', async () => {
  const tenant = await create('Delta Writer');
  assert.is((await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'first', text: 'Before the move.' }] })).status, 200);
  const written: string[] = [];
  // How many pre-copies of the current move the client writes during.
  let writesLeft = 0;
  const controller = await fleet.fleet.reopenController(async (move) => {
    if (move.step !== 'precopied' || move.tenant !== tenant.id || writesLeft === 0) return;
    writesLeft -= 1;
    const id = `late-${written.length + 1}`;
    const late = await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id, text: 'Written while the pre-copy was on its way.' }] });
    if (late.status === 200) written.push(id);
  });
  const other = (host: string): string => fleet.fleet.hosts.map((each) => each.name).find((name) => name !== host) as string;
  try {
    writesLeft = LIMITS.fleetPrecopyRoundsMax;
    const always = await within(controller.moveTenant(tenant.id, other(tenant.host)), 'the move', 120_000);
    assert.equal([always.step, always.precopyRounds, always.precopyKept], ['done', LIMITS.fleetPrecopyRoundsMax, false], 'it wrote during every pre-copy: copied again under the freeze');
    writesLeft = 1;
    const paused = await within(controller.moveTenant(tenant.id, tenant.host), 'the move back', 120_000);
    assert.equal([paused.step, paused.precopyRounds, paused.precopyKept], ['done', 2, true], 'it wrote during the first pre-copy only: the second was whole');
    const quiet = await within(controller.moveTenant(tenant.id, other(tenant.host)), 'a quiet move', 120_000);
    assert.equal([quiet.step, quiet.precopyRounds, quiet.precopyKept], ['done', 1, true], 'nothing was written: the pre-copy was the whole tenant');
    assert.ok((quiet.writableAt ?? 0) >= (quiet.frozenAt ?? 0));
    assert.equal(written, Array.from({ length: LIMITS.fleetPrecopyRoundsMax + 1 }, (_, index) => `late-${index + 1}`));
    const stored = (await fleet.request('GET', '/v1/documents', tenant.apiKey)).body.documents.map((document: any) => document.id).sort();
    assert.equal(stored, ['first', ...written].sort());
  } finally {
    await fleet.fleet.reopenController();
  }
});

test('rebalance evens the hosts out with the fewest moves', async () => {
  const controller = fleet.fleet.controller;
  const counts = async () => (await controller.view()).hosts.map((host) => host.tenants);
  // Pile new tenants onto h1 until it holds two more than some host.
  while (Math.max(...(await counts())) - Math.min(...(await counts())) < 2) {
    const extra = await create('Piled');
    if (extra.host !== 'h1') await within(controller.moveTenant(extra.id, 'h1'), 'piling onto h1', 60_000);
  }
  const before = await counts();
  const { planned } = await controller.rebalance(true);
  const excess = before.reduce((sum, count) => sum + Math.max(0, count - Math.ceil(before.reduce((a, b) => a + b, 0) / before.length)), 0);
  assert.ok(planned.length >= excess, `at least the tenants above the ceiling move: ${planned.length} >= ${excess}`);
  const { moved } = await within(controller.rebalance(), 'the rebalance', 300_000);
  assert.is(moved.length, planned.length);
  const after = await counts();
  assert.ok(Math.max(...after) - Math.min(...after) <= 1, `even afterwards: ${after.join(', ')}`);
  assert.equal((await controller.rebalance(true)).planned, [], 'and nothing more to do');
});

test(`moves in flight: ${LIMITS.fleetMovesInFlightMax} at once run, one more is refused; a tenant has one move at a time`, async () => {
  const tenants = await Promise.all(Array.from({ length: LIMITS.fleetMovesInFlightMax + 1 }, (_, index) => create(`Mover ${index}`)));
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const held = new Set<string>();
  const controller = await fleet.fleet.reopenController(async (move) => {
    if (move.step !== 'precopied') return;
    held.add(move.id);
    await gate;
  });
  const moves = tenants.slice(0, LIMITS.fleetMovesInFlightMax).map((tenant) => {
    const to = fleet.fleet.hosts.map((host) => host.name).find((name) => name !== tenant.host) as string;
    return controller.moveTenant(tenant.id, to);
  });
  await eventually(() => held.size === LIMITS.fleetMovesInFlightMax, 'the moves are all in flight', 60_000);
  const last = tenants[LIMITS.fleetMovesInFlightMax] as Tenant;
  const refused = await controller.moveTenant(last.id, fleet.fleet.hosts.map((host) => host.name).find((name) => name !== last.host) as string).then(
    () => 'moved',
    (error: { code: string }) => error.code,
  );
  assert.is(refused, 'FLEET_MOVE_CONFLICT');
  const first = tenants[0] as Tenant;
  const twice = await controller.moveTenant(first.id, first.host === 'h1' ? 'h2' : 'h1').then(() => 'moved', (error: { code: string }) => error.code);
  assert.is(twice, 'FLEET_MOVE_CONFLICT', 'a tenant that is moving cannot be moved again');
  release();
  for (const move of await within(Promise.all(moves), 'the held moves finish', 120_000)) assert.is(move.step, 'done');
  const reopened = await fleet.fleet.reopenController();
  assert.is(reopened.activeMoves().find((move) => move.tenant === last.id), undefined, 'the refused move never started');
});

test.run();
