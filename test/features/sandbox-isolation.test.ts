/**
 * Invariant 3 through the real server: every session gets fresh plugin instances (a module global
 * starts over), kv state persists where the ABI promises (same tenant, same slot) and nowhere else
 * (another tenant's plugin cannot read it).
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
let modules: PluginModules;

test.before(async () => {
  const { outFile } = await buildPlugin('test/fixtures/plugins/state-reporter.ts', 'build/test/plugins/state-reporter.wasm');
  const builtin = await loadBuiltinModules();
  modules = { retrieval: builtin.retrieval, prompt: await compilePlugin(await readFile(outFile)) };
  // The model echoes the system message, so the answer shows what the prompt plugin reported.
  model = await startModelServer({ answer: (body) => [String(body.messages[0].content)] });
  host = await startTestHost({ config: { modelUrl: model.url, modelProvider: 'openai' }, pluginModulesFor: () => modules });
});
test.after(async () => {
  await host.close();
  await model.close();
});

async function answer(apiKey: string, asks: number): Promise<string[]> {
  const client = await host.chat(apiKey);
  const answers: string[] = [];
  for (let i = 0; i < asks; i += 1) answers.push((await host.ask(client, `question ${i}`)).result.answer);
  client.close();
  await client.closed;
  return answers;
}

test('globals start over in every session; kv persists within the tenant', async () => {
  const a = await host.createTenant('A');
  assert.equal(await answer(a.apiKey, 2), ['global=1 kv=1 canary=none', 'global=2 kv=2 canary=none']);
  assert.equal(await answer(a.apiKey, 1), ['global=1 kv=3 canary=none'], 'fresh instance, same tenant kv');
});

test("a kv value written by tenant A's plugin is not readable by tenant B's", async () => {
  const a = await host.createTenant('A2');
  const b = await host.createTenant('B2');
  await answer(a.apiKey, 3);
  assert.equal(await answer(b.apiKey, 1), ['global=1 kv=1 canary=none'], "B starts from its own empty kv");
  assert.equal(await answer(a.apiKey, 1), ['global=1 kv=4 canary=none']);
});

test('sessions of the same tenant at the same time have separate instances', async () => {
  const a = await host.createTenant('A3');
  const first = await host.chat(a.apiKey);
  const second = await host.chat(a.apiKey);
  assert.equal((await host.ask(first, 'one')).result.answer, 'global=1 kv=1 canary=none');
  assert.equal((await host.ask(second, 'two')).result.answer, 'global=1 kv=2 canary=none');
  assert.equal((await host.ask(first, 'three')).result.answer, 'global=2 kv=3 canary=none');
  first.close();
  second.close();
});

test.run();
