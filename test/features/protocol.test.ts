/**
 * The wire protocol under bad input: every malformed frame gets an `error` frame with its stable
 * code and the connection keeps working; hard limits close it with 1008/1009. Each limit is tested
 * at the limit (passes) and one over (fails with its code).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';
import { mustOpen, openRaw, pack } from '../helpers/raw-socket.ts';

let host: TestHost;
let model: ModelServer;
let tenant: { id: string; apiKey: string };

test.before(async () => {
  model = await startModelServer({ hold: true });
  host = await startTestHost({
    config: { modelUrl: model.url, modelName: 'test-model' },
    limits: { asksInFlightPerSessionMax: 2, framesPerWindowMax: 40, sessionsPerTenantMax: 3 },
  });
  tenant = await host.createTenant('Protocol Co');
  await host.ingest(tenant.apiKey, [{ id: 'd1', title: 'Doc', text: 'The sky is blue because of Rayleigh scattering.' }]);
});
test.after(async () => {
  await host.close();
  await model.close();
});

const isError = (code: string) => (frame: any) => frame.type === 'error' && frame.code === code;

test('malformed frames get their codes and the connection keeps working', async () => {
  const socket = await mustOpen(host.url, tenant.apiKey);
  const cases: [Buffer | string, string, RegExp][] = [
    [Buffer.from([0x92, 0x01]), 'PROTOCOL_BAD_ENCODING', /not valid msgpack/],
    ['{"type":', 'PROTOCOL_BAD_ENCODING', /not valid UTF-8 JSON/],
    [pack([1, 2, 3]), 'PROTOCOL_BAD_FRAME', /must be an object/],
    [pack({ type: 'teleport' }), 'PROTOCOL_UNKNOWN_TYPE', /unknown frame type "teleport"/],
    // A type that is not a string is a malformed frame, whatever it is (here an object whose
    // toString is not callable, which String() cannot convert).
    ['{"type":{"toString":1}}', 'PROTOCOL_BAD_FRAME', /^frame type must be a string, got object$/],
    [pack({ type: 7, id: 'n1' }), 'PROTOCOL_BAD_FRAME', /^frame type must be a string, got number$/],
    [pack({ type: null }), 'PROTOCOL_BAD_FRAME', /^frame type must be a string, got null$/],
    [pack({ id: 'n2' }), 'PROTOCOL_BAD_FRAME', /^frame type must be a string, got undefined$/],
    [pack({ type: 'ask', id: 'q1' }), 'PROTOCOL_BAD_FRAME', /ask.text must be a non-empty string/],
    [pack({ type: 'ask', text: 'hi' }), 'PROTOCOL_BAD_FRAME', /id must be a string/],
    [pack({ type: 'ask', id: 'q2', text: 'hi', extra: 1 }), 'PROTOCOL_BAD_FRAME', /unknown field "extra"/],
    [pack({ type: 'ask', id: 'q3', text: 'x'.repeat(LIMITS.askTextCharsMax + 1) }), 'PROTOCOL_BAD_FRAME', /limit 4000/],
    [pack({ type: 'feedback', id: 'q4', rating: 5 }), 'PROTOCOL_BAD_FRAME', /rating must be 1 or -1/],
    [pack({ type: 'feedback', id: 'never-asked', rating: 1 }), 'PROTOCOL_BAD_FRAME', /names no recent answer/],
  ];
  for (const [data, code, message] of cases) {
    socket.sendRaw(data);
    const frame = await socket.next((candidate) => candidate.type === 'error', code);
    assert.equal(frame.code, code);
    assert.match(frame.message, message);
  }
  socket.sendFrame({ type: 'ping' });
  assert.equal((await socket.next()).type, 'pong');
  socket.close();
});

test('ask text at the limit is accepted; the error names the ask id when one over', async () => {
  const socket = await mustOpen(host.url, tenant.apiKey);
  socket.sendFrame({ type: 'ask', id: 'over', text: 'y'.repeat(LIMITS.askTextCharsMax + 1) });
  const over = await socket.next((frame) => frame.type === 'error');
  assert.equal(over.id, 'over');
  model.release();
  socket.sendFrame({ type: 'ask', id: 'at', text: 'sky '.repeat(LIMITS.askTextCharsMax / 4) });
  const done = await socket.next((frame) => frame.type === 'done' || frame.type === 'error', 'done');
  assert.equal(done.type, 'done');
  socket.close();
});

test('frame bytes: at the limit the frame is read; one over closes with 1009', async () => {
  const socket = await mustOpen(host.url, tenant.apiKey);
  const atLimit = Buffer.alloc(LIMITS.frameBytesMax, 0x20);
  socket.sendRaw(atLimit.toString('utf8'));
  assert.equal((await socket.next(isError('PROTOCOL_BAD_ENCODING'))).code, 'PROTOCOL_BAD_ENCODING');
  socket.sendRaw(Buffer.alloc(LIMITS.frameBytesMax + 1, 0x20));
  const closed = await socket.closed;
  assert.equal(closed.code, 1009);
});

test('asks in flight: at the limit both run; one over gets PROTOCOL_TOO_MANY_IN_FLIGHT', async () => {
  const held = await startModelServer({ hold: true });
  const second = await startTestHost({ config: { modelUrl: held.url, modelProvider: 'openai' }, limits: { asksInFlightPerSessionMax: 2 } });
  try {
    const t = await second.createTenant('Busy');
    const socket = await mustOpen(second.url, t.apiKey);
    socket.sendFrame({ type: 'ask', id: 'a1', text: 'one' });
    socket.sendFrame({ type: 'ask', id: 'a1', text: 'dup' });
    const duplicate = await socket.next(isError('PROTOCOL_DUPLICATE_ID'));
    assert.equal(duplicate.id, 'a1');
    socket.sendFrame({ type: 'ask', id: 'a2', text: 'two' });
    socket.sendFrame({ type: 'ask', id: 'a3', text: 'three' });
    const refused = await socket.next(isError('PROTOCOL_TOO_MANY_IN_FLIGHT'));
    assert.equal(refused.id, 'a3');
    assert.match(refused.message, /limit 2/);
    held.release();
    const done = [await socket.next((f) => f.type === 'done'), await socket.next((f) => f.type === 'done')];
    assert.equal(done.map((frame) => frame.id).sort(), ['a1', 'a2']);
    assert.equal(done[0].answer, 'Hello from the model.');
    socket.close();
  } finally {
    await second.close();
    await held.close();
  }
});

test('sessions per tenant: at the limit the session opens; one over is closed with 1008', async () => {
  const sockets = [];
  for (let i = 0; i < 3; i += 1) sockets.push(await mustOpen(host.url, tenant.apiKey));
  // The fourth upgrade succeeds at the HTTP level, then gets the error frame and a 1008 close.
  const outcome = await openRaw(host.url, { key: tenant.apiKey, waitReady: false });
  assert.ok('socket' in outcome);
  if ('socket' in outcome) {
    const error = await outcome.socket.next(isError('TENANT_SESSION_LIMIT'));
    assert.match(error.message, /limit 3/);
    assert.equal((await outcome.socket.closed).code, 1008);
  }
  for (const socket of sockets) socket.close();
});

test('frame rate: at the limit frames are answered; one over closes with 1008', async () => {
  const busy = await startTestHost({ limits: { framesPerWindowMax: 5, frameWindowMsMax: 60_000 } });
  try {
    const t = await busy.createTenant('Chatty');
    const socket = await mustOpen(busy.url, t.apiKey);
    for (let i = 0; i < 5; i += 1) socket.sendFrame({ type: 'ping' });
    for (let i = 0; i < 5; i += 1) assert.equal((await socket.next()).type, 'pong');
    socket.sendFrame({ type: 'ping' });
    const error = await socket.next(isError('PROTOCOL_RATE_LIMIT'));
    assert.match(error.message, /more than 5 frames/);
    assert.equal((await socket.closed).code, 1008);
  } finally {
    await busy.close();
  }
});

test('JSON text frames work like msgpack frames', async () => {
  const socket = await mustOpen(host.url, tenant.apiKey, '?encoding=json');
  socket.sendRaw(JSON.stringify({ type: 'ping' }));
  assert.equal((await socket.next()).type, 'pong');
  socket.close();
});

test.run();
