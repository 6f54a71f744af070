/**
 * The SDK files a host serves: `GET /sdk/client.js`, the chat client library as one ES module for
 * browsers (scripts/build-client.ts builds it). A chat app on any origin imports it from the host
 * it talks to, so no bundler, CDN or package install stands between a page and the host.
 *
 * The file is read per request (it is tens of KiB, and a rebuilt host then serves the new one);
 * the ETag lets browsers revalidate without downloading it again.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { HostError } from '../errors.ts';
import { RawResponse, type Route } from './route-types.ts';

/**
 * Where `npm run build` writes the module (scripts/build-client.ts, BROWSER_CLIENT_FILE; not
 * imported from there, which would load the bundler into the host). test/sdk/browser-client.test.ts
 * checks that the host serves exactly what the build wrote.
 */
const BROWSER_CLIENT_FILE = fileURLToPath(new URL('../../build/sdk/client.js', import.meta.url));

/**
 * Headers of the module. It holds no data, so any origin may load it (`import` of a module from
 * another origin needs CORS); `no-cache` makes browsers revalidate so a host upgrade takes effect.
 */
const MODULE_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'cross-origin-resource-policy': 'cross-origin',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

/** The SDK routes: the browser client library. */
export const SDK_ROUTES: Route[] = [{ method: 'GET', pattern: /^\/sdk\/client\.js$/, auth: 'none', handle: (request) => serveClient(request) }];

/**
 * The browser client module, or 304 when the browser holds this version.
 * @throws {HostError} HTTP_NOT_FOUND when the module was not built.
 */
async function serveClient(request: IncomingMessage): Promise<RawResponse> {
  let body: Buffer;
  try {
    body = await readFile(BROWSER_CLIENT_FILE);
  } catch {
    throw new HostError('HTTP_NOT_FOUND', 'the browser client is not built on this host; run `npm run build`');
  }
  const etag = `"${createHash('sha256').update(body).digest('base64url')}"`;
  const headers = { ...MODULE_HEADERS, etag };
  if (request.headers['if-none-match'] === etag) return new RawResponse('text/javascript; charset=utf-8', '', 304, headers);
  return new RawResponse('text/javascript; charset=utf-8', body, 200, headers);
}
