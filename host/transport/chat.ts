/**
 * The chat connection handler: one Session per connection, frames in, frames out. It enforces the
 * per-session limits (asks in flight, frame rate) and maps every failure to an `error` frame with a
 * stable code; only hard limits close the connection (1008/1009).
 */
import { randomUUID } from 'node:crypto';
import { HostError, toWireError } from '../errors.ts';
import type { HostLogger } from '../log.ts';
import type { SessionObserver } from '../observability/observability.ts';
import type { Session } from '../pipeline/session.ts';
import { encodeServerFrame, parseClientFrame, type ServerFrame } from './frames.ts';
import type { ChatSocket } from './websocket.ts';

/** Per-connection limits (from host/limits.ts, overridable for tests). */
export interface ChatLimits {
  asksInFlightPerSessionMax: number;
  socketBufferedBytesMax: number;
  framesPerWindowMax: number;
  frameWindowMsMax: number;
  /** Frames held while the session starts; one more is refused (PROTOCOL_RATE_LIMIT, close 1008). */
  framesBeforeReadyMax: number;
}

/** What the handler needs. */
export interface ChatContext {
  socket: ChatSocket;
  /** Opens session `sessionId`'s sandbox, logging to `log` (it carries tenant and session ids); throws HostError when it cannot. */
  openSession(log: HostLogger, sessionId: string): Promise<Session>;
  tenantId: string;
  /** The client asked for JSON text frames (`?encoding=json`) before it has sent any frame. */
  jsonFrames: boolean;
  limits: ChatLimits;
  logger: HostLogger;
  /** Called once when the connection ends, after the session (if it started) closed. */
  onEnd(): void;
  /** Records feedback for an answered ask of this session. */
  onFeedback(feedback: { id: string; rating: 1 | -1; comment?: string }): void;
  /** Creates the session's observer (metrics, recent asks, log lines); it is told ids, codes and timings, never text. */
  observe?(sessionId: string, log: HostLogger): SessionObserver;
}

/** Serves one chat connection until it closes. */
export async function serveChat(context: ChatContext): Promise<void> {
  const { socket, logger } = context;
  const sessionId = randomUUID();
  const log = logger.child({ tenant: context.tenantId, session: sessionId });
  const observer = context.observe?.(sessionId, log);
  // The client's encoding: msgpack unless it asked for JSON at connect; then whatever it last sent.
  let binary = !context.jsonFrames;
  const send = (frame: ServerFrame): void => {
    socket.send(encodeServerFrame(frame, binary));
    // A client that stops reading would make the host buffer its answers without bound.
    if (socket.bufferedBytes > context.limits.socketBufferedBytesMax) socket.close(1008, 'client is not reading');
  };
  const inFlight = new Set<string>();
  let windowStart = performance.now();
  let framesInWindow = 0;
  let session: Session | undefined;
  let ended = false;
  const queued: [Uint8Array, boolean][] = [];

  const sendError = (error: unknown, id?: string): void => {
    const { wire, error: known } = toWireError(error, (unknown) => log.error({ err: unknown }, 'unexpected error'));
    const askId = id ?? (typeof known.detail?.['id'] === 'string' ? known.detail['id'] : undefined);
    send({ type: 'error', ...(askId === undefined ? {} : { id: askId }), ...wire });
    if (known.closeCode !== null) socket.close(known.closeCode, known.code);
  };

  const handle = (data: Uint8Array, isBinary: boolean): void => {
    const now = performance.now();
    if (now - windowStart > context.limits.frameWindowMsMax) {
      windowStart = now;
      framesInWindow = 0;
    }
    framesInWindow += 1;
    if (framesInWindow > context.limits.framesPerWindowMax) {
      sendError(new HostError('PROTOCOL_RATE_LIMIT', `more than ${context.limits.framesPerWindowMax} frames in ${context.limits.frameWindowMsMax} ms`));
      return;
    }
    binary = isBinary;
    let frame;
    try {
      frame = parseClientFrame(data, isBinary);
    } catch (error) {
      sendError(error);
      return;
    }
    if (frame.type === 'ping') return send({ type: 'pong' });
    if (frame.type === 'feedback') {
      try {
        context.onFeedback(frame);
      } catch (error) {
        sendError(error, frame.id);
      }
      return;
    }
    if (inFlight.has(frame.id)) return sendError(new HostError('PROTOCOL_DUPLICATE_ID', `ask ${JSON.stringify(frame.id)} is still in flight`), frame.id);
    if (inFlight.size >= context.limits.asksInFlightPerSessionMax) {
      return sendError(new HostError('PROTOCOL_TOO_MANY_IN_FLIGHT', `${inFlight.size} asks are in flight, limit ${context.limits.asksInFlightPerSessionMax}`), frame.id);
    }
    const askId = frame.id;
    const activeSession = session;
    if (activeSession === undefined) return;
    inFlight.add(askId);
    activeSession
      .ask(askId, frame.text, (text) => send({ type: 'token', id: askId, text }))
      .then((result) => {
        send({ type: 'done', id: askId, ...result });
        observer?.answered(askId, result);
      })
      .catch((error: unknown) => {
        if (!ended) sendError(error, askId);
        observer?.failed(askId, error, ended);
      })
      .finally(() => inFlight.delete(askId));
  };

  socket.onMessage((data, isBinary) => {
    if (session !== undefined) return handle(data, isBinary);
    // Frames sent before `ready` wait for the session; a client cannot queue unbounded work there.
    if (queued.length >= context.limits.framesBeforeReadyMax) {
      sendError(new HostError('PROTOCOL_RATE_LIMIT', `more than ${context.limits.framesBeforeReadyMax} frames before the session was ready`));
      return;
    }
    queued.push([data, isBinary]);
  });
  // The session may still be starting when the client goes: the end is reported only once the
  // start has settled, so a session that finishes starting after its socket closed is closed too
  // and never outlives the connection.
  const opening = context.openSession(log, sessionId);
  socket.onClose(() => {
    ended = true;
    observer?.closed();
    void opening
      .then((opened) => opened.close(), () => undefined)
      .finally(() => context.onEnd());
  });

  try {
    session = await opening;
  } catch (error) {
    observer?.refused(error);
    sendError(error);
    // sendError already closed for hard limits; any other failure to start still ends the connection.
    socket.close(1011, 'session could not start');
    return;
  }
  if (ended) return;
  send({ type: 'ready', session: sessionId, tenant: context.tenantId, plugins: session.pluginInfo });
  observer?.opened(session.pluginInfo);
  for (const [data, isBinary] of queued.splice(0)) handle(data, isBinary);
}
