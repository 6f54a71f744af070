/**
 * A cell: the part of the host that serves a set of tenants — their chat sessions (fresh plugin
 * instances per session), their HTTP API, their open environments and in-memory indexes. The
 * supervisor (supervisor.ts) owns the listening socket, authenticates each chat upgrade and hands
 * the connection to the cell owning the tenant, and forwards each HTTP request to it; a cell never
 * listens on the network itself. A cell runs in a process of its own (cell-main.ts); tests may run
 * one in their own process (links.ts), through the very same intake.
 *
 * Nothing here holds tenant data beyond what a request or session minted: each mints its own
 * TenantScope, from the request's key or from the supervisor's handoff of a connection.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HostConfig } from '../config.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { createLogger, type HostLogger } from '../log.ts';
import { createModel, type ChatModel, type ModelRouting } from '../models/model.ts';
import { createObservability, type Observability, type ObservabilityOptions } from '../observability/observability.ts';
import { reportLeakBlock, type AssembledMessage, type ResolvedChunk } from '../pipeline/guard.ts';
import { Session } from '../pipeline/session.ts';
import { createLocalEmbedder, type Embedder } from '../retrieval/embedder.ts';
import { ingestDocuments, type IngestSteps } from '../retrieval/ingest.ts';
import { createIngestService } from '../retrieval/ingest-service.ts';
import { createOpenAIEmbedder } from '../retrieval/openai-embedder.ts';
import { compileDotKernel } from '../retrieval/vector-index.ts';
import { createMeteringService, type MeteringService } from '../sandbox/metering-service.ts';
import { compileKnown, type CompiledPlugin } from '../sandbox/module-cache.ts';
import { BUILTIN_PLUGINS_DIR, loadBuiltinModules, type PluginModules, type SessionPluginOptions } from '../sandbox/session-plugins.ts';
import { TenantEnvironments } from '../storage/environments.ts';
import type { MasterKeySource, RotationResult } from '../storage/master-rotation.ts';
import { activePluginModule } from '../storage/plugin-store.ts';
import type { Registry } from '../storage/registry.ts';
import { AskQuota, IngestQuota } from '../tenants/ask-quota.ts';
import { authenticateOperator, mintScopeFromApiKey, mintScopeFromHandoff, type OperatorKeyCheck, type TenantAuthority, type TenantScope, type UpgradeHandoff } from '../tenants/scope.ts';
import { readSettings, type SettingsBounds, type TenantSettings } from '../tenants/settings.ts';
import type { TicketGrant } from '../tenants/tickets.ts';
import { startFeedbackSweep } from '../training/feedback.ts';
import { serveChat, type ChatLimits } from '../transport/chat.ts';
import { cacheRoutes } from '../transport/cache-routes.ts';
import { coreRoutes } from '../transport/core-routes.ts';
import { sendError } from '../transport/http.ts';
import { lifecycleRoutes } from '../transport/lifecycle-routes.ts';
import { observabilityRoutes } from '../transport/observability-routes.ts';
import { pageRoutes } from '../transport/page-routes.ts';
import { pluginRoutes } from '../transport/plugin-routes.ts';
import { fleetRoutes } from '../transport/fleet-routes.ts';
import { createRouter } from '../transport/router.ts';
import { SDK_ROUTES } from '../transport/sdk-routes.ts';
import { trainingRoutes } from '../transport/training-routes.ts';
import { attachWebSocket, isUpgradeSocket } from '../transport/websocket.ts';
import { loadWebAssets } from '../web/assets.ts';
import { LiveSessions, type SessionSlot } from './live-sessions.ts';
import { createMemoryBudget, type MemoryBudget, type MemoryClaim } from './memory-budget.ts';
import { createScheduler, type Scheduler } from './scheduler.ts';

/** Close codes a cell ends connections with, and what they tell the client. */
export const CLOSE_CODES = {
  /** The tenant moved to another cell (or this cell is stopping): reconnecting reaches it again. */
  moved: 1012,
  /** The key was revoked or the tenant deleted: reconnecting would be refused. */
  revoked: 1008,
} as const;

