/**
 * Test fixtures for model providers: a real OpenAI-style HTTP server on 127.0.0.1 port 0 whose
 * behaviour each test scripts byte by byte (test/helpers/model-server.ts only streams well-formed
 * answers). uvu has no timeouts, so every test runs under a deadline and closes its server, and a
 * hung provider fails the test instead of hanging it.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HostError } from '../../host/errors.ts';
import * as assert from 'uvu/assert';
import { within } from '../helpers/deadline.ts';

/** One request the fake provider received. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** Scripts the answer to one request; `body` is the parsed JSON request body. */
export type ProviderHandler = (request: http.IncomingMessage, response: http.ServerResponse, body: unknown) => void | Promise<void>;

/** A running fake provider. */
export interface FakeProvider {
  /** Base URL to give the model, e.g. `http://127.0.0.1:41234/v1`. */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Resolves when the client's connection for the n-th request (0-based) has closed. */
  connectionClosed(index: number): Promise<void>;
}

/** Milliseconds any one test may take before it fails: a guard against a hang, not a speed test. */
export const TEST_DEADLINE_MS = 10_000;

/**
 * Starts a fake provider, runs `body` against it under {@link TEST_DEADLINE_MS}, and always closes
 * the server (dropping open connections) afterwards.
 * @throws whatever `body` throws, or a deadline error.
 */
export async function withProvider(handler: ProviderHandler, body: (provider: FakeProvider) => Promise<void>): Promise<void> {
  const requests: ReceivedRequest[] = [];
  const closed: Array<Promise<void>> = [];
  const server = http.createServer((request, response) => {
    closed.push(new Promise((resolve) => request.socket.once('close', () => resolve())));
    const pieces: Buffer[] = [];
    request.on('data', (piece: Buffer) => pieces.push(piece));
    request.on('end', () => {
      const text = Buffer.concat(pieces).toString('utf8');
      const parsed: unknown = text === '' ? undefined : JSON.parse(text);
      requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: parsed });
      // A handler that throws (e.g. an assertion that no request should arrive) drops the connection.
      void (async () => handler(request, response, parsed))().catch(() => response.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const provider: FakeProvider = {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    connectionClosed: (index) => within(closed[index] ?? Promise.reject(new Error(`no request ${index}`)), 'connection close'),
  };
  try {
    await within(body(provider), 'test', TEST_DEADLINE_MS);
  } finally {
    server.closeAllConnections();
    await within(new Promise<void>((resolve) => server.close(() => resolve())), 'server close');
  }
}

/**
 * A port on 127.0.0.1 that nothing listens on (it was bound, then released).
 * @throws never in practice
 */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts an event-stream response. */
export function startEventStream(response: http.ServerResponse): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
}

/** The SSE event of one OpenAI chat-completion chunk carrying `content`. */
export function deltaEvent(content: string): string {
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] })}\n\n`;
}

/** Waits `ms` so that consecutive writes reach the client as separate TCP reads. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Joins every piece a stream yields. */
export async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const pieces: string[] = [];
  for await (const piece of stream) pieces.push(piece);
  return pieces;
}

/**
 * Asserts that `promise` rejects with a HostError of `code` whose message matches `message`.
 * @throws {assert.Assertion} otherwise.
 */
export async function assertHostError(promise: Promise<unknown>, code: string, message: RegExp): Promise<HostError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, HostError);
    const hostError = error as HostError;
    assert.is(hostError.code, code);
    assert.match(hostError.message, message);
    return hostError;
  }
  assert.unreachable(`expected HostError ${code}`);
  throw new Error('unreachable');
}
