/**
 * The browser pages: the chat page at `/`, the tenant console at `/console`, the operator view at
 * `/operator`, and their scripts and stylesheet under `/assets/`. The pages are public files; the
 * data they show comes from the API with the visitor's key or ticket, exactly as for any client.
 *
 * Every page is sent with a Content-Security-Policy that allows scripts, styles and connections
 * to this host only: no inline script, no other origin, so the pages cannot load (or leak to) a
 * CDN, and injected markup could not run.
 */
import type { IncomingMessage } from 'node:http';
import { HostError } from '../errors.ts';
import type { WebAsset, WebAssets } from '../web/assets.ts';
import { RawResponse, type PublicHandler, type Route } from './route-types.ts';

/** Headers of every page. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Revalidated on every load (with the ETag): a rebuilt host never serves a stale page.
  'cache-control': 'no-cache',
};

/** The page routes, serving the built pages in `web`. */
export function pageRoutes(web: WebAssets): Route[] {
  const page = (file: string): PublicHandler => (request) => serve(web, request, file);
  return [
    { method: 'GET', pattern: /^\/$/, auth: 'none', handle: page('chat.html') },
    { method: 'GET', pattern: /^\/console$/, auth: 'none', handle: page('console.html') },
    { method: 'GET', pattern: /^\/operator$/, auth: 'none', handle: page('operator.html') },
    { method: 'GET', pattern: /^\/assets\/([a-z0-9-]+\.(?:js|css))$/, auth: 'none', handle: (request, params) => serve(web, request, params[0] ?? '') },
  ];
}

/**
 * One file from the built assets, or 304 when the client holds the same version.
 * @throws {HostError} HTTP_NOT_FOUND when the build has no such file.
 */
function serve(web: WebAssets, request: IncomingMessage, file: string): RawResponse {
  const asset: WebAsset | undefined = web.get(file);
  if (asset === undefined) throw new HostError('HTTP_NOT_FOUND', `no asset named ${JSON.stringify(file)}`);
  const headers = { ...PAGE_HEADERS, etag: asset.etag };
  if (request.headers['if-none-match'] === asset.etag) return new RawResponse(asset.contentType, '', 304, headers);
  return new RawResponse(asset.contentType, asset.body, 200, headers);
}
