/**
 * The tenant lifecycle through the real server and the operator CLI: a tenant rotates its own API
 * keys; the operator rotates the master key while a chat session goes on, and only the new key
 * opens the data afterwards; the CLI refuses to rotate under a running host; a tenant moves to
 * another data directory (export beside the running host, import elsewhere) and answers there
 * with its old key; deletion refuses its keys at once. Every step lands in the tenant's audit log.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { CHILD_PROCESS_MS, within } from '../helpers/deadline.ts';
import { apiKeyId } from '../../host/storage/registry.ts';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';

const QUESTION = 'When does the workshop open?';
const DOCUMENTS = [{ id: 'hours', title: 'Hours', text: 'The workshop opens at nine and closes at six.' }];

function cli(dataDir: string, args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'silent', CTX_MASTER_KEY: '', ...extraEnv };
  const child = spawn(process.execPath, ['--disable-wasm-trap-handler', '--import', 'tsx', 'host/tenants/cli.ts', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return within(new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))), `tenant ${args.join(' ')}`, CHILD_PROCESS_MS);
}

async function answer(host: TestHost, apiKey: string): Promise<string> {
  const client = await host.chat(apiKey);
  const { result } = await host.ask(client, QUESTION);
  client.close();
  return result.answer;
}

/** Hosts a test started and has not closed yet: closed in its `finally`, so a failed assertion cannot leave one running. */
const running = new Set<TestHost>();

async function start(options: Parameters<typeof startTestHost>[0]): Promise<TestHost> {
  const host = await startTestHost(options);
  running.add(host);
  return host;
}

async function stop(host: TestHost): Promise<void> {
  running.delete(host);
  // A host started on a given DATA_DIR keeps it; a temp one is removed.
  await host.close();
}

async function stopAll(): Promise<void> {
  for (const host of [...running]) await stop(host).catch(() => undefined);
}

async function auditKinds(host: TestHost, apiKey: string): Promise<string[]> {
  const page = await host.request('GET', '/v1/audit?limit=1000', apiKey);
  assert.ok(page.body.verified);
  return page.body.entries.map((entry: { kind: string }) => entry.kind);
}

test('a tenant rotates its own API keys: issue, switch, revoke; never its last key or another tenant\'s', async () => {
  const host = await start({});
  try {
    const tenant = await host.createTenant('Rotating');
    const other = await host.createTenant('Other');
    const issued = await host.request('POST', '/v1/keys', tenant.apiKey);
    assert.is(issued.status, 201);
    assert.match(issued.body.apiKey, new RegExp(`^ctx_${tenant.id.slice(2)}_${issued.body.keyId}_[A-Za-z0-9_-]{43}$`), 'a new key names its tenant');
    assert.is((await host.request('GET', '/v1/config', issued.body.apiKey)).status, 200, 'the new key works');
    const listed = await host.request('GET', '/v1/keys', tenant.apiKey);
    assert.is(listed.body.keys.length, 2);
    const oldId = apiKeyId(tenant.apiKey) as string;
    const foreign = await host.request('DELETE', `/v1/keys/${apiKeyId(other.apiKey)}`, tenant.apiKey);
    assert.equal([foreign.status, foreign.body.error.code], [401, 'AUTH_INVALID_KEY']);
    assert.is((await host.request('GET', '/v1/config', other.apiKey)).status, 200, "the other tenant's key still works");
    assert.is((await host.request('DELETE', `/v1/keys/${oldId}`, issued.body.apiKey)).status, 200);
    const refused = await host.request('GET', '/v1/config', tenant.apiKey);
    assert.equal([refused.status, refused.body.error.code], [401, 'AUTH_INVALID_KEY']);
    const last = await host.request('DELETE', `/v1/keys/${issued.body.keyId}`, issued.body.apiKey);
    assert.equal([last.status, last.body.error.code], [400, 'TENANT_INVALID']);
    assert.match(last.body.error.message, /last active API key/);
    const page = await host.request('GET', '/v1/audit', issued.body.apiKey);
    const keys = page.body.entries.filter((entry: any) => entry.kind.startsWith('key.')).map((entry: any) => `${entry.kind}:${entry.detail.keyId}`);
    assert.equal(keys, [`key.created:${oldId}`, `key.created:${issued.body.keyId}`, `key.revoked:${oldId}`]);
    const badQuery = await host.request('GET', '/v1/audit?limit=lots', issued.body.apiKey);
    assert.equal([badQuery.status, badQuery.body.error.code], [400, 'HTTP_QUERY_INVALID']);
  } finally {
    await stopAll();
  }
});