/** Test and benchmark hooks; none is reachable from configuration or the network. */
export interface CellHooks {
  logger?: HostLogger;
  limits?: Partial<
    ChatLimits & { sessionsPerTenantMax: number; asksPerTenantPerMinuteMax: number; ingestCharsPerTenantPerMinuteMax: number } & Omit<ObservabilityOptions, 'liveSessions'>
  >;
  /** Fault point: called in every ask to add chunks to the resolved set (guard tests). */
  faultInjectResolved?: (tenantId: string, resolved: Map<string, ResolvedChunk>, chunks: ResolvedChunk[]) => void;
  /** Fault point: called in every ask to change the prompt plugin's messages before the guard (guard tests). */
  faultInjectAssembled?: (tenantId: string, messages: AssembledMessage[]) => void;
  /**
   * Test hook: modules a tenant's sessions run instead of its own (uploads or built-ins); with it,
   * tests can run modules no upload would produce, such as unmetered ones.
   */
  pluginModulesFor?: (tenantId: string) => PluginModules | undefined;
  /** Test hook: instance options for every session (e.g. a lower watchdog limit). */
  pluginOptions?: SessionPluginOptions;
  /** Test hook: the clock (epoch ms) the semantic cache judges expiry by. */
  clock?: () => number;
  /** Fault point: awaited at the start of every session start, so a test can act while a session is starting. */
  faultHoldSessionStart?: (tenantId: string) => Promise<void>;
}

/** A cell's holdings, as /healthz reports them per cell. */
export interface CellStats {
  sessions: number;
  leases: number;
  pluginMemoryBytes: number;
  slicesWaiting: number;
}

/** What a cell asks of the rest of the host (the supervisor and the other cells). */
export interface CellCluster {
  /** Issues a chat ticket in the supervisor's book. @throws {HostError} PROTOCOL_RATE_LIMIT over the tenant's share. */
  issueTicket(grant: TicketGrant): Promise<{ ticket: string; expiresAt: number }>;
  /** Voids a tenant's outstanding tickets: those a key minted, or all of them. */
  voidTickets(tenantId: string, keyId?: string): Promise<void>;
  /** Live chat sessions per tenant, across every cell. */
  liveSessions(): Promise<ReadonlyMap<string, number>>;
  /** The Prometheus text of the whole host. */
  renderMetrics(): Promise<{ contentType: string; text: string }>;
  /** Rotates the master key and has every process holding the registry follow. */
  rotateMasterKey(newKey: string | undefined): Promise<RotationResult>;
  /** Whether this cell owns `tenantId` now (the feedback sweep visits only its own tenants). */
  owns(tenantId: string): boolean;
  /** Reports a tenant that keeps spending its whole budget (the supervisor may quarantine it). */
  reportBurner(tenantId: string): Promise<void>;
}

/** What starting a cell needs besides the configuration. */
export interface CellSetup {
  /** The control plane, opened by the caller (the supervisor shares its own with an in-process cell). */
  registry: Registry;
  masterKeySource: MasterKeySource;
  operatorKey: OperatorKeyCheck;
  cluster: CellCluster;
  hooks?: CellHooks;
  /** This cell's part of the host's plugin memory budget (default: all of config.pluginMemoryMb). */
  memoryBytesMax?: number;
}

