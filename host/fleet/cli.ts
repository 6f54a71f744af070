/**
 * `npm run fleet -- <command>`: a fleet on this machine (HAProxy and three hosts on loopback, the
 * controller and its API) and the operator's commands for it.
 *
 * - `start` launches the fleet in the background (a detached runner process owns every process it
 *   starts) and returns once it serves; `stop` ends the runner, which stops HAProxy and the hosts,
 *   and then checks that none of their processes is left and nothing listens on their ports.
 * - `status`, `create-tenant`, `move`, `resume`, `rollback`, `add-host`, `rebalance`, `refresh`
 *   call the controller's API (host/fleet/api.ts).
 *
 * State lives in `--dir` (default `./fleet-data`): each host's DATA_DIR, the router's files, the
 * move journal, `operator.key` and, while it runs, `fleet.json` (pids, ports, URLs).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { HostError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { randomToken } from '../storage/keys.ts';
import { serveFleetApi } from './api.ts';
import { startLocalFleet } from './local-fleet.ts';

/** What a running fleet records in `fleet.json`. */
interface FleetState {
  runnerPid: number;
  routerUrl: string;
  apiUrl: string;
  processes: { what: string; pid: number; port?: number }[];
  hosts: { name: string; url: string }[];
}

/** The repository root: the runner is started from there, and the hosts run its build. */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const program = new Command('fleet').description('a ctx-host fleet on this machine: HAProxy, three hosts and the controller, on loopback');
program.option('--dir <path>', 'where the fleet keeps its data and state', './fleet-data');

const dirOf = (): string => resolve((program.opts() as { dir: string }).dir);
const statePath = (dir: string): string => join(dir, 'fleet.json');

