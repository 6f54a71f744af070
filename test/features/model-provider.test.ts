/**
 * The OpenAI-compatible provider through the whole host: a real HTTP server streaming SSE. The
 * request carries the resolved context and the tenant's routing; a stream cut midway or a provider
 * that never answers becomes an `error` frame (MODEL_FAILED / MODEL_TIMEOUT), never a crash, and the
 * same connection keeps working.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChatError } from '../../sdk/client/client.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

let mode: 'ok' | 'cut' | 'silent' = 'ok';
const bodies: any[] = [];
let provider: Server;
let providerUrl = '';
let host: TestHost;
let tenant: { id: string; apiKey: string };

test.before(async () => {
  provider = createServer(async (request, response) => {
    let text = '';
    for await (const part of request) text += part;
    bodies.push({ body: JSON.parse(text), authorization: request.headers['authorization'] });
    if (mode === 'silent') return; // never answers: the host's time limit must end the ask
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    const first = `data: ${JSON.stringify({ choices: [{ delta: { content: 'Partial ' } }] })}\n\n`;
    // Cut once the first token is on its way (handed to the kernel, which delivers it before the
    // close): midway through the answer, whatever the machine's speed.
    if (mode === 'cut') return void response.write(first, () => response.socket?.destroy());
    response.write(first);
    response.end(`data: ${JSON.stringify({ choices: [{ delta: { content: 'answer.' } }] })}\n\ndata: [DONE]\n\n`);
  });
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/v1`;
  // The default time limit: answers here must never depend on how fast a loaded machine streams them.
  host = await startTestHost({ config: { modelUrl: providerUrl, modelProvider: 'openai', modelName: 'base-model', modelApiKey: 'sk-test' } });
  tenant = await routedTenant(host);
});

async function routedTenant(target: TestHost): Promise<{ id: string; apiKey: string }> {
  const created = await target.createTenant('Routed');
  await target.ingest(created.apiKey, [{ id: 'tides', title: 'Tides', text: 'High tide in Porthcawl is at 14:10 today.' }]);
  // Every test here needs the provider to be asked; a cached answer to a repeated question would not ask it.
  await target.request('PATCH', '/v1/config', created.apiKey, { cache: { enabled: false } });
  return created;
}
test.after(async () => {
  await host.close();
  provider.closeAllConnections();
  await new Promise((resolve) => provider.close(resolve));
});

test('the model receives the resolved context, the routing and the key; tokens stream back', async () => {
  await host.request('PATCH', '/v1/config', tenant.apiKey, { model: { adapter: 'routed-lora' } });
  const client = await host.chat(tenant.apiKey);
  const { tokens, result } = await host.ask(client, 'When is high tide in Porthcawl?');
  assert.equal(result.answer, 'Partial answer.');
  assert.equal(tokens.join(''), 'Partial answer.');
  const sent = bodies.at(-1);
  assert.equal(sent.authorization, 'Bearer sk-test');
  assert.equal(sent.body.stream, true);
  assert.equal(sent.body.model, 'routed-lora', 'the adapter is selected per request');
  const context = sent.body.messages.map((message: { content: string }) => message.content).join('\n');
  assert.ok(context.includes('High tide in Porthcawl is at 14:10 today.'), 'chunk text resolved by the host');
  client.close();
});

test('a stream cut midway is MODEL_FAILED and the connection keeps working', async () => {
  const client = await host.chat(tenant.apiKey);
  mode = 'cut';
  try {
    await host.ask(client, 'When is high tide?');
    assert.unreachable();
  } catch (error) {
    assert.instance(error, ChatError);
    assert.equal((error as ChatError).code, 'MODEL_FAILED');
    assert.match((error as ChatError).message, /model stream ended before \[DONE\]: the connection to .* was lost/);
  } finally {
    mode = 'ok';
  }
  assert.equal((await host.ask(client, 'When is high tide?')).result.answer, 'Partial answer.');
  client.close();
});

test('a provider that never answers is MODEL_TIMEOUT', async () => {
  // A host of its own with a short limit: a silent provider reaches any limit, however fast the machine.
  const impatient = await startTestHost({ config: { modelUrl: providerUrl, modelProvider: 'openai', modelName: 'base-model', modelTimeoutMs: 300 } });
  try {
    const client = await impatient.chat((await routedTenant(impatient)).apiKey);
    mode = 'silent';
    try {
      await impatient.ask(client, 'When is high tide?');
      assert.unreachable();
    } catch (error) {
      assert.equal((error as ChatError).code, 'MODEL_TIMEOUT');
    } finally {
      mode = 'ok';
    }
    client.close();
  } finally {
    await impatient.close();
  }
});

test.run();
