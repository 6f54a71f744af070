/**
 * Tenant plugins through the real server: upload (vetted, metered, stored in the tenant's own
 * environment), list, roll back, back to the built-in; new sessions get the new version while live
 * ones keep theirs; refusals name what was wrong and store nothing; hostile plugins are contained
 * with their error codes while other sessions and tenants carry on; per-tenant quotas and the
 * tenant's fuel budget. Real AssemblyScript and hand-written WAT plugins, real Extism, real LMDB.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { ChatError, type ChatClient } from '../../sdk/client/client.ts';
import { CHILD_PROCESS_MS, within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { fixturePlugin } from '../sandbox/harness.ts';
import { compileWat, watFixture } from '../sandbox/wat.ts';

let host: TestHost;
/** The modules the tests upload, built before the host starts (see the comment there). */
const none: Uint8Array = new Uint8Array();
const wasm = { watRetrieval: none, cpuAndMemory: none, wasi: none, httpImport: none, evilImport: none, tableImport: none };
test.before(async () => {
  // Building a module can hold this process's event loop for seconds on a loaded machine (the
  // AssemblyScript compiler runs in it). Done mid-test, with an idle keep-alive connection to the
  // host, both ends' keep-alive timers fire together when the loop resumes and the next request
  // can meet a closed socket. So every module is built here, before there is any connection.
  const importing = (module: string, name: string) =>
    compileWat(`(module (import "${module}" "${name}" (func (param i32))) (memory (export "memory") 1) (func (export "retrieve") (result i32) (i32.const 0)))`);
  wasm.watRetrieval = await watFixture('wat-retrieval');
  wasm.cpuAndMemory = await fixturePlugin('cpu-and-memory');
  wasm.wasi = await compileWat(`(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1) (func (export "retrieve") (result i32) (i32.const 0)))`);
  wasm.httpImport = await importing('extism:host/env', 'http_request');
  wasm.evilImport = await importing('evil', 'escape');
  wasm.tableImport = await compileWat('(module (import "env" "table" (table 1 funcref)) (memory (export "memory") 1) (func (export "retrieve") (result i32) (i32.const 0)))');
  host = await startTestHost({ limits: { asksPerTenantPerMinuteMax: 40 } });
});
test.after(() => host.close());

async function upload(apiKey: string, slot: string, bytes: Uint8Array, type = 'application/wasm', url = host.url): Promise<{ status: number; body: any }> {
  const response = await within(
    fetch(`${url}/v1/plugins/${slot}`, { method: 'PUT', headers: { authorization: `Bearer ${apiKey}`, 'content-type': type }, body: bytes }),
    `PUT /v1/plugins/${slot}`,
    // The first upload starts the metering worker, which loads binaryen.
    CHILD_PROCESS_MS,
  );
  return { status: response.status, body: await response.json() };
}
process.on('unhandledRejection', (e) => console.error('UNHANDLED', e));

async function askError(client: ChatClient, text: string): Promise<ChatError> {
  try {
    await host.ask(client, text);
  } catch (error: unknown) {
    assert.instance(error, ChatError);
    return error as ChatError;
  }
  throw new Error(`the ask ${JSON.stringify(text)} succeeded`);
}

