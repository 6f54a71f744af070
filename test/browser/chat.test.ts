/**
 * The chat page in headless Chromium, as a user meets it: the answer streams in (visible while the
 * model is still writing), then its sources with titles and snippets; the same question in a new
 * conversation comes from the cache with its badge; feedback is accepted; failures (a plugin, the
 * leak guard, a refused key) are explained on the page; and a tenant-B user asking about tenant
 * A's unique fact sees no trace of it. No request leaves the host. Screenshots: test-artifacts/.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ResolvedChunk } from '../../host/pipeline/guard.ts';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { loadBuiltinModules, type PluginModules } from '../../host/sandbox/session-plugins.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { launchBrowser, newContext, screenshot, skipBrowserTests, unexpectedErrors, watch, type PageWatch } from './browser.ts';

const SHIPPING = { id: 'shipping', title: 'Shipping and delivery', text: 'Orders ship the same day. Express delivery arrives the next working day and costs 15 euros.' };
/** The first token is longer than the stream guard's hold-back (one canary length), so part of it shows at once. */
const STREAM_TOKENS = ['Express delivery arrives the next working day and is the fastest option we offer, ', 'and it costs 15 euros ', '[shipping#0].'];

let host: TestHost;
let browser: Browser;
let model: { url: string; release(): void; close(): Promise<void> };
let failing: PluginModules;
const tenants: Record<'shop' | 'streamer' | 'alpha' | 'beta' | 'faulty' | 'leaky', { id: string; apiKey: string }> = {} as never;
let foreign: ResolvedChunk | undefined;

