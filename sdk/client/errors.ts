/**
 * The client library's one error type. A {@link ChatError} carries either a code the host sent
 * (every code of host/errors.ts, on an `error` frame or an HTTP error body) or one of the few codes
 * only a client can observe ({@link CLIENT_ERROR_CATALOG}: the connection dropped, the client gave
 * up reconnecting, …). sdk/README.md documents the client codes; a test keeps the two in step.
 */
import type { ErrorCode as HostErrorCode } from '../../host/errors.ts';

/** How one client-side code behaves. */
export interface ClientErrorSpec {
  /** Whether trying again later can succeed. */
  readonly retryable: boolean;
  /** One sentence for sdk/README.md's table. */
  readonly doc: string;
}

/** The codes only the client raises. */
export const CLIENT_ERROR_CATALOG = {
  CLIENT_CONNECT_FAILED: {
    retryable: true,
    doc: 'The host could not be reached, or refused the WebSocket without saying why (a browser cannot read the HTTP status).',
  },
  CLIENT_CONNECTION_LOST: { retryable: true, doc: 'The connection dropped while this ask or feedback was in flight; the client reconnects by itself, send it again.' },
  CLIENT_RECONNECT_FAILED: { retryable: false, doc: 'Every reconnect attempt failed, or none was possible (a single-use ticket without getTicket); the client is closed.' },
  CLIENT_CLOSED: { retryable: false, doc: 'The client is closed (close() was called, or the host ended the connection for good).' },
  CLIENT_STALE_ASK: { retryable: false, doc: 'Feedback named an ask answered before the client reconnected; the host keeps feedback per session.' },
  CLIENT_BAD_RESPONSE: { retryable: false, doc: 'The host answered with something the client cannot read (not the protocol, or not the expected JSON).' },
} as const satisfies Record<string, ClientErrorSpec>;

/** A code only the client raises. */
export type ClientErrorCode = keyof typeof CLIENT_ERROR_CATALOG;

/** Every code a ChatError can carry: the host's catalog and the client's. */
export type ChatErrorCode = HostErrorCode | ClientErrorCode;

/** Host codes after which the same request may succeed a little later. */
const RETRYABLE_HOST_CODES: ReadonlySet<string> = new Set([
  'PLUGIN_BUSY',
  'PROTOCOL_TOO_MANY_IN_FLIGHT',
  'TENANT_ASK_RATE_LIMIT',
  'TENANT_SESSION_LIMIT',
  'STORAGE_ENV_LIMIT',
  'MODEL_TIMEOUT',
  // The tenant's cell is restarting (its standby takes over in milliseconds), or busy moving it.
  'CELL_UNAVAILABLE',
  // A fleet moves the tenant between hosts: the router sends the retry to the host that serves it.
  'TENANT_MOVED',
  'TENANT_FROZEN',
]);

/** Extra facts about a ChatError. */
export interface ChatErrorOptions {
  /** The ask (or feedback) the error is about. */
  askId?: string;
  /** The HTTP status, when the error came from an HTTP response or a refused upgrade. */
  status?: number;
}

/**
 * An error the host reported, with its stable protocol code, or a client-side failure with a
 * `CLIENT_*` code.
 *
 * @example
 * ```ts
 * try { await client.ask('Where is my order?').result; }
 * catch (error) { if (error instanceof ChatError && error.retryable) setTimeout(retry, 1000); }
 * ```
 */
export class ChatError extends Error {
  /** The stable code, e.g. `TENANT_ASK_RATE_LIMIT` or `CLIENT_CONNECTION_LOST`. */
  readonly code: ChatErrorCode;
  readonly askId: string | undefined;
  readonly status: number | undefined;

  constructor(code: ChatErrorCode, message: string, options: ChatErrorOptions = {}) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
    this.askId = options.askId;
    this.status = options.status;
  }

  /** Whether trying the same thing again later can succeed. */
  get retryable(): boolean {
    if (this.code in CLIENT_ERROR_CATALOG) return CLIENT_ERROR_CATALOG[this.code as ClientErrorCode].retryable;
    return RETRYABLE_HOST_CODES.has(this.code);
  }
}

/**
 * Reads a host error from an HTTP response body (`{"error": {code, message}}`), or describes the
 * status when the body is not one.
 *
 * @example
 * ```ts
 * if (!response.ok) throw errorFromBody(response.status, await response.text());
 * ```
 */
export function errorFromBody(status: number, body: string): ChatError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = parsed.error ?? {};
    if (typeof code === 'string' && typeof message === 'string') return new ChatError(code as ChatErrorCode, message, { status });
  } catch {
    // Not JSON: fall through to the status.
  }
  return new ChatError('CLIENT_BAD_RESPONSE', `the host answered HTTP ${status} without an error body`, { status });
}
