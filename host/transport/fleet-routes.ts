/**
 * The operator routes a fleet controller (host/fleet/) drives a move with, served while the host
 * serves. Every route naming a tenant (`/v1/tenants/<id>/…`) is forwarded by the supervisor to the
 * cell that owns the tenant, so the steps run where its sessions and open environment are. The
 * steps themselves are in tenants/fleet-ops.ts; this module only speaks HTTP: the export is a
 * sealed file streamed out, the import a sealed file streamed in (spooled to disk, then imported
 * by the same code as the CLI's import).
 */
import type { MeteringService } from '../sandbox/metering-service.ts';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { isFleetHostName } from '../config.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { HostLogger } from '../log.ts';
import type { OperatorCredential, TenantAuthority } from '../tenants/scope.ts';
import {
  activateTenant,
  exportTenantForMove,
  fleetStatus,
  freezeTenant,
  importIncomingTenant,
  retireTenant,
  shredTenant,
  unfreezeTenant,
} from '../tenants/fleet-ops.ts';
import { parseExportKey } from '../tenants/tenant-file.ts';
import { readJson } from './http.ts';
import { RawResponse, type Route } from './route-types.ts';

/** The header carrying a move's export key (64 hex characters) to the source's export and the target's import. */
export const EXPORT_KEY_HEADER = 'ctx-export-key';

/** What the fleet routes need. */
export interface FleetRouteServices {
  authority: TenantAuthority;
  logger: HostLogger;
  /** Where sealed exports are spooled (`DATA_DIR/fleet-spool`). */
  dataDir: string;
  /** Re-meters every plugin module of an incoming copy, as an upload would be. */
  metering: MeteringService;
  /** This host's fleet name (config FLEET_HOST), reported to the controller. */
  fleetHost: string | undefined;
  /** Live chat sessions per tenant, across the host's cells. */
  liveSessions(): Promise<ReadonlyMap<string, number>>;
  /** Ends what a tenant that moved away still has open here: its sessions (close 1012), tickets and requests. */
  releaseTenant(tenantId: string): Promise<void>;
}

const TENANT_PATH = '\\/v1\\/tenants\\/(t_[0-9a-f]{16})';

/** The fleet routes. */
export function fleetRoutes(services: FleetRouteServices): Route[] {
  const { authority, logger } = services;
  const registry = authority.registry;
  const step = (name: string): RegExp => new RegExp(`^${TENANT_PATH}\\/${name}$`);
  return [
    { method: 'GET', pattern: /^\/v1\/fleet\/tenants$/, auth: 'operator', handle: () => listFleetTenants(services) },
    {
      method: 'GET',
      pattern: step('fleet'),
      auth: 'operator',
      // With the tenant's write mark here (null when its environment is not open): a move compares
      // it with its pre-copy's to learn whether the tenant wrote since.
      handle: (_operator, _request, params) => {
        const status = fleetStatus(registry, params[0] ?? '');
        return { ...status, writeMark: authority.environments.writeMark(status.tenant) ?? null };
      },
    },
    {
      method: 'POST',
      pattern: step('freeze'),
      auth: 'operator',
      handle: (_operator, _request, params) => {
        const status = freezeTenant(registry, params[0] ?? '');
        logger.info({ tenant: status.tenant }, 'tenant frozen for a move');
        // Read after the freeze took effect: no write can follow it, so this is the final mark.
        return { ...status, writeMark: authority.environments.writeMark(status.tenant) ?? null };
      },
    },
    {
      method: 'POST',
      pattern: step('unfreeze'),
      auth: 'operator',
      handle: (_operator, _request, params) => {
        const status = unfreezeTenant(registry, params[0] ?? '');
        logger.info({ tenant: status.tenant }, 'tenant serves again (move rolled back)');
        return status;
      },
    },
    {
      method: 'GET',
      pattern: step('export'),
      auth: 'operator',
      handle: (operator, request, params) => exportRoute(services, operator, request, params[0] ?? ''),
    },
    {
      method: 'POST',
      pattern: step('import'),
      auth: 'operator',
      handle: (operator, request, params) => importRoute(services, operator, request, params[0] ?? ''),
    },
    {
      method: 'POST',
      pattern: step('activate'),
      auth: 'operator',
      handle: (_operator, _request, params) => {
        const status = activateTenant(registry, params[0] ?? '');
        logger.info({ tenant: status.tenant }, 'moved-in tenant serves here');
        return status;
      },
    },
    {
      method: 'POST',
      pattern: step('retire'),
      auth: 'operator',
      handle: async (_operator, request, params) => {
        const to = hostNameOf(await readJson(request, 4096), 'to');
        const status = await retireTenant(registry, params[0] ?? '', to, services.releaseTenant);
        logger.info({ tenant: status.tenant, to }, 'tenant retired here: it serves on another host');
        return status;
      },
    },
    {
      method: 'POST',
      pattern: step('shred'),
      auth: 'operator',
      handle: async (operator, _request, params) => {
        const status = await shredTenant(authority, operator, params[0] ?? '', services.releaseTenant);
        logger.info({ tenant: status.tenant, state: status.state }, 'tenant copy crypto-shredded');
        return status;
      },
    },
  ];
}