test('upload: the report, the listing, new sessions run it while a live session keeps the built-in', async () => {
  const tenant = await host.createTenant('wat-shop');
  await host.ingest(tenant.apiKey, [
    { id: 'wat', title: 'Hand-written', text: 'The hand-written plugin answers from this chunk only.' },
    { id: 'hours', title: 'Hours', text: 'The shop opens at nine in the morning.' },
  ]);
  const before = await host.chat(tenant.apiKey);
  const builtin = before.plugins.retrieval;
  const { status, body } = await upload(tenant.apiKey, 'retrieval', wasm.watRetrieval);
  assert.is(status, 201, JSON.stringify(body));
  assert.is(body.slot, 'retrieval');
  assert.is(body.version, 1);
  assert.is(body.bytes, wasm.watRetrieval.byteLength);
  assert.equal(body.imports.map((entry: { name: string }) => entry.name), ['alloc', 'store_u8', 'output_set']);
  assert.equal(body.memory, { initialPages: 1, declaredMaxPages: null, maxPages: 256 });
  assert.is(body.limits.fuelPerCallDefault, LIMITS.pluginFuelPerCallDefault);
  assert.ok(body.metering.loops >= 1 && body.metering.functions >= 1);
  const listed = await host.request('GET', '/v1/plugins', tenant.apiKey);
  assert.is(listed.body.retrieval.active, 1);
  assert.is(listed.body.retrieval.moduleSha256, body.module.sha256);
  assert.is(listed.body.prompt.active, 'builtin');
  const after = await host.chat(tenant.apiKey);
  assert.is(after.plugins.retrieval, body.module.sha256, 'a new session runs the upload');
  assert.equal((await host.ask(after, 'When does the shop open?')).result.sources.map((source) => source.chunkId), ['wat#0']);
  const kept = await host.ask(before, 'When does the shop open?');
  assert.ok(kept.result.sources.some((source) => source.chunkId === 'hours#0'), 'the live session keeps the built-in retrieval');
  assert.not.equal(builtin, body.module.sha256);
});

test('rollback and back to the built-in; each refusal names why', async () => {
  const tenant = await host.createTenant('versions');
  const first = await upload(tenant.apiKey, 'retrieval', wasm.watRetrieval);
  const second = await upload(tenant.apiKey, 'retrieval', wasm.cpuAndMemory);
  assert.is(second.body.version, 2);
  const rolled = await host.request('POST', '/v1/plugins/retrieval/rollback', tenant.apiKey);
  assert.is(rolled.status, 200);
  assert.is(rolled.body.retrieval.active, 1);
  assert.is(rolled.body.retrieval.moduleSha256, first.body.module.sha256);
  const again = await host.request('POST', '/v1/plugins/retrieval/rollback', tenant.apiKey);
  assert.equal([again.status, again.body.error.code, again.body.error.message], [404, 'PLUGIN_NOT_FOUND', 'the retrieval slot has no version before version 1 to roll back to']);
  const removed = await host.request('DELETE', '/v1/plugins/retrieval', tenant.apiKey);
  assert.is(removed.body.retrieval.active, 'builtin');
  assert.is(removed.body.retrieval.history.length, 2, 'the versions stay for a rollback');
  const twice = await host.request('DELETE', '/v1/plugins/retrieval', tenant.apiKey);
  assert.equal([twice.status, twice.body.error.code], [404, 'PLUGIN_NOT_FOUND']);
  const back = await host.request('POST', '/v1/plugins/retrieval/rollback', tenant.apiKey);
  assert.is(back.body.retrieval.active, 2, 'from the built-in, rollback returns to the newest upload');
  const unknownSlot = await host.request('DELETE', '/v1/plugins/ranking', tenant.apiKey);
  assert.equal([unknownSlot.status, unknownSlot.body.error.code], [404, 'HTTP_NOT_FOUND']);
});

