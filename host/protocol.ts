/**
 * The chat wire protocol's frames (`/v1/chat`, README "WebSocket"): the one declaration of every
 * frame both ways, which the host (transport/frames.ts, pipeline/session.ts) and the client library
 * (sdk/client, also bundled for browsers by scripts/build-client.ts and into the pages by
 * scripts/build-web.ts) import. A leaf module: it imports nothing but the error catalog's types and
 * holds nothing a browser cannot run, so every side that speaks the protocol sees the same shapes.
 */
import type { WireError } from './errors.ts';

/** The frame types a client may send, in the order error messages list them. */
export const CLIENT_FRAME_TYPES = ['ask', 'feedback', 'ping'] as const;

/** client → host: a question; `id` names the ask in every frame of its answer. */
export interface AskFrame {
  type: 'ask';
  id: string;
  text: string;
}

/** client → host: a rating of an answer of this session. */
export interface FeedbackFrame {
  type: 'feedback';
  id: string;
  rating: -1 | 1;
  comment?: string;
}

/** client → host: a heartbeat; the host answers `pong`. */
export interface PingFrame {
  type: 'ping';
}

/** Every frame a client may send. */
export type ClientFrame = AskFrame | FeedbackFrame | PingFrame;

/** host → client: the session is open; which plugins it runs (`builtin` or a version number). */
export interface ReadyFrame {
  type: 'ready';
  session: string;
  tenant: string;
  plugins: { retrieval: string; prompt: string };
}

/** host → client: the next piece of an answer. */
export interface TokenFrame {
  type: 'token';
  id: string;
  text: string;
}

/** A source of an answer. */
export interface Source {
  docId: string;
  chunkId: string;
  score: number;
  title: string;
  /** The start of the chunk's text (pipeline/snippet.ts), for a page to show. */
  snippet: string;
}

/** Milliseconds each stage of an ask took (a cache hit skips the stages it did not run: 0). */
export interface AskTimings {
  embedMs: number;
  cacheMs: number;
  retrievalMs: number;
  promptMs: number;
  guardMs: number;
  modelMs: number;
  totalMs: number;
}

/** host → client: the end of an answer. */
export interface DoneFrame {
  type: 'done';
  id: string;
  answer: string;
  /** On a hit, the sources of the cached answer as they were when it was made (re-validated since). */
  sources: Source[];
  cache: 'hit' | 'miss';
  /** On a hit: cosine similarity of the cached question to this one (1 on the exact path). */
  similarity?: number;
  /** On a hit: which path found it. */
  cacheMatch?: 'exact' | 'semantic';
  timings: AskTimings;
}

/** host → client: the answer to a `ping`. */
export interface PongFrame {
  type: 'pong';
}

/** host → client: a failure, of the ask or feedback `id` names, or of the connection without one. */
export type ErrorFrame = { type: 'error'; id?: string } & WireError;

/** Every frame the host sends. */
export type ServerFrame = ReadyFrame | TokenFrame | DoneFrame | PongFrame | ErrorFrame;

/** What an ask produces: the `done` frame's content, which the transport sends with the ask's id. */
export type AskResult = Omit<DoneFrame, 'type' | 'id'>;
