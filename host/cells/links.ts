/**
 * How the supervisor reaches a cell: a {@link CellLink}. The host runs each cell in a process of
 * its own ({@link forkCell}): chat connections are handed over with Node's handle passing, HTTP
 * requests are forwarded to the cell's private socket, and control calls travel over the IPC
 * channel. Tests that need in-process hooks (fault points, a fake clock) run one cell inside their
 * own process ({@link inProcessCell}): the same supervisor, the same cell intake, the same private
 * socket — only the handover of a connection is a function call instead of a message.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HostConfig } from '../config.ts';
import { HostError } from '../errors.ts';
import type { HostLogger } from '../log.ts';
import type { MetricsPart } from '../observability/metrics.ts';
import type { MasterKeySource, RotationResult } from '../storage/master-rotation.ts';
import type { SecretHash } from '../storage/keys.ts';
import type { Registry } from '../storage/registry.ts';
import type { OperatorKeyCheck, UpgradeHandoff } from '../tenants/scope.ts';
import type { TicketGrant } from '../tenants/tickets.ts';
import { startCell, type Cell, type CellHooks, type CellStats } from './cell.ts';
import { createChannel, type Channel } from './channel.ts';
import type { ChannelMessage, UpgradeMessage } from './protocol.ts';

/** What the supervisor offers every cell (the cell side of {@link CellCluster} minus `owns`). */
export interface SupervisorServices {
  issueTicket(grant: TicketGrant): Promise<{ ticket: string; expiresAt: number }>;
  voidTickets(tenantId: string, keyId?: string): Promise<void>;
  liveSessions(): Promise<Map<string, number>>;
  renderMetrics(): Promise<{ contentType: string; text: string }>;
  rotateMasterKey(newKey: string | undefined): Promise<RotationResult>;
  reportBurner(tenantId: string): Promise<void>;
}

/** What the supervisor asks of a cell. */
export interface CellControl {
  liveSessions(): Promise<Map<string, number>>;
  stats(): Promise<CellStats>;
  /** The cell's metrics as prom-client JSON (its process's figures included when `withProcess`). */
  metrics(withProcess: boolean): Promise<MetricsPart>;
  closeSessions(tenantId: string, code: number, reason: string, keyId?: string): Promise<number>;
  releaseTenant(tenantId: string): Promise<void>;
  /** The cell's slot and the placement: the cell learns which tenants are its own. */
  setPlacement(slot: number, slots: number, overrides: [string, number][]): Promise<void>;
  /** Stops registry writes: another process is about to rotate the master key. */
  freezeRegistry(): Promise<void>;
  /** Reopens the rotated registry with the new master key (hex) and accepts writes again. */
  followRotation(masterKeyHex: string): Promise<void>;
}

/** A cell as the supervisor holds it. */
export interface CellLink extends CellControl {
  /** The cell's private socket, for forwarded HTTP requests. */
  readonly socketPath: string;
  /** Keep-alive connections to that socket. */
  readonly agent: Agent;
  /** The cell's process id (the supervisor's own for an in-process cell). */
  readonly pid: number;
  /** Whether it runs in the supervisor's process (tests). */
  readonly inProcess: boolean;
  /** `starting` until it listens, `ready` while it serves, `exited` once its process is gone. */
  readonly state: 'starting' | 'ready' | 'exited';
  /** Settles when the cell is ready (or rejects when it exits first). */
  readonly ready: Promise<void>;
  /**
   * Hands an authenticated chat connection to the cell. Settles `taken` once the cell holds it;
   * `lost` when the cell ended (or got the message without its handle) before it took it: the
   * connection is then still whole in the supervisor, which may hand it to the cell that took the
   * slot over; `unanswered` when the cell said nothing within a bound (it may hold the connection,
   * so the supervisor only lets go of its copy).
   */
  handUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, handoff: UpgradeHandoff): Promise<HandoverOutcome>;
  /** Registers a listener for the cell's end (a crash, a kill, or {@link stop}). */
  onExit(listener: (why: string) => void): void;
  /** Stops the cell gracefully (its sessions close with 1012). */
  stop(): Promise<void>;
}

/** How a handed-over connection fared (see {@link CellLink.handUpgrade}). */
export type HandoverOutcome = 'taken' | 'lost' | 'unanswered';

/** Everything a cell process needs to start. */
export interface ForkOptions {
  config: HostConfig;
  operatorKey: SecretHash;
  socketPath: string;
  slot: number;
  slots: number;
  overrides: [string, number][];
  /** The cell's part of the plugin memory budget, in bytes. */
  memoryBytesMax: number;
  services: SupervisorServices;
  logger: HostLogger;
}

