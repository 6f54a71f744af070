/**
 * The floor every latency figure is compared with: a bare `ws` server that echoes each frame, and
 * a client that sends one small binary frame at a time and waits for it to come back.
 */
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { summarise, type LatencySummary } from './stats.ts';

/** Measures `rounds` echo round trips (after a warm-up). */
export async function measureEcho(rounds: number): Promise<LatencySummary> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  server.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve) => client.once('open', () => resolve()));
  const payload = Buffer.alloc(64, 1);
  const samples: number[] = [];
  for (let i = 0; i < rounds + 100; i += 1) {
    const started = performance.now();
    await new Promise<void>((resolve) => {
      client.once('message', () => resolve());
      client.send(payload);
    });
    if (i >= 100) samples.push(performance.now() - started);
  }
  client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return summarise(samples);
}
