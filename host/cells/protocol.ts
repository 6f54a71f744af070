/**
 * The messages between the supervisor and a cell process over their private IPC channel (Node's
 * `fork` channel with structured-clone serialization, so Maps and byte arrays travel as they are).
 * A leaf module of types: both sides import it, it imports nothing of theirs.
 */
import type { HostConfig } from '../config.ts';
import type { SecretHash } from '../storage/keys.ts';
import type { UpgradeHandoff } from '../tenants/scope.ts';

/** What a cell is told at start. */
export interface CellStart {
  t: 'start';
  config: HostConfig;
  /** The operator key's hash (the supervisor holds the key's source). */
  operatorKey: SecretHash;
  /** Where the cell listens for the HTTP requests the supervisor forwards (a socket in a private directory). */
  socketPath: string;
  /** The cell's slot, or -1 for a standby that serves nobody until it is given one. */
  slot: number;
  /** The current placement (slots and overrides). */
  slots: number;
  overrides: [string, number][];
  /** The cell's part of the host's plugin memory budget, in bytes. */
  memoryBytesMax: number;
}

/**
 * A chat connection handed over with the handle (the bytes the supervisor read: its request head and
 * any more). The cell answers with an {@link UpgradeTakenMessage} of the same id.
 */
export interface UpgradeMessage {
  t: 'upgrade';
  id: number;
  received: Uint8Array;
  handoff: UpgradeHandoff;
}

/**
 * The cell holds a handed-over connection (`taken`), or got the message without its handle. Until
 * this arrives the supervisor keeps its own copy of the connection, so a cell that dies before
 * taking it loses nothing: the supervisor hands the connection to the cell that replaces it.
 */
export interface UpgradeTakenMessage {
  t: 'taken';
  id: number;
  taken: boolean;
}

/** A call from one side to the other; answered by a {@link ResultMessage} with the same id. */
export interface CallMessage {
  t: 'call';
  id: number;
  op: string;
  args: unknown[];
}

/** The answer to a call. An error carries its catalog code, so a HostError crosses as itself. */
export type ResultMessage =
  | { t: 'result'; id: number; ok: true; value: unknown }
  | { t: 'result'; id: number; ok: false; code: string | undefined; message: string; detail?: Record<string, unknown> };

/** The cell has started and listens at its socket path. */
export interface ReadyMessage {
  t: 'ready';
}

/** Any message on the channel. */
export type ChannelMessage = CellStart | UpgradeMessage | UpgradeTakenMessage | CallMessage | ResultMessage | ReadyMessage;
