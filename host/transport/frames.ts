/**
 * The validation of every frame a client sends, and the encoding of the host's frames (the frames
 * themselves are declared once, in host/protocol.ts, which the client library shares; host/DESIGN.md, "Wire protocol"). A bad frame
 * gets an error with a stable code; only hard limits close the connection.
 */
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { CLIENT_FRAME_TYPES, type ClientFrame, type ServerFrame } from '../protocol.ts';
import { decodeMsgpack, encodeMsgpack } from './codec.ts';

export type { ClientFrame, ServerFrame } from '../protocol.ts';

/**
 * Decodes and validates one client frame.
 * @throws {HostError} PROTOCOL_BAD_ENCODING, PROTOCOL_BAD_FRAME or PROTOCOL_UNKNOWN_TYPE; the
 *   error's detail carries the frame's `id` when one could be read, so the error can name the ask.
 */
export function parseClientFrame(data: Uint8Array, isBinary: boolean): ClientFrame {
  let value: unknown;
  try {
    value = isBinary ? decodeMsgpack(data) : JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    throw new HostError('PROTOCOL_BAD_ENCODING', isBinary ? 'binary frame is not valid msgpack' : 'text frame is not valid UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HostError('PROTOCOL_BAD_FRAME', 'frame must be an object with a "type"');
  }
  const frame = value as Record<string, unknown>;
  const id = typeof frame['id'] === 'string' && frame['id'].length <= LIMITS.askIdCharsMax ? frame['id'] : undefined;
  const fail = (message: string): never => {
    throw new HostError('PROTOCOL_BAD_FRAME', message, id === undefined ? undefined : { id });
  };
  const type = frame['type'];
  if (typeof type !== 'string') fail(`frame type must be a string, got ${type === null ? 'null' : typeof type}`);
  switch (type) {
    case 'ping':
      onlyKeys(frame, ['type'], fail);
      return { type: 'ping' };
    case 'ask':
      onlyKeys(frame, ['type', 'id', 'text'], fail);
      return { type: 'ask', id: askId(frame['id'], fail), text: askText(frame['text'], fail) };
    case 'feedback':
      return parseFeedback(frame, fail);
    default:
      throw new HostError(
        'PROTOCOL_UNKNOWN_TYPE',
        `unknown frame type ${JSON.stringify(type).slice(0, 40)}; known: ${CLIENT_FRAME_TYPES.join(', ')}`,
        id === undefined ? undefined : { id },
      );
  }
}

function parseFeedback(frame: Record<string, unknown>, fail: (message: string) => never): ClientFrame {
  onlyKeys(frame, ['type', 'id', 'rating', 'comment'], fail);
  const rating = frame['rating'];
  if (rating !== 1 && rating !== -1) fail('feedback.rating must be 1 or -1');
  const parsed: ClientFrame = { type: 'feedback', id: askId(frame['id'], fail), rating: rating as 1 | -1 };
  const comment = frame['comment'];
  if (comment !== undefined) {
    if (typeof comment !== 'string' || comment.length > LIMITS.feedbackCommentCharsMax) {
      fail(`feedback.comment must be a string of at most ${LIMITS.feedbackCommentCharsMax} characters`);
    }
    parsed.comment = comment as string;
  }
  return parsed;
}

function onlyKeys(frame: Record<string, unknown>, allowed: string[], fail: (message: string) => never): void {
  for (const key of Object.keys(frame)) {
    if (!allowed.includes(key)) fail(`${frame['type'] as string} frame has unknown field ${JSON.stringify(key).slice(0, 40)}`);
  }
}

function askId(value: unknown, fail: (message: string) => never): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > LIMITS.askIdCharsMax) {
    fail(`id must be a string of 1..${LIMITS.askIdCharsMax} characters`);
  }
  return value as string;
}

function askText(value: unknown, fail: (message: string) => never): string {
  if (typeof value !== 'string' || value.trim().length === 0) fail('ask.text must be a non-empty string');
  if ((value as string).length > LIMITS.askTextCharsMax) {
    fail(`ask.text is ${(value as string).length} characters, limit ${LIMITS.askTextCharsMax}`);
  }
  return value as string;
}

/** Encodes a frame the way the client spoke: msgpack for binary clients, JSON for text clients. */
export function encodeServerFrame(frame: ServerFrame, binary: boolean): Uint8Array | string {
  return binary ? encodeMsgpack(frame) : JSON.stringify(frame);
}
