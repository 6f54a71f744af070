/**
 * The router (a real HAProxy, through host/fleet/haproxy.ts) in front of stand-in hosts that say
 * who they are: it routes by the tenant a key, a ticket or an operator path names, a legacy key by
 * its id, anything else to any healthy host; its maps change at run time and on disk; a 421 naming
 * the new host corrects its map; WebSocket upgrades pass through; a reload adds a host.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket, { WebSocketServer } from 'ws';
import { Router } from '../../host/fleet/haproxy.ts';
import { freePort } from '../../host/fleet/local-fleet.ts';
import { within } from '../helpers/deadline.ts';
import { eventually } from '../helpers/wait.ts';

const TENANT_A = 't_00000000000000aa';
const TENANT_B = 't_00000000000000bb';
const KEY_A = `ctx_00000000000000aa_1111111111111111_${'A'.repeat(43)}`;
const LEGACY_KEY = `ctx_2222222222222222_${'B'.repeat(43)}`;

interface FakeHost {
  name: string;
  port: number;
  healthy: boolean;
  /** Tenant id → where it moved (answered with 421). */
  moved: Map<string, string>;
  server: Server;
}

const hosts: FakeHost[] = [];
let router: Router;
let dir: string;

async function fakeHost(name: string): Promise<FakeHost> {
  const host: FakeHost = { name, port: 0, healthy: true, moved: new Map(), server: createServer() };
  host.server.on('request', (request, response) => {
    if (request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json' });
      return void response.end(JSON.stringify({ ok: host.healthy }));
    }
    const tenant = /t_[0-9a-f]{16}/.exec(`${request.url} ${request.headers['authorization'] ?? ''}`)?.[0] ?? (request.headers['authorization'] ?? '').replace(/^Bearer ctx_([0-9a-f]{16})_.*$/, 't_$1');
    const movedTo = host.moved.get(tenant);
    if (movedTo !== undefined) {
      response.writeHead(421, { 'content-type': 'application/json', 'ctx-tenant-host': movedTo });
      return void response.end(JSON.stringify({ error: { code: 'TENANT_MOVED', message: 'moved' } }));
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ host: name }));
  });
  const sockets = new WebSocketServer({ server: host.server });
  sockets.on('connection', (socket) => socket.send(JSON.stringify({ host: name })));
  await new Promise<void>((resolve) => host.server.listen(0, '127.0.0.1', resolve));
  host.port = (host.server.address() as AddressInfo).port;
  hosts.push(host);
  return host;
}

