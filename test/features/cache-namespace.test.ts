/**
 * Invariant 5 through the real server: every element of the cache namespace, changed in turn,
 * turns a hit into a miss (the model is asked again) — model routing, the plugin modules, the
 * prompt config, the index generation — and changing it back finds the earlier entry again, which
 * shows the element is in the key rather than merely purging. The prompt plugin can opt an ask
 * out, and later turns of a conversation are never served from the cache.
 */
import { readFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { loadBuiltinModules, type PluginModules } from '../../host/sandbox/session-plugins.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';

let host: TestHost;
let model: ModelServer;
let builtin: PluginModules;
let optOut: PluginModules;
let modules: PluginModules;
let tenant: { id: string; apiKey: string };

const QUESTION = 'When are the stores open on Sunday?';

test.before(async () => {
  const { outFile } = await buildPlugin('test/fixtures/plugins/prompt-opt-out.ts', 'build/test/plugins/prompt-opt-out.wasm');
  builtin = await loadBuiltinModules();
  optOut = { retrieval: builtin.retrieval, prompt: await compilePlugin(await readFile(outFile)) };
  modules = builtin;
  // Each answer names the model that made it, so a served answer shows where it came from.
  model = await startModelServer({ answer: (body) => [`Answered by ${body.model} `, `for ${body.messages.at(-1).content}`] });
  host = await startTestHost({ config: { modelUrl: model.url, modelName: 'base' }, pluginModulesFor: () => modules });
  tenant = await host.createTenant('Namespaced');
  await host.ingest(tenant.apiKey, [{ id: 'hours', title: 'Opening hours', text: 'On Sunday the stores are open from 11 am to 4 pm.' }]);
  await configure({ model: { provider: 'openai' } });
});
test.after(async () => {
  await host.close();
  await model.close();
});

async function configure(patch: unknown): Promise<void> {
  const response = await host.request('PATCH', '/v1/config', tenant.apiKey, patch);
  assert.is(response.status, 200, JSON.stringify(response.body));
}

/** Asks in a fresh session; returns the outcome and whether the model was asked. */
async function askFresh(text = QUESTION): Promise<{ cache: string; answer: string; modelAsked: boolean }> {
  const before = model.requests.length;
  const client = await host.chat(tenant.apiKey);
  try {
    const { result } = await host.ask(client, text);
    return { cache: result.cache, answer: result.answer, modelAsked: model.requests.length > before };
  } finally {
    client.close();
  }
}

/**
 * The element under test turns the cached hit into a miss, caches anew, and changing back hits the
 * old entry. `viaModelServer` is false when the change routes asks away from the test's model server.
 */
async function expectElement(what: string, change: () => Promise<void>, restore: () => Promise<void>, viaModelServer = true): Promise<void> {
  await askFresh();
  assert.equal(await askFresh(), { ...(await askFresh()), cache: 'hit', modelAsked: false }, `${what}: baseline is a hit`);
  await change();
  const changed = await askFresh();
  assert.is(changed.cache, 'miss', `${what} changed: a miss`);
  if (viaModelServer) assert.ok(changed.modelAsked, `${what} changed: the model is asked`);
  assert.is((await askFresh()).cache, 'hit', `${what} changed: cached under the new namespace`);
  await restore();
  const restored = await askFresh();
  assert.is(restored.cache, 'hit', `${what} restored: the earlier entry answers again`);
  assert.not.ok(restored.modelAsked);
}

test('baseline: a repeated first-turn question is served without asking the model', async () => {
  const first = await askFresh();
  const second = await askFresh();
  assert.ok(first.modelAsked);
  assert.equal(second, { cache: 'hit', answer: first.answer, modelAsked: false });
});

test('model routing: another adapter, another model name or another provider is a miss', async () => {
  await expectElement('adapter', () => configure({ model: { adapter: 'support-lora' } }), () => configure({ model: { adapter: '' } }));
  await expectElement('model name', () => configure({ model: { name: 'bigger' } }), () => configure({ model: { name: '' } }));
  await expectElement('provider', () => configure({ model: { provider: 'local' } }), () => configure({ model: { provider: 'openai' } }), false);
});

test('plugin modules: another prompt module is a miss', async () => {
  await expectElement('prompt plugin', async () => void (modules = optOut), async () => void (modules = builtin));
});

test('prompt config: system prompt, topK and token budget each change the key', async () => {
  await expectElement('system prompt', () => configure({ systemPrompt: 'Answer like a pirate.' }), () => configure({ systemPrompt: 'You are a helpful assistant. Answer only from the provided context and cite sources.' }));
  await expectElement('topK', () => configure({ topK: 3 }), () => configure({ topK: 8 }));
  await expectElement('token budget', () => configure({ tokenBudget: 900 }), () => configure({ tokenBudget: 1500 }));
});

test('cache settings that do not change answers keep the key (threshold, TTL, quota)', async () => {
  await askFresh();
  await configure({ cache: { threshold: 0.95, ttlSeconds: 3600, quotaBytes: 1 << 20 } });
  assert.is((await askFresh()).cache, 'hit');
  await configure({ cache: { threshold: 0.92, ttlSeconds: 604_800, quotaBytes: 16 << 20 } });
});

test('index generation: any ingest is a miss, and the old entries are dropped for good', async () => {
  assert.is((await askFresh()).cache, 'hit');
  await host.ingest(tenant.apiKey, [{ id: 'unrelated', title: 'Parking', text: 'Parking is free for customers.' }]);
  const stats = (await host.request('GET', '/v1/cache/stats', tenant.apiKey)).body;
  assert.is(stats.entries, 0, 'every entry of the old generation is gone');
  assert.ok(stats.invalidated > 0);
  const after = await askFresh();
  assert.ok(after.cache === 'miss' && after.modelAsked);
  assert.is((await askFresh()).cache, 'hit');
});

test('opt-out: an answer the prompt plugin marks not cacheable is never stored; others are', async () => {
  modules = optOut;
  try {
    const personal = 'What is the balance of my account?';
    assert.is((await askFresh(personal)).cache, 'miss');
    const again = await askFresh(personal);
    assert.ok(again.cache === 'miss' && again.modelAsked, 'asked again: still the model');
    const general = 'Is parking free for customers?';
    assert.is((await askFresh(general)).cache, 'miss');
    assert.is((await askFresh(general)).cache, 'hit');
    const stats = (await host.request('GET', '/v1/cache/stats', tenant.apiKey)).body;
    assert.ok(stats.optedOut >= 2, JSON.stringify(stats));
  } finally {
    modules = builtin;
  }
});

test('later turns are never served from the cache, even for a cached question', async () => {
  assert.is((await askFresh()).cache, 'hit');
  const client = await host.chat(tenant.apiKey);
  try {
    assert.is((await host.ask(client, 'Is parking free?')).result.cache, 'miss');
    const before = model.requests.length;
    const { result } = await host.ask(client, QUESTION);
    assert.is(result.cache, 'miss', 'the second turn runs the pipeline with the history');
    assert.is(model.requests.length, before + 1);
    assert.ok(model.requests.at(-1).messages.length > 2, 'the history went to the model');
  } finally {
    client.close();
  }
});

test('cache disabled: nothing is served or stored', async () => {
  await configure({ cache: { enabled: false } });
  try {
    const question = 'When do the stores close on Sunday?';
    assert.is((await askFresh(question)).cache, 'miss');
    assert.is((await askFresh(question)).cache, 'miss');
  } finally {
    await configure({ cache: { enabled: true } });
  }
});

test.run();
