/**
 * Soak: thousands of connections reset (TCP RST) at every point of a WebSocket upgrade — before the
 * request is complete, right after it, after the host's 401, after its 101 — with and without a
 * valid key, against the host in a child process. Reports whether the host stayed up, its memory
 * before and after, and that it still answers a chat afterwards. Before the fix, about 60 resets
 * ended the host.
 */
import { connect } from 'node:net';
import { connect as chat } from '../sdk/client/node.ts';
import { startHostProcess } from './host-process.ts';
import { heading, line, ms } from './stats.ts';

const UPGRADE = (key: string): string =>
  `GET /v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${key}\r\n\r\n`;

type Kind = 'partial head' | 'head, no key' | 'after 401' | 'after 101';
const KINDS: Kind[] = ['partial head', 'head, no key', 'after 401', 'after 101'];

/** One connection of `kind`, reset at its point. Resolves when it is reset. */
function resetOne(port: number, kind: Kind, apiKey: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let done = false;
    const reset = (): void => {
      if (done) return;
      done = true;
      socket.resetAndDestroy();
      resolve();
    };
    socket.on('error', reset);
    socket.on('close', reset);
    socket.once('connect', () => {
      if (kind === 'partial head') {
        socket.write(UPGRADE('ctx_wrong').slice(0, 50));
        return reset();
      }
      if (kind === 'head, no key') {
        socket.write(UPGRADE('x'));
        return reset();
      }
      socket.write(UPGRADE(kind === 'after 101' ? apiKey : 'ctx_wrong'));
      socket.once('data', reset);
    });
  });
}

/** Runs the soak with `total` resets, `concurrency` at a time. */
export async function runResetSoak(total: number, concurrency = 16): Promise<void> {
  heading(`soak: ${total} connections reset during the WebSocket upgrade (host in a child process)`);
  const host = await startHostProcess();
  try {
    const tenant = await host.createTenant('resets');
    const port = Number(new URL(host.url).port);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = host.residentBytes();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total && host.alive()) {
          const kind = KINDS[next % KINDS.length] as Kind;
          next += 1;
          await resetOne(port, kind, tenant.apiKey);
        }
      }),
    );
    const elapsed = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = host.residentBytes();
    line('resets sent', `${next} in ${ms(elapsed)}`, `${((next / elapsed) * 1000).toFixed(0)} per second`);
    line('host process still up', host.alive() ? 'yes' : 'NO: it exited', host.alive() ? 'target: up — met' : 'target: up — MISSED');
    const health = (await (await fetch(`${host.url}/healthz`)).json()) as { sessions: number };
    line('live sessions afterwards (healthz)', String(health.sessions), health.sessions === 0 ? 'target 0: met' : 'target 0: MISSED');
    line('resident memory before / after', `${(before / 2 ** 20).toFixed(1)} / ${(after / 2 ** 20).toFixed(1)} MiB`);
    const client = await chat({ url: host.url, apiKey: tenant.apiKey });
    const answered = await client.ask('hello?').result;
    line('a chat afterwards', answered.cache === 'miss' ? 'answered' : 'answered from cache');
    client.close();
  } finally {
    await host.stop();
  }
}

// Run alone: `node --disable-wasm-trap-handler --import tsx bench/resets.ts [resets]` (default 5,000).
if (import.meta.url === `file://${process.argv[1]}`) {
  runResetSoak(Number(process.argv[2] ?? 5_000)).catch((error: unknown) => {
    process.stderr.write(`reset soak failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
