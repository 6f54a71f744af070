/**
 * The entry point of a cell process (forked by the supervisor, links.ts). It waits for its start
 * message, opens the registry and starts the cell, listens at its private socket, then serves: chat
 * connections handed over with their handles, HTTP requests forwarded to the socket, and control
 * calls from the supervisor. It exits when the supervisor's channel closes: a cell never outlives
 * the host that started it.
 */
import type { Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import { createLogger } from '../log.ts';
import { parseMasterKey } from '../storage/keys.ts';
import { openRegistry } from '../storage/master-rotation.ts';
import { startCell, type Cell } from './cell.ts';
import { createChannel } from './channel.ts';
import { listen, type SupervisorServices } from './links.ts';
import { slotOf, type Placement } from './placement.ts';
import type { CellStart, ChannelMessage } from './protocol.ts';

let cell: Cell | undefined;
let slot = -1;
let placement: Placement = { slots: 1, overrides: new Map() };
const early: [ChannelMessage, Socket | undefined][] = [];

const port = {
  send(message: ChannelMessage): void {
    process.send?.(message);
  },
};
const logger = createLogger(process.env['LOG_LEVEL'] ?? 'info');
const call = <T>(op: keyof SupervisorServices, ...args: unknown[]): Promise<T> => channel.call<T>(op, ...args);
const services: SupervisorServices = {
  issueTicket: (grant) => call('issueTicket', grant),
  voidTickets: (tenantId, keyId) => call('voidTickets', tenantId, keyId),
  liveSessions: () => call('liveSessions'),
  renderMetrics: () => call('renderMetrics'),
  rotateMasterKey: (newKey) => call('rotateMasterKey', newKey),
  reportBurner: (tenantId) => call('reportBurner', tenantId),
};
const channel = createChannel(
  port,
  {
    liveSessions: () => required().liveSessions(),
    stats: () => required().stats(),
    metrics: (withProcess: boolean) => required().observability.metrics.json(withProcess),
    closeSessions: (tenantId: string, code: number, reason: string, keyId?: string) => required().closeSessions(tenantId, code, reason, keyId),
    releaseTenant: (tenantId: string) => required().releaseTenant(tenantId),
    setPlacement: (given: number, slots: number, overrides: [string, number][]) => {
      slot = given;
      placement = { slots, overrides: new Map(overrides) };
    },
    freezeRegistry: () => required().authority.registry.freeze(),
    followRotation: (masterKeyHex: string) => required().authority.registry.follow(parseMasterKey(masterKeyHex, 'the rotated master key')),
    stop: async () => {
      await cell?.close();
      setImmediate(() => process.exit(0));
    },
  },
  (op, error) => logger.error({ err: error, op }, 'unexpected error answering the supervisor'),
);

function required(): Cell {
  if (cell === undefined) throw new Error('the cell has not started');
  return cell;
}

async function start(message: CellStart): Promise<void> {
  const config = message.config;
  slot = message.slot;
  placement = { slots: message.slots, overrides: new Map(message.overrides) };
  const cellLogger = createLogger(config.logLevel);
  const { registry, source } = openRegistry(config.dataDir, config.masterKey);
  cell = await startCell(config, {
    registry,
    masterKeySource: source,
    operatorKey: { hash: message.operatorKey },
    cluster: { ...services, owns: (tenantId) => slot >= 0 && slotOf(placement, tenantId) === slot },
    hooks: { logger: cellLogger },
    memoryBytesMax: message.memoryBytesMax,
  });
  try {
    unlinkSync(message.socketPath);
  } catch {
    // Nothing was there: the usual case.
  }
  await listen(cell.server, message.socketPath);
  port.send({ t: 'ready' });
  for (const [queued, handle] of early.splice(0)) receive(queued, handle);
}

function receive(message: ChannelMessage, handle: Socket | undefined): void {
  if (message.t === 'start') {
    start(message).catch((error: unknown) => {
      logger.fatal({ err: error }, 'the cell could not start');
      process.exit(1);
    });
    return;
  }
  if (message.t === 'upgrade') {
    if (handle === undefined) return port.send({ t: 'taken', id: message.id, taken: false });
    if (cell === undefined) return void early.push([message, handle]);
    cell.acceptSocket(handle, Buffer.from(message.received), message.handoff);
    port.send({ t: 'taken', id: message.id, taken: true });
    return;
  }
  channel.receive(message);
}

process.on('message', (message: ChannelMessage, handle?: Socket) => receive(message, handle));
// The supervisor is gone (or closed the channel): so is this cell.
process.on('disconnect', () => process.exit(0));