/** `GET /v1/fleet/tenants`: every tenant here with its state, sessions and live keys (ids and dates), and the tombstones. */
async function listFleetTenants(services: FleetRouteServices): Promise<unknown> {
  const { registry } = services.authority;
  const live = await services.liveSessions();
  const states = new Map(registry.fleetStates().map(({ tenantId, state }) => [tenantId, state]));
  const keys = registry.liveKeysByTenant();
  const tenants = registry.listTenants().map((tenant) => {
    const state = states.get(tenant.id);
    return {
      id: tenant.id,
      name: tenant.name,
      state: state?.state ?? 'serving',
      ...(state?.state === 'incoming' ? { complete: state.complete } : {}),
      ...(state?.state === 'moved' ? { to: state.to } : {}),
      sessions: live.get(tenant.id) ?? 0,
      keys: keys.get(tenant.id) ?? [],
    };
  });
  const tombstones = [...states]
    .filter(([tenantId, state]) => state.state === 'moved' && registry.findTenant(tenantId) === undefined)
    .map(([tenantId, state]) => ({ id: tenantId, state: state.state, ...(state.state === 'moved' ? { to: state.to } : {}), since: state.since }));
  return { host: services.fleetHost ?? null, keyFormatSince: registry.keyFormatSince(), tenants, tombstones };
}

/**
 * `GET /v1/tenants/:id/export[?precopy=1]` with the export key in `ctx-export-key`: the tenant's
 * sealed export (of a frozen tenant; a pre-copy of one that still serves), written to a spool file
 * from one read snapshot (in steps that let the loop turn), then streamed (and the file removed).
 * `ctx-write-mark` is the snapshot's write mark.
 */
async function exportRoute(services: FleetRouteServices, operator: OperatorCredential, request: IncomingMessage, tenantId: string): Promise<RawResponse> {
  const key = exportKeyOf(request);
  const precopy = new URL(request.url ?? '/', 'http://localhost').searchParams.get('precopy') === '1';
  const path = spoolPath(services.dataDir, tenantId, 'export');
  let exported: { counts: Record<string, number>; writeMark: string };
  const started = performance.now();
  try {
    exported = await exportTenantForMove(services.authority, operator, tenantId, path, key, precopy);
  } catch (error) {
    rmSync(path, { force: true });
    throw error;
  }
  const entries = Object.values(exported.counts).reduce((sum, count) => sum + count, 0);
  const bytes = statSync(path).size;
  services.logger.info({ tenant: tenantId, entries, bytes, precopy, durationMs: Math.round(performance.now() - started) }, 'tenant exported for a move');
  return new RawResponse('application/octet-stream', streamThenRemove(path), 200, {
    'content-length': String(bytes),
    'ctx-export-entries': String(entries),
    'ctx-write-mark': exported.writeMark,
  });
}

