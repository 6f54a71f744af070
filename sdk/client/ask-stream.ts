/**
 * One ask's stream: tokens queue up as frames arrive and an async iterator hands them out; the
 * final result (or the error) settles a promise. Iterating is optional: an ask whose tokens nobody
 * reads still resolves, and its failure does not become an unhandled rejection.
 */
import type { DoneFrame } from '../../host/protocol.ts';
import type { ChatError } from './errors.ts';

/** A source of an answer (host/protocol.ts). */
export type { Source } from '../../host/protocol.ts';

/** The final result of an ask: the host's `done` frame, without its type. */
export type AskResult = Omit<DoneFrame, 'type'>;

/** One ask in progress: iterate `tokens` while it streams; await `result` for the end. */
export interface AskHandle {
  readonly id: string;
  readonly tokens: AsyncIterable<string>;
  readonly result: Promise<AskResult>;
}

/** The side of an ask the connection feeds. */
export interface AskSink {
  push(token: string): void;
  finish(result: AskResult): void;
  fail(error: ChatError): void;
}

/**
 * Creates the handle of ask `id` and the sink that feeds it.
 *
 * @example
 * ```ts
 * const { handle, sink } = createAskStream('a1');
 * sink.push('Hello'); sink.finish(result);
 * for await (const token of handle.tokens) process.stdout.write(token);
 * ```
 */
export function createAskStream(id: string): { handle: AskHandle; sink: AskSink } {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  let failure: ChatError | undefined;
  let settle: { resolve: (result: AskResult) => void; reject: (error: ChatError) => void } | undefined;
  const result = new Promise<AskResult>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined);
  const sink: AskSink = {
    push: (token) => {
      if (finished) return;
      queue.push(token);
      wake?.();
    },
    finish: (value) => {
      if (finished) return;
      finished = true;
      settle?.resolve(value);
      wake?.();
    },
    fail: (error) => {
      if (finished) return;
      finished = true;
      failure = error;
      settle?.reject(error);
      wake?.();
    },
  };
  const tokens: AsyncIterable<string> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) yield next;
        else if (finished) {
          if (failure !== undefined) throw failure;
          return;
        } else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
  return { handle: { id, tokens, result }, sink };
}
