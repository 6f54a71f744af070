/**
 * A real OpenAI-compatible HTTP server on 127.0.0.1 port 0 for feature tests: it streams a scripted
 * answer over SSE, and can hold every answer until the test releases it (to keep asks in flight).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running model server. */
export interface ModelServer {
  /** Base URL for MODEL_URL, e.g. http://127.0.0.1:40000/v1 */
  url: string;
  /** Request bodies received, parsed. */
  requests: any[];
  /** Lets held answers go (and every later one). */
  release(): void;
  close(): Promise<void>;
}

/** Starts the server. `answer` gives the tokens for a request; `hold` keeps answers until release(). */
export async function startModelServer(options: { answer?: (body: any) => string[]; hold?: boolean } = {}): Promise<ModelServer> {
  const requests: any[] = [];
  let released = options.hold !== true;
  const waiting: (() => void)[] = [];
  const server = createServer(async (request: IncomingMessage, response) => {
    let text = '';
    for await (const part of request) text += part;
    const body = JSON.parse(text);
    requests.push(body);
    if (!released) await new Promise<void>((resolve) => waiting.push(resolve));
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    const tokens = options.answer?.(body) ?? ['Hello ', 'from ', 'the ', 'model.'];
    for (const token of tokens) response.write(`data: ${JSON.stringify({ choices: [{ delta: { content: token } }] })}\n\n`);
    response.end('data: [DONE]\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    release: () => {
      released = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
