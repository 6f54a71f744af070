/**
 * The browser build of the client library: one self-contained ES module (msgpackr inside, no
 * import of anything), served by the host at `GET /sdk/client.js` exactly as built, importable
 * from any origin (CORS) and revalidated by ETag; and it works over a standard WebSocket — Node's
 * built-in WHATWG one, in a child process, connecting with tickets as a page would.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROWSER_CLIENT_FILE, buildBrowserClient } from '../../scripts/build-client.ts';
import { CHILD_PROCESS_MS, within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

let host: TestHost;
const scratch = mkdtempSync(join(tmpdir(), 'ctx-browser-client-'));

test.before(async () => {
  await buildBrowserClient();
  host = await startTestHost();
});
test.after(async () => {
  await host.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('the bundle is one ES module that imports nothing', () => {
  const source = readFileSync(BROWSER_CLIENT_FILE, 'utf8');
  assert.not.match(source, /\bfrom\s*["'][^"']+["']|\bimport\s*["'({*]|\brequire\(/, 'no import or require left for a bundler to resolve');
  assert.match(source, /export\{[^}]*\bconnect\b[^}]*\}/);
  assert.match(source, /export\{[^}]*\bChatError\b[^}]*\}/);
  assert.ok(source.length < 64 * 1024, `${source.length} bytes`);
});

test('GET /sdk/client.js serves the build with a JS type, CORS for any origin and an ETag', async () => {
  const response = await fetch(`${host.url}/sdk/client.js`, { headers: { origin: 'https://shop.example' } });
  assert.is(response.status, 200);
  assert.is(response.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.is(response.headers.get('access-control-allow-origin'), '*');
  const body = Buffer.from(await response.arrayBuffer());
  assert.ok(body.equals(readFileSync(BROWSER_CLIENT_FILE)), 'exactly the built file');
  const etag = response.headers.get('etag') ?? '';
  assert.match(etag, /^"[\w-]{43}"$/);
  const again = await fetch(`${host.url}/sdk/client.js`, { headers: { 'if-none-match': etag } });
  assert.is(again.status, 304);
});

/** Runs `script` in a child Node with a standard global WebSocket; returns its stdout, parsed. */
async function runWithGlobalWebSocket(script: string, env: Record<string, string>): Promise<any> {
  const file = join(scratch, `probe-${Date.now()}.mjs`);
  writeFileSync(file, script);
  const flags = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? [] : ['--experimental-websocket'];
  const child = spawn(process.execPath, [...flags, file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await within(new Promise<number | null>((resolve) => child.on('exit', resolve)), 'the probe', CHILD_PROCESS_MS);
  assert.is(code, 0, stderr);
  return JSON.parse(stdout);
}

test('the served module chats over a standard WebSocket with tickets, and refuses an API key', async () => {
  const tenant = await host.createTenant('Browser');
  await host.ingest(tenant.apiKey, [{ id: 'shipping', title: 'Shipping', text: 'Express delivery arrives the next working day and costs 15 euros.' }]);
  const served = Buffer.from(await (await fetch(`${host.url}/sdk/client.js`)).arrayBuffer());
  const module = join(scratch, 'client.js');
  writeFileSync(module, served);
  const script = `
    const { connect, ChatError } = await import(${JSON.stringify(`file://${module}`)});
    const url = process.env.HOST_URL;
    // A page asks its own backend for tickets; here the probe plays that backend.
    const getTicket = async () => (await (await fetch(url + '/v1/tickets', { method: 'POST', headers: { authorization: 'Bearer ' + process.env.API_KEY } })).json()).ticket;
    const client = await connect({ url, getTicket });
    const ask = client.ask('How much does express delivery cost?');
    let streamed = '';
    for await (const token of ask.tokens) streamed += token;
    const result = await ask.result;
    await client.feedback(result.id, 1);
    let refusal;
    try { await connect({ url, apiKey: process.env.API_KEY }); } catch (error) { refusal = { typed: error instanceof ChatError, code: error.code, message: error.message }; }
    client.close();
    const closed = await client.closed;
    process.stdout.write(JSON.stringify({ streamed, sources: result.sources.map((s) => s.chunkId), tenant: client.tenant, refusal, closed }));
  `;
  const outcome = await runWithGlobalWebSocket(script, { HOST_URL: host.url, API_KEY: tenant.apiKey });
  assert.match(outcome.streamed, /costs 15 euros/);
  assert.equal(outcome.sources, ['shipping#0']);
  assert.is(outcome.tenant, tenant.id);
  assert.equal(outcome.refusal, {
    typed: true,
    code: 'CLIENT_CONNECT_FAILED',
    message: `cannot open a WebSocket to ${host.url.replace('http', 'ws')}/v1/chat: a browser WebSocket cannot send an API key; connect with a ticket or getTicket`,
  });
  assert.equal(outcome.closed, { code: 1000, reason: 'client closed' });
});

test.run();