function readState(dir: string): FleetState | undefined {
  return existsSync(statePath(dir)) ? (JSON.parse(readFileSync(statePath(dir), 'utf8')) as FleetState) : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The operator key: CTX_OPERATOR_KEY, else the one `start` keeps in the fleet directory (made on first start). */
function operatorKey(dir: string, create: boolean): string {
  const fromEnv = process.env['CTX_OPERATOR_KEY'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const path = join(dir, 'operator.key');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  if (!create) throw new HostError('AUTH_MISSING_KEY', `no operator key: set CTX_OPERATOR_KEY, or start the fleet in ${dir} first`);
  const key = `ctxop_${randomToken(32)}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  return key;
}

program
  .command('start')
  .description('start HAProxy and the hosts in the background; returns once they serve')
  .option('--hosts <n>', 'number of hosts', '3')
  .option('--port <port>', 'the router\'s port (default: a free one)')
  .option('--api-port <port>', 'the controller API\'s port (default: a free one)')
  .action(async (options: { hosts: string; port?: string; apiPort?: string }) => {
    const dir = dirOf();
    const running = readState(dir);
    if (running !== undefined && alive(running.runnerPid)) throw new HostError('CONFIG_INVALID', `a fleet already runs from ${dir} (router ${running.routerUrl}); npm run fleet -- stop`);
    if (!existsSync(join(REPO_ROOT, 'build', 'plugins'))) throw new HostError('CONFIG_INVALID', 'the built-in plugins are not built: run npm run build first');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    operatorKey(dir, true);
    const args = ['host/fleet/cli.ts', '--dir', dir, 'run', '--hosts', options.hosts, ...(options.port === undefined ? [] : ['--port', options.port]), ...(options.apiPort === undefined ? [] : ['--api-port', options.apiPort])];
    const log = openSync(join(dir, 'runner.log'), 'w', 0o600);
    const runner = spawn(process.execPath, [...process.execArgv, ...args], { cwd: REPO_ROOT, detached: true, stdio: ['ignore', log, log, 'ipc'] });
    closeSync(log);
    const state = await new Promise<FleetState>((done, fail) => {
      runner.once('message', (message) => done(message as FleetState));
      runner.once('exit', (code) => fail(new HostError('CONFIG_INVALID', `the fleet did not start (runner exit ${code}); see ${join(dir, 'runner.log')}`)));
    });
    runner.disconnect();
    runner.unref();
    process.stdout.write(
      [
        `fleet started from ${dir} (${state.hosts.length} hosts, 1 cell each; runner pid ${state.runnerPid})`,
        `router (clients connect here): ${state.routerUrl}`,
        `controller API:                ${state.apiUrl}   (operator key in ${join(dir, 'operator.key')})`,
        `hosts: ${state.hosts.map((host) => `${host.name} ${host.url}`).join('   ')}`,
        `next:  npm run fleet -- create-tenant "Larkspur Cycles"`,
        '',
      ].join('\n'),
    );
  });

program
  .command('run')
  .description('(used by start) run the fleet in the foreground until SIGTERM or SIGINT')
  .option('--hosts <n>', 'number of hosts', '3')
  .option('--port <port>', 'the router\'s port')
  .option('--api-port <port>', 'the controller API\'s port', '0')
  .action(async (options: { hosts: string; port?: string; apiPort: string }) => {
    const dir = dirOf();
    const logger = createLogger(process.env['LOG_LEVEL'] ?? 'info');
    const key = operatorKey(dir, true);
    const count = Number(options.hosts);
    if (!Number.isInteger(count) || count < 1 || count > 16) throw new HostError('FLEET_INVALID', `--hosts must be 1..16 on one machine, got ${options.hosts}`);
    const fleet = await startLocalFleet({
      dir,
      operatorKey: key,
      names: Array.from({ length: count }, (_, index) => `h${index + 1}`),
      ...(options.port === undefined ? {} : { routerPort: Number(options.port) }),
      logger,
    });
    const api = await serveFleetApi(fleet.controller, { host: '127.0.0.1', port: Number(options.apiPort), operatorKey: key, logger });
    await fleet.controller.recover();
    const state: FleetState = {
      runnerPid: process.pid,
      routerUrl: fleet.router.url,
      apiUrl: api.url,
      processes: [
        { what: 'haproxy', pid: fleet.router.pid ?? 0, port: fleet.router.options.bindPort },
        ...fleet.hosts.map((host) => ({ what: `host ${host.name}`, pid: host.pid ?? 0, port: host.port })),
      ],
      hosts: fleet.hosts.map((host) => ({ name: host.name, url: host.url })),
    };
    writeFileSync(statePath(dir), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      void api
        .close()
        .then(() => fleet.stop())
        .finally(() => {
          rmSync(statePath(dir), { force: true });
          process.exit(0);
        });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.send?.(state);
  });

program
  .command('stop')
  .description('stop the fleet: every process it started ends, and nothing is left listening')
  .action(async () => {
    const dir = dirOf();
    const state = readState(dir);
    if (state === undefined) {
      process.stdout.write(`no fleet runs from ${dir}\n`);
      return;
    }
    if (alive(state.runnerPid)) process.kill(state.runnerPid, 'SIGTERM');
    await until(() => !alive(state.runnerPid), 60_000);
    // A runner killed outright leaves its children: end the ones it recorded, by pid.
    const left = state.processes.filter((entry) => entry.pid > 0 && alive(entry.pid) && ownedBy(entry.pid, entry.what));
    for (const entry of left) process.kill(entry.pid, 'SIGKILL');
    await until(() => state.processes.every((entry) => entry.pid === 0 || !alive(entry.pid) || !ownedBy(entry.pid, entry.what)), 10_000);
    const listening = (await Promise.all(state.processes.map(async (entry) => (entry.port !== undefined && (await answers(entry.port)) ? entry.port : undefined)))).filter((port) => port !== undefined);
    rmSync(statePath(dir), { force: true });
    if (listening.length > 0) throw new HostError('CONFIG_INVALID', `something still listens on port ${listening.join(', ')}`);
    process.stdout.write(`fleet stopped: ${state.processes.length + 1} processes ended (${left.length} had to be killed); nothing listens on ports ${state.processes.map((entry) => entry.port).join(', ')}\n`);
  });

program
  .command('status')
  .description('hosts (health, router state, tenants, sessions) and moves in progress')
  .action(async () => {
    const view = (await api('GET', '/fleet')) as {
      hosts: { name: string; url: string; healthy: boolean; router: string; tenants: number; sessions: number | null }[];
      tenants: number;
      moves: { id: string; tenant: string; from: string; to: string; step: string; error?: string }[];
      recentMoves: { id: string; tenant: string; from: string; to: string; step: string; frozenAt?: number; writableAt?: number }[];
    };
    const lines = [`${view.tenants} tenants on ${view.hosts.length} hosts`, 'host  url                      health  router  tenants  sessions'];
    for (const host of view.hosts) {
      lines.push(`${host.name.padEnd(5)} ${host.url.padEnd(24)} ${(host.healthy ? 'ok' : 'DOWN').padEnd(7)} ${host.router.padEnd(7)} ${String(host.tenants).padStart(7)}  ${String(host.sessions ?? '-').padStart(8)}`);
    }
    lines.push(view.moves.length === 0 ? 'no move in progress' : 'moves in progress:');
    for (const move of view.moves) lines.push(`  ${move.id} ${move.tenant} ${move.from} → ${move.to} at ${move.step}${move.error === undefined ? '' : `  (${move.error})`}`);
    for (const move of view.recentMoves.slice(0, 5)) {
      const frozen = move.frozenAt !== undefined && move.writableAt !== undefined ? `, writes frozen ${move.writableAt - move.frozenAt} ms` : '';
      lines.push(`  done: ${move.id} ${move.tenant} ${move.from} → ${move.to} (${move.step}${frozen})`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });

program
  .command('create-tenant <name>')
  .description('create a tenant on the least-loaded host; prints its API key once')
  .action(async (name: string) => {
    const created = (await api('POST', '/fleet/tenants', { name })) as { tenant: { id: string }; apiKey: string; host: string };
    process.stdout.write(`tenant ${created.tenant.id} "${name}" created on ${created.host}\napi key (shown once): ${created.apiKey}\n`);
  });

program
  .command('move <tenantId> <host>')
  .description('move a tenant to another host (writes frozen for the transfer only; nothing is lost)')
  .action(async (tenantId: string, host: string) => printMove(await api('POST', '/fleet/moves', { tenant: tenantId, to: host })));

program
  .command('resume <moveId>')
  .description('drive a move cut short on from its last recorded step')
  .action(async (moveId: string) => printMove(await api('POST', `/fleet/moves/${encodeURIComponent(moveId)}/resume`)));

program
  .command('rollback <moveId>')
  .description('undo a move cut short before its source was retired')
  .action(async (moveId: string) => printMove(await api('POST', `/fleet/moves/${encodeURIComponent(moveId)}/rollback`)));

program
  .command('add-host <name> <url>')
  .description('add a running host (started with FLEET_HOST=<name>) and reload the router')
  .action(async (name: string, url: string) => {
    await api('POST', '/fleet/hosts', { name, url });
    process.stdout.write(`host ${name} added; the router sends it new tenants\n`);
  });

program
  .command('rebalance')
  .description('move the fewest tenants that even the hosts out (after add-host); --dry-run lists them')
  .option('--dry-run', 'only list the moves')
  .action(async (options: { dryRun?: boolean }) => {
    const result = (await api('POST', `/fleet/rebalance${options.dryRun === true ? '?dryRun=1' : ''}`)) as { planned: { tenant: string; from: string; to: string }[]; moved: unknown[] };
    for (const move of result.planned) process.stdout.write(`${options.dryRun === true ? 'would move' : 'moved'} ${move.tenant} ${move.from} → ${move.to}\n`);
    process.stdout.write(`${result.planned.length} moves${options.dryRun === true ? ' planned' : ' done'}\n`);
  });

program
  .command('refresh')
  .description('relearn where every tenant lives from the hosts, and correct the router\'s map')
  .action(async () => {
    process.stdout.write(`${JSON.stringify(await api('POST', '/fleet/refresh'), null, 2)}\n`);
  });

function printMove(body: unknown): void {
  const move = body as { id: string; tenant: string; from: string; to: string; step: string; frozenAt?: number; writableAt?: number; entries?: number };
  const frozen = move.frozenAt !== undefined && move.writableAt !== undefined ? `; writes were frozen ${move.writableAt - move.frozenAt} ms` : '';
  process.stdout.write(`move ${move.id}: ${move.tenant} ${move.from} → ${move.to}: ${move.step}${move.entries === undefined ? '' : ` (${move.entries} entries)`}${frozen}\n`);
}

/** Calls the running fleet's controller API. */
async function api(method: string, path: string, body?: unknown): Promise<unknown> {
  const dir = dirOf();
  const url = process.env['CTX_FLEET_URL'] ?? readState(dir)?.apiUrl;
  if (url === undefined) throw new HostError('FLEET_HOST_UNAVAILABLE', `no fleet runs from ${dir}: npm run fleet -- start (or set CTX_FLEET_URL)`);
  let response: Response;
  try {
    response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${operatorKey(dir, false)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new HostError('FLEET_HOST_UNAVAILABLE', `the fleet controller at ${url} does not answer: ${(error as Error).message}`);
  }
  const parsed = (await response.json()) as { error?: { code: string; message: string } };
  if (parsed.error !== undefined) throw new HostError(parsed.error.code as never, parsed.error.message);
  return parsed;
}

/** Whether `pid` still runs what the fleet started there (a pid is not reused under our feet). */
function ownedBy(pid: number, what: string): boolean {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return what === 'haproxy' ? command.includes('haproxy') : command.includes('host/main.ts');
  } catch {
    return false;
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

async function until(condition: () => boolean, msMax: number): Promise<void> {
  const deadline = Date.now() + msMax;
  while (!condition() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
}

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof HostError) process.stderr.write(`fleet: [${error.code}] ${error.message}\n`);
  else process.stderr.write(`fleet: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