test('active API keys per tenant: at the limit the last one is issued; one over is TENANT_KEY_LIMIT; a revoked key frees its place', async () => {
  const host = await start({});
  try {
    const tenant = await host.createTenant('Keyring');
    const issued: string[] = [];
    // The tenant starts with one key; issue up to the limit.
    for (let i = 1; i < LIMITS.apiKeysPerTenantMax; i += 1) {
      const response = await host.request('POST', '/v1/keys', tenant.apiKey);
      assert.is(response.status, 201, `key ${i + 1}`);
      issued.push(response.body.keyId);
    }
    const over = await host.request('POST', '/v1/keys', tenant.apiKey);
    assert.equal([over.status, over.body.error.code], [409, 'TENANT_KEY_LIMIT']);
    assert.is(over.body.error.message, `the tenant already has ${LIMITS.apiKeysPerTenantMax} active API keys (apiKeysPerTenantMax); revoke one before issuing another`);
    const listed = await host.request('GET', '/v1/keys', tenant.apiKey);
    assert.is(listed.body.keys.length, LIMITS.apiKeysPerTenantMax, 'the refused key was not stored');
    assert.is((await host.request('DELETE', `/v1/keys/${issued[0]}`, tenant.apiKey)).status, 200);
    assert.is((await host.request('POST', '/v1/keys', tenant.apiKey)).status, 201, 'a revoked key does not count');
  } finally {
    await stopAll();
  }
});

