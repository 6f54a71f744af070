/**
 * Composition root: builds every part from the configuration and wires them together — control
 * plane, tenant environments, sandbox modules, models, HTTP routes and the chat endpoint. Nothing
 * here holds tenant data: each request or session mints its own TenantScope.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostConfig } from './config.ts';
import { HostError } from './errors.ts';
import { LIMITS } from './limits.ts';
import { createLogger, type HostLogger } from './log.ts';
import { createModel, type ChatModel, type ModelRouting } from './models/model.ts';
import { createObservability, type Observability, type ObservabilityOptions } from './observability/observability.ts';
import { reportLeakBlock, type AssembledMessage, type ResolvedChunk } from './pipeline/guard.ts';
import { Session } from './pipeline/session.ts';
import { createLocalEmbedder, type Embedder } from './retrieval/embedder.ts';
import { createOpenAIEmbedder } from './retrieval/openai-embedder.ts';
import { compileDotKernel } from './retrieval/vector-index.ts';
import { createMeteringService, type MeteringService } from './sandbox/metering-service.ts';
import { compileKnown, type CompiledPlugin } from './sandbox/module-cache.ts';
import { BUILTIN_PLUGINS_DIR, loadBuiltinModules, type PluginModules, type SessionPluginOptions } from './sandbox/session-plugins.ts';
import { activePluginModule } from './storage/plugin-store.ts';
import { TenantEnvironments } from './storage/environments.ts';
import { randomToken, hashSecret } from './storage/keys.ts';
import { Registry } from './storage/registry.ts';
import { AskQuota } from './tenants/ask-quota.ts';
import { type OperatorKeyCheck } from './tenants/scope.ts';
import { mintScopeFromApiKey, mintScopeFromTicket, TicketBook, type TenantAuthority, type TenantScope } from './tenants/scope.ts';
import { readSettings, type TenantSettings } from './tenants/settings.ts';
import { serveChat, type ChatLimits } from './transport/chat.ts';
import { bearerToken, sendError } from './transport/http.ts';
import { handleApiRequest } from './transport/routes.ts';
import { startFeedbackSweep } from './training/feedback.ts';
import { markHostRunning } from './storage/host-marker.ts';
import { openRegistry, type MasterKeySource } from './storage/master-rotation.ts';
import { attachWebSocket, isUpgradeSocket } from './transport/websocket.ts';
import { loadWebAssets, type WebAssets } from './web/assets.ts';

/** Test and benchmark hooks; none is reachable from configuration or the network. */
export interface ServerOptions {
  logger?: HostLogger;
  limits?: Partial<ChatLimits & { sessionsPerTenantMax: number; asksPerTenantPerMinuteMax: number } & Omit<ObservabilityOptions, 'liveSessions'>>;
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

/** A running host. */
export interface HostServer {
  readonly url: string;
  readonly port: number;
  readonly authority: TenantAuthority;
  /** The host's embedder (for operator tasks such as seeding the demo tenant). */
  readonly embedder: Embedder;
  /** Set on the first start without CTX_OPERATOR_KEY: the generated operator key, to print once. */
  readonly generatedOperatorKey: string | undefined;
  /** Live chat sessions. */
  readonly liveSessions: number;
  /** Closes every session and connection, then the environments and the registry. */
  close(): Promise<void>;
}

/** Everything the routes and the chat endpoint share. */
export interface HostContext {
  config: HostConfig;
  authority: TenantAuthority;
  /** Where the master key comes from, for a rotation to keep it in step. */
  masterKeySource: MasterKeySource;
  tickets: TicketBook;
  operatorKey: OperatorKeyCheck;
  embedder: Embedder;
  /** The built-in default modules (metered like uploads). */
  modules: PluginModules;
  /** Meters uploads off the event loop. */
  metering: MeteringService;
  logger: HostLogger;
  /** The built browser pages (chat, console, operator view), served from memory. */
  web: WebAssets;
  /** Metrics, the consoles' recent activity, and the chat sessions' observers. */
  observability: Observability;
  sessionsByTenant: Map<string, Set<Session>>;
  modelFor(settings: TenantSettings): { model: ChatModel; routing: ModelRouting };
}

/**
 * Starts the host.
 * @throws {HostError} STORAGE_MASTER_KEY when the master key is malformed or does not open DATA_DIR
 *   (nothing is written then); CONFIG_INVALID for bad model or embedder settings; EMBED_FAILED
 *   when EMBED_URL is set and the embeddings server does not answer its probe.
 */
export async function startServer(config: HostConfig, options: ServerOptions = {}): Promise<HostServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  // Fail at start, not on the first search, when `npm run build` has not produced the kernel.
  compileDotKernel();
  const web = loadWebAssets();
  // Before anything is opened: a remote embedder that does not answer its probe stops the start.
  const embedder = await createEmbedder(config);
  const { registry, source: masterKeySource } = openRegistry(config.dataDir, config.masterKey);
  const environments = new TenantEnvironments({ dataDir: config.dataDir, registry, openMax: LIMITS.openEnvironmentsMax });
  const authority: TenantAuthority = { registry, environments };
  const { check: operatorKey, generated } = operatorKeyFor(config, registry);
  const models = createModels(config);
  const metering = createMeteringService();
  const sessionsByTenant = new Map<string, Set<Session>>();
  const context: HostContext = {
    config,
    authority,
    masterKeySource,
    tickets: new TicketBook({ ttlMs: LIMITS.ticketTtlMsMax, max: LIMITS.ticketsOutstandingMax }),
    operatorKey,
    embedder,
    modules: await loadBuiltinModules(BUILTIN_PLUGINS_DIR, metering),
    metering,
    logger,
    web,
    observability: createObservability({
      metricsTenantLabelsMax: options.limits?.metricsTenantLabelsMax ?? LIMITS.metricsTenantLabelsMax,
      recentAsksPerTenantMax: options.limits?.recentAsksPerTenantMax ?? LIMITS.recentAsksPerTenantMax,
      recentAsksTenantsMax: options.limits?.recentAsksTenantsMax ?? LIMITS.recentAsksTenantsMax,
      incidentsKeptMax: options.limits?.incidentsKeptMax ?? LIMITS.incidentsKeptMax,
      pluginLogLinesPerTenantMax: options.limits?.pluginLogLinesPerTenantMax ?? LIMITS.pluginLogLinesPerTenantMax,
      liveSessions: () => [...sessionsByTenant].map(([tenantId, sessions]) => [tenantId, sessions.size] as const),
    }),
    sessionsByTenant,
    modelFor: (settings) => pickModel(models, config.modelProvider, settings),
  };
  const server = createHttpServer((request, response) => {
    // Node's own listeners cover the socket while it parses; these cover the two streams.
    request.on('error', () => undefined);
    response.on('error', () => undefined);
    handleApiRequest(context, request, response).catch((error: unknown) =>
      sendError(response, error, (unknown) => logger.error({ err: unknown }, 'unexpected error in HTTP handler')),
    );
  });
  // Every connection gets an error listener the moment it exists, so a reset at any point (before,
  // during or after an upgrade) ends that connection only; it is counted, never thrown.
  server.on('connection', (socket) => {
    socket.on('error', () => {
      // Once upgraded, the WebSocket adapter's own listener counts the socket's errors.
      if (!isUpgradeSocket(socket)) context.observability.metrics.connectionError('http');
    });
  });
  const chat = attachChat(server, context, options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be opened (${error.code ?? error.message})`;
      reject(new HostError('CONFIG_INVALID', `PORT/HOST: ${config.host}:${config.port} ${reason}`));
    });
    server.listen(config.port, config.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const stopFeedbackSweep = startFeedbackSweep(authority, logger);
  const stopMarkingRunning = markHostRunning(config.dataDir);
  return {
    url: `http://${config.host}:${port}`,
    port,
    authority,
    embedder: context.embedder,
    generatedOperatorKey: generated,
    get liveSessions() {
      let count = 0;
      for (const sessions of context.sessionsByTenant.values()) count += sessions.size;
      return count;
    },
    close: async () => {
      await stopFeedbackSweep();
      await chat.close();
      const sessions = [...context.sessionsByTenant.values()].flatMap((set) => [...set]);
      await Promise.all(sessions.map((session) => session.close()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([...models.values()].map((model) => model.close?.()));
      await environments.close();
      await registry.close();
      stopMarkingRunning();
      await metering.close();
    },
  };
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

function attachChat(server: Server, context: HostContext, options: ServerOptions) {
  const limits: ChatLimits = {
    asksInFlightPerSessionMax: options.limits?.asksInFlightPerSessionMax ?? LIMITS.asksInFlightPerSessionMax,
    socketBufferedBytesMax: options.limits?.socketBufferedBytesMax ?? LIMITS.socketBufferedBytesMax,
    framesPerWindowMax: options.limits?.framesPerWindowMax ?? LIMITS.framesPerWindowMax,
    frameWindowMsMax: options.limits?.frameWindowMsMax ?? LIMITS.frameWindowMsMax,
    framesBeforeReadyMax: options.limits?.framesBeforeReadyMax ?? LIMITS.framesBeforeReadyMax,
  };
  const sessionsMax = options.limits?.sessionsPerTenantMax ?? LIMITS.sessionsPerTenantMax;
  const askQuota = new AskQuota(options.limits?.asksPerTenantPerMinuteMax ?? LIMITS.asksPerTenantPerMinuteMax);
  /** Sessions still starting, per tenant: they hold a slot, so the limit cannot be overrun across the start's awaits. */
  const starting = new Map<string, number>();
  return attachWebSocket(server, {
    path: '/v1/chat',
    maxFrameBytes: LIMITS.frameBytesMax,
    onUnknownError: (error) => context.logger.error({ err: error }, 'unexpected error at upgrade'),
    onSocketError: (stage) => context.observability.metrics.connectionError(stage),
    authenticate: (request: IncomingMessage, url: URL) => {
      const ticket = url.searchParams.get('ticket');
      const scope =
        ticket !== null
          ? mintScopeFromTicket(context.authority, context.tickets, ticket)
          : mintScopeFromApiKey(context.authority, bearerToken(request));
      return { scope, json: url.searchParams.get('encoding') === 'json', release: () => scope.release() };
    },
    onConnection: (socket, { scope, json }) => {
      const sessions = context.sessionsByTenant.get(scope.tenantId) ?? new Set<Session>();
      context.sessionsByTenant.set(scope.tenantId, sessions);
      let mine: Session | undefined;
      void serveChat({
        socket,
        tenantId: scope.tenantId,
        jsonFrames: json,
        limits,
        logger: context.logger,
        observe: (sessionId, log) => context.observability.session({ tenantId: scope.tenantId, sessionId }, log),
        openSession: async (log, sessionId) => {
          const held = starting.get(scope.tenantId) ?? 0;
          if (sessions.size + held >= sessionsMax) {
            scope.release();
            throw new HostError('TENANT_SESSION_LIMIT', `the tenant has ${sessions.size + held} live sessions, limit ${sessionsMax}`);
          }
          starting.set(scope.tenantId, held + 1);
          try {
            await options.faultHoldSessionStart?.(scope.tenantId);
            mine = await Session.open({
              scope,
              embedder: context.embedder,
              modules: options.pluginModulesFor?.(scope.tenantId) ?? (await tenantModules(scope, context.modules)),
              pluginOptions: { fuelPerCall: readSettings(scope).pluginFuelPerCall, ...options.pluginOptions },
              admitAsk: () => askQuota.admit(scope.tenantId),
              modelFor: context.modelFor,
              canaryOwner: (token) => context.authority.registry.canaryOwner(token),
              logger: log,
              ...(options.clock === undefined ? {} : { clock: options.clock }),
              ...(options.faultInjectResolved === undefined
                ? {}
                : { faultInjectResolved: (resolved, chunks) => options.faultInjectResolved?.(scope.tenantId, resolved, chunks) }),
              ...(options.faultInjectAssembled === undefined
                ? {}
                : { faultInjectAssembled: (messages) => options.faultInjectAssembled?.(scope.tenantId, messages) }),
              onLeakBlocked: (askId, error) => reportLeakBlock(scope, log, askId, error),
              onPluginLog: (slot, level, message) => context.observability.activity.pluginLogged(scope.tenantId, { at: Date.now(), session: sessionId, slot, level, message }),
            });
          } catch (error) {
            scope.release();
            throw error;
          } finally {
            const left = (starting.get(scope.tenantId) ?? 1) - 1;
            if (left > 0) starting.set(scope.tenantId, left);
            else starting.delete(scope.tenantId);
          }
          sessions.add(mine);
          return mine;
        },
        onEnd: () => {
          if (mine !== undefined) sessions.delete(mine);
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

/** Shared by routes: handles one API request (re-exported for the router's signature). */
export type ApiHandler = (context: HostContext, request: IncomingMessage, response: ServerResponse) => Promise<void>;
