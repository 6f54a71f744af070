/**
 * The supervisor: the one process that owns the listening socket. It stays thin, so it is never
 * the one that stalls:
 *
 * - **Chat:** it reads only the upgrade request's head, authenticates it (API key, or a ticket from
 *   its own book) against the registry — an LMDB environment every process opens — and hands the
 *   socket, with the bytes it read, to the cell that owns the tenant. From then on frames flow
 *   kernel → cell: no extra hop.
 * - **HTTP:** each request goes to the owning cell's private socket (tenant-scoped requests by the
 *   key's tenant, operator requests naming a tenant to that tenant's cell, the rest to any cell).
 *   Requests are forwarded rather than their connections handed over, because one keep-alive
 *   connection may carry requests for tenants on different cells.
 * - **Health** is answered here, from the cells' answers within a short bound, so `/healthz` stays
 *   fast whatever a cell is doing.
 * - **Cells:** it starts them, keeps one warm standby, and replaces a cell that dies with the
 *   standby at once (a fresh Node process takes seconds to load); it moves tenants between cells.
 *
 * Tenants are placed by rendezvous hashing of their id over the cell slots (placement.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { HostConfig } from '../config.ts';
import { HostError, toWireError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { createLogger, type HostLogger } from '../log.ts';
import { aggregateMetrics, createSupervisorMetrics, METRICS_CONTENT_TYPE, type MetricsPart } from '../observability/metrics.ts';
import { markHostRunning } from '../storage/host-marker.ts';
import { hashSecret, randomToken } from '../storage/keys.ts';
import { openRegistry, rotateMasterKey, type MasterKeySource, type RotationResult } from '../storage/master-rotation.ts';
import { apiKeyId, apiKeyTenant, type Registry } from '../storage/registry.ts';
import type { OperatorKeyCheck, UpgradeHandoff } from '../tenants/scope.ts';
import { TicketBook, ticketTenant } from '../tenants/tickets.ts';
import { errorHeaders, sendJson } from '../transport/http.ts';
import type { CellHooks, CellStats } from './cell.ts';
import { forkCell, inProcessCell, type CellLink, type InProcessLink, type SupervisorServices } from './links.ts';
import { rendezvousSlot, slotOf, type Placement } from './placement.ts';

/** How the supervisor runs its cells. */
export interface SupervisorOptions {
  /**
   * Test hooks for a single cell in this process: with them the host runs one in-process cell
   * (tests that reach into the cell); without them, `config.workers` cell processes.
   */
  inProcess?: CellHooks;
  logger?: HostLogger;
}

/** A running host: the supervisor and its cells. */
export interface Supervisor {
  readonly url: string;
  readonly port: number;
  /** The registry the supervisor authenticates with (shared with an in-process cell). */
  readonly registry: Registry;
  /** Set on the first start without CTX_OPERATOR_KEY: the generated operator key, to print once. */
  readonly generatedOperatorKey: string | undefined;
  /** The in-process cell, when the host runs one (tests). */
  readonly inProcessCell: InProcessLink | undefined;
  /** The cell links by slot (for tests and benchmarks: pids, state). */
  cells(): readonly CellLink[];
  /** Live chat sessions per tenant, across the cells. */
  liveSessions(): Promise<Map<string, number>>;
  /** Moves a tenant to another slot (the quarantine slot is `config.workers`), or `home`; its clients reconnect there. */
  moveTenant(tenantId: string, slot: number | 'home'): Promise<void>;
  close(): Promise<void>;
}

/** How long /healthz waits for a cell's count before it reports the last one it had. */
const HEALTH_CELL_WAIT_MS = 50;
/** How many cells one chat connection may be handed to (the second is the dead one's successor). */
const HANDOVER_ATTEMPTS_MAX = 2;
/** How long an idle client connection is kept open (longer than clients keep theirs: see above). */
const CLIENT_KEEP_ALIVE_MS = 65_000;
/** The quarantine cell's niceness: the kernel runs the other cells first whenever they want the CPU. */
const QUARANTINE_NICENESS = 19;
/** How often quarantined tenants are checked for having gone quiet. */
const QUARANTINE_CHECK_MS = 10_000;

/**
 * Starts the supervisor and its cells, and listens.
 * @throws {HostError} STORAGE_MASTER_KEY when the master key does not open DATA_DIR (nothing is
 *   written then); CONFIG_INVALID when the port cannot be opened; what a cell's start throws.
 */
