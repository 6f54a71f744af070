/**
 * The HTTP router: matches a request to one of the routes it was built with, authenticates it as
 * the route requires (a tenant route mints a TenantScope from the request's key and releases it
 * once the response is sent; an operator route checks the operator key first), runs the handler
 * and sends its result. Errors propagate to the caller, which sends their wire form.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HostError } from '../errors.ts';
import type { OperatorCredential, TenantScope } from '../tenants/scope.ts';
import { bearerToken, sendJson } from './http.ts';
import { RawResponse, type Route } from './route-types.ts';

/** How the router turns a bearer token into a credential. */
export interface RouterAuthentication {
  /** @throws {HostError} AUTH_* when the key is not a live tenant key. */
  tenant(apiKey: string): TenantScope;
  /** Told when a tenant request has ended and its scope was released (requests in progress are counted with it). */
  tenantDone?(scope: TenantScope): void;
  /** @throws {HostError} AUTH_INVALID_KEY when the key is not the operator's. */
  operator(key: string): OperatorCredential;
}

/** Handles one request; rejects with the error to send. */
export type RequestHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

/**
 * Builds the router over `routes` (matched in order).
 * @throws {HostError} (from the returned handler) HTTP_NOT_FOUND, HTTP_PATH_INVALID, AUTH_* and whatever a handler throws.
 */
export function createRouter(routes: readonly Route[], authenticate: RouterAuthentication): RequestHandler {
  return async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const candidates = routes.filter((route) => route.pattern.test(url.pathname));
    // HEAD is GET without a body (Node's response drops the body of a HEAD by itself).
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const route = candidates.find((candidate) => candidate.method === method);
    if (route === undefined) {
      const allowed = candidates.map((candidate) => candidate.method).join(', ');
      throw new HostError('HTTP_NOT_FOUND', allowed === '' ? `no route for ${url.pathname}` : `${request.method} is not allowed on ${url.pathname}; use ${allowed}`);
    }
    const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map(decodePathSegment);
    const status = route.status ?? 200;
    if (route.auth === 'none') return send(response, status, await route.handle(request, params));
    if (route.auth === 'operator') {
      const operator = authenticate.operator(bearerToken(request));
      return send(response, status, await route.handle(operator, request, params));
    }
    const scope = authenticate.tenant(bearerToken(request));
    try {
      const body = await route.handle(scope, request, params);
      await send(response, status, body);
    } finally {
      scope.release();
      authenticate.tenantDone?.(scope);
    }
  };
}

/**
 * Decodes one percent-encoded path parameter. A malformed escape is the client's mistake, not a
 * host fault: it is refused before any key is checked, and never reaches the log as one.
 * @throws {HostError} HTTP_PATH_INVALID naming the segment (cut short).
 */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HostError('HTTP_PATH_INVALID', `path segment ${JSON.stringify(segment.slice(0, 60))} is not valid percent-encoded UTF-8`);
  }
}

async function send(response: ServerResponse, status: number, body: unknown): Promise<void> {
  if (!(body instanceof RawResponse)) return sendJson(response, status, body);
  response.writeHead(body.status, { ...body.headers, 'content-type': body.contentType });
  if (typeof body.body === 'string' || Buffer.isBuffer(body.body)) {
    response.end(body.body);
    return;
  }
  // Streamed bodies (exports) are written as produced, with back-pressure. A client that hangs up
  // never drains: stop there (leaving the loop ends the producer), so the request's scope is released.
  for await (const part of body.body) {
    if (!response.write(part)) await new Promise((resolve) => response.once('drain', resolve).once('close', resolve));
    if (response.destroyed) return;
  }
  response.end();
}
