/**
 * Raw TCP for attack tests: exactly the bytes of a WebSocket upgrade (whole, cut short, or with a
 * bad version), and connections ended with a reset (RST) rather than a clean close, at the moment
 * a test chooses. Every socket here has an error listener: the host's resets must not end the test.
 */
import { connect, type Socket } from 'node:net';
import { within } from './deadline.ts';

/** The bytes of a `GET /v1/chat` upgrade request. */
export function upgradeRequest(options: { key?: string; version?: string; query?: string } = {}): string {
  const lines = [
    `GET /v1/chat${options.query ?? ''} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    `Sec-WebSocket-Version: ${options.version ?? '13'}`,
  ];
  if (options.key !== undefined) lines.push(`Authorization: Bearer ${options.key}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** An open TCP connection to the host and what it has received so far. */
export interface RawTcp {
  readonly socket: Socket;
  /** Everything received, as latin1 text. */
  received(): string;
  /** Waits until the received text matches `pattern` (or the socket closes: then it rejects). */
  waitFor(pattern: RegExp, what: string): Promise<void>;
  /** Ends the connection with a TCP reset. */
  reset(): void;
}

/** Connects to `port` on loopback. */
export async function openTcp(port: number): Promise<RawTcp> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await within(new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error('the connection closed before it opened')));
  }), 'tcp connect');
  let text = '';
  const waiters = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    for (const wake of waiters) wake();
  });
  socket.on('close', () => {
    for (const wake of waiters) wake();
  });
  return {
    socket,
    received: () => text,
    waitFor: (pattern, what) =>
      within(
        new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (pattern.test(text)) {
              waiters.delete(check);
              resolve();
            } else if (socket.destroyed) {
              waiters.delete(check);
              reject(new Error(`the connection closed before ${what}; received ${JSON.stringify(text.slice(0, 200))}`));
            }
          };
          waiters.add(check);
          check();
        }),
        what,
      ),
    reset: () => socket.resetAndDestroy(),
  };
}
