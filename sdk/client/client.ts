/**
 * The chat client library: connects to `/v1/chat`, speaks msgpack frames, turns each ask into a
 * stream of tokens plus a final result, and keeps the connection up — a dropped connection is
 * re-established with exponential backoff and jitter (backoff.ts), a silent one is found by a
 * heartbeat. Works in browsers (global WebSocket, a ticket per connection) and in Node (node.ts
 * supplies the `ws` package, so an API key can go in a header).
 *
 * A reconnect opens a new host session: the host keeps chat history and plugin state per session,
 * so asks in flight at the drop fail with CLIENT_CONNECTION_LOST (send them again), asks made while
 * reconnecting wait and go out on the new session, and feedback can only name answers of the
 * current session.
 */
import { createAskStream, type AskHandle, type AskResult, type AskSink } from './ask-stream.ts';
import { backoffDelayMs, type BackoffOptions } from './backoff.ts';
import { errorFromFrame, openConnection, type Connection, type ConnectionEvents, type ReadyInfo, type SocketFactory, type WebSocketLike } from './connection.ts';
import { ChatError } from './errors.ts';

export { CLIENT_ERROR_CATALOG, ChatError, type ChatErrorCode, type ClientErrorCode } from './errors.ts';
export type { AskHandle, AskResult, Source } from './ask-stream.ts';
export type { ReadyInfo, SocketEvent, SocketFactory, WebSocketLike } from './connection.ts';
export { backoffDelayMs, type BackoffOptions } from './backoff.ts';

/** When and how often to reconnect after a drop. */
export interface ReconnectOptions extends BackoffOptions {
  /** Attempts after a drop before the client gives up and closes (default 10, about 2.5 minutes). */
  attemptsMax?: number;
}

/** How a silent connection is found: a `ping` every `intervalMs`, a `pong` due within `timeoutMs`. */
export interface HeartbeatOptions {
  /** Default 25,000 ms: under common proxy idle timeouts (30–60 s). */
  intervalMs?: number;
  /** Default 10,000 ms. */
  timeoutMs?: number;
}

/** What the client reports through `onStatus`. */
export type ClientStatus =
  | { state: 'ready'; session: string; reconnected: boolean }
  | { state: 'reconnecting'; attempt: number; delayMs: number; error: ChatError }
  | { state: 'closed'; code: number; reason: string; error: ChatError | undefined };

/** Options for {@link connect}. */
export interface ConnectOptions {
  /** Host base URL, e.g. `http://127.0.0.1:8787` (ws/wss is derived). */
  url: string;
  /** A tenant API key (Node only: browsers cannot send headers on WebSocket; use tickets). */
  apiKey?: string;
  /** A single-use ticket from `POST /v1/tickets`: enough to connect once, not to reconnect. */
  ticket?: string;
  /** Fetches a fresh ticket (from your backend) for every connection, reconnects included. */
  getTicket?: () => Promise<string>;
  /** Reconnect settings, or `false` to end the client at the first drop. */
  reconnect?: ReconnectOptions | false;
  /** Heartbeat settings, or `false` for none. */
  heartbeat?: HeartbeatOptions | false;
  /** Called on every state change (ready, reconnecting, closed). */
  onStatus?: (status: ClientStatus) => void;
  /** Creates the socket; defaults to the global WebSocket. */
  createSocket?: SocketFactory;
}

/** How the client ended. */
export interface ClosedInfo {
  code: number;
  reason: string;
  /** Why, when it was not `close()`: the host's error, or CLIENT_RECONNECT_FAILED. */
  error?: ChatError;
}

