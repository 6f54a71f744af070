/**
 * The chat handler's back-pressure limit, with a socket double whose queued bytes the test sets:
 * at the limit the connection stays up; one byte over, it closes with 1008.
 */
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import type { Session } from '../../host/pipeline/session.ts';
import { serveChat } from '../../host/transport/chat.ts';
import type { ChatSocket } from '../../host/transport/websocket.ts';
import { pack } from '../helpers/raw-socket.ts';

function fakeSocket(buffered: () => number) {
  const sent: unknown[] = [];
  const closes: [number, string][] = [];
  let onMessage: (data: Uint8Array, isBinary: boolean) => void = () => undefined;
  const socket: ChatSocket = {
    send: (data) => sent.push(data),
    close: (code, reason) => closes.push([code, reason]),
    onMessage: (listener) => (onMessage = listener),
    onClose: () => undefined,
    get bufferedBytes() {
      return buffered();
    },
  };
  return { socket, sent, closes, deliver: (frame: unknown) => onMessage(pack(frame), true) };
}

const session = {
  pluginInfo: { retrieval: 'r', prompt: 'p' },
  ask: async (_id: string, _text: string, sink: (text: string) => void) => {
    sink('token ');
    return { answer: 'token ', sources: [], cache: 'miss' as const, timings: {} };
  },
  close: async () => undefined,
} as unknown as Session;

async function run(buffered: number) {
  const fake = fakeSocket(() => buffered);
  await serveChat({
    socket: fake.socket,
    openSession: async () => session,
    tenantId: 't_test',
    jsonFrames: false,
    limits: { asksInFlightPerSessionMax: 4, socketBufferedBytesMax: LIMITS.socketBufferedBytesMax, framesPerWindowMax: 100, frameWindowMsMax: 10_000 },
    logger: pino({ level: 'silent' }),
    onEnd: () => undefined,
    onFeedback: () => undefined,
  });
  fake.deliver({ type: 'ask', id: 'q', text: 'hello' });
  await new Promise((resolve) => setTimeout(resolve, 10));
  return fake;
}

test('queued bytes at the limit: the connection stays up', async () => {
  const fake = await run(LIMITS.socketBufferedBytesMax);
  assert.equal(fake.closes, []);
  assert.ok(fake.sent.length >= 3, 'ready, token and done were sent');
});

test('queued bytes one over the limit: closed with 1008', async () => {
  const fake = await run(LIMITS.socketBufferedBytesMax + 1);
  assert.equal(fake.closes[0], [1008, 'client is not reading']);
});

test.run();
