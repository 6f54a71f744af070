/**
 * A raw WebSocket for protocol tests: sends exactly the bytes a test wants (bad msgpack, oversized
 * frames) and records every frame and the close, which the SDK client would hide.
 */
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { within } from './deadline.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** The outcome of an upgrade attempt. */
export type UpgradeOutcome = { status: number; body: string } | { socket: RawSocket };

/** A connected raw socket. */
export interface RawSocket {
  sendRaw(data: Buffer | string): void;
  sendFrame(frame: unknown): void;
  /** Waits for the next frame matching `predicate` (decoded from msgpack or JSON), `ms` at most (10 s). */
  next(predicate?: (frame: any) => boolean, what?: string, ms?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Tries to upgrade to /v1/chat; returns the HTTP refusal or the socket (after its `ready` frame). */
export async function openRaw(url: string, options: { key?: string; query?: string; waitReady?: boolean } = {}): Promise<UpgradeOutcome> {
  const target = `${url.replace(/^http/, 'ws')}/v1/chat${options.query ?? ''}`;
  const ws = new WebSocket(target, { headers: options.key === undefined ? {} : { authorization: `Bearer ${options.key}` } });
  const frames: any[] = [];
  const waiters: { predicate: (frame: any) => boolean; resolve: (frame: any) => void }[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const frame = isBinary ? packr.unpack(data) : JSON.parse(data.toString('utf8'));
    const waiter = waiters.findIndex((candidate) => candidate.predicate(frame));
    if (waiter >= 0) waiters.splice(waiter, 1)[0]?.resolve(frame);
    else frames.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => undefined);
  const next: RawSocket['next'] = (predicate = () => true, what = 'a frame', ms) => {
    const index = frames.findIndex(predicate);
    if (index >= 0) return Promise.resolve(frames.splice(index, 1)[0]);
    return within(new Promise((resolve) => waiters.push({ predicate, resolve })), `waiting for ${what}`, ms);
  };
  const outcome = await within(
    new Promise<UpgradeOutcome>((resolve) => {
      ws.on('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      ws.on('open', () =>
        resolve({
          socket: {
            sendRaw: (data) => ws.send(data),
            sendFrame: (frame) => ws.send(packr.pack(frame)),
            next,
            closed,
            close: () => ws.close(),
          },
        }),
      );
    }),
    'upgrade',
  );
  if ('socket' in outcome && options.waitReady !== false) await outcome.socket.next((frame) => frame.type === 'ready', 'ready');
  return outcome;
}

/** Opens a raw socket and fails the test when the upgrade was refused. */
export async function mustOpen(url: string, key: string, query?: string): Promise<RawSocket> {
  const outcome = await openRaw(url, { key, ...(query === undefined ? {} : { query }) });
  if (!('socket' in outcome)) throw new Error(`upgrade refused: ${outcome.status} ${outcome.body}`);
  return outcome.socket;
}

/** Encodes a frame as msgpack. */
export function pack(frame: unknown): Buffer {
  return packr.pack(frame);
}
