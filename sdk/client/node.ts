/**
 * Node entry of the client library: the same client with the `ws` package as its WebSocket (Node
 * 20 has no global one), so an API key can go in the Authorization header, and a refused upgrade
 * reports the host's own error (AUTH_INVALID_KEY, …) with its HTTP status. Also the HTTP calls a
 * chat app's backend makes: a ticket for a browser.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { connect as connectWith, type ChatClient, type ConnectOptions, type SocketEvent, type WebSocketLike } from './client.ts';
import { hostRequest } from './http.ts';

export * from './client.ts';
export { hostRequest, type HostRequestOptions } from './http.ts';

/** Bytes of a refusal body read for its error code: the host's are a few hundred. */
const REFUSAL_BODY_BYTES_MAX = 16 * 1024;

/**
 * Connects from Node. Options as {@link connectWith}; the socket is the `ws` package's.
 *
 * @example
 * ```ts
 * const client = await connect({ url: 'http://127.0.0.1:8787', apiKey: process.env.CTX_API_KEY });
 * ```
 * @throws {ChatError} AUTH_INVALID_KEY (status 401) for a refused key, CLIENT_CONNECT_FAILED when no host answers.
 */
export function connect(options: Omit<ConnectOptions, 'createSocket'>): Promise<ChatClient> {
  return connectWith({ ...options, createSocket: nodeSocket });
}

/**
 * Asks the host for a single-use browser ticket (`POST /v1/tickets`); hand it to the browser,
 * which connects with `?ticket=`. Never give a browser the API key itself.
 *
 * @example
 * ```ts
 * app.get('/chat-ticket', async (req, res) => res.json(await requestTicket({ url, apiKey, user: req.user.id })));
 * ```
 * @throws {ChatError} AUTH_INVALID_KEY, HTTP_BODY_INVALID (a bad user id), CLIENT_CONNECT_FAILED.
 */
export async function requestTicket(options: { url: string; apiKey: string; user?: string }): Promise<{ ticket: string; expiresAt: number }> {
  const body = options.user === undefined ? undefined : JSON.stringify({ user: options.user });
  return (await hostRequest(options.url, '/v1/tickets', { method: 'POST', apiKey: options.apiKey, ...(body === undefined ? {} : { body }) })) as { ticket: string; expiresAt: number };
}

/** A `ws` socket behind the WebSocketLike interface, reporting a refused upgrade with the host's error. */
function nodeSocket(url: string, headers: Record<string, string>): WebSocketLike {
  const ws = new WebSocket(url, { headers });
  const errorListeners: ((event: SocketEvent) => void)[] = [];
  ws.on('unexpected-response', (_request, response: IncomingMessage) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      if (body.length < REFUSAL_BODY_BYTES_MAX) body += chunk;
    });
    response.on('end', () => {
      const event: SocketEvent = { status: response.statusCode ?? 0 };
      const refusal = parseRefusal(body);
      if (refusal !== undefined) event.refusal = refusal;
      for (const listener of errorListeners) listener(event);
      // Handling the response ourselves means ending the handshake ourselves: 'close' follows.
      ws.terminate();
    });
  });
  return {
    get binaryType() {
      return ws.binaryType;
    },
    set binaryType(value: string) {
      ws.binaryType = value as WebSocket['binaryType'];
    },
    get readyState() {
      return ws.readyState;
    },
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
    addEventListener: (type, listener) => {
      if (type === 'error') errorListeners.push(listener);
      ws.addEventListener(type as 'message', listener as unknown as (event: WebSocket.MessageEvent) => void);
    },
  };
}

function parseRefusal(body: string): { code: string; message: string } | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = parsed.error ?? {};
    return typeof code === 'string' && typeof message === 'string' ? { code, message } : undefined;
  } catch {
    return undefined;
  }
}