const CELL_MAIN = new URL('./cell-main.ts', import.meta.url);
/** How long a stopping cell has to close its sessions before it is killed. */
const CELL_STOP_MS_MAX = 10_000;
/** How long a cell has to say it took a handed-over connection before the supervisor lets go of it. */
const HANDOVER_MS_MAX = 5_000;

/** Starts a cell process. It is `starting` until its first `ready` message. */
export function forkCell(options: ForkOptions): CellLink {
  const child: ChildProcess = fork(CELL_MAIN, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  let state: CellLink['state'] = 'starting';
  const exitListeners: ((why: string) => void)[] = [];
  let markReady: () => void = () => undefined;
  let markFailed: (error: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    markFailed = reject;
  });
  ready.catch(() => undefined);
  const port = {
    send(message: ChannelMessage): void {
      if (!child.connected) throw new HostError('CELL_UNAVAILABLE', 'the cell process is gone');
      child.send(message);
    },
  };
  const channel: Channel = createChannel(port, options.services as unknown as Record<string, (...args: never[]) => unknown>, (op, error) =>
    options.logger.error({ err: error, op }, 'unexpected error answering a cell'),
  );
  // Connections handed over and not yet taken, by message id: the supervisor keeps its copy of
  // each until the cell says it holds it, so one handed to a cell that dies is not lost.
  const handing = new Map<number, (outcome: HandoverOutcome) => void>();
  let nextHandover = 0;
  child.on('message', (message: ChannelMessage) => {
    if (message.t === 'ready') {
      state = 'ready';
      markReady();
      return;
    }
    if (message.t === 'taken') return void handing.get(message.id)?.(message.taken ? 'taken' : 'lost');
    channel.receive(message);
  });
  // An IPC error (the cell died mid-send) must not reach the supervisor as an unhandled 'error'.
  child.on('error', (error) => options.logger.warn({ err: error, pid: child.pid }, 'cell process error'));
  child.once('exit', (code, signal) => {
    state = 'exited';
    const why = signal === null ? `exited with code ${code}` : `killed by ${signal}`;
    channel.end(`the cell process ${why}`);
    markFailed(new HostError('CELL_UNAVAILABLE', `the cell process ${why} before it was ready`));
    for (const listener of exitListeners) listener(why);
    // After the listeners: the supervisor has given the slot to another cell by now.
    for (const settle of [...handing.values()]) settle('lost');
  });
  child.send({
    t: 'start',
    config: options.config,
    operatorKey: options.operatorKey,
    socketPath: options.socketPath,
    slot: options.slot,
    slots: options.slots,
    overrides: options.overrides,
    memoryBytesMax: options.memoryBytesMax,
  });
  const call = <T>(op: keyof CellControl, ...args: unknown[]): Promise<T> => channel.call<T>(op, ...args);
  return {
    socketPath: options.socketPath,
    agent: new Agent({ keepAlive: true }),
    pid: child.pid ?? -1,
    inProcess: false,
    get state() {
      return state;
    },
    ready,
    handUpgrade(request, socket, head, handoff) {
      const received = Buffer.concat([rawRequestHead(request), head]);
      // Stop reading before the handle leaves: whatever the client sends next waits in the kernel
      // for the cell instead of being read here and lost. (A WebSocket client sends nothing before
      // the 101, so this guards against misbehaving clients only.)
      (socket as Duplex & { _handle?: { readStop?(): number } })._handle?.readStop?.();
      const id = (nextHandover += 1);
      const message: UpgradeMessage = { t: 'upgrade', id, received, handoff };
      return new Promise<HandoverOutcome>((resolve) => {
        // A cell that never answers (hung) must not keep the supervisor's copy open for ever.
        const bound = setTimeout(() => settle('unanswered'), HANDOVER_MS_MAX);
        function settle(outcome: HandoverOutcome): void {
          if (!handing.delete(id)) return;
          clearTimeout(bound);
          // The cell holds its own descriptor now (or may): closing this copy leaves that open.
          if (outcome !== 'lost') socket.destroy();
          resolve(outcome);
        }
        handing.set(id, settle);
        // The supervisor keeps its copy (keepOpen) until the cell has taken the connection; closing
        // a copy of the descriptor then leaves the cell's own open.
        const sent = (error: Error | null): void => {
          // A failed send means the cell is going: 'lost' comes with its exit (or the bound).
          if (error !== null) options.logger.debug({ err: error, pid: child.pid }, 'a connection could not be handed to a cell');
        };
        try {
          if (!child.connected) return settle('lost');
          child.send(message, socket as never, { keepOpen: true }, sent);
        } catch (error) {
          sent(error as Error);
        }
      });
    },
    onExit: (listener) => void exitListeners.push(listener),
    async stop() {
      if (state === 'exited') return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const killer = setTimeout(() => child.kill('SIGKILL'), CELL_STOP_MS_MAX);
      try {
        await call('stop' as keyof CellControl);
      } catch {
        // It may be gone already, or stop mid-call: the exit below is what counts.
      }
      await exited;
      clearTimeout(killer);
    },
    liveSessions: () => call('liveSessions'),
    stats: () => call('stats'),
    metrics: (withProcess) => call('metrics', withProcess),
    closeSessions: (tenantId, code, reason, keyId) => call('closeSessions', tenantId, code, reason, keyId),
    releaseTenant: (tenantId) => call('releaseTenant', tenantId),
    setPlacement: (slot, slots, overrides) => call('setPlacement', slot, slots, overrides),
    freezeRegistry: () => call('freezeRegistry'),
    followRotation: (masterKeyHex) => call('followRotation', masterKeyHex),
  };
}