/** A connected chat client. */
export interface ChatClient {
  /** The current session's id (it changes on a reconnect). */
  readonly session: string;
  /** The tenant the key or ticket belongs to. */
  readonly tenant: string;
  /** SHA-256 of the modules the current session runs. */
  readonly plugins: { retrieval: string; prompt: string };
  readonly state: 'ready' | 'reconnecting' | 'closed';
  /** Asks a question; iterate `tokens`, await `result`. Never throws: failures reject `result`. */
  ask(text: string): AskHandle;
  /**
   * Rates an answer of this session; resolves once the host accepted it.
   * @throws {ChatError} (as a rejection) the host's PROTOCOL_BAD_FRAME, CLIENT_STALE_ASK, CLIENT_CONNECTION_LOST, CLIENT_CLOSED.
   */
  feedback(id: string, rating: 1 | -1, comment?: string): Promise<void>;
  /** Closes the connection for good. Idempotent. */
  close(): void;
  /** Resolves when the client has closed for good: after `close()`, a final refusal, or giving up. */
  readonly closed: Promise<ClosedInfo>;
}

/** Attempts after a drop by default. */
const RECONNECT_ATTEMPTS_DEFAULT = 10;
const HEARTBEAT_DEFAULTS = { intervalMs: 25_000, timeoutMs: 10_000 } as const;
/** Asks that may wait for a reconnect: a client offline for long should not pile up work. */
const QUEUED_ASKS_MAX = 32;
/** Answers remembered for feedback: the host itself keeps a session's last eight. */
const ANSWERS_REMEMBERED_MAX = 256;
/**
 * Close codes after which reconnecting can help: going away (1001), abnormal or no status (1006,
 * 1005), server error or try again later (1011–1014), and our own heartbeat timeout (4000). A 1008
 * or 1009 means the host refused this client's behaviour; reconnecting would repeat it.
 */
const RECONNECT_CLOSE_CODES: ReadonlySet<number> = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014, 4000]);

/** A `ping` in flight: a heartbeat, or the barrier behind a feedback frame. */
type PingWaiter = { kind: 'heartbeat' } | { kind: 'feedback'; id: string; settled: boolean; resolve: () => void; reject: (error: ChatError) => void };

/**
 * Connects and waits for the session to be ready. The first connection is tried once: a wrong
 * key or URL fails here rather than after minutes of retries.
 *
 * @example
 * ```ts
 * const client = await connect({ url: 'http://127.0.0.1:8787', getTicket: () => fetch('/ticket').then((r) => r.text()) });
 * const ask = client.ask('How much does express delivery cost?');
 * for await (const token of ask.tokens) output.append(token);
 * const { sources } = await ask.result;
 * ```
 * @throws {ChatError} AUTH_INVALID_KEY (Node), CLIENT_CONNECT_FAILED, or the host's error (TENANT_SESSION_LIMIT, …).
 */
export async function connect(options: ConnectOptions): Promise<ChatClient> {
  const client = new ReconnectingClient(options);
  await client.start();
  return client;
}

