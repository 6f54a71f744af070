/**
 * The tenant console in headless Chromium: an admin signs in, drops a document on the page, and
 * the chat (opened from the console with a fresh ticket) finds it; a large batch goes up in
 * several requests behind a progress bar; a plugin upload shows its vetting report and a bad one
 * says why it was refused; settings refused by the host name the setting; the recent asks show
 * their time by stage. No request leaves the host. Screenshots: test-artifacts/.
 */
import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { BUILTIN_PLUGINS_DIR } from '../../host/sandbox/session-plugins.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { launchBrowser, newContext, screenshot, skipBrowserTests, unexpectedErrors, watch, type PageWatch } from './browser.ts';

const FACT = { file: 'bike-storage.md', text: '# Winter bike storage\n\nThe Larkspur winter storage service keeps a bike for 9 euros a month in a heated hall.\n' };

let host: TestHost;
let browser: Browser;
let tenant: { id: string; apiKey: string };
let context: BrowserContext;
let page: Page;
let found: PageWatch;

const skip = skipBrowserTests('browser/console.test.ts');

test.before(async () => {
  if (skip) return;
  host = await startTestHost();
  tenant = await host.createTenant('Larkspur');
  browser = await launchBrowser();
  context = await newContext(browser);
  found = await watch(context, host.url);
  page = await context.newPage();
});
test.after(async () => {
  if (skip) return;
  await context?.close();
  await browser?.close();
  await host?.close();
});

function assertClean(): void {
  assert.equal(found.foreign, [], 'no request left the host');
  assert.equal(unexpectedErrors(found), [], 'no script error or CSP violation');
}

test('sign-in: a wrong key is refused with a clear message; the right one opens the console', async () => {
  if (skip) return;
  await page.goto(`${host.url}/console`);
  await page.fill('#key', 'ctx_0123456789abcdef_wrongwrongwrongwrongwrongwrongwrongwrongwro');
  await page.click('#sign-in-form button');
  const refused = page.locator('#sign-in-status .notice.error');
  assert.is(await refused.getAttribute('data-code'), 'AUTH_INVALID_KEY');
  assert.match((await refused.textContent()) ?? '', /Key not accepted/);
  await page.fill('#key', tenant.apiKey);
  await page.click('#sign-in-form button');
  await page.locator('#panels').waitFor();
  await page.locator('#corpus tbody td.empty').waitFor();
  assertClean();
});

test('an admin drops a document on the console, and the chat opened from the console finds it', async () => {
  if (skip) return;
  const dataTransfer = await page.evaluateHandle(
    `(() => { const data = new DataTransfer(); data.items.add(new File([${JSON.stringify(FACT.text)}], ${JSON.stringify(FACT.file)}, { type: 'text/markdown' })); return data; })()`,
  );
  await page.dispatchEvent('#drop', 'drop', { dataTransfer });
  await page.locator('#upload-result .notice.ok').filter({ hasText: 'Stored 1 new, 0 updated, 0 unchanged — 1 chunks indexed.' }).waitFor();
  const row = page.locator('#corpus tbody tr[data-doc="bike-storage"]');
  assert.is(await row.locator('td').first().textContent(), 'Winter bike storage');
  const [chat] = await Promise.all([context.waitForEvent('page'), page.click('#open-chat')]);
  await chat.waitForSelector('#status[data-state="ready"]');
  assert.is(new URL(chat.url()).hash, '', 'the ticket is taken out of the address bar');
  await chat.fill('#question', 'How much does winter storage for a bike cost?');
  await chat.press('#question', 'Enter');
  const answer = chat.locator('.msg.assistant[data-state="done"]');
  await answer.waitFor();
  assert.match((await answer.locator('.text').textContent()) ?? '', /9 euros a month/);
  assert.is(await answer.locator('.source-title').first().textContent(), 'Winter bike storage');
  await screenshot(chat, 'console-chat');
  await chat.close();
  assertClean();
});

