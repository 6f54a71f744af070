/**
 * The WebSocket adapter: the only file that imports `ws`. It authenticates at the HTTP upgrade (an
 * unknown key gets a plain HTTP error and no upgrade), enforces the frame-size limit (ws closes
 * with 1009), and hands each connection to the chat handler as a small {@link ChatSocket}.
 *
 * Every socket it is given has an error listener before anything else happens: Node's HTTP server
 * removes its own listener from a socket it hands to 'upgrade', and an 'error' event without a
 * listener (a client resetting the connection mid-handshake) would otherwise end the process.
 * What authentication acquired is released on every path that does not reach the chat handler:
 * a refused handshake (a bad `Sec-WebSocket-Version`, say) or a socket that closed first.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { HostError, toWireError } from '../errors.ts';

/** What the chat handler sees of a connection. */
export interface ChatSocket {
  send(data: Uint8Array | string): void;
  close(code: number, reason: string): void;
  onMessage(listener: (data: Uint8Array, isBinary: boolean) => void): void;
  onClose(listener: () => void): void;
  /** Bytes queued but not yet written: lets the handler notice a client that does not read. */
  readonly bufferedBytes: number;
}

/** What authenticating an upgrade holds until the connection ends (a lease on the tenant's storage). */
export interface UpgradeAuth {
  /** Gives back what was acquired; called when the handshake fails or the socket closes first. Idempotent. */
  release(): void;
}

/** Sockets handed to 'upgrade': their errors are counted by the listener attached there. */
const upgradeSockets = new WeakSet<Duplex>();

/** Whether `socket` reached the upgrade handler (whose own listener then counts its errors). */
export function isUpgradeSocket(socket: Duplex): boolean {
  return upgradeSockets.has(socket);
}

/** Options for {@link attachWebSocket}. */
export interface AttachOptions<A extends UpgradeAuth> {
  path: string;
  maxFrameBytes: number;
  /** Authenticates the upgrade request; throw a HostError to refuse it before the upgrade. */
  authenticate(request: IncomingMessage, url: URL, socket: Duplex): A;
  /** Takes over a connection and `auth`: from here on the chat handler releases it. */
  onConnection(socket: ChatSocket, auth: A): void;
  onUnknownError(error: unknown): void;
  /** Counts a network error that ended one connection (never thrown, never fatal). */
  onSocketError(stage: 'upgrade' | 'chat', error: Error): void;
}

/** The chat endpoint attached to a server. */
export interface AttachedWebSocket {
  /** Handles one upgrade, as the server's 'upgrade' event does (for connections handed over in-process). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open connections. */
  readonly connections: number;
  /** Closes every connection. */
  close(): Promise<void>;
}

/** Attaches the chat endpoint to an HTTP server's 'upgrade' event. */
export function attachWebSocket<A extends UpgradeAuth>(server: Server, options: AttachOptions<A>): AttachedWebSocket {
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes, perMessageDeflate: false });
  const handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    let stage: 'upgrade' | 'chat' = 'upgrade';
    upgradeSockets.add(socket);
    socket.on('error', (error: Error) => options.onSocketError(stage, error));
    if (socket.destroyed) return;
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== options.path) return refuse(socket, new HostError('HTTP_NOT_FOUND', `no WebSocket endpoint at ${url.pathname}`));
    let auth: A;
    try {
      auth = options.authenticate(request, url, socket);
    } catch (error) {
      return refuse(socket, error, options.onUnknownError);
    }
    // ws answers a bad handshake itself (400) and never calls back, and gives up silently on a
    // socket that is no longer writable: either way the socket closes without a connection.
    let connected = false;
    socket.once('close', () => {
      if (!connected) auth.release();
    });
    wss.handleUpgrade(request, socket, head, (ws) => {
      connected = true;
      stage = 'chat';
      options.onConnection(wrap(ws), auth);
    });
  };
  server.on('upgrade', handleUpgrade);
  return {
    handleUpgrade,
    get connections() {
      return wss.clients.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

function refuse(socket: Duplex, error: unknown, onUnknown?: (error: unknown) => void): void {
  const { wire, error: known } = toWireError(error, onUnknown);
  const body = JSON.stringify({ error: wire });
  const status = known.httpStatus;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  // A client that never closes its side would otherwise hold the refused socket open.
  setTimeout(() => socket.destroy(), REFUSED_SOCKET_LINGER_MS).unref();
}

/** How long a refused upgrade's socket may stay open for its answer to be read. */
const REFUSED_SOCKET_LINGER_MS = 5_000;

function wrap(ws: WebSocket): ChatSocket {
  // ws reports protocol violations (an oversized frame, say) as 'error' and then closes with the
  // right code; without a listener the error would be thrown and take the process down. Socket
  // errors (resets) are counted by the socket's own listener (see attachWebSocket).
  ws.on('error', () => undefined);
  return {
    send: (data) => {
      if (ws.readyState === ws.OPEN) ws.send(data);
    },
    close: (code, reason) => ws.close(code, reason),
    onMessage: (listener) => ws.on('message', (data: RawData, isBinary: boolean) => listener(toBytes(data), isBinary)),
    onClose: (listener) => ws.on('close', listener),
    get bufferedBytes() {
      return ws.bufferedAmount;
    },
  };
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
