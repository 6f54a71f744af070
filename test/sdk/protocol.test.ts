/**
 * One declaration of the wire protocol's frames (host/protocol.ts) for the host and the client
 * library: the module is a leaf (it imports only the error catalog's types), it bundles for
 * browsers on its own, the host's frame code and session and the client import their frame types
 * from it and declare none of their own, and what the host sends is, by type, what the client reads.
 */
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AskResult as HostAskResult, DoneFrame, ReadyFrame, ServerFrame } from '../../host/protocol.ts';
import { CLIENT_FRAME_TYPES } from '../../host/protocol.ts';
import type { AskResult as ClientAskResult, ReadyInfo, Source as ClientSource } from '../../sdk/client/client.ts';

const read = (path: string) => readFileSync(path, 'utf8');

test('host/protocol.ts is a leaf: it imports only types of the error catalog', () => {
  const imports = [...read('host/protocol.ts').matchAll(/^import\b.*$/gm)].map((match) => match[0]);
  assert.equal(imports, ["import type { WireError } from './errors.ts';"]);
});

test('it bundles for browsers by itself, with the frame types a client may send', async () => {
  const result = await build({ entryPoints: ['host/protocol.ts'], bundle: true, write: false, format: 'esm', platform: 'browser', target: ['es2022'], logLevel: 'silent' });
  const code = result.outputFiles[0]?.text ?? '';
  assert.match(code, /"ask",\s*"feedback",\s*"ping"/);
  assert.equal([...CLIENT_FRAME_TYPES], ['ask', 'feedback', 'ping']);
});

test('the host and the client take their frame types from it and declare none themselves', () => {
  const users: [string, RegExp][] = [
    ['host/transport/frames.ts', /\b(type|interface) (ClientFrame|ServerFrame)\b\s*[={<]/],
    ['host/pipeline/session.ts', /\binterface AskResult\b/],
    ['sdk/client/ask-stream.ts', /\binterface (AskResult|Source)\b/],
    ['sdk/client/connection.ts', /\binterface ReadyInfo\b/],
  ];
  for (const [path, duplicate] of users) {
    const source = read(path);
    assert.match(source, /from '(\.\.\/)+(host\/)?protocol\.ts'/, `${path} imports host/protocol.ts`);
    assert.not.match(source, duplicate, `${path} declares no frame type of its own`);
  }
});

test('by type, what the host sends is what the client reads', () => {
  // Compile-time checks (npm test type-checks the tests): these assignments fail to compile when
  // the two sides drift apart.
  const done: DoneFrame = {
    type: 'done', id: 'a1', answer: 'yes', cache: 'miss',
    sources: [{ docId: 'd', chunkId: 'd#0', score: 1, title: 'D', snippet: 'text' }],
    timings: { embedMs: 0, cacheMs: 0, retrievalMs: 0, promptMs: 0, guardMs: 0, modelMs: 0, totalMs: 0 },
  };
  const { type: _type, ...withId } = done;
  const received: ClientAskResult = withId;
  const produced: HostAskResult = received;
  const source: ClientSource | undefined = produced.sources[0];
  const ready: ReadyFrame = { type: 'ready', session: 's', tenant: 't', plugins: { retrieval: 'builtin', prompt: '3' } };
  const { type: _ready, ...info } = ready;
  const readyInfo: ReadyInfo = info;
  const frames: ServerFrame[] = [done, ready, { type: 'pong' }, { type: 'error', code: 'INTERNAL', message: 'm' }];
  assert.is(source?.snippet, 'text');
  assert.is(readyInfo.plugins.prompt, '3');
  assert.is(frames.length, 4);
});

test.run();