test('vetting refusals over HTTP: WASI, HTTP, unknown modules, wrong slot, not wasm, wrong type, too large; nothing is stored', async () => {
  const tenant = await host.createTenant('refused');
  const cases: [Uint8Array, string, number, string, string][] = [
    [wasm.wasi, 'application/wasm', 422, 'PLUGIN_INVALID', 'WASI is not available to plugins (no filesystem, environment, clock or network); the module imports wasi_snapshot_preview1.fd_write, wasi_snapshot_preview1.proc_exit'],
    [wasm.httpImport, 'application/wasm', 422, 'PLUGIN_INVALID', 'the module imports function "extism:host/env" "http_request"; plugins may import only functions of extism:host/env (no HTTP) and ctx:host/v1'],
    [wasm.evilImport, 'application/wasm', 422, 'PLUGIN_INVALID', 'the module imports function "evil" "escape"; plugins may import only'],
    [wasm.tableImport, 'application/wasm', 422, 'PLUGIN_INVALID', 'the module imports table "env" "table"'],
    [wasm.watRetrieval, 'application/wasm', 0, '', ''],
    [new TextEncoder().encode('not wasm'), 'application/wasm', 422, 'PLUGIN_INVALID', 'the body is not a valid WebAssembly module: '],
    [wasm.watRetrieval, 'application/octet-stream', 415, 'HTTP_UNSUPPORTED_MEDIA', 'content-type must be application/wasm'],
    [new Uint8Array(LIMITS.pluginUploadBytesMax + 1), 'application/wasm', 413, 'HTTP_BODY_TOO_LARGE', `body is ${LIMITS.pluginUploadBytesMax + 1} bytes, limit ${LIMITS.pluginUploadBytesMax}`],
  ];
  for (const [bytes, type, status, code, message] of cases) {
    if (status === 0) {
      // The retrieval module is no prompt plugin.
      const wrongSlot = await upload(tenant.apiKey, 'prompt', bytes, type);
      assert.equal([wrongSlot.status, wrongSlot.body.error.code, wrongSlot.body.error.message], [422, 'PLUGIN_INVALID', 'a prompt plugin must export a function "assemble"; this one does not']);
      continue;
    }
    const refused = await upload(tenant.apiKey, 'retrieval', bytes, type);
    assert.is(refused.status, status, JSON.stringify(refused.body));
    assert.is(refused.body.error.code, code);
    assert.ok(refused.body.error.message.startsWith(message), refused.body.error.message);
  }
  const listed = await host.request('GET', '/v1/plugins', tenant.apiKey);
  assert.equal([listed.body.retrieval.active, listed.body.retrieval.history, listed.body.prompt.history], ['builtin', [], []]);
});

test('hostile plugin: a spent budget and a memory bomb fail with their codes, the session recovers, other tenants never notice', async () => {
  const hostile = await host.createTenant('hostile');
  const neighbour = await host.createTenant('neighbour');
  await host.ingest(neighbour.apiKey, [{ id: 'secret', title: 'Neighbour only', text: 'The neighbour keeps the vault code in the blue drawer.' }]);
  assert.is((await upload(hostile.apiKey, 'retrieval', wasm.cpuAndMemory)).status, 201);
  const attacker = await host.chat(hostile.apiKey);
  const victim = await host.chat(neighbour.apiKey);
  const victimAsks = (async () => {
    const answers: string[] = [];
    for (let i = 0; i < 6; i += 1) answers.push((await host.ask(victim, 'Where is the vault code?')).result.answer);
    return answers;
  })();
  const spent = await askError(attacker, 'spin');
  assert.equal([spent.code, spent.message], ['PLUGIN_FUEL_EXHAUSTED', `retrieve ran out of fuel: it spent its whole budget of ${LIMITS.pluginFuelPerCallDefault} per call`]);
  const bomb = await askError(attacker, 'grow:100000');
  assert.is(bomb.code, 'PLUGIN_MEMORY_LIMIT');
  const recovered = await host.ask(attacker, 'hello');
  assert.not.match(recovered.result.answer, /blue drawer/, "the hostile tenant's fresh instance sees nothing of the neighbour");
  for (const answer of await victimAsks) assert.match(answer, /blue drawer/);
});

test('a neighbour burning its whole budget on every ask does not stop other sessions from answering', async () => {
  const burner = await host.createTenant('burner');
  const calm = await host.createTenant('calm');
  await host.ingest(calm.apiKey, [{ id: 'hours', title: 'Hours', text: 'The shop opens at nine in the morning.' }]);
  await upload(burner.apiKey, 'retrieval', wasm.cpuAndMemory);
  const hog = await host.chat(burner.apiKey);
  const client = await host.chat(calm.apiKey);
  let burning = true;
  const burns = (async () => {
    let count = 0;
    while (burning) {
      assert.is((await askError(hog, 'spin')).code, 'PLUGIN_FUEL_EXHAUSTED');
      count += 1;
    }
    return count;
  })();
  for (let i = 0; i < 8; i += 1) assert.match((await host.ask(client, 'When does the shop open?')).result.answer, /nine/);
  burning = false;
  assert.ok((await burns) >= 1);
});

