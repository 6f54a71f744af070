/**
 * The README's quick start, as a newcomer runs it: `npm start` (here: the same entry point in a
 * child process, on port 0, in a temp DATA_DIR) creates the demo tenant and prints its key and the
 * chat command; `npm run chat -- "question"` streams a grounded answer with its sources; a restart
 * prints the same key again; the operator CLI manages tenants beside the running host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CHILD_PROCESS_MS, within } from '../helpers/deadline.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'ctx-quickstart-'));
const env = { ...process.env, DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', CTX_OPERATOR_KEY: undefined, CTX_MASTER_KEY: undefined };

function run(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--disable-wasm-trap-handler', '--import', 'tsx', ...args], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return within(new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))), `${args.join(' ')}`, CHILD_PROCESS_MS);
}

async function startHost(): Promise<{ child: ChildProcess; output: string; url: string }> {
  const child = spawn(process.execPath, ['--disable-wasm-trap-handler', '--import', 'tsx', 'host/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await within(
    new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('WebSocket chat:')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`host exited ${code}: ${output}`)));
    }),
    'host start',
    CHILD_PROCESS_MS,
  );
  const url = /listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '';
  return { child, output, url };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await within(exited, 'host stop');
}

test.after(() => rmSync(dataDir, { recursive: true, force: true }));

test('first start: demo tenant, its key and the chat command; chat answers with sources', async () => {
  const { child, output, url } = await startHost();
  try {
    assert.match(output, /operator key \(shown once/);
    assert.match(output, /demo tenant "Larkspur Cycles" created/);
    assert.match(output, /npm run chat -- "How much does express delivery cost\?"/);
    // The pages, with the demo key (and the operator key, shown this once) in the URL fragment.
    const demoKey = /demo tenant "Larkspur Cycles" created; its API key[^\n]*\n  (\S+)/.exec(output)?.[1] ?? '?';
    assert.ok(output.includes(`chat page:      ${url}/#key=${encodeURIComponent(demoKey)}`), output);
    assert.ok(output.includes(`tenant console: ${url}/console#key=${encodeURIComponent(demoKey)}`), output);
    assert.match(output, /operator view:  http:\/\/\S+\/operator#key=ctxop_/);
    assert.is((await fetch(`${url}/console`)).status, 200);
    const chat = await run(['sdk/client/chat-cli.ts', 'How much does express delivery cost?'], { CTX_URL: url });
    assert.equal(chat.code, 0, chat.stderr);
    assert.match(chat.stdout, /Express delivery arrives the next working day and costs 15 euros\. \[shipping#0\]/);
    assert.match(chat.stdout, /sources \(cache miss, [\d.]+ ms\):\n  \[shipping#0\] Shipping and delivery/);
  } finally {
    await stop(child);
  }
});

test('a restart keeps the data and prints the same demo key; the operator key is not shown again', async () => {
  const first = (await run(['-e', `process.stdout.write(require('fs').readFileSync(${JSON.stringify(join(dataDir, 'demo.key'))}, 'utf8'))`])).stdout.trim();
  const { child, output } = await startHost();
  try {
    assert.match(output, /demo tenant "Larkspur Cycles" ready/);
    assert.match(output, /operator view:  http:\/\/\S+\/operator\n/, 'without a new operator key the link carries none');
    assert.ok(output.includes(first), 'the same demo key');
    assert.not.match(output, /operator key/);
  } finally {
    await stop(child);
  }
});

test('operator CLI: create, list, issue and revoke keys, delete', async () => {
  const created = await run(['host/tenants/cli.ts', 'create', 'Cli Co']);
  assert.equal(created.code, 0, created.stderr);
  const id = /tenant (t_[0-9a-f]{16})/.exec(created.stdout)?.[1] ?? '';
  const key = /api key \(shown once\): (ctx_\S+)/.exec(created.stdout)?.[1] ?? '';
  assert.ok(id !== '' && key !== '', created.stdout);
  const listed = await run(['host/tenants/cli.ts', 'list']);
  assert.match(listed.stdout, new RegExp(`${id}  Cli Co`));
  const issued = await run(['host/tenants/cli.ts', 'issue-key', id]);
  assert.match(issued.stdout, /api key \(shown once\): ctx_/);
  const revoked = await run(['host/tenants/cli.ts', 'revoke-key', key]);
  assert.match(revoked.stdout, new RegExp(`of tenant ${id} revoked`));
  const relisted = await run(['host/tenants/cli.ts', 'list']);
  assert.match(relisted.stdout, /\(revoked\)/);
  const deleted = await run(['host/tenants/cli.ts', 'delete', id]);
  assert.match(deleted.stdout, /deleted \(key destroyed, directory removed\)/);
  const again = await run(['host/tenants/cli.ts', 'delete', id]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /\[TENANT_NOT_FOUND\] no tenant has id/);
});

test('a bad setting stops the start with a message naming it', async () => {
  const bad = await run(['host/main.ts'], { PORT: 'eighty' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /\[CONFIG_INVALID\] PORT: must be an integer in 0\.\.65535, got "eighty"/);
});

test.run();
