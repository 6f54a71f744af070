/**
 * The operator view in headless Chromium: signed in with the operator key, it shows every tenant
 * with its live sessions, its blocked leaks and its plugin failures, and lists the incidents; a
 * tenant key is refused. No request leaves the host. Screenshot: test-artifacts/operator.png.
 */
import { readFile } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ResolvedChunk } from '../../host/pipeline/guard.ts';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { loadBuiltinModules, type PluginModules } from '../../host/sandbox/session-plugins.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import type { ChatClient } from '../../sdk/client/client.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';
import { within } from '../helpers/deadline.ts';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';
import { launchBrowser, newContext, screenshot, skipBrowserTests, unexpectedErrors, watch } from './browser.ts';

let host: TestHost;
let browser: Browser;
let failing: PluginModules;
let foreign: ResolvedChunk | undefined;
const tenants: Record<'shop' | 'faulty' | 'leaky', { id: string; apiKey: string }> = {} as never;
const open: ChatClient[] = [];

const skip = skipBrowserTests('browser/operator.test.ts');

/** Asks and expects the ask to fail with `code`. */
async function askFailing(apiKey: string, question: string, code: string): Promise<void> {
  const client = await host.chat(apiKey);
  const failure = await within(client.ask(question).result, question).then(
    () => undefined,
    (error: { code?: string }) => error,
  );
  assert.is(failure?.code, code);
  client.close();
}

test.before(async () => {
  if (skip) return;
  const { outFile } = await buildPlugin('test/fixtures/plugins/failures.ts', 'build/test/plugins/failures.wasm');
  failing = { retrieval: await compilePlugin(await readFile(outFile)), prompt: (await loadBuiltinModules()).prompt };
  host = await startTestHost({
    pluginModulesFor: (tenantId) => (tenantId === tenants.faulty?.id ? failing : undefined),
    faultInjectResolved: (tenantId, resolved, chunks) => {
      if (tenantId !== tenants.leaky?.id || foreign === undefined) return;
      resolved.set(foreign.chunkId, foreign);
      chunks.unshift(foreign);
    },
  });
  for (const name of ['shop', 'faulty', 'leaky'] as const) tenants[name] = await host.createTenant(`${name[0]?.toUpperCase()}${name.slice(1)} Ltd`);
  await host.ingest(tenants.shop.apiKey, [{ id: 'hours', title: 'Hours', text: 'The shop opens at nine.' }]);
  await host.ingest(tenants.leaky.apiKey, [{ id: 'notes', title: 'Notes', text: 'Leaky keeps notes.' }]);
  const scope = mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), tenants.shop.id);
  const stored = scope.store.chunks.get(scope.store.chunkRows.get('hours#0') as number);
  scope.release();
  if (stored !== undefined) foreign = { chunkId: stored.chunkId, docId: stored.docId, title: stored.title, text: stored.text, score: 1, tag: stored.tag };
  await askFailing(tenants.faulty.apiKey, 'unreachable', 'PLUGIN_FAILED');
  await askFailing(tenants.leaky.apiKey, 'What is in the notes?', 'LEAK_BLOCKED');
  // Two live sessions of the shop while the operator looks.
  for (let index = 0; index < 2; index += 1) {
    const client = await host.chat(tenants.shop.apiKey);
    await host.ask(client, 'When does the shop open?');
    open.push(client);
  }
  browser = await launchBrowser();
});
test.after(async () => {
  if (skip) return;
  for (const client of open) client.close();
  await browser?.close();
  await host?.close();
});

test('a tenant key is refused at sign-in', async () => {
  if (skip) return;
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(`${host.url}/operator`);
    await page.fill('#key', tenants.shop.apiKey);
    await page.click('#sign-in-form button');
    const refused = page.locator('#overview-status .notice.error');
    assert.is(await refused.getAttribute('data-code'), 'AUTH_INVALID_KEY');
    assert.ok(await page.locator('#sign-in').isVisible());
    assert.not.ok(await page.locator('#panels').isVisible());
  } finally {
    await context.close();
  }
});

test('the operator sees tenants, live sessions, blocked leaks and plugin failures, and the incidents', async () => {
  if (skip) return;
  const context = await newContext(browser);
  const found = await watch(context, host.url);
  try {
    const page = await context.newPage();
    await page.goto(`${host.url}/operator`);
    await page.fill('#key', OPERATOR_KEY);
    await page.click('#sign-in-form button');
    await page.locator('#panels').waitFor();
    const tile = (label: string) => page.locator(`[data-tile="${label}"] .value`).textContent();
    assert.equal([await tile('tenants'), await tile('live sessions'), await tile('blocked leaks'), await tile('plugin failures')], ['3', '2', '1', '1']);
    const cells = async (tenantId: string) => page.locator(`#tenants tr[data-tenant="${tenantId}"] td`).allTextContents();
    const shop = await cells(tenants.shop.id);
    // The second session's first ask is the first session's question again: a cache hit.
    assert.equal(shop.slice(0, 7), ['Shop Ltd', tenants.shop.id, '2', '2', '1', '0', '0']);
    assert.equal((await cells(tenants.faulty.id)).slice(5, 7), ['0', '1']);
    assert.equal((await cells(tenants.leaky.id)).slice(5, 7), ['1', '0']);
    const incidents = page.locator('#incidents tbody tr');
    assert.is(await incidents.count(), 2);
    const leak = await page.locator('#incidents tr[data-code="LEAK_BLOCKED"] td').allTextContents();
    assert.match(leak[1] ?? '', /^Leaky Ltd t_/);
    assert.match(leak[3] ?? '', /^Answer blocked by the leak guard · provenance layer$/);
    assert.match((await page.locator('#incidents tr[data-code="PLUGIN_FAILED"] td').allTextContents())[1] ?? '', /^Faulty Ltd/);
    assert.not.ok((await page.textContent('body'))?.includes('opens at nine'), 'the view holds no tenant content');
    await screenshot(page, 'operator');
    assert.equal(found.foreign, []);
    assert.equal(unexpectedErrors(found), []);
  } finally {
    await context.close();
  }
});

test.run();
