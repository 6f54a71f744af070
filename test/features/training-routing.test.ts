/**
 * Per-tenant model routing, played as the tenant whose tuned weights must not answer anyone else:
 * two tenants on one OpenAI-compatible server, each naming its own LoRA adapter, ask the same
 * question with the semantic cache on. Each request carries the asking tenant's adapter, never the
 * other's; the second tenant is not served the first one's cached answer; and a tenant that changes
 * its adapter is routed to the new one at once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';

let host: TestHost;
let model: ModelServer;
let a: { id: string; apiKey: string };
let b: { id: string; apiKey: string };

const QUESTION = 'When does the shop open?';

test.before(async () => {
  model = await startModelServer({ answer: (body) => [`Answered by ${body.model}.`] });
  host = await startTestHost({ config: { modelUrl: model.url, modelProvider: 'openai', modelName: 'base-model' } });
  a = await host.createTenant('Alpha');
  b = await host.createTenant('Beta');
  for (const [tenant, adapter] of [[a, 'alpha-lora'], [b, 'beta-lora']] as const) {
    await host.ingest(tenant.apiKey, [{ id: 'hours', title: 'Hours', text: 'The shop opens at nine.' }]);
    const patched = await host.request('PATCH', '/v1/config', tenant.apiKey, { model: { adapter } });
    assert.equal([patched.status, patched.body.model.adapter], [200, adapter]);
  }
});
test.after(async () => {
  await host.close();
  await model.close();
});

async function askFresh(apiKey: string): Promise<{ answer: string; cache: string; requested: string | undefined }> {
  const before = model.requests.length;
  const client = await host.chat(apiKey);
  const { result } = await host.ask(client, QUESTION);
  client.close();
  return { answer: result.answer, cache: result.cache, requested: model.requests.length > before ? model.requests.at(-1).model : undefined };
}

test("each tenant's asks go to its own adapter, and a cached answer never crosses to the other", async () => {
  const first = await askFresh(a.apiKey);
  assert.equal(first, { answer: 'Answered by alpha-lora.', cache: 'miss', requested: 'alpha-lora' });
  const other = await askFresh(b.apiKey);
  assert.equal(other, { answer: 'Answered by beta-lora.', cache: 'miss', requested: 'beta-lora' }, "not alpha's cached answer");
  await host.writesLanded(a.id);
  const again = await askFresh(a.apiKey);
  assert.equal({ answer: again.answer, cache: again.cache, requested: again.requested }, { answer: 'Answered by alpha-lora.', cache: 'hit', requested: undefined });
});

test('a changed adapter routes the next ask to it, not to a cached answer of the old one', async () => {
  await host.request('PATCH', '/v1/config', b.apiKey, { model: { adapter: 'beta-lora-v2' } });
  const after = await askFresh(b.apiKey);
  assert.equal(after, { answer: 'Answered by beta-lora-v2.', cache: 'miss', requested: 'beta-lora-v2' });
  await host.request('PATCH', '/v1/config', b.apiKey, { model: { adapter: '' } });
  assert.is((await askFresh(b.apiKey)).requested, 'base-model', 'no adapter: the host model');
});

test.run();