const address = (host: FakeHost) => ({ name: host.name, address: `127.0.0.1:${host.port}` });

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctx-router-'));
  const [one, two] = [await fakeHost('one'), await fakeHost('two')];
  router = new Router({ dir, bindHost: '127.0.0.1', bindPort: await freePort(), checkIntervalMs: 100 });
  await router.start([address(one), address(two)], [[TENANT_A, 'one']], [['2222222222222222', 'two']]);
  await eventually(async () => (await router.serverStates()).every((state) => state.status === 'UP'), 'every backend up');
});
test.after(async () => {
  await router?.stop();
  for (const host of hosts) {
    host.server.closeAllConnections();
    await new Promise((resolve) => host.server.close(resolve));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A request through the router with node:http (fetch would retry a 421 by itself). */
function via(path: string, headers: Record<string, string> = {}): Promise<{ status: number; host: string | undefined; movedTo: string | undefined }> {
  return within(
    new Promise((resolve, reject) => {
      const request = httpRequest(`${router.url}${path}`, { headers, agent: false }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => {
          let host: string | undefined;
          try {
            host = (JSON.parse(text) as { host?: string }).host;
          } catch {
            host = undefined;
          }
          resolve({ status: response.statusCode ?? 0, host, movedTo: response.headers['ctx-tenant-host'] as string | undefined });
        });
      });
      request.on('error', reject);
      request.end();
    }),
    `GET ${path}`,
  );
}

test('routes by the tenant a key, a ticket or an operator path names; a legacy key by its id; the rest to any host', async () => {
  assert.is((await via('/v1/config', { authorization: `Bearer ${KEY_A}` })).host, 'one');
  assert.is((await via('/v1/chat?ticket=tkt_00000000000000aa_abcdefghijklmnopqrstuvwxyz012345')).host, 'one');
  assert.is((await via(`/v1/tenants/${TENANT_A}/freeze`)).host, 'one');
  assert.is((await via('/v1/config', { authorization: `Bearer ${LEGACY_KEY}` })).host, 'two');
  const anyHost = new Set<string | undefined>();
  for (let index = 0; index < 4; index += 1) anyHost.add((await via('/healthz')).host);
  assert.equal([...anyHost].sort(), [undefined], 'health is answered by a host (its own JSON, no name)');
  for (let index = 0; index < 4; index += 1) anyHost.add((await via('/v1/tenants')).host);
  assert.ok(anyHost.has('one') && anyHost.has('two'), 'a request naming no tenant goes round the hosts');
  const unknown = new Set<string | undefined>();
  for (let index = 0; index < 4; index += 1) unknown.add((await via('/v1/config', { authorization: `Bearer ctx_00000000000000cc_1111111111111111_${'A'.repeat(43)}` })).host);
  assert.ok(unknown.has('one') && unknown.has('two'), 'a tenant the map does not know goes to any host');
});

test('the map changes at run time, and on disk for a restart', async () => {
  await router.routeTenant(TENANT_B, 'two');
  assert.is((await via('/v1/config', { authorization: `Bearer ${KEY_A.replace('aa_', 'bb_')}` })).host, 'two', 'an added entry');
  await router.routeTenant(TENANT_A, 'two');
  assert.is((await via('/v1/config', { authorization: `Bearer ${KEY_A}` })).host, 'two', 'a changed entry');
  assert.equal([...(await router.tenantRoutes())].sort(), [[TENANT_A, 'two'], [TENANT_B, 'two']]);
  await router.routeTenants([[TENANT_A, 'one'], [TENANT_B, 'one'], ['t_00000000000000dd', 'two']]);
  assert.equal([...(await router.tenantRoutes())].sort(), [[TENANT_A, 'one'], [TENANT_B, 'one'], ['t_00000000000000dd', 'two']], 'a batch sets and adds');
  await router.routeNewTenant('t_f00000000000000e', 'two');
  assert.is((await via('/v1/config', { authorization: `Bearer ctx_f00000000000000e_1111111111111111_${'A'.repeat(43)}` })).host, 'two', 'another shard of the map');
  await router.routeTenants([[TENANT_A, 'two'], [TENANT_B, 'two']]);
  router.saveMaps([[TENANT_A, 'two'], [TENANT_B, 'two']], [['2222222222222222', 'two']]);
  router.flushMaps();
  assert.is(readFileSync(router.tenantsMapPathOf(TENANT_A), 'utf8'), '00000000000000aa two\n00000000000000bb two\n', 'both in the shard of their first hex digit');
  assert.is(readFileSync(router.tenantsMapPathOf('t_f000000000000000'), 'utf8'), '');
  await router.routeTenant(TENANT_A, 'one');
});

test('a 421 that names the new host corrects the map on the way out; one naming nothing valid changes nothing', async () => {
  const one = hosts[0] as FakeHost;
  one.moved.set(TENANT_A, 'two');
  const first = await via('/v1/config', { authorization: `Bearer ${KEY_A}` });
  assert.equal([first.status, first.movedTo], [421, 'two']);
  assert.is((await router.tenantRoutes()).get(TENANT_A), 'two');
  assert.is((await via('/v1/config', { authorization: `Bearer ${KEY_A}` })).host, 'two', 'the retry reaches the new host');
  one.moved.clear();
  await router.routeTenant(TENANT_A, 'one');
  one.moved.set(TENANT_A, 'Not A Host;');
  assert.is((await via('/v1/config', { authorization: `Bearer ${KEY_A}` })).status, 421);
  assert.is((await router.tenantRoutes()).get(TENANT_A), 'one', 'a header that is no host name is ignored');
  one.moved.clear();
});

test('WebSocket upgrades pass through to the tenant\'s host', async () => {
  const socket = new WebSocket(`${router.url.replace('http', 'ws')}/v1/chat`, { headers: { authorization: `Bearer ${KEY_A}` } });
  const message = await within(new Promise<string>((resolve, reject) => {
    socket.once('message', (data: Buffer) => resolve(data.toString()));
    socket.once('error', reject);
  }), 'the first frame');
  assert.equal(JSON.parse(message), { host: 'one' });
  socket.close();
});

test('health: a host reporting ok:false leaves the any-host pool but still serves its own tenants', async () => {
  const two = hosts[1] as FakeHost;
  two.healthy = false;
  await eventually(async () => (await router.serverStates()).some((state) => state.backend === 'any' && state.server === 'two' && state.status.startsWith('DOWN')), 'two leaves the pool');
  assert.is((await router.serverStates()).find((state) => state.backend === 'host_two')?.status, 'UP');
  for (let index = 0; index < 4; index += 1) assert.is((await via('/v1/tenants')).host, 'one');
  assert.is((await via('/v1/config', { authorization: `Bearer ${LEGACY_KEY}` })).host, 'two');
  two.healthy = true;
  await eventually(async () => (await router.serverStates()).every((state) => state.status === 'UP'), 'two is back');
});

test('a reload adds a host without losing the map', async () => {
  const three = await fakeHost('three');
  await router.routeTenant(TENANT_B, 'three');
  router.saveMaps([[TENANT_A, 'one'], [TENANT_B, 'three']], [['2222222222222222', 'two']]);
  await router.reload([...hosts.slice(0, 2).map(address), address(three)]);
  await eventually(async () => (await router.serverStates()).filter((state) => state.server === 'three').every((state) => state.status === 'UP'), 'three is up');
  assert.is((await via('/v1/config', { authorization: `Bearer ${KEY_A.replace('aa_', 'bb_')}` })).host, 'three');
  assert.is((await via('/v1/config', { authorization: `Bearer ${KEY_A}` })).host, 'one');
});

test.run();
