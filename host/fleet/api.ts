/**
 * The fleet controller's operator HTTP API (JSON; the hosts' operator key as a bearer token). It
 * listens on loopback by default: it steers every host, so it belongs on the operators' network only.
 *
 * | route | does |
 * |---|---|
 * | `GET /fleet` | hosts (health, router state, tenants, sessions), moves in progress, recent moves |
 * | `POST /fleet/tenants` `{name}` | creates a tenant on the least-loaded healthy host |
 * | `POST /fleet/moves` `{tenant, to}` | moves a tenant; answers once the move is done |
 * | `POST /fleet/moves/:id/resume`, `…/rollback` | drives on, or undoes, a move cut short |
 * | `POST /fleet/hosts` `{name, url}` | adds a host and reloads the router |
 * | `POST /fleet/refresh` | relearns the placement from the hosts and corrects the router's map |
 * | `POST /fleet/rebalance[?dryRun=1]` | the fewest moves that even the hosts out (run one after another) |
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HostError } from '../errors.ts';
import type { HostLogger } from '../log.ts';
import { hashSecret, verifySecret } from '../storage/keys.ts';
import { bearerToken, readJson, sendError, sendJson } from '../transport/http.ts';
import type { FleetController } from './controller.ts';

/** A listening controller API. */
export interface FleetApi {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Serves the controller's API on `host:port` (port 0 picks a free one).
 * @throws {HostError} CONFIG_INVALID when the port cannot be opened.
 */
export async function serveFleetApi(controller: FleetController, options: { host: string; port: number; operatorKey: string; logger?: HostLogger }): Promise<FleetApi> {
  const keyHash = hashSecret(options.operatorKey);
  const server = createServer((request, response) => {
    request.on('error', () => undefined);
    response.on('error', () => undefined);
    handle(request)
      .then(({ status, body }) => sendJson(response, status, body))
      .catch((error: unknown) => sendError(response, error, (unknown) => options.logger?.error({ err: unknown }, 'unexpected error in the fleet API')));
  });

  async function handle(request: IncomingMessage): Promise<{ status: number; body: unknown }> {
    if (!verifySecret(bearerToken(request), keyHash)) throw new HostError('AUTH_INVALID_KEY', 'the operator key is not valid');
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/fleet') return { status: 200, body: await controller.view() };
    if (method === 'POST' && path === '/fleet/tenants') {
      const { name } = fields(await readJson(request, 4096), ['name']);
      return { status: 201, body: await controller.createTenant(String(name)) };
    }
    if (method === 'POST' && path === '/fleet/moves') {
      const { tenant, to } = fields(await readJson(request, 4096), ['tenant', 'to']);
      return { status: 200, body: await controller.moveTenant(String(tenant), String(to)) };
    }
    const step = /^\/fleet\/moves\/([^/]+)\/(resume|rollback)$/.exec(path);
    if (method === 'POST' && step !== null) {
      const id = decodeURIComponent(step[1] ?? '');
      return { status: 200, body: step[2] === 'resume' ? await controller.resume(id) : await controller.rollback(id) };
    }
    if (method === 'POST' && path === '/fleet/hosts') {
      const { name, url } = fields(await readJson(request, 4096), ['name', 'url']);
      await controller.addHost({ name: String(name), url: String(url) });
      return { status: 201, body: { hosts: controller.hosts } };
    }
    if (method === 'POST' && path === '/fleet/refresh') return { status: 200, body: await controller.refresh() };
    if (method === 'POST' && path === '/fleet/rebalance') {
      const dryRun = new URL(request.url ?? '/', 'http://localhost').searchParams.get('dryRun') === '1';
      return { status: 200, body: await controller.rebalance(dryRun) };
    }
    throw new HostError('HTTP_NOT_FOUND', `no fleet route for ${method} ${path}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new HostError('CONFIG_INVALID', `the fleet API cannot listen on ${options.host}:${options.port} (${error.code ?? error.message})`)));
    server.listen(options.port, options.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The named string fields of a JSON object body.
 * @throws {HostError} HTTP_BODY_INVALID naming the first missing or non-string field, or an unknown one.
 */
function fields(body: unknown, names: readonly string[]): Record<string, string> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HostError('HTTP_BODY_INVALID', `body must be a JSON object with ${names.join(', ')}`);
  const unknown = Object.keys(body).find((key) => !names.includes(key));
  if (unknown !== undefined) throw new HostError('HTTP_BODY_INVALID', `unknown body key ${JSON.stringify(unknown)}; expected ${names.join(', ')}`);
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = (body as Record<string, unknown>)[name];
    if (typeof value !== 'string' || value.length === 0) throw new HostError('HTTP_BODY_INVALID', `${name} must be a non-empty string`);
    out[name] = value;
  }
  return out;
}
