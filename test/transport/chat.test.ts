/**
 * The chat handler's limits with a socket double: the back-pressure limit (the test sets the queued
 * bytes: at the limit the connection stays up; one byte over, it closes with 1008) and the frames
 * held while a session starts (at the limit all are answered once it is ready; one more closes).
 */
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import type { Session } from '../../host/pipeline/session.ts';
import { serveChat } from '../../host/transport/chat.ts';
import type { ChatSocket } from '../../host/transport/websocket.ts';
import { pack } from '../helpers/raw-socket.ts';
import { eventually } from '../helpers/wait.ts';

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

const limits = { asksInFlightPerSessionMax: 4, socketBufferedBytesMax: LIMITS.socketBufferedBytesMax, framesPerWindowMax: 100, frameWindowMsMax: 10_000, framesBeforeReadyMax: LIMITS.framesBeforeReadyMax };

async function run(buffered: number) {
  const fake = fakeSocket(() => buffered);
  await serveChat({
    socket: fake.socket,
    openSession: async () => session,
    tenantId: 't_test',
    jsonFrames: false,
    limits,
    logger: pino({ level: 'silent' }),
    onEnd: () => undefined,
    onFeedback: () => undefined,
  });
  fake.deliver({ type: 'ask', id: 'q', text: 'hello' });
  // Until the ask is answered (ready, token, done) or the connection is closed, whichever comes.
  await eventually(() => fake.sent.length >= 3 || fake.closes.length > 0, 'the ask answered or the connection closed');
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

/** Sends `count` pings while the session start is held, then lets it finish. */
async function pingsBeforeReady(count: number) {
  const fake = fakeSocket(() => 0);
  let open: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (open = resolve));
  const serving = serveChat({
    socket: fake.socket,
    openSession: async () => {
      await started;
      return session;
    },
    tenantId: 't_test',
    jsonFrames: false,
    limits,
    logger: pino({ level: 'silent' }),
    onEnd: () => undefined,
    onFeedback: () => undefined,
  });
  for (let index = 0; index < count; index += 1) fake.deliver({ type: 'ping' });
  open();
  await serving;
  return fake;
}

test('frames before ready at the limit: all held and answered once the session is ready', async () => {
  const fake = await pingsBeforeReady(LIMITS.framesBeforeReadyMax);
  assert.equal(fake.closes, []);
  // ready, then one pong per held ping
  assert.is(fake.sent.length, 1 + LIMITS.framesBeforeReadyMax);
});

test('frames before ready one over the limit: PROTOCOL_RATE_LIMIT and close 1008', async () => {
  const fake = await pingsBeforeReady(LIMITS.framesBeforeReadyMax + 1);
  assert.equal(fake.closes[0], [1008, 'PROTOCOL_RATE_LIMIT']);
});

test.run();