class ReconnectingClient implements ChatClient {
  readonly #options: ConnectOptions;
  readonly #createSocket: SocketFactory;
  #connection: Connection | undefined;
  #ready: ReadyInfo = { session: '', tenant: '', plugins: { retrieval: '', prompt: '' } };
  #state: 'connecting' | 'ready' | 'reconnecting' | 'closed' = 'connecting';
  readonly #inFlight = new Map<string, AskSink>();
  readonly #queued: { id: string; text: string; sink: AskSink }[] = [];
  readonly #answeredIn = new Map<string, string>();
  readonly #pings: PingWaiter[] = [];
  #asks = 0;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  #resolveClosed: (info: ClosedInfo) => void = () => undefined;
  readonly closed: Promise<ClosedInfo> = new Promise((resolve) => (this.#resolveClosed = resolve));

  constructor(options: ConnectOptions) {
    this.#options = options;
    this.#createSocket = options.createSocket ?? globalSocketFactory;
  }

  get session(): string {
    return this.#ready.session;
  }

  get tenant(): string {
    return this.#ready.tenant;
  }

  get plugins(): { retrieval: string; prompt: string } {
    return this.#ready.plugins;
  }

  get state(): 'ready' | 'reconnecting' | 'closed' {
    return this.#state === 'connecting' ? 'reconnecting' : this.#state;
  }

  /** The first connection. */
  async start(): Promise<void> {
    const { url, headers } = await chatTarget(this.#options, true);
    const connection = await openConnection(url, headers, this.#createSocket, this.#eventsFor());
    this.#adopt(connection, false);
  }

  ask(text: string): AskHandle {
    const id = `a${++this.#asks}`;
    const { handle, sink } = createAskStream(id);
    if (this.#state === 'closed') sink.fail(new ChatError('CLIENT_CLOSED', 'the client is closed; connect again to ask', { askId: id }));
    else if (this.#connection === undefined) {
      if (this.#queued.length >= QUEUED_ASKS_MAX) {
        sink.fail(new ChatError('CLIENT_CONNECTION_LOST', `${QUEUED_ASKS_MAX} asks already wait for the connection to come back`, { askId: id }));
      } else this.#queued.push({ id, text, sink });
    } else {
      this.#inFlight.set(id, sink);
      this.#connection.send({ type: 'ask', id, text });
    }
    return handle;
  }

  feedback(id: string, rating: 1 | -1, comment?: string): Promise<void> {
    const answeredIn = this.#answeredIn.get(id);
    let refusal: ChatError | undefined;
    if (this.#state === 'closed') refusal = new ChatError('CLIENT_CLOSED', 'the client is closed', { askId: id });
    else if (answeredIn !== undefined && answeredIn !== this.#ready.session) {
      refusal = new ChatError('CLIENT_STALE_ASK', `ask ${id} was answered before the client reconnected; feedback goes to the session that answered`, { askId: id });
    } else if (this.#connection === undefined) refusal = new ChatError('CLIENT_CONNECTION_LOST', 'the client is reconnecting', { askId: id });
    const connection = this.#connection;
    const accepted =
      refusal !== undefined || connection === undefined
        ? Promise.reject(refusal)
        : new Promise<void>((resolve, reject) => {
            connection.send({ type: 'feedback', id, rating, ...(comment === undefined ? {} : { comment }) });
            // The host answers frames in order: a pong after the feedback frame means it was accepted.
            this.#pings.push({ kind: 'feedback', id, settled: false, resolve, reject });
            connection.send({ type: 'ping' });
          });
    // Fire-and-forget callers must not get an unhandled rejection; awaiting callers still see it.
    accepted.catch(() => undefined);
    return accepted;
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#stopTimers();
    const closing = new ChatError('CLIENT_CLOSED', 'the client was closed');
    this.#failAll(closing);
    for (const { id, sink } of this.#queued.splice(0)) sink.fail(new ChatError('CLIENT_CLOSED', closing.message, { askId: id }));
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection !== undefined) connection.close(1000, 'client closed');
    else this.#settleClosed({ code: 1000, reason: 'client closed' });
  }

  #eventsFor(): ConnectionEvents {
    return {
      onFrame: (frame) => this.#dispatch(frame),
      onClose: (code, reason, lastError) => this.#onDrop(code, reason, lastError),
    };
  }

  #adopt(connection: Connection, reconnected: boolean): void {
    this.#connection = connection;
    this.#ready = connection.ready;
    this.#state = 'ready';
    this.#attempt = 0;
    this.#startHeartbeat();
    this.#report({ state: 'ready', session: connection.ready.session, reconnected });
    for (const { id, text, sink } of this.#queued.splice(0)) {
      this.#inFlight.set(id, sink);
      connection.send({ type: 'ask', id, text });
    }
  }

  #dispatch(frame: Record<string, unknown>): void {
    const id = typeof frame['id'] === 'string' ? frame['id'] : undefined;
    const sink = id === undefined ? undefined : this.#inFlight.get(id);
    switch (frame['type']) {
      case 'token':
        sink?.push(String(frame['text']));
        break;
      case 'done':
        if (sink === undefined || id === undefined) break;
        this.#inFlight.delete(id);
        this.#remember(id);
        sink.finish(frame as unknown as AskResult);
        break;
      case 'pong':
        this.#onPong();
        break;
      case 'error':
        if (sink !== undefined && id !== undefined) {
          this.#inFlight.delete(id);
          sink.fail(errorFromFrame(frame));
        } else if (id !== undefined) this.#failFeedback(id, errorFromFrame(frame));
        break;
      default:
        break;
    }
  }

  #remember(id: string): void {
    this.#answeredIn.set(id, this.#ready.session);
    if (this.#answeredIn.size > ANSWERS_REMEMBERED_MAX) {
      const oldest = this.#answeredIn.keys().next().value;
      if (oldest !== undefined) this.#answeredIn.delete(oldest);
    }
  }

  #onPong(): void {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    const waiter = this.#pings.shift();
    if (waiter?.kind === 'feedback' && !waiter.settled) {
      waiter.settled = true;
      waiter.resolve();
    }
  }

  /** Rejects the feedback barrier for `id`; it stays queued so the pong that follows lines up. */
  #failFeedback(id: string, error: ChatError): void {
    const waiter = this.#pings.find((entry) => entry.kind === 'feedback' && entry.id === id && !entry.settled);
    if (waiter === undefined || waiter.kind !== 'feedback') return;
    waiter.settled = true;
    waiter.reject(error);
  }

  #failAll(error: ChatError): void {
    for (const [id, sink] of this.#inFlight) sink.fail(new ChatError(error.code, error.message, { askId: id }));
    this.#inFlight.clear();
    for (const waiter of this.#pings.splice(0)) {
      if (waiter.kind === 'feedback' && !waiter.settled) waiter.reject(new ChatError(error.code, error.message, { askId: waiter.id }));
    }
  }

  #onDrop(code: number, reason: string, lastError: ChatError | undefined): void {
    this.#stopTimers();
    this.#connection = undefined;
    if (this.#state === 'closed') {
      this.#settleClosed({ code, reason });
      return;
    }
    const described = `${code}${reason === '' ? '' : ` ${reason}`}`;
    this.#failAll(new ChatError('CLIENT_CONNECTION_LOST', `the connection dropped (${described}) while this was in flight; send it again`));
    if (this.#options.reconnect === false || !RECONNECT_CLOSE_CODES.has(code)) {
      this.#finish(code, reason, lastError ?? new ChatError('CLIENT_CLOSED', `the host closed the connection (${described})`));
      return;
    }
    this.#scheduleReconnect(lastError ?? new ChatError('CLIENT_CONNECTION_LOST', `the connection dropped (${described})`));
  }

