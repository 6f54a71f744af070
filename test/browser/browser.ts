/**
 * Headless Chromium for the browser tests, driven by playwright-core. The browser is Debian's
 * (`/usr/bin/chromium`, installed by `.ci/run`); nothing is downloaded. Chromium runs without its
 * sandbox (tests run as root), and with background networking off: it would otherwise try to reach
 * Google's services on a machine whose only network is loopback.
 *
 * {@link watch} records, per page, script errors, CSP violations and every request that leaves the
 * host's origin (which is aborted): the pages must work with no network beyond the host.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Where Debian's chromium package puts the browser; CHROMIUM_PATH overrides it. */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Screenshots go here (gitignored): CI keeps them as the run's artifacts. */
export const ARTIFACTS_DIR = 'test-artifacts';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
];

/**
 * Launches headless Chromium.
 * @throws Error saying how to install it when it is missing (set CTX_SKIP_BROWSER=1 to skip these tests instead).
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`the browser tests need Chromium at ${CHROMIUM_PATH}: apt-get install -y chromium (as .ci/run does), or set CTX_SKIP_BROWSER=1 to skip them`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS, timeout: 30_000 });
}

/** Whether to skip the browser tests (CTX_SKIP_BROWSER=1), said once on stderr so a skip is never silent. */
export function skipBrowserTests(file: string): boolean {
  if (process.env['CTX_SKIP_BROWSER'] !== '1') return false;
  process.stderr.write(`${file}: skipped (CTX_SKIP_BROWSER=1)\n`);
  return true;
}

/** A fresh context (no shared storage between tests) with a desktop viewport and a time limit per action. */
export async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 860 }, colorScheme: 'light' });
  context.setDefaultTimeout(15_000);
  return context;
}

/** What went wrong on a page. */
export interface PageWatch {
  /** Uncaught script errors and console errors (CSP violations among them). */
  errors: string[];
  /** Requests to any origin but the host's (aborted). */
  foreign: string[];
}

/** Records errors and aborts (and records) requests to other origins, for every page of the context. */
export async function watch(context: BrowserContext, origin: string): Promise<PageWatch> {
  const found: PageWatch = { errors: [], foreign: [] };
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:')) return route.continue();
    found.foreign.push(url);
    return route.abort();
  });
  const attach = (page: Page): void => {
    page.on('pageerror', (error) => found.errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') found.errors.push(`console: ${message.text()}`);
    });
  };
  context.pages().forEach(attach);
  context.on('page', attach);
  return found;
}

/** Saves a full-page screenshot as `test-artifacts/<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * The errors a test did not provoke: all but the browser's own notes on HTTP error statuses, which
 * the error-path tests cause on purpose (the page shows them; see its notices).
 */
export function unexpectedErrors(found: PageWatch): string[] {
  return found.errors.filter((error) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(error));
}