/** The bytes of a request head Node already parsed, as the client sent them (for the cell to parse again). */
function rawRequestHead(request: IncomingMessage): Buffer {
  const lines = [`${request.method ?? 'GET'} ${request.url ?? '/'} HTTP/${request.httpVersion}`];
  for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) lines.push(`${request.rawHeaders[index]}: ${request.rawHeaders[index + 1]}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** What an in-process cell needs. */
export interface InProcessOptions {
  config: HostConfig;
  registry: Registry;
  masterKeySource: MasterKeySource;
  operatorKey: OperatorKeyCheck;
  socketPath: string;
  services: SupervisorServices;
  /** Whether the cell owns a tenant now (from the supervisor's placement). */
  owns(tenantId: string): boolean;
  hooks: CellHooks;
}

/** An in-process cell link, with the cell itself for tests that reach into it. */
export interface InProcessLink extends CellLink {
  readonly cell: Cell;
}

/** Starts a cell inside this process (tests); it shares the supervisor's registry. */
export async function inProcessCell(options: InProcessOptions): Promise<InProcessLink> {
  const cell = await startCell(options.config, {
    registry: options.registry,
    masterKeySource: options.masterKeySource,
    operatorKey: options.operatorKey,
    cluster: { ...bindServices(options.services), owns: options.owns },
    hooks: options.hooks,
  });
  await listen(cell.server, options.socketPath);
  let state: CellLink['state'] = 'ready';
  const exitListeners: ((why: string) => void)[] = [];
  return {
    cell,
    socketPath: options.socketPath,
    agent: new Agent({ keepAlive: true }),
    pid: process.pid,
    inProcess: true,
    get state() {
      return state;
    },
    ready: Promise.resolve(),
    handUpgrade: (request, socket, head, handoff) => {
      cell.acceptUpgrade(request, socket, head, handoff);
      return Promise.resolve('taken' as const);
    },
    onExit: (listener) => void exitListeners.push(listener),
    async stop() {
      if (state === 'exited') return;
      state = 'exited';
      await cell.close();
      for (const listener of exitListeners) listener('stopped');
    },
    liveSessions: async () => cell.liveSessions(),
    stats: async () => cell.stats(),
    metrics: (withProcess) => cell.observability.metrics.json(withProcess),
    closeSessions: (tenantId, code, reason, keyId) => cell.closeSessions(tenantId, code, reason, keyId),
    releaseTenant: (tenantId) => cell.releaseTenant(tenantId),
    // The placement is read from the supervisor directly, and the registry object is shared.
    setPlacement: async () => undefined,
    freezeRegistry: async () => undefined,
    followRotation: async () => undefined,
  };
}

function bindServices(services: SupervisorServices): SupervisorServices {
  return {
    issueTicket: (grant) => services.issueTicket(grant),
    voidTickets: (tenantId, keyId) => services.voidTickets(tenantId, keyId),
    liveSessions: () => services.liveSessions(),
    renderMetrics: () => services.renderMetrics(),
    rotateMasterKey: (newKey) => services.rotateMasterKey(newKey),
    reportBurner: (tenantId) => services.reportBurner(tenantId),
  };
}

/** Listens on a unix socket path. */
export function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
