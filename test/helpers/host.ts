/**
 * Starts a real host for a test: LMDB in a fresh temp directory, HTTP and WebSocket on 127.0.0.1
 * port 0, the built-in plugins compiled from source by `npm run build`. Helpers speak to it over
 * the real network, as a client would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type HostConfig } from '../../host/config.ts';
import { startServer, type HostServer, type ServerOptions } from '../../host/server.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { connect, type ChatClient } from '../../sdk/client/node.ts';
import { within } from './deadline.ts';
import { writesLanded } from './wait.ts';

/** The operator key every test host uses. */
export const OPERATOR_KEY = 'test-operator-key-0123456789';

/** A running test host and helpers bound to it. */
export interface TestHost {
  server: HostServer;
  url: string;
  dataDir: string;
  config: HostConfig;
  /** Creates a tenant over HTTP; returns its id and API key. */
  createTenant(name: string): Promise<{ id: string; apiKey: string }>;
  /** Sends a request with a bearer key; returns status and parsed JSON. */
  request(method: string, path: string, key: string | undefined, body?: unknown): Promise<{ status: number; body: any }>;
  /** Posts documents for a tenant; asserts success. */
  ingest(apiKey: string, documents: unknown[]): Promise<any>;
  /** Opens a chat client (the SDK's Node client). */
  chat(apiKey: string): Promise<ChatClient>;
  /** Asks one question on a client and returns tokens and result. */
  ask(client: ChatClient, text: string): Promise<{ tokens: string[]; result: Awaited<ChatClient extends { ask(t: string): { result: infer R } } ? R : never> }>;
  /**
   * Waits until the asynchronous writes the host has issued so far in the tenant's environment
   * (semantic cache entries, cached embeddings, recency) are on disk.
   */
  writesLanded(tenantId: string): Promise<void>;
  /** Stops the host; removes the data directory unless `keepData`. */
  close(options?: { keepData?: boolean }): Promise<void>;
}

/** Options for {@link startTestHost}. */
export interface TestHostOptions extends ServerOptions {
  dataDir?: string;
  config?: Partial<HostConfig>;
  /**
   * Run the cells as processes, as `npm start` does (`config.workers` of them, default 2). Without
   * it the host runs one cell in the test's own process, which is what tests that use hooks or
   * reach into the cell (`server.authority`) need.
   */
  processes?: boolean;
}

/** Starts a host on port 0 in a temp directory. */
export async function startTestHost(options: TestHostOptions = {}): Promise<TestHost> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'ctx-test-'));
  const config = loadConfig({}, { port: 0, dataDir, operatorKey: OPERATOR_KEY, demo: false, logLevel: 'silent', workers: 2, ...options.config });
  const { processes, dataDir: _dataDir, config: _config, ...hooks } = options;
  const server = await startServer(config, { logger: pino({ level: process.env['CTX_TEST_LOG'] ?? 'silent' }), ...hooks, inProcess: processes !== true });
  const url = server.url;
  const clients: ChatClient[] = [];
  const request: TestHost['request'] = async (method, path, key, body) => {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers['authorization'] = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await within(
      fetch(url + path, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) }),
      `${method} ${path}`,
    );
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  return {
    server,
    url,
    dataDir,
    config,
    request,
    createTenant: async (name) => {
      const response = await request('POST', '/v1/tenants', OPERATOR_KEY, { name });
      if (response.status !== 201) throw new Error(`create tenant failed: ${JSON.stringify(response.body)}`);
      return { id: response.body.tenant.id, apiKey: response.body.apiKey };
    },
    ingest: async (apiKey, documents) => {
      const response = await request('POST', '/v1/documents', apiKey, { documents });
      if (response.status !== 200) throw new Error(`ingest failed: ${JSON.stringify(response.body)}`);
      return response.body;
    },
    chat: async (apiKey) => {
      const client = await within(connect({ url, apiKey }), 'chat connect');
      clients.push(client);
      return client;
    },
    ask: async (client, text) => {
      const handle = client.ask(text);
      const tokens: string[] = [];
      // The token stream fails with the same error as `result`; that one is reported.
      const collect = (async () => {
        for await (const token of handle.tokens) tokens.push(token);
      })().catch(() => undefined);
      const result = await within(handle.result, `ask ${JSON.stringify(text)}`);
      await collect;
      return { tokens, result };
    },
    writesLanded: async (tenantId) => {
      const scope = mintScopeForOperator(server.authority, operatorFromLocalAccess(), tenantId);
      try {
        await writesLanded(scope.store.semanticCache);
      } finally {
        scope.release();
      }
    },
    close: async (closeOptions = {}) => {
      for (const client of clients) client.close();
      await server.close();
      if (closeOptions.keepData !== true && options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