test('a large drop goes up in batches within the host limits, behind a progress bar', async () => {
  if (skip) return;
  const count = LIMITS.documentsPerRequestMax * 2 + 100;
  const lines = Array.from({ length: count }, (_, index) => JSON.stringify({ id: `faq-${index}`, title: `FAQ ${index}`, text: `Question ${index} is answered by entry ${index} of the catalogue.` }));
  const posts: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/v1/documents')) posts.push(request.url());
  });
  await page.setInputFiles('#file-input', { name: 'faq.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(lines.join('\n')) });
  await page.locator('#upload-result .notice.ok').filter({ hasText: `Stored ${count} new` }).waitFor({ timeout: 60_000 });
  assert.is(posts.length, 3, 'three batches');
  assert.is(await page.locator('#upload-progress').evaluate((bar) => (bar as unknown as { value: number }).value), 100);
  assert.is(await page.locator('#upload-text').textContent(), `Uploaded ${count} documents.`);
  await page.locator('#corpus-summary').filter({ hasText: `${count + 1} chunks indexed` }).waitFor();
  assertClean();
});

test('a plugin upload shows its vetting report; a module that fails vetting is refused with the reason', async () => {
  if (skip) return;
  const slot = page.locator('.slot[data-slot="retrieval"]');
  await page.setInputFiles('input[type="file"][data-slot="retrieval"]', { name: 'retrieval.wasm', mimeType: 'application/wasm', buffer: await readFile(`${BUILTIN_PLUGINS_DIR}/retrieval.wasm`) });
  const report = page.locator('#plugin-report .report');
  await report.waitFor({ timeout: 60_000 });
  assert.match((await report.locator('h3').textContent()) ?? '', /^Vetting report: retrieval\.wasm → retrieval v1$/);
  assert.match((await report.textContent()) ?? '', /ctx:host\/v1\.index_search.*retrieve \(function\).*capped at 256 pages \(16\.0 MiB\)/);
  await slot.locator('.badge', { hasText: 'version 1' }).waitFor();
  await page.setInputFiles('input[type="file"][data-slot="prompt"]', { name: 'notes.wasm', mimeType: 'application/wasm', buffer: Buffer.from('not a module') });
  const refused = page.locator('#plugin-report .notice.error');
  await refused.waitFor();
  assert.is(await refused.getAttribute('data-code'), 'PLUGIN_INVALID');
  assert.match((await refused.textContent()) ?? '', /Upload of notes\.wasm: Plugin refused/);
  // Back to the built-in: the destructive button asks to be clicked twice.
  const builtin = slot.getByRole('button', { name: 'Use built-in' });
  await builtin.click();
  await slot.getByRole('button', { name: 'Use built-in?' }).click();
  await slot.locator('.badge', { hasText: 'built-in' }).waitFor();
  assertClean();
});

test('a refused setting is named; the recent asks show their time by stage', async () => {
  if (skip) return;
  const settings = await page.inputValue('#settings');
  await page.fill('#settings', JSON.stringify({ ...JSON.parse(settings), topK: 99 }, null, 2));
  await page.click('#settings-form button');
  const refused = page.locator('#settings-status .notice.error');
  await refused.waitFor();
  assert.is(await refused.getAttribute('data-code'), 'CONFIG_INVALID');
  assert.match((await refused.textContent()) ?? '', /topK/);
  await page.fill('#settings', settings);
  await page.click('#settings-form button');
  await page.locator('#settings-status .notice.ok').waitFor();
  await page.reload();
  const asked = page.locator('#asks tbody tr[data-outcome="answered"]');
  await asked.first().waitFor();
  assert.is(await asked.count(), 1);
  const segments = await asked.first().locator('.stage-bar .stage').count();
  assert.ok(segments >= 4, `${segments} stage segments`);
  // `0.42 ms`, `12 ms`, or past a second (a loaded machine) `1.3 s`.
  assert.match((await asked.first().locator('td[data-stage="retrieval"]').textContent()) ?? '', /^\d+(\.\d+)? (ms|s)$/);
  await screenshot(page, 'console');
  assertClean();
});

test.run();