  #scheduleReconnect(error: ChatError): void {
    const settings = this.#options.reconnect === false ? {} : (this.#options.reconnect ?? {});
    const attemptsMax = settings.attemptsMax ?? RECONNECT_ATTEMPTS_DEFAULT;
    this.#attempt += 1;
    if (this.#attempt > attemptsMax) {
      this.#finish(1006, 'reconnect failed', new ChatError('CLIENT_RECONNECT_FAILED', `gave up after ${attemptsMax} reconnect attempts; the last failed with: ${error.message}`));
      return;
    }
    const delayMs = backoffDelayMs(this.#attempt, settings);
    this.#state = 'reconnecting';
    this.#report({ state: 'reconnecting', attempt: this.#attempt, delayMs, error });
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(), delayMs);
  }

  async #reconnect(): Promise<void> {
    this.#reconnectTimer = undefined;
    let connection: Connection;
    try {
      const { url, headers } = await chatTarget(this.#options, false);
      if (this.#isClosed()) return;
      connection = await openConnection(url, headers, this.#createSocket, this.#eventsFor());
    } catch (error: unknown) {
      if (this.#isClosed()) return;
      const failure = error instanceof ChatError ? error : new ChatError('CLIENT_CONNECT_FAILED', `getTicket failed: ${String(error)}`);
      if (failure.retryable) this.#scheduleReconnect(failure);
      else this.#finish(1006, 'reconnect refused', failure);
      return;
    }
    if (this.#isClosed()) connection.abandon(1000, 'client closed');
    else this.#adopt(connection, true);
  }

  /** A method, not a field read: `close()` may have run during an await, which narrowing cannot see. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #startHeartbeat(): void {
    if (this.#options.heartbeat === false) return;
    const intervalMs = this.#options.heartbeat?.intervalMs ?? HEARTBEAT_DEFAULTS.intervalMs;
    const timeoutMs = this.#options.heartbeat?.timeoutMs ?? HEARTBEAT_DEFAULTS.timeoutMs;
    this.#heartbeatTimer = setInterval(() => {
      const connection = this.#connection;
      if (connection === undefined || this.#pongTimer !== undefined) return;
      this.#pings.push({ kind: 'heartbeat' });
      connection.send({ type: 'ping' });
      this.#pongTimer = setTimeout(() => {
        // No pong: the network dropped without a close (a sleeping laptop, a dead NAT entry).
        connection.abandon(4000, 'heartbeat timeout');
        this.#onDrop(4000, `no pong within ${timeoutMs} ms`, undefined);
      }, timeoutMs);
    }, intervalMs);
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#reconnectTimer);
    this.#heartbeatTimer = undefined;
    this.#pongTimer = undefined;
    this.#reconnectTimer = undefined;
  }

  #finish(code: number, reason: string, error: ChatError): void {
    this.#state = 'closed';
    this.#stopTimers();
    for (const { id, sink } of this.#queued.splice(0)) sink.fail(new ChatError(error.code, error.message, { askId: id }));
    this.#settleClosed({ code, reason, error });
  }

  #settleClosed(info: ClosedInfo): void {
    this.#report({ state: 'closed', code: info.code, reason: info.reason, error: info.error });
    this.#resolveClosed(info);
  }

  /** A throwing status listener must not break the connection's bookkeeping. */
  #report(status: ClientStatus): void {
    try {
      this.#options.onStatus?.(status);
    } catch {
      // The listener's problem; the client carries on.
    }
  }
}

/**
 * The WebSocket URL and headers of one connection: the API key as a header, or a ticket in the
 * query (a fresh one from `getTicket`, or the single-use `ticket` for the first connection only).
 * @throws {ChatError} CLIENT_RECONNECT_FAILED when there is no way to authenticate again.
 */
async function chatTarget(options: ConnectOptions, first: boolean): Promise<{ url: string; headers: Record<string, string> }> {
  const url = new URL('/v1/chat', options.url.replace(/^http/, 'ws'));
  if (options.apiKey !== undefined) return { url: url.toString(), headers: { authorization: `Bearer ${options.apiKey}` } };
  const ticket = options.getTicket !== undefined ? await options.getTicket() : first ? options.ticket : undefined;
  if (ticket === undefined) {
    throw new ChatError(first ? 'CLIENT_CONNECT_FAILED' : 'CLIENT_RECONNECT_FAILED', first ? 'connect needs apiKey, ticket or getTicket' : 'a ticket is single-use: pass getTicket so the client can reconnect');
  }
  url.searchParams.set('ticket', ticket);
  return { url: url.toString(), headers: {} };
}

/** The browser's WebSocket (or Node 22's). It cannot send headers, so an API key is refused here. */
function globalSocketFactory(url: string, headers: Record<string, string>): WebSocketLike {
  const WebSocketClass = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (WebSocketClass === undefined) throw new Error('there is no global WebSocket here; in Node import sdk/client/node.ts');
  if (Object.keys(headers).length > 0) throw new Error('a browser WebSocket cannot send an API key; connect with a ticket or getTicket');
  return new WebSocketClass(url);
}
