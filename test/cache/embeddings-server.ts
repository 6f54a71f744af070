/**
 * A real OpenAI-compatible `POST /embeddings` server on 127.0.0.1 port 0 for tests. Its vectors are
 * the local embedder's, scaled by 3 (so the client must normalise), so similarities through it
 * equal the local embedder's. It records every request and can be told to misbehave.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';

/** How the server answers the next requests. */
export type EmbeddingsMode = 'ok' | 'http-500' | 'not-json' | 'short' | 'nan' | 'silent' | 'huge';

/** A running embeddings server. */
export interface EmbeddingsServer {
  /** Base URL for EMBED_URL, e.g. http://127.0.0.1:40000/v1 */
  url: string;
  /** Every request body (parsed) with its authorization header. */
  requests: { body: { model: string; input: string[] }; authorization: string | undefined }[];
  /** Total texts embedded so far. */
  readonly texts: number;
  mode: EmbeddingsMode;
  close(): Promise<void>;
}

/** Starts the server with vectors of `dim` dimensions. */
export async function startEmbeddingsServer(dim = 256): Promise<EmbeddingsServer> {
  const embedder = createLocalEmbedder({ dim });
  const state: EmbeddingsServer = {
    url: '',
    requests: [],
    texts: 0,
    mode: 'ok',
    close: async () => undefined,
  };
  let texts = 0;
  // Built once: an oversized body (~8 MB) must not take longer to make than the client waits.
  const huge = JSON.stringify({ data: [{ index: 0, embedding: new Array(2_000_000).fill(0.5) }] });
  const server = createServer(async (request: IncomingMessage, response) => {
    let raw = '';
    for await (const part of request) raw += part;
    const body = JSON.parse(raw) as { model: string; input: string[] };
    state.requests.push({ body, authorization: request.headers['authorization'] });
    if (state.mode === 'silent') return;
    if (state.mode === 'http-500') return void response.writeHead(500).end('{"error":"model not loaded"}');
    if (state.mode === 'not-json') return void response.writeHead(200).end('<html>');
    if (state.mode === 'huge') return void response.writeHead(200).end(huge);
    texts += body.input.length;
    const data = body.input.map((text, index) => ({
      object: 'embedding',
      index,
      embedding: Array.from(embedder.embed(text), (value) => (state.mode === 'nan' && index === 0 ? 'NaN' : value * 3)),
    }));
    // Answered in reverse order: the client must place vectors by `index`, not by position.
    const shown = state.mode === 'short' ? data.slice(1) : data.reverse();
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ object: 'list', data: shown, model: body.model }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  Object.defineProperty(state, 'texts', { get: () => texts });
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