/** An OpenAI-compatible model that streams the first token, then waits for `release()` before the rest. */
async function startGatedModel(): Promise<typeof model> {
  let open: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (open = resolve));
  const server: Server = createServer(async (request, response) => {
    for await (const _ of request);
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (token: string) => response.write(`data: ${JSON.stringify({ choices: [{ delta: { content: token } }] })}\n\n`);
    send(STREAM_TOKENS[0] ?? '');
    await gate;
    for (const token of STREAM_TOKENS.slice(1)) send(token);
    response.end('data: [DONE]\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    release: () => {
      open();
      gate = Promise.resolve();
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const skip = skipBrowserTests('browser/chat.test.ts');

test.before(async () => {
  if (skip) return;
  const { outFile } = await buildPlugin('test/fixtures/plugins/failures.ts', 'build/test/plugins/failures.wasm');
  failing = { retrieval: await compilePlugin(await readFile(outFile)), prompt: (await loadBuiltinModules()).prompt };
  model = await startGatedModel();
  host = await startTestHost({
    config: { modelUrl: model.url },
    pluginModulesFor: (tenantId) => (tenantId === tenants.faulty?.id ? failing : undefined),
    faultInjectResolved: (tenantId, resolved, chunks) => {
      if (tenantId !== tenants.leaky?.id || foreign === undefined) return;
      resolved.set(foreign.chunkId, foreign);
      chunks.unshift(foreign);
    },
  });
  for (const name of ['shop', 'streamer', 'alpha', 'beta', 'faulty', 'leaky'] as const) tenants[name] = await host.createTenant(name);
  await host.ingest(tenants.shop.apiKey, [SHIPPING, { id: 'returns', title: 'Returns and refunds', text: 'You can return an unused bike within 30 days of delivery for a full refund.' }]);
  await host.ingest(tenants.streamer.apiKey, [SHIPPING]);
  await host.request('PATCH', '/v1/config', tenants.streamer.apiKey, { model: { provider: 'openai' } });
  await host.ingest(tenants.alpha.apiKey, [{ id: 'vault', title: 'Alpha vault procedures', text: 'The Zephyr vault opens with code 4471-QX. Only two people know it.' }]);
  await host.ingest(tenants.beta.apiKey, [{ id: 'vault', title: 'Beta storage', text: 'Our storage room has no vault. Keys are at the front desk.' }]);
  await host.ingest(tenants.leaky.apiKey, [{ id: 'notes', title: 'Notes', text: 'Leaky keeps its notes here.' }]);
  const scope = mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), tenants.alpha.id);
  const stored = scope.store.chunks.get(scope.store.chunkRows.get('vault#0') as number);
  scope.release();
  if (stored !== undefined) foreign = { chunkId: stored.chunkId, docId: stored.docId, title: stored.title, text: stored.text, score: 1, tag: stored.tag };
  browser = await launchBrowser();
});
test.after(async () => {
  if (skip) return;
  await browser?.close();
  await host?.close();
  await model?.close();
});

/** Opens the chat page for a tenant (its key in the fragment, as `npm start` prints it) and waits until it is connected. */
async function openChat(apiKey: string): Promise<{ context: BrowserContext; page: Page; found: PageWatch }> {
  const context = await newContext(browser);
  const found = await watch(context, host.url);
  const page = await context.newPage();
  await page.goto(`${host.url}/#key=${encodeURIComponent(apiKey)}`);
  await page.waitForSelector('#status[data-state="ready"]');
  assert.is(new URL(page.url()).hash, '', 'the key is taken out of the address bar');
  return { context, page, found };
}

async function ask(page: Page, question: string): Promise<void> {
  const before = await page.locator('.msg.assistant').count();
  await page.fill('#question', question);
  await page.press('#question', 'Enter');
  await page.waitForSelector(`.msg.assistant >> nth=${before}`);
}

/** The newest answer bubble, once it is done or failed. */
async function lastAnswer(page: Page) {
  const last = page.locator('.msg.assistant').last();
  await last.and(page.locator('[data-state="done"], [data-state="error"]')).waitFor();
  return last;
}

function assertClean(found: PageWatch): void {
  assert.equal(found.foreign, [], 'no request left the host');
  assert.equal(unexpectedErrors(found), [], 'no script error or CSP violation');
}

test('the answer streams in while the model writes, then shows its sources with titles and snippets', async () => {
  if (skip) return;
  const { context, page, found } = await openChat(tenants.streamer.apiKey);
  try {
    await ask(page, 'How much is express delivery?');
    const streaming = page.locator('.msg.assistant[data-state="streaming"] .text');
    await streaming.filter({ hasText: 'Express delivery arrives' }).waitFor();
    assert.not.ok((await streaming.textContent())?.includes('15 euros'), 'the rest has not been written yet');
    assert.is(await page.locator('.sources').count(), 0, 'sources come with the end of the answer');
    model.release();
    const answer = await lastAnswer(page);
    assert.is(await answer.getAttribute('data-state'), 'done');
    assert.match((await answer.locator('.text').textContent()) ?? '', /fastest option we offer, and it costs 15 euros 1\.$/);
    assert.is(await answer.locator('.cite').getAttribute('title'), 'shipping#0');
    assert.is(await answer.locator('.sources li .source-title').first().textContent(), 'Shipping and delivery');
    assert.match((await answer.locator('.sources li .snippet').first().textContent()) ?? '', /^Orders ship the same day\. Express delivery arrives/);
    assert.is(await answer.locator('.badge').first().textContent(), 'Fresh answer');
    await screenshot(page, 'chat-streamed');
    assertClean(found);
  } finally {
    await context.close();
  }
});

test('a repeated question in a new conversation comes from the cache with its badge; feedback is accepted', async () => {
  if (skip) return;
  const { context, page, found } = await openChat(tenants.shop.apiKey);
  try {
    await ask(page, 'How much does express delivery cost?');
    let answer = await lastAnswer(page);
    assert.match((await answer.locator('.text').textContent()) ?? '', /costs 15 euros/);
    assert.is(await answer.locator('.badge').first().textContent(), 'Fresh answer');
    await answer.getByRole('button', { name: 'Helpful', exact: true }).click();
    await answer.locator('.thanks[data-rating="1"]').waitFor();
    await page.click('#new-chat');
    await page.waitForSelector('#status[data-state="ready"]');
    assert.is(await page.locator('.msg').count(), 0, 'a new conversation starts empty');
    await ask(page, 'How much does express delivery cost?');
    answer = await lastAnswer(page);
    const badge = answer.locator('.badge.hit');
    assert.is(await badge.textContent(), 'Cached · same question');
    assert.is(await badge.getAttribute('data-similarity'), '1.000');
    await ask(page, 'Can I return a bike I bought?');
    answer = await lastAnswer(page);
    assert.match((await answer.locator('.text').textContent()) ?? '', /within 30 days/);
    await answer.getByRole('button', { name: 'Not helpful' }).click();
    await answer.locator('.thanks[data-rating="-1"]').waitFor();
    await screenshot(page, 'chat');
    assertClean(found);
  } finally {
    await context.close();
  }
});

test('failures are explained on the page: a plugin failure, a blocked leak, a refused key', async () => {
  if (skip) return;
  const faulty = await openChat(tenants.faulty.apiKey);
  const leaky = await openChat(tenants.leaky.apiKey);
  try {
    await ask(faulty.page, 'unreachable');
    const failed = (await lastAnswer(faulty.page)).locator('.notice.error');
    assert.is(await failed.getAttribute('data-code'), 'PLUGIN_FAILED');
    assert.match((await failed.textContent()) ?? '', /A plugin failed.*restarts fresh.*PLUGIN_FAILED/);
    await ask(leaky.page, 'What is in the notes?');
    const blocked = (await lastAnswer(leaky.page)).locator('.notice.error');
    assert.is(await blocked.getAttribute('data-code'), 'LEAK_BLOCKED');
    assert.match((await blocked.textContent()) ?? '', /Answer blocked by the leak guard.*nothing was sent/);
    assert.not.ok((await leaky.page.textContent('body'))?.includes('4471'), "the other tenant's text is not on the page");
    await screenshot(leaky.page, 'chat-leak-blocked');
    assertClean(faulty.found);
    assertClean(leaky.found);
  } finally {
    await faulty.context.close();
    await leaky.context.close();
  }
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(`${host.url}/#key=ctx_0123456789abcdef_notarealkeynotarealkeynotarealkeynotareal`);
    const refused = page.locator('.notice.error');
    assert.is(await refused.getAttribute('data-code'), 'AUTH_INVALID_KEY');
    assert.match((await refused.textContent()) ?? '', /Key not accepted/);
    assert.ok(await page.locator('#connect').isVisible(), 'the connect form is offered');
  } finally {
    await context.close();
  }
});

test("a tenant-B user asking about tenant A's unique fact gets no trace of it", async () => {
  if (skip) return;
  const alpha = await openChat(tenants.alpha.apiKey);
  const beta = await openChat(tenants.beta.apiKey);
  try {
    await ask(alpha.page, 'What code opens the Zephyr vault?');
    assert.match((await (await lastAnswer(alpha.page)).locator('.text').textContent()) ?? '', /4471-QX/, 'control: tenant A finds its own fact');
    await ask(beta.page, 'What code opens the Zephyr vault?');
    const answer = await lastAnswer(beta.page);
    assert.is(await answer.getAttribute('data-state'), 'done');
    const text = (await beta.page.textContent('body')) ?? '';
    for (const trace of ['4471', 'QX', 'Zephyr vault opens', 'Alpha vault procedures', 'Only two people']) assert.not.ok(text.includes(trace), `tenant B sees ${trace}`);
    assert.ok((await answer.locator('.source-title').allTextContents()).every((title) => title === 'Beta storage'), "only B's own documents are cited");
    await screenshot(beta.page, 'chat-tenant-b');
    assertClean(alpha.found);
    assertClean(beta.found);
  } finally {
    await alpha.context.close();
    await beta.context.close();
  }
});

test.run();