/** A running cell. */
export interface Cell {
  readonly authority: TenantAuthority;
  readonly embedder: Embedder;
  readonly observability: Observability;
  /** Serves forwarded HTTP requests (the supervisor connects to it over a private socket). */
  readonly server: Server;
  /** The cell's CPU scheduler (plugin calls and ingest steps of every tenant go through it). */
  readonly scheduler: Scheduler;
  /** The cell's plugin memory budget. */
  readonly memory: MemoryBudget;
  /** Takes a chat connection the supervisor authenticated, with the request Node already parsed. */
  acceptUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, handoff: UpgradeHandoff): void;
  /** Takes a chat connection handed over from another process, with the raw bytes read before the handover. */
  acceptSocket(socket: Socket, received: Buffer, handoff: UpgradeHandoff): void;
  /** Live sessions per tenant in this cell. */
  liveSessions(): Map<string, number>;
  /** What the cell holds now, for health: sessions, environment leases, plugin memory, slices waiting. */
  stats(): CellStats;
  /** Ends a tenant's sessions here (only those a key opened, when given) and waits until they have ended. */
  closeSessions(tenantId: string, code: number, reason: string, keyId?: string): Promise<number>;
  /**
   * Lets go of a tenant that moves to another cell: closes its sessions (clients reconnect), waits
   * for its requests to finish, and closes its environment, so that only the new owner holds it.
   */
  releaseTenant(tenantId: string): Promise<void>;
  /** Closes every connection and session, then the environments (not the shared registry). */
  close(): Promise<void>;
}

/**
 * Starts a cell.
 * @throws {HostError} CONFIG_INVALID for bad model or embedder settings; EMBED_FAILED when EMBED_URL
 *   is set and the embeddings server does not answer its probe; PLUGIN_LOAD_FAILED without a build.
 */
