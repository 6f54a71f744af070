/**
 * HTTP plumbing: bounded JSON bodies, JSON responses, errors in their wire form, bearer tokens.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HostError, toWireError } from '../errors.ts';

/**
 * Reads a request body up to `maxBytes`.
 * @throws {HostError} HTTP_BODY_TOO_LARGE past the limit (the rest is not read).
 */
export async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > maxBytes) throw new HostError('HTTP_BODY_TOO_LARGE', `body is ${declared} bytes, limit ${maxBytes}`);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of request) {
    size += (part as Buffer).length;
    if (size > maxBytes) throw new HostError('HTTP_BODY_TOO_LARGE', `body is over ${maxBytes} bytes`);
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts);
}

/**
 * Reads a JSON body without parsing it (for a large one parsed elsewhere, off the event loop).
 * @throws {HostError} HTTP_UNSUPPORTED_MEDIA for another content type, HTTP_BODY_TOO_LARGE past the limit.
 */
export async function readJsonBytes(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new HostError('HTTP_UNSUPPORTED_MEDIA', `content-type must be application/json, got ${JSON.stringify(type).slice(0, 60)}`);
  }
  return readBody(request, maxBytes);
}

/**
 * Reads and parses a JSON body.
 * @throws {HostError} HTTP_UNSUPPORTED_MEDIA for another content type, HTTP_BODY_INVALID for bad JSON,
 *   HTTP_BODY_TOO_LARGE past the limit.
 */
export async function readJson(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await readJsonBytes(request, maxBytes);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HostError('HTTP_BODY_INVALID', `body is not valid JSON: ${(error as Error).message.slice(0, 120)}`);
  }
}

/** Sends a JSON response. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** Sends an error in its wire form; unknown errors become INTERNAL and are passed to `onUnknown`. */
export function sendError(response: ServerResponse, error: unknown, onUnknown: (error: unknown) => void): void {
  const { wire, error: known } = toWireError(error, onUnknown);
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendJson(response, known.httpStatus, { error: wire }, errorHeaders(known));
}

/**
 * The response header that names where a tenant moved (`ctx-tenant-host`), for TENANT_MOVED: the
 * router (host/fleet/haproxy.ts) reads it to correct a stale map entry at once.
 */
export const TENANT_HOST_HEADER = 'ctx-tenant-host';

/** Headers an error answer carries besides its body: where a moved tenant went. */
export function errorHeaders(error: HostError): Record<string, string> {
  const host = error.code === 'TENANT_MOVED' ? error.detail?.['host'] : undefined;
  return typeof host === 'string' ? { [TENANT_HOST_HEADER]: host } : {};
}

/**
 * The bearer token of a request.
 * @throws {HostError} AUTH_MISSING_KEY when there is none.
 */
export function bearerToken(request: IncomingMessage): string {
  const header = request.headers['authorization'];
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (match?.[1] === undefined) throw new HostError('AUTH_MISSING_KEY', 'send the key as "Authorization: Bearer <key>"');
  return match[1];
}
