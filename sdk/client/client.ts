/**
 * The chat client library: connects to `/v1/chat`, speaks msgpack frames, and turns each ask into a
 * stream of tokens plus a final result. Works in browsers (global WebSocket) and in Node (pass the
 * `ws` package's WebSocket; see node.ts).
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** A source of an answer. */
export interface Source {
  docId: string;
  chunkId: string;
  score: number;
  title: string;
}

/** The final result of an ask. */
export interface AskResult {
  id: string;
  answer: string;
  sources: Source[];
  cache: 'hit' | 'miss';
  timings: Record<string, number>;
}

/** An error the host reported, with its stable protocol code. */
export class ChatError extends Error {
  readonly code: string;
  readonly askId: string | undefined;
  constructor(code: string, message: string, askId?: string) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
    this.askId = askId;
  }
}

/** One ask in progress: iterate `tokens` while it streams; await `result` for the end. */
export interface AskHandle {
  readonly id: string;
  readonly tokens: AsyncIterable<string>;
  readonly result: Promise<AskResult>;
}

/** What the client needs of a WebSocket implementation (the browser's, or the `ws` package's). */
export interface WebSocketLike {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: { data?: unknown; code?: number; reason?: string }) => void): void;
}

/** Options for {@link connect}. */
export interface ConnectOptions {
  /** Host base URL, e.g. `http://127.0.0.1:8787` (ws/wss is derived). */
  url: string;
  /** A tenant API key (Node only: browsers cannot send headers on WebSocket; use a ticket). */
  apiKey?: string;
  /** A single-use ticket from `POST /v1/tickets`. */
  ticket?: string;
  /** Creates the socket; defaults to the global WebSocket. */
  createSocket?: (url: string, headers: Record<string, string>) => WebSocketLike;
}

/** A connected chat session. */
export interface ChatClient {
  /** The session id and the plugin hashes from the `ready` frame. */
  readonly session: string;
  readonly plugins: { retrieval: string; prompt: string };
  ask(text: string): AskHandle;
  feedback(id: string, rating: 1 | -1, comment?: string): void;
  close(): void;
  /** Resolves when the connection closes, with the close code. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

interface Pending {
  push(token: string): void;
  finish(result: AskResult): void;
  fail(error: ChatError): void;
}

/**
 * Connects and waits for the session to be ready.
 * @throws {ChatError} when the connection is refused (401 and the like) or the host sends an error first.
 */
export function connect(options: ConnectOptions): Promise<ChatClient> {
  const wsUrl = new URL('/v1/chat', options.url.replace(/^http/, 'ws'));
  if (options.ticket !== undefined) wsUrl.searchParams.set('ticket', options.ticket);
  const headers: Record<string, string> = options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` };
  const create = options.createSocket ?? ((url: string) => new (globalThis as unknown as { WebSocket: new (url: string) => WebSocketLike }).WebSocket(url));
  const socket = create(wsUrl.toString(), headers);
  socket.binaryType = 'arraybuffer';
  return new Promise<ChatClient>((resolve, reject) => {
    const pending = new Map<string, Pending>();
    let ready = false;
    let counter = 0;
    let resolveClosed: (value: { code: number; reason: string }) => void = () => undefined;
    const closed = new Promise<{ code: number; reason: string }>((done) => (resolveClosed = done));
    const send = (frame: unknown): void => socket.send(packr.pack(frame));
    socket.addEventListener('message', (event) => {
      const frame = decode(event.data);
      if (frame === undefined) return;
      if (frame['type'] === 'ready') {
        ready = true;
        resolve(makeClient(frame, send, pending, () => `a${++counter}`, socket, closed));
        return;
      }
      dispatch(frame, pending, (error) => (ready ? undefined : reject(error)));
    });
    socket.addEventListener('error', () => {
      if (!ready) reject(new ChatError('CONNECT_FAILED', `could not connect to ${wsUrl.origin}${wsUrl.pathname} (refused, or the key/ticket was not accepted)`));
    });
    socket.addEventListener('close', (event) => {
      const error = new ChatError('CONNECTION_CLOSED', `connection closed (${event.code ?? 0} ${event.reason ?? ''})`);
      for (const entry of pending.values()) entry.fail(error);
      pending.clear();
      if (!ready) reject(error);
      resolveClosed({ code: event.code ?? 0, reason: event.reason ?? '' });
    });
  });
}

function decode(data: unknown): Record<string, unknown> | undefined {
  try {
    if (typeof data === 'string') return JSON.parse(data) as Record<string, unknown>;
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array);
    return packr.unpack(bytes) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function dispatch(frame: Record<string, unknown>, pending: Map<string, Pending>, onOrphanError: (error: ChatError) => void): void {
  const id = typeof frame['id'] === 'string' ? frame['id'] : undefined;
  const entry = id === undefined ? undefined : pending.get(id);
  if (frame['type'] === 'token' && entry !== undefined) entry.push(String(frame['text']));
  else if (frame['type'] === 'done' && entry !== undefined && id !== undefined) {
    pending.delete(id);
    entry.finish(frame as unknown as AskResult);
  } else if (frame['type'] === 'error') {
    const error = new ChatError(String(frame['code']), String(frame['message']), id);
    if (entry !== undefined && id !== undefined) {
      pending.delete(id);
      entry.fail(error);
    } else onOrphanError(error);
  }
}

function makeClient(
  ready: Record<string, unknown>,
  send: (frame: unknown) => void,
  pending: Map<string, Pending>,
  nextId: () => string,
  socket: WebSocketLike,
  closed: Promise<{ code: number; reason: string }>,
): ChatClient {
  return {
    session: String(ready['session']),
    plugins: ready['plugins'] as { retrieval: string; prompt: string },
    closed,
    ask: (text) => {
      const id = nextId();
      const handle = createAskHandle(id);
      pending.set(id, handle.pending);
      send({ type: 'ask', id, text });
      return handle.handle;
    },
    feedback: (id, rating, comment) => send({ type: 'feedback', id, rating, ...(comment === undefined ? {} : { comment }) }),
    close: () => socket.close(1000, 'client closed'),
  };
}

function createAskHandle(id: string): { handle: AskHandle; pending: Pending } {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  let failure: ChatError | undefined;
  let settle: { resolve: (result: AskResult) => void; reject: (error: ChatError) => void } | undefined;
  const result = new Promise<AskResult>((resolve, reject) => (settle = { resolve, reject }));
  // An ask whose tokens nobody iterates must not raise an unhandled rejection through `result`.
  result.catch(() => undefined);
  const pending: Pending = {
    push: (token) => {
      queue.push(token);
      wake?.();
    },
    finish: (value) => {
      finished = true;
      settle?.resolve(value);
      wake?.();
    },
    fail: (error) => {
      finished = true;
      failure = error;
      settle?.reject(error);
      wake?.();
    },
  };
  const tokens: AsyncIterable<string> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) yield next;
        else if (finished) {
          if (failure !== undefined) throw failure;
          return;
        } else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
  return { handle: { id, tokens, result }, pending };
}