export async function startCell(config: HostConfig, setup: CellSetup): Promise<Cell> {
  const hooks = setup.hooks ?? {};
  const logger = hooks.logger ?? createLogger(config.logLevel);
  // Fail at start, not on the first search, when `npm run build` has not produced the kernel.
  compileDotKernel();
  const web = loadWebAssets();
  // Before anything is opened: a remote embedder that does not answer its probe stops the start.
  const embedder = await createEmbedder(config);
  const { registry, cluster } = setup;
  const environments = new TenantEnvironments({ dataDir: config.dataDir, registry, openMax: LIMITS.openEnvironmentsMax });
  const authority: TenantAuthority = { registry, environments };
  const models = createModels(config);
  const metering = createMeteringService();
  const builtins = await loadBuiltinModules(BUILTIN_PLUGINS_DIR, metering);
  const sessions = new LiveSessions();
  const bounds: SettingsBounds = { pluginFuelPerCallMax: config.pluginFuelPerCallMax };
  const scheduler = createScheduler({
    burnerExhaustionsMin: LIMITS.burnerExhaustionsMin,
    burnerWindowMs: LIMITS.burnerWindowMsMax,
    burnerDutyShare: LIMITS.burnerLoopShareMax,
    verdictOf: (error) => (error instanceof HostError && (error.code === 'PLUGIN_FUEL_EXHAUSTED' || error.code === 'PLUGIN_TIMEOUT') ? 'exhausted' : 'ok'),
    onBurner: (tenantId) => {
      logger.warn({ tenant: tenantId }, 'tenant keeps spending its whole plugin budget; deferred, and reported for quarantine');
      cluster.reportBurner(tenantId).catch((error: unknown) => logger.warn({ err: error, tenant: tenantId }, 'burner report failed'));
    },
  });
  const memory = createMemoryBudget({
    bytesMax: setup.memoryBytesMax ?? config.pluginMemoryMb * 1024 * 1024,
    reserveShare: LIMITS.pluginMemoryReserveShare,
    tenantShareMax: LIMITS.pluginMemoryTenantShareMax,
  });
  const observability = createObservability({
    metricsTenantLabelsMax: hooks.limits?.metricsTenantLabelsMax ?? LIMITS.metricsTenantLabelsMax,
    recentAsksPerTenantMax: hooks.limits?.recentAsksPerTenantMax ?? LIMITS.recentAsksPerTenantMax,
    recentAsksTenantsMax: hooks.limits?.recentAsksTenantsMax ?? LIMITS.recentAsksTenantsMax,
    incidentsKeptMax: hooks.limits?.incidentsKeptMax ?? LIMITS.incidentsKeptMax,
    pluginLogLinesPerTenantMax: hooks.limits?.pluginLogLinesPerTenantMax ?? LIMITS.pluginLogLinesPerTenantMax,
    liveSessions: () => sessions.counts(),
  });
  const requests = new TenantRequests();
  const ingestService = createIngestService({ jobMsMax: LIMITS.ingestJobMsMax, perTenantMax: LIMITS.ingestsPerTenantMax });
  const ingestQuota = new IngestQuota(hooks.limits?.ingestCharsPerTenantPerMinuteMax ?? LIMITS.ingestCharsPerTenantPerMinuteMax);
  const ingestStepsFor = (tenantId: string): IngestSteps => ({
    prepare: (documents, local) => ingestService.prepare(tenantId, documents, local === undefined ? null : local.dim),
    slice: (work) => scheduler.run(tenantId, work),
  });
  const closeSessions = (tenantId: string, code: number, reason: string, keyId?: string): Promise<number> => sessions.close(tenantId, code, reason, keyId);

  const routes = [
    ...coreRoutes({
      authority,
      embedder,
      logger,
      settingsBounds: bounds,
      liveSessions: () => cluster.liveSessions(),
      issueTicket: (scope, endUser) => cluster.issueTicket({ tenantId: scope.tenantId, keyId: scope.keyId ?? '', endUser }),
      parseDocuments: (scope, body) => ingestService.parseDocuments(scope.tenantId, body),
      ingest: (scope, documents) => {
        ingestQuota.admit(scope.tenantId, documents.reduce((sum, document) => sum + document.text.length, 0));
        return ingestDocuments(scope, embedder, documents, ingestStepsFor(scope.tenantId));
      },
      closeTenant: async (tenantId) => {
        await closeSessions(tenantId, CLOSE_CODES.revoked, 'tenant deleted');
        await cluster.voidTickets(tenantId);
      },
      forgetTenant: (tenantId) => observability.forgetTenant(tenantId),
    }),
    ...pluginRoutes({ metering, builtins, logger }),
    ...cacheRoutes({ embedder, logger }),
    ...observabilityRoutes({ observability, registry, renderMetrics: () => cluster.renderMetrics(), liveSessions: () => cluster.liveSessions() }),
    ...pageRoutes(web),
    ...trainingRoutes({ authority, logger }),
    ...lifecycleRoutes({
      authority,
      logger,
      rotateMasterKey: (newKey) => cluster.rotateMasterKey(newKey),
      onKeyRevoked: async (tenantId, keyId) => {
        await closeSessions(tenantId, CLOSE_CODES.revoked, 'api key revoked', keyId);
        await cluster.voidTickets(tenantId, keyId);
      },
    }),
    ...SDK_ROUTES,
    ...fleetRoutes({
      authority,
      logger,
      dataDir: config.dataDir,
      metering,
      fleetHost: config.fleetHost,
      liveSessions: () => cluster.liveSessions(),
      releaseTenant: async (tenantId) => {
        await closeSessions(tenantId, CLOSE_CODES.moved, 'tenant moved to another host; reconnect');
        await cluster.voidTickets(tenantId);
        await requests.drained(tenantId, LIMITS.tenantMoveDrainMsMax);
      },
    }),
  ];
  const route = createRouter(routes, {
    tenant: (apiKey) => requests.begin(mintScopeFromApiKey(authority, apiKey)),
    tenantDone: (scope) => requests.end(scope.tenantId),
    operator: (key) => authenticateOperator(setup.operatorKey, key),
  });
  const server = createHttpServer((request, response) => {
    // Node's own listeners cover the socket while it parses; these cover the two streams.
    request.on('error', () => undefined);
    response.on('error', () => undefined);
    route(request, response).catch((error: unknown) => sendError(response, error, (unknown) => logger.error({ err: unknown }, 'unexpected error in HTTP handler')));
  });
  // Forwarded requests come over the supervisor's keep-alive connections on a private socket: the
  // cell never closes them for idleness (closing one as the supervisor reuses it would fail a request).
  server.keepAliveTimeout = 0;
  // Every connection gets an error listener the moment it exists, so a reset at any point ends
  // that connection only; it is counted, never thrown.
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {
      // Once upgraded, the WebSocket adapter's own listener counts the socket's errors.
      if (!isUpgradeSocket(socket)) observability.metrics.connectionError('http');
    });
  });

  const handoffs = new WeakMap<Duplex, UpgradeHandoff>();
  const chat = attachChat(server, {
    authority,
    embedder,
    logger,
    observability,
    sessions,
    bounds,
    hooks,
    builtins,
    modelFor: (settings) => pickModel(models, config.modelProvider, settings),
    handoffOf: (socket) => handoffs.get(socket),
    scheduler,
    memory,
  });
  const stopFeedbackSweep = startFeedbackSweep(authority, logger, (tenantId) => cluster.owns(tenantId));

  return {
    authority,
    embedder,
    observability,
    server,
    scheduler,
    memory,
    acceptUpgrade(request, socket, head, handoff) {
      handoffs.set(socket, handoff);
      chat.handleUpgrade(request, socket, head);
    },
    acceptSocket(socket, received, handoff) {
      handoffs.set(socket, handoff);
      // The cell's own HTTP parser reads the request again from the bytes the supervisor read; its
      // 'upgrade' event then reaches the chat endpoint like any upgrade. The 'connection' listener
      // gives the socket its error listener in the same turn it arrived in.
      server.emit('connection', socket);
      socket.emit('data', received);
      socket.resume();
    },
    liveSessions: () => sessions.counts(),
    stats: () => ({ sessions: sessions.total, leases: environments.leaseTotal, pluginMemoryBytes: memory.usedBytes, slicesWaiting: scheduler.waiting }),
    closeSessions,
    async releaseTenant(tenantId) {
      await closeSessions(tenantId, CLOSE_CODES.moved, 'tenant moved; reconnect');
      await requests.drained(tenantId, LIMITS.tenantMoveDrainMsMax);
      await environments.evict(tenantId);
    },
    async close() {
      await stopFeedbackSweep();
      await chat.close();
      await sessions.closeAll(CLOSE_CODES.moved, 'host stopping');
      // What is left are the supervisor's forwarded connections; the supervisor is stopping too.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await Promise.all([...models.values()].map((model) => model.close?.()));
      await environments.close();
      await metering.close();
      await ingestService.close();
    },
  };
}

