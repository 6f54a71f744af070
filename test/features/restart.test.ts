/**
 * Persistence and the master key: data ingested before a restart is searchable after it (the
 * indexes load from the tenant's environment), and a wrong or corrupted master key stops the start
 * with a clear message without touching the data directory.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../host/config.ts';
import { HostError } from '../../host/errors.ts';
import { startServer } from '../../host/server.ts';
import { OPERATOR_KEY, startTestHost } from '../helpers/host.ts';

function snapshot(dir: string): string {
  const entries: string[] = [];
  const walk = (path: string): void => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const stat = statSync(full);
      if (stat.isDirectory()) walk(full);
      else entries.push(`${full}:${stat.size}:${stat.mtimeMs}`);
    }
  };
  walk(dir);
  return entries.sort().join('\n');
}

test('documents ingested before a restart are searchable after it', async () => {
  const first = await startTestHost();
  const tenant = await first.createTenant('Persistent');
  await first.ingest(tenant.apiKey, [{ id: 'ferry', title: 'Ferry timetable', text: 'The first ferry to Inchmore leaves at 06:40 from pier three.' }]);
  await first.close({ keepData: true });

  const second = await startTestHost({ dataDir: first.dataDir });
  try {
    const client = await second.chat(tenant.apiKey);
    const { result } = await second.ask(client, 'When does the first ferry to Inchmore leave?');
    assert.ok(result.answer.includes('06:40'), result.answer);
    assert.equal(result.sources[0]?.docId, 'ferry');
    const listed = await second.request('GET', '/v1/documents', tenant.apiKey);
    assert.equal(listed.body.documents.map((doc: { id: string }) => doc.id), ['ferry']);
  } finally {
    await second.close();
  }
});

test('a wrong master key fails start with a clear message and touches nothing', async () => {
  const first = await startTestHost();
  await first.createTenant('Locked');
  await first.close({ keepData: true });
  const before = snapshot(first.dataDir);
  const wrong = 'ab'.repeat(32);
  const config = loadConfig({}, { port: 0, dataDir: first.dataDir, operatorKey: OPERATOR_KEY, demo: false, masterKey: wrong, logLevel: 'silent' });
  try {
    await startServer(config);
    assert.unreachable('start must fail');
  } catch (error) {
    assert.instance(error, HostError);
    assert.equal((error as HostError).code, 'STORAGE_MASTER_KEY');
    assert.match((error as HostError).message, /the master key from CTX_MASTER_KEY does not open/);
  }
  assert.equal(snapshot(first.dataDir), before, 'the data directory is unchanged');
});

test('a corrupted master key file fails start with a clear message and touches nothing', async () => {
  const first = await startTestHost();
  await first.close({ keepData: true });
  const keyFile = join(first.dataDir, 'master.key');
  writeFileSync(keyFile, readFileSync(keyFile, 'utf8').slice(0, 20));
  const before = snapshot(first.dataDir);
  const config = loadConfig({}, { port: 0, dataDir: first.dataDir, operatorKey: OPERATOR_KEY, demo: false, logLevel: 'silent' });
  try {
    await startServer(config);
    assert.unreachable('start must fail');
  } catch (error) {
    assert.instance(error, HostError);
    assert.equal((error as HostError).code, 'STORAGE_MASTER_KEY');
    assert.match((error as HostError).message, /master\.key: master key must be 64 hex characters/);
  }
  assert.equal(snapshot(first.dataDir), before);
});

test('the master key file is created with mode 0600', async () => {
  const host = await startTestHost();
  try {
    assert.equal(statSync(join(host.dataDir, 'master.key')).mode & 0o777, 0o600);
  } finally {
    await host.close();
  }
});

test.run();