test('quota: asks per tenant per minute — at the quota passes, one more is TENANT_ASK_RATE_LIMIT; other tenants are unaffected', async () => {
  const limited = await startTestHost({ limits: { asksPerTenantPerMinuteMax: 3 } });
  try {
    const a = await limited.createTenant('A');
    const b = await limited.createTenant('B');
    const first = await limited.chat(a.apiKey);
    const second = await limited.chat(a.apiKey);
    await limited.ask(first, 'one');
    await limited.ask(second, 'two');
    await limited.ask(first, 'three');
    let caught: unknown;
    await limited.ask(second, 'four').catch((error: unknown) => (caught = error));
    assert.instance(caught, ChatError);
    assert.is((caught as ChatError).code, 'TENANT_ASK_RATE_LIMIT');
    assert.match((caught as ChatError).message, /^the tenant asked 3 questions in this minute, its quota is 3; try again in \d+ s$/);
    await limited.ask(await limited.chat(b.apiKey), 'other tenant');
  } finally {
    await limited.close();
  }
});

test('pluginFuelPerCall: the tenant setting on both sides of its range (the ceiling is the operator\'s), and it bounds the next session', async () => {
  const tenant = await host.createTenant('frugal');
  const patch = (value: number) => host.request('PATCH', '/v1/config', tenant.apiKey, { pluginFuelPerCall: value });
  const ceiling = host.config.pluginFuelPerCallMax;
  assert.is(ceiling, LIMITS.pluginFuelPerCallCeilingDefault, 'the default operator ceiling');
  for (const value of [LIMITS.pluginFuelPerCallMin - 1, ceiling + 1, LIMITS.pluginFuelPerCallMax]) {
    const refused = await patch(value);
    assert.equal([refused.status, refused.body.error.code], [400, 'CONFIG_INVALID']);
    assert.is(refused.body.error.message, `pluginFuelPerCall: must be an integer in ${LIMITS.pluginFuelPerCallMin}..${ceiling}, got ${value}`);
  }
  assert.is((await patch(ceiling)).status, 200);
  assert.is((await patch(LIMITS.pluginFuelPerCallMin)).status, 200);
  await upload(tenant.apiKey, 'retrieval', wasm.cpuAndMemory);
  const client = await host.chat(tenant.apiKey);
  const error = await askError(client, 'work:2000000');
  assert.equal([error.code, error.message], ['PLUGIN_FUEL_EXHAUSTED', `retrieve ran out of fuel: it spent its whole budget of ${LIMITS.pluginFuelPerCallMin} per call`]);
  await host.ask(client, 'work:1000');
});

test('the operator sets the fuel ceiling: a host started with a lower one holds every tenant to it, whatever the tenant stored', async () => {
  const lowered = await startTestHost({ config: { pluginFuelPerCallMax: 5_000_000 } });
  try {
    const tenant = await lowered.createTenant('ceiling');
    const over = await lowered.request('PATCH', '/v1/config', tenant.apiKey, { pluginFuelPerCall: 5_000_001 });
    assert.equal([over.status, over.body.error.message], [400, `pluginFuelPerCall: must be an integer in ${LIMITS.pluginFuelPerCallMin}..5000000, got 5000001`]);
    assert.is((await lowered.request('GET', '/v1/config', tenant.apiKey)).body.pluginFuelPerCall, 5_000_000, 'the default is clamped to the ceiling');
    await upload(tenant.apiKey, 'retrieval', await fixturePlugin('cpu-and-memory'), 'application/wasm', lowered.url);
    const client = await lowered.chat(tenant.apiKey);
    const error = await askError(client, 'spin');
    assert.equal([error.code, error.message], ['PLUGIN_FUEL_EXHAUSTED', 'retrieve ran out of fuel: it spent its whole budget of 5000000 per call']);
  } finally {
    await lowered.close();
  }
});

test.run();
