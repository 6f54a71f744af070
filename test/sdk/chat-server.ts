/**
 * A scripted chat server for the client library's tests: a real WebSocket server on 127.0.0.1
 * port 0 that speaks the host's protocol (ready, token/done, pong, error frames) and lets a test
 * drop connections, refuse upgrades, stop answering pings or close with a code — the failures a
 * real host cannot be made to produce on cue.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Packr } from 'msgpackr';
import { WebSocketServer, type WebSocket } from 'ws';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** How the server behaves; tests change it between steps. */
export interface ServerScript {
  /**
   * Refuse upgrades with this HTTP status and error body (`{error:{code,message}}`): all of them, or
   * the next `times` (then the server accepts again by itself, however fast the client retries).
   */
  refuse?: { status: number; code: string; message: string; times?: number };
  /** Answer pings (default true). */
  pong?: boolean;
  /** Answer asks with `answer` (default), or hold them unanswered. */
  holdAsks?: boolean;
}

/** A running scripted server. */
export interface ChatServer {
  url: string;
  port: number;
  script: ServerScript;
  /** Epoch ms of every upgrade attempt (accepted or refused), in order. */
  attempts: number[];
  /** Sessions handed out, in order (`s1`, `s2`, …). */
  sessions: string[];
  /** Frames received, decoded, with the session they came on. */
  received: { session: string; frame: Record<string, unknown> }[];
  /** Destroys every open socket without a close frame (the client sees 1006). */
  dropAll(): void;
  /** Sends an error frame without an id, then closes with `code` (as the host does for hard limits). */
  closeAll(code: number, errorCode: string, message: string): void;
  close(): Promise<void>;
}

/**
 * Starts the server.
 *
 * @example
 * ```ts
 * const server = await startChatServer();
 * server.dropAll();
 * await server.close();
 * ```
 */
export async function startChatServer(script: ServerScript = {}): Promise<ChatServer> {
  const http = createServer((_request, response) => response.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<WebSocket>();
  const state: ChatServer = {
    url: '',
    port: 0,
    script,
    attempts: [],
    sessions: [],
    received: [],
    dropAll: () => {
      for (const socket of sockets) socket.terminate();
    },
    closeAll: (code, errorCode, message) => {
      for (const socket of sockets) {
        socket.send(packr.pack({ type: 'error', code: errorCode, message }));
        socket.close(code, errorCode);
      }
    },
    close: () => closeServer(http, wss, sockets),
  };
  http.on('upgrade', (request: IncomingMessage, duplex: Duplex, head: Buffer) => {
    state.attempts.push(Date.now());
    const refuse = state.script.refuse;
    if (refuse !== undefined) {
      if (refuse.times !== undefined && --refuse.times <= 0) delete state.script.refuse;
      const body = JSON.stringify({ error: { code: refuse.code, message: refuse.message } });
      duplex.end(`HTTP/1.1 ${refuse.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(request, duplex, head, (socket) => serve(state, sockets, socket));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  state.port = (http.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}

function serve(state: ChatServer, sockets: Set<WebSocket>, socket: WebSocket): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  const session = `s${state.sessions.length + 1}`;
  state.sessions.push(session);
  const send = (frame: Record<string, unknown>): void => socket.send(packr.pack(frame));
  socket.on('message', (data: Buffer) => {
    const frame = packr.unpack(data) as Record<string, unknown>;
    state.received.push({ session, frame });
    if (frame['type'] === 'ping' && state.script.pong !== false) send({ type: 'pong' });
    if (frame['type'] === 'ask' && state.script.holdAsks !== true) {
      const id = String(frame['id']);
      send({ type: 'token', id, text: `answer to ${String(frame['text'])}` });
      send({ type: 'done', id, answer: `answer to ${String(frame['text'])}`, sources: [], cache: 'miss', timings: { totalMs: 1 } });
    }
  });
  send({ type: 'ready', session, tenant: 't_scripted', plugins: { retrieval: 'r', prompt: 'p' } });
}

async function closeServer(http: Server, wss: WebSocketServer, sockets: Set<WebSocket>): Promise<void> {
  for (const socket of sockets) socket.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
}