export async function startSupervisor(config: HostConfig, options: SupervisorOptions = {}): Promise<Supervisor> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { registry, source: masterKeySource } = openRegistry(config.dataDir, config.masterKey);
  const { check: operatorKey, generated } = operatorKeyFor(config, registry);
  const metrics = createSupervisorMetrics();
  const tickets = new TicketBook({ ttlMs: LIMITS.ticketTtlMsMax, perTenantMax: LIMITS.ticketsOutstandingPerTenantMax, totalMax: LIMITS.ticketsOutstandingMax });
  const socketDir = mkdtempSync(join(tmpdir(), 'ctx-cells-'));
  const slots = options.inProcess === undefined ? config.workers : 1;
  const overrides = new Map<string, number>();
  const placement = (): Placement => ({ slots, overrides });
  const links: (CellLink | undefined)[] = [];
  /** Requests and upgrades for a tenant being moved wait for the move (see moveTenant). */
  const moving = new Map<string, Promise<void>>();
  let standby: CellLink | undefined;
  let closing = false;
  let spawned = 0;
  const startedAt = Date.now();
  /** A fleet host answers a credential for a tenant it never held with TENANT_MOVED (config.fleetHost). */
  const fleetMember = config.fleetHost !== undefined;

  const services: SupervisorServices = {
    issueTicket: async (grant) => tickets.issue(grant),
    voidTickets: async (tenantId, keyId) => {
      if (keyId === undefined) tickets.forgetTenant(tenantId);
      else tickets.revokeKey(tenantId, keyId);
    },
    liveSessions: () => gatherSessions(Number.POSITIVE_INFINITY),
    renderMetrics: async () => {
      const parts: MetricsPart[] = [await metrics.json()];
      for (const link of readyLinks()) parts.push(await link.metrics(!link.inProcess));
      return { contentType: METRICS_CONTENT_TYPE, text: await aggregateMetrics(parts) };
    },
    rotateMasterKey: (newKey) => rotateEverywhere(newKey),
    reportBurner: async (tenantId) => quarantine(tenantId),
  };

  /** Quarantined tenants and when a cell last reported each as a burner. */
  const quarantined = new Map<string, number>();
  const quarantineSlot = slots;
  /**
   * Moves a tenant that keeps spending its whole budget to the quarantine cell: a cell process of
   * its own at a lower CPU priority, so the burner competes with nobody but other burners, and the
   * kernel gives the other cells the CPU first. It comes back once it has been quiet a while.
   */
  async function quarantine(tenantId: string): Promise<void> {
    if (options.inProcess !== undefined || closing || !config.quarantine) return;
    quarantined.set(tenantId, Date.now());
    if (slotOf(placement(), tenantId) === quarantineSlot) return;
    if (links[quarantineSlot] === undefined) {
      const link = standby !== undefined && standby.state !== 'exited' ? standby : fork(quarantineSlot);
      standby = undefined;
      links[quarantineSlot] = link;
      standby = fork(-1);
      await link.ready;
      lowerPriority(link);
      await link.setPlacement(quarantineSlot, slots, [...overrides]);
    }
    logger.warn({ tenant: tenantId }, 'tenant moved to the quarantine cell: it keeps spending its whole plugin budget');
    await moveTenant(tenantId, quarantineSlot);
  }
  const lowerPriority = (link: CellLink): void => {
    try {
      setPriority(link.pid, QUARANTINE_NICENESS);
    } catch (error) {
      logger.warn({ err: error, pid: link.pid }, 'could not lower the quarantine cell\'s priority');
    }
  };
  const releaseQuiet = setInterval(() => {
    const now = Date.now();
    for (const [tenantId, reportedAt] of quarantined) {
      if (now - reportedAt < LIMITS.quarantineQuietMsMin) continue;
      quarantined.delete(tenantId);
      logger.info({ tenant: tenantId }, 'tenant back from quarantine');
      void moveTenant(tenantId, 'home').catch((error: unknown) => logger.warn({ err: error, tenant: tenantId }, 'could not bring a tenant back from quarantine'));
    }
  }, QUARANTINE_CHECK_MS);
  releaseQuiet.unref();

  const readyLinks = (): CellLink[] => links.filter((link): link is CellLink => link !== undefined && link.state === 'ready');
  const lastCounts = new Map<CellLink, Map<string, number>>();
  const lastStats = new Map<CellLink, CellStats>();
  async function gatherSessions(waitMs: number): Promise<Map<string, number>> {
    const total = new Map<string, number>();
    await Promise.all(
      links.map(async (link) => {
        if (link === undefined || link.state !== 'ready') return;
        const counts = await within(link.liveSessions(), waitMs).catch(() => undefined);
        if (counts !== undefined) lastCounts.set(link, counts);
        for (const [tenantId, count] of counts ?? lastCounts.get(link) ?? []) total.set(tenantId, (total.get(tenantId) ?? 0) + count);
      }),
    );
    return total;
  }

  async function rotateEverywhere(newKey: string | undefined): Promise<RotationResult> {
    const others = readyLinks().filter((link) => !link.inProcess);
    const all = standby === undefined ? others : [...others, standby];
    await Promise.all(all.map((link) => link.freezeRegistry()));
    let result: RotationResult;
    try {
      result = rotateMasterKey(registry, masterKeySource, newKey);
    } finally {
      const keyHex = registry.masterKey.bytes.toString('hex');
      await Promise.all(all.map((link) => link.followRotation(keyHex).catch((error: unknown) => logger.error({ err: error, pid: link.pid }, 'a cell could not follow the master key rotation'))));
    }
    return result;
  }

  const socketPathFor = (): string => join(socketDir, `cell-${(spawned += 1)}.sock`);
  const fork = (slot: number): CellLink => {
    const link = forkCell({
      config,
      operatorKey: operatorKey.hash,
      socketPath: socketPathFor(),
      slot,
      slots,
      overrides: [...overrides],
      memoryBytesMax: Math.floor((config.pluginMemoryMb * 1024 * 1024) / slots),
      services,
      logger,
    });
    link.onExit((why) => onCellExit(link, why));
    return link;
  };
  function onCellExit(link: CellLink, why: string): void {
    lastCounts.delete(link);
    lastStats.delete(link);
    if (closing) return;
    if (link === standby) {
      standby = undefined;
      logger.warn({ pid: link.pid, why }, 'standby cell ended; starting another');
      standby = fork(-1);
      return;
    }
    const slot = links.indexOf(link);
    if (slot < 0) return;
    metrics.cellRestarted(slot);
    logger.error({ slot, pid: link.pid, why }, 'cell ended; its slot is taken over');
    // The warm standby takes the slot at once; a new standby starts in the background.
    const next = standby !== undefined && standby.state !== 'exited' ? standby : fork(slot);
    standby = undefined;
    links[slot] = next;
    void next.ready
      .then(() => {
        if (slot === quarantineSlot) lowerPriority(next);
        return next.setPlacement(slot, slots, [...overrides]);
      })
      .catch(() => undefined);
    standby = fork(-1);
  }

  if (options.inProcess !== undefined) {
    links.push(
      await inProcessCell({
        config,
        registry,
        masterKeySource,
        operatorKey,
        socketPath: socketPathFor(),
        services,
        owns: (tenantId) => slotOf(placement(), tenantId) === 0,
        hooks: { ...options.inProcess, ...(options.inProcess.logger === undefined ? { logger } : {}) },
      }),
    );
  } else {
    for (let slot = 0; slot < slots; slot += 1) links.push(fork(slot));
    standby = fork(-1);
    try {
      await Promise.all(links.map((link) => link?.ready));
    } catch (error) {
      closing = true;
      await Promise.all([...links, standby].map((link) => link?.stop()));
      await registry.close();
      rmSync(socketDir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Moves a tenant to `slot` (or back to the slot its hash gives, `home`): requests and upgrades for
   * it wait while its old cell lets go (closes its sessions — clients reconnect — finishes its
   * requests, closes its environment); then every cell learns the new placement.
   */
  async function moveTenant(tenantId: string, slot: number | 'home'): Promise<void> {
    if (slot !== 'home' && (slot < 0 || slot > slots || links[slot] === undefined)) throw new HostError('CELL_UNAVAILABLE', `no cell serves slot ${slot}`);
    const from = slotOf(placement(), tenantId);
    const to = slot === 'home' ? rendezvousSlot(tenantId, slots) : slot;
    if (from === to) return;
    let done: () => void = () => undefined;
    moving.set(tenantId, new Promise<void>((resolve) => (done = resolve)));
    try {
      await links[from]?.releaseTenant(tenantId).catch((error: unknown) => logger.warn({ err: error, tenant: tenantId }, 'the old cell did not let go of a moving tenant'));
      if (to === rendezvousSlot(tenantId, slots)) overrides.delete(tenantId);
      else overrides.set(tenantId, to);
      await Promise.all(readyLinks().map((link) => link.setPlacement(links.indexOf(link), slots, [...overrides]).catch(() => undefined)));
    } finally {
      moving.delete(tenantId);
      done();
    }
  }

  /** The cell for a slot, once it is ready (a restarting slot is waited for, within a bound). */
  async function cellFor(slot: number): Promise<CellLink> {
    const link = links[slot];
    if (link === undefined) throw new HostError('CELL_UNAVAILABLE', `no cell serves slot ${slot}`);
    if (link.state === 'ready') return link;
    await within(link.ready, LIMITS.cellWaitMsMax).catch(() => undefined);
    const now = links[slot];
    if (now?.state !== 'ready') throw new HostError('CELL_UNAVAILABLE', 'the cell serving this tenant is restarting; try again shortly');
    return now;
  }
  let nextAny = 0;
  // Requests for no tenant in particular go round the regular cells that are ready (never the
  // quarantine cell); with none ready, they wait for the next one.
  const anyCell = (): Promise<CellLink> => {
    for (let tried = 0; tried < slots; tried += 1) {
      nextAny = (nextAny + 1) % slots;
      if (links[nextAny]?.state === 'ready') return cellFor(nextAny);
    }
    return cellFor((nextAny = (nextAny + 1) % slots));
  };
  async function cellForTenant(tenantId: string): Promise<CellLink> {
    const move = moving.get(tenantId);
    if (move !== undefined) await within(move, LIMITS.cellWaitMsMax).catch(() => undefined);
    return cellFor(slotOf(placement(), tenantId));
  }

  const server = createHttpServer((request, response) => {
    request.on('error', () => undefined);
    response.on('error', () => undefined);
    serveRequest(request, response).catch((error: unknown) => refuseHttp(response, error));
  });
  // An idle keep-alive connection is closed by the client first (undici's clients after 4 s): a
  // server closing at the same moment as the client reuses the connection resets that request.
  server.keepAliveTimeout = CLIENT_KEEP_ALIVE_MS;
  server.headersTimeout = CLIENT_KEEP_ALIVE_MS + 1_000;
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {
      if (!handedOver.has(socket)) metrics.connectionError(upgrading.has(socket) ? 'upgrade' : 'http');
    });
  });
  const upgrading = new WeakSet<Duplex>();
  const handedOver = new WeakSet<Duplex>();
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrading.add(socket);
    // Node removes its own error listener from a socket it hands to 'upgrade'; ours (above) stays.
    if (socket.listenerCount('error') === 0) socket.on('error', () => metrics.connectionError('upgrade'));
    handOver(request, socket, head).catch((error: unknown) => refuseUpgrade(socket, error));
  });

  async function serveRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz' && (request.method === 'GET' || request.method === 'HEAD')) {
      return sendJson(response, 200, await health());
    }
    const tenantId = tenantOfRequest(request, url);
    const link = tenantId === undefined ? await anyCell() : await cellForTenant(tenantId);
    await forward(request, response, link, logger);
  }

  /**
   * The tenant a request belongs to, for routing only (the cell authenticates it again): the
   * tenant of an API key, or the tenant an operator path names.
   * @throws {HostError} AUTH_INVALID_KEY for a legacy tenant key that does not authenticate;
   *   TENANT_MOVED for a key whose tenant this host does not serve now.
   */
  function tenantOfRequest(request: IncomingMessage, url: URL): string | undefined {
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers['authorization'] ?? '')?.[1];
    if (token !== undefined && token.startsWith('ctx_')) return tenantOfKey(token).tenantId;
    return /^\/v1\/tenants\/(t_[0-9a-f]{16})(?:\/|$)/.exec(url.pathname)?.[1];
  }

  /**
   * The tenant of a tenant API key, once this host is known to serve it. A key that names its tenant
   * routes without a key check (the cell makes it); a legacy key is authenticated to learn its tenant.
   * Either way, a tenant that moved away (or never was here, on a fleet host) is TENANT_MOVED, never
   * a bare refusal: the client retries, and the router sends it to the right host.
   * @throws {HostError} TENANT_MOVED; AUTH_INVALID_KEY for a legacy key that does not authenticate.
   */
  function tenantOfKey(token: string, authenticate = false): { tenantId: string; keyId: string | undefined } {
    const named = apiKeyTenant(token);
    if (named !== undefined) registry.assertServedHere(named, fleetMember);
    if (named !== undefined && !authenticate) return { tenantId: named, keyId: undefined };
    const found = registry.authenticateKey(token);
    if (found === undefined) {
      const movedAway = named === undefined ? registry.movedKeyTenant(apiKeyId(token) ?? '') : undefined;
      if (movedAway !== undefined) registry.assertServedHere(movedAway, fleetMember);
      throw new HostError('AUTH_INVALID_KEY', 'the API key is unknown or revoked');
    }
    registry.assertServedHere(found.tenant.id, fleetMember);
    return { tenantId: found.tenant.id, keyId: found.keyId };
  }

  async function handOver(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== '/v1/chat') throw new HostError('HTTP_NOT_FOUND', `no WebSocket endpoint at ${url.pathname}`);
    const handoff = authenticateUpgrade(request, url);
    // A cell killed just as a connection reaches it has not taken it: the connection goes to the
    // cell that took the slot over (the standby, at once), so a crash costs no client its upgrade.
    for (let attempt = 1; ; attempt += 1) {
      const link = await cellForTenant(handoff.tenantId);
      if (socket.destroyed) return;
      // From here the cell's listener counts this socket's errors (in-process) or the socket is gone.
      upgrading.delete(socket);
      handedOver.add(socket);
      const outcome = await link.handUpgrade(request, socket, head, handoff);
      if (outcome !== 'lost' || socket.destroyed) return;
      handedOver.delete(socket);
      upgrading.add(socket);
      metrics.handoverRetried();
      if (attempt >= HANDOVER_ATTEMPTS_MAX) throw new HostError('CELL_UNAVAILABLE', 'the cell serving this tenant ended while taking the connection; try again shortly');
    }
  }

  /** @throws {HostError} AUTH_* when neither a live key nor an unused ticket is presented. */
  function authenticateUpgrade(request: IncomingMessage, url: URL): UpgradeHandoff {
    const ticket = url.searchParams.get('ticket');
    if (ticket !== null) {
      const named = ticketTenant(ticket);
      if (named !== undefined) registry.assertServedHere(named, fleetMember);
      const grant = tickets.take(ticket);
      if (grant === undefined) throw new HostError('AUTH_INVALID_KEY', 'the ticket is unknown, used or expired');
      return { tenantId: grant.tenantId, keyId: grant.keyId, ...(grant.endUser === undefined ? {} : { endUser: grant.endUser }) };
    }
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers['authorization'] ?? '')?.[1];
    if (token === undefined) throw new HostError('AUTH_MISSING_KEY', 'send the key as "Authorization: Bearer <key>"');
    const { tenantId, keyId } = tenantOfKey(token, true);
    return { tenantId, keyId: keyId as string };
  }

  async function health(): Promise<unknown> {
    const cells = await Promise.all(
      links.map(async (link, slot) => {
        if (link === undefined) return { slot, state: 'none' };
        const fresh = link.state === 'ready' ? await within(link.stats(), HEALTH_CELL_WAIT_MS).catch(() => undefined) : undefined;
        if (fresh !== undefined) lastStats.set(link, fresh);
        const stats = fresh ?? lastStats.get(link);
        return { slot, pid: link.pid, state: link.state, ...(slot === quarantineSlot ? { quarantine: true } : {}), ...(fresh === undefined ? { answered: false } : {}), ...stats };
      }),
    );
    const sessions = cells.reduce((sum, cell) => sum + ('sessions' in cell && typeof cell.sessions === 'number' ? cell.sessions : 0), 0);
    return {
      ok: cells.every((cell) => cell.state === 'ready'),
      sessions,
      cells,
      // A count, not ids: /healthz needs no key.
      quarantinedTenants: quarantined.size,
      ...(config.fleetHost === undefined ? {} : { fleetHost: config.fleetHost }),
      ...(options.inProcess === undefined ? { standby: standby?.state ?? 'none' } : {}),
      uptimeS: Math.round((Date.now() - startedAt) / 1000),
    };
  }

  function refuseHttp(response: ServerResponse, error: unknown): void {
    const { wire, error: known } = toWireError(error, (unknown) => logger.error({ err: unknown }, 'unexpected error in the supervisor'));
    metrics.refused(known.code);
    if (response.headersSent) return void response.destroy();
    sendJson(response, known.httpStatus, { error: wire }, errorHeaders(known));
  }

  function refuseUpgrade(socket: Duplex, error: unknown): void {
    const { wire, error: known } = toWireError(error, (unknown) => logger.error({ err: unknown }, 'unexpected error at upgrade'));
    metrics.refused(known.code);
    if (!socket.writable) return void socket.destroy();
    const body = JSON.stringify({ error: wire });
    const status = known.httpStatus;
    const extra = Object.entries(errorHeaders(known)).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: application/json\r\n${extra}` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    // A client that never closes its side would otherwise hold the refused socket open.
    setTimeout(() => socket.destroy(), REFUSED_SOCKET_LINGER_MS).unref();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be opened (${error.code ?? error.message})`;
      reject(new HostError('CONFIG_INVALID', `PORT/HOST: ${config.host}:${config.port} ${reason}`));
    });
    server.listen(config.port, config.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const stopMarkingRunning = markHostRunning(config.dataDir);

  return {
    url: `http://${config.host}:${port}`,
    port,
    registry,
    generatedOperatorKey: generated,
    inProcessCell: options.inProcess === undefined ? undefined : (links[0] as InProcessLink),
    cells: () => links.filter((link): link is CellLink => link !== undefined),
    liveSessions: () => gatherSessions(Number.POSITIVE_INFINITY),
    moveTenant: (tenantId, slot) => moveTenant(tenantId, slot),
    async close() {
      closing = true;
      clearInterval(releaseQuiet);
      // Stop accepting first; the server's close completes only once the chat connections handed to
      // an in-process cell have ended too, which stopping the cells does.
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([...links, standby].map((link) => link?.stop()));
      await serverClosed;
      stopMarkingRunning();
      await registry.close();
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}

/** Reason phrases of the statuses an upgrade is refused with most (any other reads "Error"). */
const STATUS_TEXT: Readonly<Record<number, string>> = { 401: 'Unauthorized', 421: 'Misdirected Request' };

/** How long a refused upgrade's socket may stay open for its answer to be read. */
const REFUSED_SOCKET_LINGER_MS = 5_000;

/** Headers that belong to one hop (RFC 9110 §7.6.1) and are not forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function forwardedHeaders(headers: IncomingMessage['headers']): OutgoingHttpHeaders {
  const forwarded: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) forwarded[name] = value;
  return forwarded;
}

/**
 * Forwards one request to a cell's private socket and streams its answer back, with back-pressure
 * both ways. A cell that fails mid-request costs that request only.
 */
function forward(request: IncomingMessage, response: ServerResponse, link: CellLink, logger: HostLogger): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const upstream = httpRequest({ socketPath: link.socketPath, agent: link.agent, method: request.method, path: request.url, headers: forwardedHeaders(request.headers) });
    upstream.on('response', (answer) => {
      answer.on('error', (error) => {
        logger.warn({ err: error, pid: link.pid }, 'a cell broke off its answer to a forwarded request');
        if (!response.writableFinished) response.destroy();
      });
      const headers = forwardedHeaders(answer.headers);
      // The cell answered before reading the whole body (a refusal by its declared size, say): the
      // rest of the body will not be read, so this connection cannot carry another request.
      if (!request.complete) headers['connection'] = 'close';
      response.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(response);
      answer.on('end', () => {
        // The cell has answered: a body it did not read stops here, and its connection with it
        // (a half-sent request would keep the cell's connection busy for good).
        if (!request.complete) upstream.destroy();
        resolve();
      });
    });
    upstream.on('error', (error) => {
      logger.warn({ err: error, pid: link.pid, headersSent: response.headersSent }, 'a forwarded request failed between the supervisor and its cell');
      if (response.headersSent) {
        if (!response.writableFinished) response.destroy();
        resolve();
      } else {
        reject(new HostError('CELL_UNAVAILABLE', `the cell serving this request ended while it was being served (${(error as NodeJS.ErrnoException).code ?? 'error'}); try again`));
      }
    });
    response.on('close', () => {
      if (!response.writableFinished) upstream.destroy();
      resolve();
    });
    // A client that goes before its body is sent ends the forwarded request too.
    request.on('close', () => {
      if (!request.complete) upstream.destroy();
    });
    request.pipe(upstream);
  });
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  if (!Number.isFinite(ms)) return promise;
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function operatorKeyFor(config: HostConfig, registry: Registry): { check: OperatorKeyCheck; generated: string | undefined } {
  if (config.operatorKey !== undefined) return { check: { hash: hashSecret(config.operatorKey) }, generated: undefined };
  const stored = registry.operatorKeyHash();
  if (stored !== undefined) return { check: { hash: stored }, generated: undefined };
  const generated = `ctxop_${randomToken(32)}`;
  const hash = hashSecret(generated);
  registry.setOperatorKeyHash(hash);
  return { check: { hash }, generated };
}

/** The source of the master key, for a rotation to keep in step with (re-exported for the host). */
export type { MasterKeySource };
