/**
 * Calls over the supervisor–cell IPC channel: `call(op, ...args)` on one side runs the handler of
 * that name on the other and settles with its result. A HostError crosses as itself (its code and
 * message), anything else as INTERNAL (the side it happened on logs it). Calls still waiting when
 * the channel ends fail with CELL_UNAVAILABLE.
 */
import { HostError, type ErrorCode, ERROR_CATALOG } from '../errors.ts';
import type { CallMessage, ChannelMessage, ResultMessage } from './protocol.ts';

/** Something that can send channel messages (a child process, or `process` in the child). */
export interface ChannelPort {
  send(message: ChannelMessage): void;
}

/** Handlers by operation name. */
export type Handlers = Record<string, (...args: never[]) => unknown>;

/** One side of the channel. */
export interface Channel {
  /** Calls `op` on the other side. @throws {HostError} what the handler threw, or CELL_UNAVAILABLE. */
  call<T>(op: string, ...args: unknown[]): Promise<T>;
  /** Feeds a received message; returns false when it was not a call or result. */
  receive(message: ChannelMessage): boolean;
  /** Fails every call in flight (the other side is gone). */
  end(reason: string): void;
}

/** Creates one side of a channel over `port`, answering calls with `handlers`; `onUnknown` logs unexpected errors. */
export function createChannel(port: ChannelPort, handlers: Handlers, onUnknown: (op: string, error: unknown) => void): Channel {
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>();
  let nextId = 1;
  let ended: string | undefined;
  const answer = async (message: CallMessage): Promise<void> => {
    let result: ResultMessage;
    try {
      const handler = handlers[message.op];
      if (handler === undefined) throw new Error(`unknown channel operation ${message.op}`);
      result = { t: 'result', id: message.id, ok: true, value: await (handler as (...args: unknown[]) => unknown)(...message.args) };
    } catch (error) {
      if (!(error instanceof HostError)) onUnknown(message.op, error);
      result =
        error instanceof HostError
          ? { t: 'result', id: message.id, ok: false, code: error.code, message: error.message, ...(error.detail === undefined ? {} : { detail: { ...error.detail } }) }
          : { t: 'result', id: message.id, ok: false, code: undefined, message: 'internal error' };
    }
    try {
      port.send(result);
    } catch {
      // The other side is gone; its calls fail there.
    }
  };
  return {
    call<T>(op: string, ...args: unknown[]): Promise<T> {
      if (ended !== undefined) return Promise.reject(new HostError('CELL_UNAVAILABLE', ended));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        try {
          port.send({ t: 'call', id, op, args });
        } catch {
          pending.delete(id);
          reject(new HostError('CELL_UNAVAILABLE', `the channel is closed (${op})`));
        }
      });
    },
    receive(message) {
      if (message.t === 'call') {
        void answer(message);
        return true;
      }
      if (message.t !== 'result') return false;
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (waiter === undefined) return true;
      if (message.ok) waiter.resolve(message.value);
      else if (message.code !== undefined && message.code in ERROR_CATALOG) waiter.reject(new HostError(message.code as ErrorCode, message.message, message.detail));
      else waiter.reject(new HostError('INTERNAL', message.message));
      return true;
    },
    end(reason) {
      ended = reason;
      for (const waiter of pending.values()) waiter.reject(new HostError('CELL_UNAVAILABLE', reason));
      pending.clear();
    },
  };
}
