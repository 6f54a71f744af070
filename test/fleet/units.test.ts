/**
 * The fleet's parts on their own: the move journal (durable lines, a torn last line, compaction),
 * placement (least loaded; rebalancing moves the fewest tenants), the controller's view of legacy
 * keys from hosts' listings, a host call's deadline, the fleet limits, and the API key shapes.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isFleetHostName, loadConfig } from '../../host/config.ts';
import { HostError } from '../../host/errors.ts';
import { FleetController, type RouterControl } from '../../host/fleet/controller.ts';
import { HostClient } from '../../host/fleet/host-client.ts';
import { MoveJournal, type MoveRecord } from '../../host/fleet/journal.ts';
import { leastLoaded, rebalancePlan } from '../../host/fleet/placement.ts';
import { LIMITS } from '../../host/limits.ts';
import { apiKeyId, apiKeyTenant } from '../../host/storage/registry.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { openTestAuthority } from '../helpers/authority.ts';

const dirs: string[] = [];
const servers: Server[] = [];
test.after(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-fleet-unit-'));
  dirs.push(dir);
  return dir;
}

/** A stand-in host answering its operator API from `answer` (a path → JSON body, or a delay first). */
async function fakeHost(answer: (path: string) => { status?: number; body: unknown; delayMs?: number }): Promise<string> {
  const server = createServer((request, response) => {
    const { status, body, delayMs } = answer(request.url ?? '/');
    setTimeout(() => {
      response.writeHead(status ?? 200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    }, delayMs ?? 0);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A router stand-in that records what the controller asks of it. */
function recordingRouter(routes = new Map<string, string>()): RouterControl & { legacy: Map<string, string>; saved: number } {
  const legacy = new Map<string, string>();
  const router = {
    legacy,
    saved: 0,
    routeTenant: async (tenant: string, host: string) => void routes.set(tenant, host),
    routeNewTenant: async (tenant: string, host: string) => void routes.set(tenant, host),
    routeTenants: async (entries: Iterable<[string, string]>) => {
      for (const [tenant, host] of entries) routes.set(tenant, host);
    },
    routeLegacyKeys: async (keyIds: readonly string[], host: string) => {
      for (const keyId of keyIds) legacy.set(keyId, host);
    },
    saveMaps: () => void (router.saved += 1),
    tenantRoutes: async () => new Map(routes),
    serverStates: async () => [],
    reload: async () => undefined,
  };
  return router;
}

const move = (id: string, step: MoveRecord['step'], extra: Partial<MoveRecord> = {}): MoveRecord => ({ id, tenant: `t_${'0'.repeat(15)}${id.slice(-1)}`, from: 'h1', to: 'h2', step, startedAt: 1, updatedAt: 1, ...extra });

test('journal: the latest line of each move wins, a torn last line is ignored, finished moves are told apart', () => {
  const path = join(tempDir(), 'moves.jsonl');
  const journal = MoveJournal.open(path);
  journal.record(move('mv_1', 'planned'));
  journal.record(move('mv_1', 'frozen'));
  journal.record(move('mv_2', 'done'));
  journal.record(move('mv_3', 'rolled-back', { cleanup: ['h2'] }));
  journal.close();
  appendFileSync(path, '{"id":"mv_1","step":"impo');
  const reopened = MoveJournal.open(path);
  assert.equal(reopened.get('mv_1')?.step, 'frozen', 'the torn line recorded nothing: the step is repeated');
  assert.equal(reopened.active().map((entry) => entry.id), ['mv_1', 'mv_3'], 'a rollback with a copy left to clean is not finished');
  assert.equal(reopened.recent(10).map((entry) => entry.id), ['mv_2']);
  assert.is(reopened.activeFor(move('mv_1', 'planned').tenant)?.id, 'mv_1');
  reopened.close();
});

test('journal: compaction at open keeps every unfinished move and the newest finished ones', () => {
  const path = join(tempDir(), 'moves.jsonl');
  const journal = MoveJournal.open(path);
  // Three lines per move: more than twice as many lines as moves (plus a margin) triggers compaction.
  for (let round = 0; round < 3; round += 1) for (let index = 0; index < 200; index += 1) journal.record(move(`mv_${index}`, index === 7 ? 'imported' : 'done'));
  journal.close();
  const reopened = MoveJournal.open(path);
  assert.is(readFileSync(path, 'utf8').trim().split('\n').length, 200, 'one line per move after compaction');
  assert.equal(reopened.active().map((entry) => entry.id), ['mv_7']);
  reopened.close();
});

test('least loaded: the healthy host with the fewest tenants, ties by name; none when none is healthy', () => {
  assert.is(leastLoaded([{ name: 'h2', tenants: 3, healthy: true }, { name: 'h1', tenants: 3, healthy: true }, { name: 'h3', tenants: 1, healthy: false }]), 'h1');
  assert.is(leastLoaded([{ name: 'h1', tenants: 0, healthy: false }]), undefined);
});

test('rebalance: a new host takes ⌊tenants/hosts⌋ tenants, each moved once, from hosts that only give', () => {
  const placement = new Map<string, string>();
  for (let index = 0; index < 30; index += 1) placement.set(`t${index}`, `h${(index % 3) + 1}`);
  const moves = rebalancePlan(placement, ['h1', 'h2', 'h3', 'h4']);
  assert.is(moves.length, 7);
  assert.ok(moves.every((entry) => entry.to === 'h4'), 'only the new host takes');
  assert.is(new Set(moves.map((entry) => entry.tenant)).size, moves.length, 'no tenant moves twice');
  assert.equal(rebalancePlan(placement, ['h1', 'h2', 'h3']), [], 'a balanced fleet moves nothing');
  const counts = new Map<string, number>();
  for (const [tenant, host] of placement) counts.set(moves.find((entry) => entry.tenant === tenant)?.to ?? host, (counts.get(moves.find((entry) => entry.tenant === tenant)?.to ?? host) ?? 0) + 1);
  assert.ok(Math.max(...counts.values()) - Math.min(...counts.values()) <= 1, 'even afterwards');
});

test('the controller learns placement from the hosts, and routes by id only the keys that may be of the legacy shape', async () => {
  const listing = (host: string, since: number, tenants: unknown[]) => ({ host, keyFormatSince: since, tenants, tombstones: [] });
  const one = await fakeHost(() => ({
    body: listing('one', 1_000, [
      { id: 't_00000000000000a1', name: 'A', state: 'serving', sessions: 0, keys: [{ id: '00000000000000k1', createdAt: 500 }, { id: '00000000000000k2', createdAt: 1_500 }] },
      { id: 't_00000000000000a2', name: 'B', state: 'incoming', complete: true, sessions: 0, keys: [{ id: '00000000000000k3', createdAt: 100 }] },
    ]),
  }));
  const two = await fakeHost(() => ({
    body: listing('two', 2_000, [{ id: 't_00000000000000a3', name: 'C', state: 'frozen', sessions: 0, keys: [{ id: '00000000000000k4', createdAt: 1_900 }] }]),
  }));
  const router = recordingRouter();
  const controller = await FleetController.open({ stateDir: tempDir(), hosts: [{ name: 'one', url: one }, { name: 'two', url: two }], operatorKey: 'k', router });
  try {
    assert.is(controller.hostOf('t_00000000000000a1'), 'one');
    assert.is(controller.hostOf('t_00000000000000a2'), undefined, 'an incoming copy is not where a tenant lives');
    assert.is(controller.hostOf('t_00000000000000a3'), 'two', 'a frozen one is');
    // The fleet-wide cut-off is the latest host's: keys older than it may be legacy (k2 was made on a host that already issued new keys, and costs one map entry).
    assert.equal([...router.legacy].sort(), [['00000000000000k1', 'one'], ['00000000000000k2', 'one'], ['00000000000000k4', 'two']]);
    assert.ok(router.saved >= 1, 'the map files are written');
  } finally {
    controller.close();
  }
});

test(`a host call has a deadline (fleetHostCallMsMax, ${LIMITS.fleetHostCallMsMax} ms; scaled to 400 ms here): an answer within it passes, a late one is unavailable; a refusal keeps the host's code`, async () => {
  let delayMs = 0;
  const url = await fakeHost(() => ({ body: { tenant: 't_0000000000000001', state: 'serving', hasData: true }, delayMs }));
  const client = new HostClient({ name: 'slow', url }, 'k', { callMs: 400 });
  delayMs = 50;
  assert.is((await client.status('t_0000000000000001')).state, 'serving');
  delayMs = 1_500;
  const late = await client.status('t_0000000000000001').then(() => undefined, (error: HostError) => error);
  assert.equal([late?.code, /timed out/.test(late?.message ?? '')], ['FLEET_HOST_UNAVAILABLE', true]);
  const refusing = new HostClient({ name: 'refusing', url: await fakeHost(() => ({ status: 409, body: { error: { code: 'TENANT_STATE_CONFLICT', message: 'no' } } })) }, 'k');
  const refusal = await refusing.step('t_0000000000000001', 'shred').then(() => undefined, (error: HostError) => error);
  assert.equal([refusal?.code, refusal?.message], ['TENANT_STATE_CONFLICT', 'host refusing: no']);
  const down = new HostClient({ name: 'down', url: 'http://127.0.0.1:1' }, 'k');
  assert.is((await down.listing().then(() => undefined, (error: HostError) => error))?.code, 'FLEET_HOST_UNAVAILABLE');
});

test(`fleet host names: ${LIMITS.fleetHostNameCharsMax} characters pass, one more is refused; so are capitals and symbols`, () => {
  assert.ok(isFleetHostName('h'.repeat(LIMITS.fleetHostNameCharsMax)));
  assert.not.ok(isFleetHostName('h'.repeat(LIMITS.fleetHostNameCharsMax + 1)));
  assert.not.ok(isFleetHostName('H1'));
  assert.not.ok(isFleetHostName('-h1'));
  assert.not.ok(isFleetHostName('h 1'));
  assert.is(loadConfig({ FLEET_HOST: 'h'.repeat(LIMITS.fleetHostNameCharsMax) }).fleetHost, 'h'.repeat(LIMITS.fleetHostNameCharsMax));
  assert.throws(() => loadConfig({ FLEET_HOST: 'h'.repeat(LIMITS.fleetHostNameCharsMax + 1) }), /^FLEET_HOST: must be 1\.\.32 characters/);
});

test(`a fleet of ${LIMITS.fleetHostsMax} hosts: the controller takes the last one and refuses one more`, async () => {
  const url = await fakeHost(() => ({ body: { host: null, keyFormatSince: 0, tenants: [], tombstones: [] } }));
  const hosts = Array.from({ length: LIMITS.fleetHostsMax - 1 }, (_, index) => ({ name: `h${index}`, url }));
  const router = recordingRouter();
  const controller = await FleetController.open({ stateDir: tempDir(), hosts, operatorKey: 'k', router });
  try {
    const named = (name: string) => fakeHost((path) => ({ body: path === '/healthz' ? { ok: true, fleetHost: name } : { host: name, keyFormatSince: 0, tenants: [], tombstones: [] } }));
    const liar = await controller.addHost({ name: 'liar', url: await named('someone-else') }).then(() => undefined, (error: HostError) => error);
    assert.equal([liar?.code, controller.hosts.length], ['FLEET_HOST_UNAVAILABLE', LIMITS.fleetHostsMax - 1], 'a host that calls itself otherwise is not added');
    await controller.addHost({ name: 'last', url: await named('last') });
    assert.is(controller.hosts.length, LIMITS.fleetHostsMax);
    const over = await controller.addHost({ name: 'over', url: await named('over') }).then(() => undefined, (error: HostError) => error);
    assert.equal([over?.code, over?.message], ['FLEET_INVALID', `a fleet has at most ${LIMITS.fleetHostsMax} hosts`]);
  } finally {
    controller.close();
  }
});

test('API keys name their tenant; the legacy shape still authenticates; a key naming another tenant does not', async () => {
  const { authority, close } = openTestAuthority();
  try {
    const { tenant, apiKey } = createTenant(authority, operatorFromLocalAccess(), 'Keys');
    const other = createTenant(authority, operatorFromLocalAccess(), 'Other');
    assert.match(apiKey, new RegExp(`^ctx_${tenant.id.slice(2)}_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`));
    assert.is(apiKeyTenant(apiKey), tenant.id);
    const keyId = apiKeyId(apiKey) as string;
    const legacy = `ctx_${keyId}_${apiKey.slice(-43)}`;
    assert.is(apiKeyTenant(legacy), undefined, 'a legacy key names no tenant');
    assert.is(apiKeyId(legacy), keyId);
    const registry = authority.registry;
    assert.is(registry.authenticate(apiKey)?.id, tenant.id);
    assert.is(registry.authenticate(legacy)?.id, tenant.id);
    assert.is(registry.authenticate(`ctx_${other.tenant.id.slice(2)}_${keyId}_${apiKey.slice(-43)}`), undefined, 'the tenant a key names must be its own');
    assert.is(registry.authenticate(`${apiKey.slice(0, -1)}${apiKey.endsWith('A') ? 'B' : 'A'}`), undefined);
    assert.is(registry.authenticate(`ctx_${tenant.id.slice(2)}_${keyId}_short`), undefined);
    assert.is(registry.revokeApiKey(apiKey)?.keyId, keyId, 'revoking by the whole key');
    assert.is(registry.authenticate(legacy), undefined);
  } finally {
    await close();
  }
});

test.run();
