/**
 * Resident memory per idle live session: starts the host in a child process (so the clients'
 * memory is not counted), opens N chat sessions, and divides the growth of the child's resident set
 * by N. Each session holds its own fresh retrieval and prompt plugin instances.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

const OPERATOR_KEY = 'bench-operator-key-0123456789';

function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return Number(match?.[1] ?? 0) * 1024;
}

const settle = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));

/** Returns resident bytes per session with `sessions` idle sessions open. */
export async function measureSessionMemory(sessions: number): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-bench-mem-'));
  const child = spawn(process.execPath, ['--disable-wasm-trap-handler', '--import', 'tsx', 'host/main.ts'], {
    env: { ...process.env, PORT: '0', DATA_DIR: dataDir, CTX_OPERATOR_KEY: OPERATOR_KEY, CTX_DEMO: 'false', LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const sockets: WebSocket[] = [];
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /listening on (http:\/\/[^\s]+)/.exec(output);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`host exited with ${code}`)));
    });
    const created = await fetch(`${url}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'memory' }),
    });
    const { apiKey } = (await created.json()) as { apiKey: string };
    // One warm session first, so one-time costs (compiled modules, the tenant environment) are not counted.
    sockets.push(await openSession(url, apiKey));
    await settle(500);
    const before = residentBytes(child.pid as number);
    for (let opened = 1; opened < sessions + 1; opened += 100) {
      const batch = Math.min(100, sessions + 1 - opened);
      sockets.push(...(await Promise.all(Array.from({ length: batch }, () => openSession(url, apiKey)))));
    }
    await settle(1000);
    const after = residentBytes(child.pid as number);
    return (after - before) / sessions;
  } finally {
    for (const socket of sockets) socket.terminate();
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function openSession(url: string, apiKey: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/v1/chat`, { headers: { authorization: `Bearer ${apiKey}` }, perMessageDeflate: false });
    socket.once('message', () => resolve(socket));
    socket.once('error', reject);
  });
}
