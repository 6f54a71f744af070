/**
 * The shapes every route area shares: a route, its handler kinds and a non-JSON response. A leaf
 * module: it imports nothing of the router or of the area modules, so no import cycle can form
 * between them (each area builds its own `Route[]` from the capabilities it is handed).
 */
import type { IncomingMessage } from 'node:http';
import type { OperatorCredential, TenantScope } from '../tenants/scope.ts';

/** What a handler returns: a JSON body, or a {@link RawResponse}. */
export type HandlerResult = Promise<unknown> | unknown;

/** A handler of a tenant route: gets the request's TenantScope (released after the response). */
export type TenantHandler = (scope: TenantScope, request: IncomingMessage, params: string[]) => HandlerResult;
/** A handler of a route without a key (health, pages). */
export type PublicHandler = (request: IncomingMessage, params: string[]) => HandlerResult;
/** A handler of an operator route. */
export type OperatorHandler = (operator: OperatorCredential, request: IncomingMessage, params: string[]) => HandlerResult;

interface RouteBase {
  method: string;
  pattern: RegExp;
  /** The success status (default 200). */
  status?: number;
}

/** One route. A handler returns the JSON body; returning a {@link RawResponse} sends other content. */
export type Route =
  | (RouteBase & { auth: 'none'; handle: PublicHandler })
  | (RouteBase & { auth: 'tenant'; handle: TenantHandler })
  | (RouteBase & { auth: 'operator'; handle: OperatorHandler });

/** A non-JSON response from a handler (JSONL exports, pages, metrics text); `headers` are sent besides content-type. */
export class RawResponse {
  constructor(
    readonly contentType: string,
    readonly body: string | Buffer | AsyncIterable<string | Buffer>,
    readonly status = 200,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}
