/**
 * The pages over plain HTTP: each is served with a CSP that keeps scripts, styles and connections
 * on this host; nothing the pages load points anywhere else (they work offline); assets revalidate
 * by ETag; a request can name only a file the build produced; a host without its pages refuses to
 * start rather than serve none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadWebAssets } from '../../host/web/assets.ts';
import { within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

let host: TestHost;

test.before(async () => {
  host = await startTestHost();
});
test.after(async () => {
  await host.close();
});

const get = (path: string, headers: Record<string, string> = {}): Promise<Response> => within(fetch(`${host.url}${path}`, { headers }), `GET ${path}`);

test('the three pages are HTML with a same-origin-only CSP, and load their script and the stylesheet', async () => {
  for (const [path, script] of [['/', 'chat'], ['/console', 'console'], ['/operator', 'operator']] as const) {
    const response = await get(path);
    assert.is(response.status, 200, path);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8$/);
    const csp = response.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(directive), `${path}: ${directive}`);
    assert.is(response.headers.get('x-content-type-options'), 'nosniff');
    const html = await response.text();
    assert.ok(html.includes(`<script type="module" src="/assets/${script}.js"></script>`), path);
    assert.ok(html.includes('<link rel="stylesheet" href="/assets/style.css">'), path);
    assert.not.match(html, /<script>|\son[a-z]+=/i, `${path} has no inline script or handler (the CSP would block it)`);
  }
});

test('nothing a page loads refers to another origin (no CDN, works offline)', async () => {
  for (const path of ['/', '/console', '/operator', '/assets/chat.js', '/assets/console.js', '/assets/operator.js', '/assets/style.css']) {
    const text = await (await get(path)).text();
    // The SVG namespace is an identifier that is never fetched.
    const urls = [...text.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)]*/gi)].map((match) => match[0]).filter((url) => url !== 'http://www.w3.org/2000/svg');
    assert.equal(urls, [], path);
    assert.not.match(text, /@import|fonts\.googleapis|unpkg|jsdelivr|cdnjs/i, path);
  }
});

test('assets carry an ETag and answer 304 to a matching If-None-Match', async () => {
  const first = await get('/assets/chat.js');
  assert.is(first.status, 200);
  assert.match(first.headers.get('content-type') ?? '', /^text\/javascript/);
  const etag = first.headers.get('etag') ?? '';
  assert.match(etag, /^"[A-Za-z0-9_-]{43}"$/);
  const again = await get('/assets/chat.js', { 'if-none-match': etag });
  assert.is(again.status, 304);
  assert.is(await again.text(), '');
  assert.is((await get('/assets/chat.js', { 'if-none-match': '"other"' })).status, 200);
});

test('only files of the build are served', async () => {
  for (const path of ['/assets/missing.js', '/assets/chat.html', '/assets/..%2fpackage.json', '/assets/../package.json', '/chat.js', '/console/']) {
    const response = await get(path);
    assert.is(response.status, 404, path);
    assert.is(((await response.json()) as { error: { code: string } }).error.code, 'HTTP_NOT_FOUND', path);
  }
  const post = await within(fetch(`${host.url}/console`, { method: 'POST' }), 'POST /console');
  assert.is(post.status, 404);
});

test('without the built pages the host does not start', () => {
  const empty = mkdtempSync(join(tmpdir(), 'ctx-web-'));
  try {
    assert.throws(() => loadWebAssets(join(empty, 'missing')), /web pages are missing at .*; run `npm run build`/);
    assert.throws(() => loadWebAssets(empty), /lack chat\.html, console\.html, .*; run `npm run build`/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test.run();
