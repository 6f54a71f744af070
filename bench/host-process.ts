/**
 * Starts the host (`host/main.ts`, as `npm start` does) in a child process for benchmarks that must
 * measure the host apart from its clients: its URL, its pid, and the resident memory of its whole
 * process tree (the host and any process it started).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The operator key of benchmark hosts. */
export const BENCH_OPERATOR_KEY = 'bench-operator-key-0123456789';

/** A host running in a child process. */
export interface HostProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Whether the host process is still running. */
  alive(): boolean;
  /** Resident bytes of the host and every process it started. */
  residentBytes(): number;
  /** CPU seconds (user + system) spent so far by the host and every live process it started. */
  cpuSeconds(): number;
  /** Creates a tenant; returns its id and API key. */
  createTenant(name: string): Promise<{ id: string; apiKey: string }>;
  /** Stops the host and removes its data. */
  stop(): Promise<void>;
}

/** Starts `host/main.ts` on port 0 in a fresh data directory; `env` adds settings. */
export async function startHostProcess(env: Record<string, string> = {}): Promise<HostProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-bench-host-'));
  const child = spawn(process.execPath, ['--disable-wasm-trap-handler', '--import', 'tsx', 'host/main.ts'], {
    env: { ...process.env, PORT: '0', DATA_DIR: dataDir, CTX_OPERATOR_KEY: BENCH_OPERATOR_KEY, CTX_DEMO: 'false', LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`host exited with ${code}`)));
  });
  const pid = child.pid as number;
  return {
    url,
    pid,
    child,
    alive: () => !exited,
    residentBytes: () => treeOf(pid).reduce((sum, member) => sum + residentOf(member), 0),
    cpuSeconds: () => treeOf(pid).reduce((sum, member) => sum + cpuOf(member), 0),
    createTenant: async (name) => {
      const response = await fetch(`${url}/v1/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${BENCH_OPERATOR_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      const body = (await response.json()) as { tenant: { id: string }; apiKey: string };
      return { id: body.tenant.id, apiKey: body.apiKey };
    },
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resident bytes of one process (0 once it is gone). */
export function residentOf(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(match?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) of one process (0 once it is gone), in clock ticks of 100 Hz. */
export function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** `pid` and its descendants, from /proc. */
export function treeOf(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(parent, [...(parents.get(parent) ?? []), Number(entry)]);
    } catch {
      // The process ended while we read.
    }
  }
  const tree = [pid];
  for (let index = 0; index < tree.length; index += 1) tree.push(...(parents.get(tree[index] as number) ?? []));
  return tree;
}
