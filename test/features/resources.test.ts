/**
 * Resources per tenant inside a cell (invariant 7), each limit on both sides:
 * - host work is charged to the plugin's fuel: 255 embeds of 16,000 characters (free before, ~350
 *   ms of the loop) now exhaust the budget, one embed does not;
 * - the plugin memory budget: the heaviest tenant's sessions are admitted up to its share and the
 *   next is refused with TENANT_MEMORY_LIMIT, while another tenant still starts sessions; a closed
 *   session frees its share;
 * - the ingest quota: at the quota passes, one character more is TENANT_INGEST_RATE_LIMIT, and
 *   another tenant is unaffected.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChatError, type ChatClient } from '../../sdk/client/node.ts';
import { within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { eventually } from '../helpers/wait.ts';
import { fixturePlugin } from '../sandbox/harness.ts';
import { compileWat } from '../sandbox/wat.ts';
import { connect } from '../../sdk/client/node.ts';

let host: TestHost;

test.before(async () => {
  host = await startTestHost({ config: { pluginMemoryMb: 64 }, limits: { ingestCharsPerTenantPerMinuteMax: 1_000 } });
});
test.after(async () => {
  await host.close();
});

async function upload(apiKey: string, bytes: Uint8Array): Promise<void> {
  const response = await within(
    fetch(`${host.url}/v1/plugins/retrieval`, { method: 'PUT', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/wasm' }, body: bytes }),
    'upload',
    60_000,
  );
  assert.is(response.status, 201, await response.text());
}

async function askError(client: ChatClient, text: string): Promise<ChatError> {
  let caught: unknown;
  await client.ask(text).result.catch((error: unknown) => (caught = error));
  assert.instance(caught, ChatError);
  return caught as ChatError;
}

test('host work is charged to the plugin: 255 embeds of 16,000 characters spend the budget, one does not', async () => {
  const tenant = await host.createTenant('embedder');
  await upload(tenant.apiKey, await fixturePlugin('cpu-and-memory'));
  const client = await host.chat(tenant.apiKey);
  const spent = await askError(client, 'embeds:255');
  assert.is(spent.code, 'PLUGIN_FUEL_EXHAUSTED');
  await host.ask(client, 'embeds:1');
});

/** A retrieval plugin whose linear memory is 10 MiB from the start (160 pages), answering nothing. */
const heavyPlugin = (): Promise<Uint8Array> =>
  compileWat(`(module
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (memory (export "memory") 160 160)
    (func (export "retrieve") (result i32)
      (call $output_set (call $alloc (i64.const 4)) (i64.const 4))
      (i32.const 0)))`);

test("the plugin memory budget: a heavy tenant gets up to its share (half of 64 MiB), the next session is refused, others still get in", async () => {
  const heavy = await host.createTenant('heavy');
  const light = await host.createTenant('light');
  await upload(heavy.apiKey, await heavyPlugin());
  const admitted: ChatClient[] = [];
  for (let i = 0; i < 3; i += 1) admitted.push(await host.chat(heavy.apiKey));
  let refused: unknown;
  await within(connect({ url: host.url, apiKey: heavy.apiKey, reconnect: false }), 'the fourth heavy session').catch((error: unknown) => (refused = error));
  assert.instance(refused, ChatError);
  assert.is((refused as ChatError).code, 'TENANT_MEMORY_LIMIT');
  assert.match((refused as ChatError).message, /over its share of 33554432/);
  const neighbour = await host.chat(light.apiKey);
  neighbour.close();
  (admitted.pop() as ChatClient).close();
  await eventually(async () => (await host.request('GET', '/healthz', undefined)).body.cells[0].pluginMemoryBytes < 25 * 1024 * 1024, 'the closed session freed its share');
  admitted.push(await host.chat(heavy.apiKey));
  for (const client of admitted) client.close();
});

test('the ingest quota per tenant per minute: at it passes, one character more is refused, another tenant is unaffected', async () => {
  const writer = await host.createTenant('writer');
  const other = await host.createTenant('other');
  const at = await host.request('POST', '/v1/documents', writer.apiKey, { documents: [{ id: 'a', text: 'x'.repeat(1_000) }] });
  assert.is(at.status, 200);
  const over = await host.request('POST', '/v1/documents', writer.apiKey, { documents: [{ id: 'b', text: 'y' }] });
  assert.equal([over.status, over.body.error.code], [429, 'TENANT_INGEST_RATE_LIMIT']);
  assert.match(over.body.error.message, /^the tenant sent 1000 characters of documents in this minute, its ingest quota is 1000; try again in \d+ s$/);
  assert.is((await host.request('POST', '/v1/documents', other.apiKey, { documents: [{ id: 'c', text: 'z'.repeat(1_000) }] })).status, 200);
});

test.run();
