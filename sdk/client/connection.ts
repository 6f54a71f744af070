/**
 * One WebSocket connection to `/v1/chat`, up to its `ready` frame. The client (client.ts) makes
 * one of these per (re)connect; a connection never reconnects itself. Before `ready` every failure
 * rejects the open with a ChatError: the host's own error frame when it sent one (a session limit,
 * a plugin that would not load), the HTTP refusal when the socket implementation can see it (the
 * Node adapter can; a browser cannot), else CLIENT_CONNECT_FAILED.
 */
import type { ClientFrame, ReadyFrame } from '../../host/protocol.ts';
import { decodeFrame, encodeFrame } from './codec.ts';
import { ChatError, type ChatErrorCode } from './errors.ts';

/** What a socket event may carry: the standard fields, plus a refusal the Node adapter read. */
export interface SocketEvent {
  data?: unknown;
  code?: number;
  reason?: string;
  /** HTTP status of a refused upgrade (Node adapter only). */
  status?: number;
  /** The host's error body of a refused upgrade (Node adapter only). */
  refusal?: { code: string; message: string };
}

/** What the client needs of a WebSocket implementation (the browser's, or the `ws` package's). */
export interface WebSocketLike {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: SocketEvent) => void): void;
}

/** Creates a socket for a URL; `headers` can only be honoured outside browsers. */
export type SocketFactory = (url: string, headers: Record<string, string>) => WebSocketLike;

/** The `ready` frame's content. */
export type ReadyInfo = Omit<ReadyFrame, 'type'>;

/** What a connection reports after `ready`. */
export interface ConnectionEvents {
  onFrame(frame: Record<string, unknown>): void;
  /** The connection ended; `lastError` is the host's last error frame without an ask id, if any. */
  onClose(code: number, reason: string, lastError: ChatError | undefined): void;
}

/** An open connection. */
export interface Connection {
  readonly ready: ReadyInfo;
  send(frame: ClientFrame): void;
  /** Starts a normal close; `onClose` reports its end. */
  close(code: number, reason: string): void;
  /** Closes the socket and stops reporting its events (the client has moved on). */
  abandon(code: number, reason: string): void;
}

/**
 * Opens a socket to `url` and resolves once the host's `ready` frame arrived.
 *
 * @example
 * ```ts
 * const connection = await openConnection('ws://127.0.0.1:8787/v1/chat', {}, factory, { onFrame, onClose });
 * ```
 * @throws {ChatError} the host's code (e.g. AUTH_INVALID_KEY, TENANT_SESSION_LIMIT) or CLIENT_CONNECT_FAILED.
 */
export function openConnection(url: string, headers: Record<string, string>, createSocket: SocketFactory, events: ConnectionEvents): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = createSocket(url, headers);
    } catch (error: unknown) {
      reject(new ChatError('CLIENT_CONNECT_FAILED', `cannot open a WebSocket to ${url}: ${error instanceof Error ? error.message : String(error)}`));
      return;
    }
    socket.binaryType = 'arraybuffer';
    let ready = false;
    let abandoned = false;
    let failure: ChatError | undefined;
    socket.addEventListener('message', (event) => {
      if (abandoned) return;
      const frame = decodeFrame(event.data);
      if (frame === undefined) return;
      if (!ready && frame['type'] === 'ready') {
        ready = true;
        resolve(openedConnection(socket, readyInfo(frame), () => (abandoned = true)));
      } else if (!ready && frame['type'] === 'error') failure ??= errorFromFrame(frame);
      else if (ready) {
        if (frame['type'] === 'error' && frame['id'] === undefined) failure = errorFromFrame(frame);
        events.onFrame(frame);
      }
    });
    socket.addEventListener('error', (event) => {
      if (ready || abandoned) return;
      if (event.refusal !== undefined || event.status !== undefined) failure ??= refusalError(url, event);
    });
    socket.addEventListener('close', (event) => {
      if (abandoned) return;
      if (ready) events.onClose(event.code ?? 1006, event.reason ?? '', failure);
      else reject(failure ?? new ChatError('CLIENT_CONNECT_FAILED', `could not connect to ${url} (${describeClose(event)}): the host is down, or refused the key or ticket`));
    });
  });
}

function openedConnection(socket: WebSocketLike, ready: ReadyInfo, markAbandoned: () => void): Connection {
  return {
    ready,
    send: (frame) => socket.send(encodeFrame(frame)),
    close: (code, reason) => socket.close(code, reason),
    abandon: (code, reason) => {
      markAbandoned();
      try {
        socket.close(code, reason);
      } catch {
        // Already closing: nothing more to do, its events are ignored from now on.
      }
    },
  };
}

function readyInfo(frame: Record<string, unknown>): ReadyInfo {
  const plugins = (frame['plugins'] ?? {}) as { retrieval?: unknown; prompt?: unknown };
  return {
    session: String(frame['session']),
    tenant: String(frame['tenant'] ?? ''),
    plugins: { retrieval: String(plugins.retrieval ?? ''), prompt: String(plugins.prompt ?? '') },
  };
}

/**
 * The ChatError of a host `error` frame.
 *
 * @example
 * ```ts
 * if (frame['type'] === 'error') pending.fail(errorFromFrame(frame));
 * ```
 */
export function errorFromFrame(frame: Record<string, unknown>): ChatError {
  const id = typeof frame['id'] === 'string' ? frame['id'] : undefined;
  return new ChatError(String(frame['code']) as ChatErrorCode, String(frame['message']), id === undefined ? {} : { askId: id });
}

function refusalError(url: string, event: SocketEvent): ChatError {
  const status = event.status === undefined ? {} : { status: event.status };
  if (event.refusal !== undefined) return new ChatError(event.refusal.code as ChatErrorCode, event.refusal.message, status);
  return new ChatError('CLIENT_CONNECT_FAILED', `the host refused the WebSocket at ${url} with HTTP ${event.status}`, status);
}

function describeClose(event: SocketEvent): string {
  const reason = event.reason === undefined || event.reason === '' ? '' : ` ${event.reason}`;
  return `close ${event.code ?? 1006}${reason}`;
}