test('master key rotation while a session goes on; afterwards only the new key opens the data', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-rotate-'));
  try {
    let host = await start({ dataDir });
    const a = await host.createTenant('A');
    const b = await host.createTenant('B');
    for (const tenant of [a, b]) await host.ingest(tenant.apiKey, DOCUMENTS);
    const oldKey = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();
    const client = await host.chat(a.apiKey);
    assert.match((await host.ask(client, QUESTION)).result.answer, /nine/);
    const rotated = await host.request('POST', '/v1/master-key/rotate', OPERATOR_KEY);
    assert.equal([rotated.status, rotated.body.tenants, rotated.body.keySource], [200, 2, 'file']);
    assert.not.ok(JSON.stringify(rotated.body).includes(readFileSync(join(dataDir, 'master.key'), 'utf8').trim()), 'the new key is never sent');
    assert.match((await host.ask(client, QUESTION)).result.answer, /nine/, 'the open session carries on');
    client.close();
    assert.match(await answer(host, b.apiKey), /nine/, 'a new session after the rotation');
    const c = await host.createTenant('C');
    assert.is((await host.request('GET', '/v1/config', c.apiKey)).status, 200);
    const newKey = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();
    assert.not.equal(newKey, oldKey);
    assert.not.ok(existsSync(join(dataDir, 'master.key.next')));
    await stop(host);
    assert.not.ok(existsSync(join(dataDir, 'registry-retired')), 'the old registry, with its free pages, is gone');
    try {
      await startTestHost({ dataDir, config: { masterKey: oldKey } });
      assert.unreachable('the old key must not open the data');
    } catch (error) {
      assert.instance(error, HostError);
      assert.is((error as HostError).code, 'STORAGE_MASTER_KEY');
    }
    host = await start({ dataDir });
    assert.match(await answer(host, a.apiKey), /nine/, 'after a restart every tenant opens with the new key');
    const envSource = await host.request('POST', '/v1/master-key/rotate', OPERATOR_KEY, { newKey: 'short' });
    assert.equal([envSource.status, envSource.body.error.code], [500, 'STORAGE_MASTER_KEY']);
  } finally {
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('with CTX_MASTER_KEY the operator supplies the new key; the CLI refuses to rotate under a running host', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-rotate-env-'));
  const first = '61'.repeat(32);
  const second = '62'.repeat(32);
  try {
    let host = await start({ dataDir, config: { masterKey: first } });
    const tenant = await host.createTenant('A');
    await host.ingest(tenant.apiKey, DOCUMENTS);
    const missing = await host.request('POST', '/v1/master-key/rotate', OPERATOR_KEY);
    assert.equal([missing.status, missing.body.error.code], [500, 'STORAGE_MASTER_KEY']);
    assert.match(missing.body.error.message, /newKey is required when the master key comes from CTX_MASTER_KEY/);
    const underHost = await cli(dataDir, ['rotate-master-key'], { CTX_MASTER_KEY: first });
    assert.is(underHost.code, 1);
    assert.match(underHost.stderr, /\[STORAGE_HOST_RUNNING\] a host \(pid \d+\) has this data directory open/);
    const rotated = await host.request('POST', '/v1/master-key/rotate', OPERATOR_KEY, { newKey: second });
    assert.equal([rotated.status, rotated.body.keySource], [200, 'CTX_MASTER_KEY']);
    assert.match(rotated.body.next, /set CTX_MASTER_KEY to the new key/);
    await stop(host);
    host = await start({ dataDir, config: { masterKey: second } });
    assert.match(await answer(host, tenant.apiKey), /nine/);
  } finally {
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a tenant moves: exported by the CLI beside its running host, imported into another data directory, it answers there with its old key', async () => {
  const from = mkdtempSync(join(tmpdir(), 'ctx-move-from-'));
  const to = mkdtempSync(join(tmpdir(), 'ctx-move-to-'));
  const file = join(from, 'moving.ctx');
  try {
    const source = await start({ dataDir: from });
    const tenant = await source.createTenant('Moving');
    await source.ingest(tenant.apiKey, DOCUMENTS);
    const before = await answer(source, tenant.apiKey);
    const exported = await cli(from, ['export', tenant.id, file]);
    assert.is(exported.code, 0, exported.stderr);
    const key = /export key \(shown once; the import needs it\): ([0-9a-f]{64})/.exec(exported.stdout)?.[1] ?? '';
    assert.is(key.length, 64);
    await stop(source);
    const wrongKey = await cli(to, ['import', file], { CTX_EXPORT_KEY: '00'.repeat(32) });
    assert.is(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /\[TENANT_EXPORT_INVALID\] frame 0 does not authenticate/);
    const imported = await cli(to, ['import', file], { CTX_EXPORT_KEY: key });
    assert.is(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, new RegExp(`tenant ${tenant.id} "Moving" imported`));
    const target = await start({ dataDir: to });
    assert.is(await answer(target, tenant.apiKey), before, 'same key, same answer, on the other host');
    const kinds = await auditKinds(target, tenant.apiKey);
    assert.equal(kinds.slice(-2), ['tenant.exported', 'tenant.imported']);
    const deleted = await target.request('DELETE', `/v1/tenants/${tenant.id}`, OPERATOR_KEY);
    assert.is(deleted.status, 200);
    const refused = await target.request('GET', '/v1/config', tenant.apiKey);
    assert.equal([refused.status, refused.body.error.code], [401, 'AUTH_INVALID_KEY']);
    assert.not.ok(existsSync(join(to, 'tenants', tenant.id)), 'its directory is gone');
  } finally {
    await stopAll();
    rmSync(from, { recursive: true, force: true });
    rmSync(to, { recursive: true, force: true });
  }
});

test.run();