/** Streams a spool file and removes it once read (or once the reader goes away). */
async function* streamThenRemove(path: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of createReadStream(path)) yield chunk as Buffer;
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * `POST /v1/tenants/:id/import?from=<host>` with the sealed export as an `application/octet-stream`
 * body and its key in `ctx-export-key`: spooled to disk (within LIMITS.tenantImportBytesMax), then
 * imported as an incoming copy that serves nothing until it is activated.
 */
async function importRoute(services: FleetRouteServices, operator: OperatorCredential, request: IncomingMessage, tenantId: string): Promise<unknown> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/octet-stream\b/i.test(type)) {
    throw new HostError('HTTP_UNSUPPORTED_MEDIA', `content-type must be application/octet-stream (a sealed tenant export), got ${JSON.stringify(type).slice(0, 60)}`);
  }
  const key = exportKeyOf(request);
  const fromParam = new URL(request.url ?? '/', 'http://localhost').searchParams.get('from');
  const from = fromParam === null ? null : hostNameOf({ from: fromParam }, 'from');
  const path = spoolPath(services.dataDir, tenantId, 'import');
  try {
    const bytes = await spoolBody(request, path, LIMITS.tenantImportBytesMax);
    const { counts, status } = await importIncomingTenant(services.authority, operator, tenantId, from, path, key, services.metering);
    const entries = Object.values(counts).reduce((sum, count) => sum + count, 0);
    services.logger.info({ tenant: tenantId, from, entries, bytes }, 'tenant imported for a move (incoming until activated)');
    return { ...status, entries, bytes };
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * Writes a request body to `path` (created new, mode 0600), refusing a body over `maxBytes` by its
 * declared length before reading, or as soon as it passes the limit.
 * @returns the bytes written.
 * @throws {HostError} HTTP_BODY_TOO_LARGE past the limit (the file is removed).
 */
export async function spoolBody(body: AsyncIterable<unknown> & { headers?: IncomingMessage['headers'] }, path: string, maxBytes: number): Promise<number> {
  const declared = Number(body.headers?.['content-length'] ?? '0');
  if (declared > maxBytes) throw new HostError('HTTP_BODY_TOO_LARGE', `body is ${declared} bytes, limit ${maxBytes}`);
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) done(new HostError('HTTP_BODY_TOO_LARGE', `body is over ${maxBytes} bytes`));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(body, counter, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  } catch (error) {
    rmSync(path, { force: true });
    throw error instanceof HostError ? error : new HostError('HTTP_BODY_INVALID', `the body could not be read to its end: ${(error as Error).message.slice(0, 120)}`);
  }
  return bytes;
}

/**
 * A new spool file path under `DATA_DIR/fleet-spool`. Files a crash left behind are sealed under an
 * export key only the controller held; they are removed once older than a transfer may take.
 */
function spoolPath(dataDir: string, tenantId: string, kind: 'export' | 'import'): string {
  const dir = join(dataDir, 'fleet-spool');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    try {
      if (now - statSync(file).mtimeMs > LIMITS.fleetTransferMsMax) rmSync(file, { force: true });
    } catch {
      // Another process removed it first.
    }
  }
  return join(dir, `${tenantId}-${kind}-${randomBytes(6).toString('hex')}`);
}

/** @throws {HostError} TENANT_EXPORT_INVALID when the header is missing or not 64 hex characters. */
function exportKeyOf(request: IncomingMessage): Buffer {
  const header = request.headers[EXPORT_KEY_HEADER];
  if (typeof header !== 'string') throw new HostError('TENANT_EXPORT_INVALID', `send the move's export key in the ${EXPORT_KEY_HEADER} header`);
  return parseExportKey(header, EXPORT_KEY_HEADER);
}

/** @throws {HostError} FLEET_INVALID when `body[field]` is not a fleet host name. */
function hostNameOf(body: unknown, field: string): string {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[field] : undefined;
  if (typeof value !== 'string' || !isFleetHostName(value)) {
    throw new HostError('FLEET_INVALID', `${field} must be a fleet host name (1..${LIMITS.fleetHostNameCharsMax} characters of a-z, 0-9 and "-"), got ${JSON.stringify(value)?.slice(0, 60) ?? 'nothing'}`);
  }
  return value;
}
