/**
 * Resident memory per idle live session: starts the host in child processes (so the clients'
 * memory is not counted; the supervisor and its cells), opens N chat sessions, and divides the
 * growth of the host processes' resident memory by N. Each session holds its own fresh retrieval
 * and prompt plugin instances.
 */
import WebSocket from 'ws';
import { startHostProcess } from './host-process.ts';

const settle = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));

/** Returns resident bytes per session with `sessions` idle sessions open (one tenant, so one cell holds them). */
export async function measureSessionMemory(sessions: number): Promise<number> {
  const host = await startHostProcess();
  const sockets: WebSocket[] = [];
  try {
    const { apiKey } = await host.createTenant('memory');
    // One warm session first, so one-time costs (compiled modules, the tenant environment) are not counted.
    sockets.push(await openSession(host.url, apiKey));
    await settle(500);
    const before = host.residentBytes();
    for (let opened = 1; opened < sessions + 1; opened += 100) {
      const batch = Math.min(100, sessions + 1 - opened);
      sockets.push(...(await Promise.all(Array.from({ length: batch }, () => openSession(host.url, apiKey)))));
    }
    await settle(1000);
    const after = host.residentBytes();
    return (after - before) / sessions;
  } finally {
    for (const socket of sockets) socket.terminate();
    await host.stop();
  }
}

function openSession(url: string, apiKey: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/v1/chat`, { headers: { authorization: `Bearer ${apiKey}` }, perMessageDeflate: false });
    socket.once('message', () => resolve(socket));
    socket.once('error', reject);
  });
}