/**
 * HTTP requests in progress per tenant: a tenant moving to another cell is let go only once its
 * requests here have finished (or a bound has passed), so two cells never write its environment.
 */
class TenantRequests {
  readonly #active = new Map<string, number>();
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Counts the scope's request until {@link end}. */
  begin(scope: TenantScope): TenantScope {
    this.#active.set(scope.tenantId, (this.#active.get(scope.tenantId) ?? 0) + 1);
    return scope;
  }

  /** The tenant's request has ended. */
  end(tenantId: string): void {
    const left = (this.#active.get(tenantId) ?? 1) - 1;
    if (left > 0) return void this.#active.set(tenantId, left);
    this.#active.delete(tenantId);
    for (const wake of this.#waiters.get(tenantId) ?? []) wake();
    this.#waiters.delete(tenantId);
  }

  /** Resolves when the tenant has no request in progress, or after `msMax`. */
  drained(tenantId: string, msMax: number): Promise<void> {
    if (!this.#active.has(tenantId)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(finish, msMax);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      const waiters = this.#waiters.get(tenantId) ?? new Set<() => void>();
      waiters.add(finish);
      this.#waiters.set(tenantId, waiters);
    });
  }
}

/**
 * The host's embedder: an OpenAI-compatible embeddings server when EMBED_URL is set, else the local one.
 * @throws {HostError} CONFIG_INVALID or EMBED_FAILED when the server's settings are bad or its probe fails.
 */
async function createEmbedder(config: HostConfig): Promise<Embedder> {
  if (config.embedUrl === undefined) return createLocalEmbedder();
  return createOpenAIEmbedder({
    url: config.embedUrl,
    model: config.embedModel,
    timeoutMs: config.embedTimeoutMs,
    ...(config.embedApiKey === undefined ? {} : { apiKey: config.embedApiKey }),
  });
}

function createModels(config: HostConfig): Map<'local' | 'openai', ChatModel> {
  const models = new Map<'local' | 'openai', ChatModel>([['local', createModel({ provider: 'local' })]]);
  if (config.modelUrl !== undefined) {
    models.set(
      'openai',
      createModel({
        provider: 'openai',
        url: config.modelUrl,
        model: config.modelName,
        timeoutMs: config.modelTimeoutMs,
        ...(config.modelApiKey === undefined ? {} : { apiKey: config.modelApiKey }),
      }),
    );
  }
  return models;
}

/**
 * The model for a tenant's settings: its own choice of provider, else the host's MODEL_PROVIDER.
 * @throws {HostError} MODEL_FAILED when the tenant asks for a provider this host has not configured.
 */
function pickModel(
  models: Map<'local' | 'openai', ChatModel>,
  hostProvider: 'local' | 'openai',
  settings: TenantSettings,
): { model: ChatModel; routing: ModelRouting } {
  const provider = settings.model.provider;
  const wanted = provider === 'default' ? hostProvider : provider;
  const model = models.get(wanted);
  if (model === undefined) throw new HostError('MODEL_FAILED', `model provider ${wanted} is not configured on this host (set MODEL_URL)`);
  const routing: ModelRouting = {};
  if (wanted === 'openai') {
    if (settings.model.name !== '') routing.model = settings.model.name;
    if (settings.model.adapter !== '') routing.adapter = settings.model.adapter;
  }
  return { model, routing };
}

/** What the chat endpoint of a cell needs. */
interface ChatServices {
  authority: TenantAuthority;
  embedder: Embedder;
  logger: HostLogger;
  observability: Observability;
  sessions: LiveSessions;
  bounds: SettingsBounds;
  hooks: CellHooks;
  builtins: PluginModules;
  modelFor(settings: TenantSettings): { model: ChatModel; routing: ModelRouting };
  /** What the supervisor attested for a handed-over connection; undefined for any other socket. */
  handoffOf(socket: Duplex): UpgradeHandoff | undefined;
  scheduler: Scheduler;
  memory: MemoryBudget;
}

function attachChat(server: Server, services: ChatServices) {
  const { hooks, authority, logger, observability } = services;
  const limits: ChatLimits = {
    asksInFlightPerSessionMax: hooks.limits?.asksInFlightPerSessionMax ?? LIMITS.asksInFlightPerSessionMax,
    socketBufferedBytesMax: hooks.limits?.socketBufferedBytesMax ?? LIMITS.socketBufferedBytesMax,
    framesPerWindowMax: hooks.limits?.framesPerWindowMax ?? LIMITS.framesPerWindowMax,
    frameWindowMsMax: hooks.limits?.frameWindowMsMax ?? LIMITS.frameWindowMsMax,
    framesBeforeReadyMax: hooks.limits?.framesBeforeReadyMax ?? LIMITS.framesBeforeReadyMax,
  };
  const sessionsMax = hooks.limits?.sessionsPerTenantMax ?? LIMITS.sessionsPerTenantMax;
  const askQuota = new AskQuota(hooks.limits?.asksPerTenantPerMinuteMax ?? LIMITS.asksPerTenantPerMinuteMax);
  /** What a session of each tenant held last: the estimate its next session is admitted with. */
  const lastSessionBytes = new Map<string, number>();
  return attachWebSocket(server, {
    path: '/v1/chat',
    maxFrameBytes: LIMITS.frameBytesMax,
    onUnknownError: (error) => logger.error({ err: error }, 'unexpected error at upgrade'),
    onSocketError: (stage) => observability.metrics.connectionError(stage),
    authenticate: (request: IncomingMessage, url: URL, socket: Duplex) => {
      // Only the supervisor authenticates chat upgrades; a cell serves what it was handed.
      const handoff = services.handoffOf(socket);
      if (handoff === undefined) throw new HostError('AUTH_MISSING_KEY', 'chat connections are authenticated by the host before they reach a cell');
      const scope = mintScopeFromHandoff(authority, handoff);
      return { scope, json: url.searchParams.get('encoding') === 'json', release: () => scope.release() };
    },
    onConnection: (socket, { scope, json }) => {
      let slot: SessionSlot | undefined;
      let claim: MemoryClaim | undefined;
      let mine: Session | undefined;
      void serveChat({
        socket,
        tenantId: scope.tenantId,
        jsonFrames: json,
        limits,
        logger,
        observe: (sessionId, log) => observability.session({ tenantId: scope.tenantId, sessionId }, log),
        openSession: async (log, sessionId) => {
          try {
            slot = services.sessions.reserve(scope.tenantId, sessionsMax);
            claim = services.memory.admit(scope.tenantId, lastSessionBytes.get(scope.tenantId) ?? 2 * LIMITS.pluginInstanceOverheadBytes);
            const held = claim;
            await hooks.faultHoldSessionStart?.(scope.tenantId);
            mine = await Session.open({
              scope,
              embedder: services.embedder,
              modules: hooks.pluginModulesFor?.(scope.tenantId) ?? (await tenantModules(scope, services.builtins)),
              pluginOptions: { fuelPerCall: readSettings(scope, services.bounds).pluginFuelPerCall, ...hooks.pluginOptions },
              admitAsk: () => askQuota.admit(scope.tenantId),
              slice: (work) => services.scheduler.run(scope.tenantId, work),
              memory: {
                fits: (bytes) => {
                  if (bytes > 0) lastSessionBytes.set(scope.tenantId, bytes);
                  return held.update(bytes);
                },
              },
              modelFor: services.modelFor,
              canaryOwner: (token) => authority.registry.canaryOwner(token),
              logger: log,
              ...(hooks.clock === undefined ? {} : { clock: hooks.clock }),
              ...(hooks.faultInjectResolved === undefined
                ? {}
                : { faultInjectResolved: (resolved, chunks) => hooks.faultInjectResolved?.(scope.tenantId, resolved, chunks) }),
              ...(hooks.faultInjectAssembled === undefined
                ? {}
                : { faultInjectAssembled: (messages) => hooks.faultInjectAssembled?.(scope.tenantId, messages) }),
              onLeakBlocked: (askId, error) => reportLeakBlock(scope, log, askId, error),
              onPluginLog: (slotName, level, message) => observability.activity.pluginLogged(scope.tenantId, { at: Date.now(), session: sessionId, slot: slotName, level, message }),
            });
          } catch (error) {
            slot?.release();
            claim?.release();
            scope.release();
            throw error;
          }
          const session = mine;
          slot.started({
            tenantId: scope.tenantId,
            keyId: scope.keyId,
            close: async (code, reason) => {
              socket.close(code, reason);
              await session.close();
            },
          });
          return session;
        },
        onEnd: () => {
          slot?.release();
          claim?.release();
          scope.release();
        },
        onFeedback: (feedback) => {
          if (mine === undefined) throw new HostError('PROTOCOL_BAD_FRAME', 'feedback before the session is ready');
          mine.recordFeedback(feedback);
        },
      });
    },
  });
}

/**
 * The modules a tenant's sessions run: each slot's active upload from the tenant's own environment,
 * else the built-in default. Compiled modules are cached by the stored module's SHA-256, so a
 * session start reads one small record per slot.
 * @throws {HostError} PLUGIN_LOAD_FAILED or STORAGE_FAILED when a stored module cannot be loaded.
 */
async function tenantModules(scope: TenantScope, builtins: PluginModules): Promise<PluginModules> {
  const pick = (slot: 'retrieval' | 'prompt'): Promise<CompiledPlugin> | CompiledPlugin => {
    const active = activePluginModule(scope.store, slot);
    return active === null ? builtins[slot] : compileKnown(active.version.moduleSha256, active.load);
  };
  const [retrieval, prompt] = await Promise.all([pick('retrieval'), pick('prompt')]);
  return { retrieval, prompt };
}

/** Used by the supervisor's in-process link: the response type a cell's server writes. */
export type CellResponse = ServerResponse;
