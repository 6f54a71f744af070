/**
 * A chat session: one per WebSocket connection. It owns the session's TenantScope, its fresh plugin
 * instances (created for this session, closed with it, never reused: invariant 3) and its history.
 * Each ask runs the pipeline: embed → retrieval plugin → prompt plugin → guard → model → stream.
 * The context of every ask starts empty: this session's history plus chunks resolved during this ask
 * from this tenant's index (invariant 4).
 */
import { embedCached } from '../cache/embedding-cache.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { HostLogger } from '../log.ts';
import type { ChatModel, ModelRouting } from '../models/model.ts';
import type { Embedder } from '../retrieval/embedder.ts';
import { TenantIndex } from '../retrieval/tenant-index.ts';
import type { ChunkView, PluginCapabilities, SearchRequest } from '../sandbox/capabilities.ts';
import type { PluginModules, SessionPluginOptions, SessionPlugins } from '../sandbox/session-plugins.ts';
import { openSessionPlugins } from '../sandbox/session-plugins.ts';
import { readSettings, type TenantSettings } from '../tenants/settings.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { guardContext, StreamGuard, type CanaryOwner, type ResolvedChunk } from './guard.ts';

/** A history turn. */
export interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

/** Where an ask's tokens go while it streams. */
export type TokenSink = (text: string) => void;

/** The `done` frame's content. */
export interface AskResult {
  answer: string;
  sources: { docId: string; chunkId: string; score: number; title: string }[];
  cache: 'hit' | 'miss';
  timings: { embedMs: number; retrievalMs: number; promptMs: number; guardMs: number; modelMs: number; totalMs: number };
}

/** What a session needs from the server. */
export interface SessionDependencies {
  scope: TenantScope;
  embedder: Embedder;
  /** Picks the model for the tenant's settings (throws MODEL_FAILED when it is not configured). */
  modelFor(settings: TenantSettings): { model: ChatModel; routing: ModelRouting };
  /** The modules the tenant's plugin slots run (its uploads, else the built-in defaults). */
  modules: PluginModules;
  /** Instance options for the session's plugins (the tenant's fuel budget, say). */
  pluginOptions?: SessionPluginOptions;
  /** Counts an ask against the tenant's quota; throws TENANT_ASK_RATE_LIMIT when it is over. */
  admitAsk?: () => void;
  canaryOwner: CanaryOwner;
  logger: HostLogger;
  /**
   * A fault point for tests: runs after the retrieval plugin's chunks are resolved and may add
   * chunks to them (and to the resolved set), as if a bug had put foreign material there.
   */
  faultInjectResolved?: (resolved: Map<string, ResolvedChunk>, chunks: ResolvedChunk[]) => void;
}

/** Per-ask state the host functions close over while the plugins run for that ask. */
interface AskState {
  vector: Float32Array;
  resolved: Map<string, ResolvedChunk>;
}

/** One live chat session. A stateful resource: call `close()`. */
export class Session {
  readonly #deps: SessionDependencies;
  readonly #history: Turn[] = [];
  readonly #aborter = new AbortController();
  readonly #answered = new Map<string, { question: string; answer: string; sources: AskResult['sources'] }>();
  #plugins: SessionPlugins | undefined;
  #current: AskState | undefined;
  /** The plugin phase of asks runs one at a time: plugins are not reentrant and #current is shared. */
  #phase: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(deps: SessionDependencies) {
    this.#deps = deps;
  }

  /** Creates a session and its fresh plugin instances. */
  static async open(deps: SessionDependencies): Promise<Session> {
    const session = new Session(deps);
    session.#plugins = await session.#createPlugins();
    return session;
  }

  /** The plugin hashes this session runs, for the `ready` frame. */
  get pluginInfo(): { retrieval: string; prompt: string } {
    return { retrieval: this.#deps.modules.retrieval.sha256, prompt: this.#deps.modules.prompt.sha256 };
  }

  #createPlugins(): Promise<SessionPlugins> {
    return openSessionPlugins(
      this.#deps.modules,
      { retrieval: this.#capabilities('retrieval'), prompt: this.#capabilities('prompt') },
      this.#deps.pluginOptions,
    );
  }

  /** The host functions for one plugin slot: closures over this session's scope, nothing else. */
  #capabilities(slot: 'retrieval' | 'prompt'): PluginCapabilities {
    const { scope, embedder, logger } = this.#deps;
    const resolve = (view: ChunkView & { tag: string }, score: number): void => {
      this.#current?.resolved.set(view.chunkId, { chunkId: view.chunkId, docId: view.docId, title: view.title, text: view.text, score, tag: view.tag });
    };
    return {
      indexSearch: (request: SearchRequest) => {
        const hits = TenantIndex.of(scope.store, embedder).search(request, this.#current?.vector ?? null);
        return hits.slice(0, LIMITS.searchHitsMax * 2);
      },
      chunkGet: (chunkId: string) => {
        const view = readChunk(scope, embedder, chunkId);
        if (view === undefined) return undefined;
        resolve(view, this.#current?.resolved.get(chunkId)?.score ?? 0);
        const { tag: _tag, ...plain } = view;
        return plain;
      },
      kvGet: (key) => scope.store.kvGet(slot, key),
      kvSet: (key, value) => scope.store.kvSet(slot, key, value),
      embed: (text) => embedCached(scope, embedder, text),
      log: (level, message) => logger[level === 'trace' ? 'trace' : level]({ tenant: scope.tenantId, slot, plugin: true }, message),
    };
  }

  /**
   * Answers one question, streaming tokens to `sink`.
   * @throws {HostError} PLUGIN_* when a plugin fails (its instance is replaced for the next ask),
   *   LEAK_BLOCKED when the guard blocks the context or the answer, MODEL_* from the provider.
   */
  async ask(askId: string, question: string, sink: TokenSink): Promise<AskResult> {
    this.#deps.admitAsk?.();
    const started = performance.now();
    const settings = readSettings(this.#deps.scope);
    const prepared = this.#phase.then(() => this.#prepare(question, settings));
    this.#phase = prepared.catch(() => undefined);
    const { context, timings } = await prepared;
    const { model, routing } = this.#deps.modelFor(settings);
    const modelStarted = performance.now();
    const answer = await this.#stream(model, routing, question, context, sink);
    const modelMs = performance.now() - modelStarted;
    const sources = citedSources(answer, context.used).map((chunk) => ({ docId: chunk.docId, chunkId: chunk.chunkId, score: chunk.score, title: chunk.title }));
    this.#remember(askId, question, { answer, sources, cache: 'miss' });
    return { answer, sources, cache: 'miss', timings: { ...timings, modelMs, totalMs: performance.now() - started } };
  }

  async #prepare(question: string, settings: TenantSettings) {
    this.#assertOpen();
    const plugins = await this.#ensurePlugins();
    const t0 = performance.now();
    const state: AskState = { vector: embedCached(this.#deps.scope, this.#deps.embedder, question), resolved: new Map() };
    const t1 = performance.now();
    this.#current = state;
    try {
      const history = this.#history.map((turn) => ({ role: turn.role, content: turn.content }));
      const ranked = await this.#guardPlugin(plugins.retrieve({ query: question, k: settings.topK, history }));
      const chunks = this.#resolveRanked(ranked, state);
      this.#deps.faultInjectResolved?.(state.resolved, chunks);
      const t2 = performance.now();
      const assembled = await this.#guardPlugin(
        plugins.assemble({ systemPrompt: settings.systemPrompt, query: question, tokenBudget: settings.tokenBudget, history, chunks }),
      );
      const t3 = performance.now();
      const store = this.#deps.scope.store;
      const context = guardContext(assembled.messages, state.resolved, {
        id: this.#deps.scope.tenantId,
        owner: this.#deps.canaryOwner,
        tagOf: (chunkId, text) => store.provenanceTag(chunkId, text),
      });
      const t4 = performance.now();
      return { context, timings: { embedMs: t1 - t0, retrievalMs: t2 - t1, promptMs: t3 - t2, guardMs: t4 - t3 } };
    } finally {
      this.#current = undefined;
    }
  }

  /** Resolves the retrieval plugin's chunk ids through this tenant's store; unknown ids are dropped. */
  #resolveRanked(ranked: { chunkId: string; score: number }[], state: AskState): ResolvedChunk[] {
    const chunks: ResolvedChunk[] = [];
    const taken = new Set<string>();
    for (const { chunkId, score } of ranked) {
      if (taken.has(chunkId)) continue;
      taken.add(chunkId);
      const view = readChunk(this.#deps.scope, this.#deps.embedder, chunkId);
      if (view === undefined) continue;
      const chunk: ResolvedChunk = { chunkId, docId: view.docId, title: view.title, text: view.text, score, tag: view.tag };
      state.resolved.set(chunkId, chunk);
      chunks.push(chunk);
    }
    return chunks;
  }

  /** Runs a plugin call; when it fails, the instances are discarded and rebuilt on the next ask. */
  async #guardPlugin<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      if (error instanceof HostError && error.code.startsWith('PLUGIN_')) {
        const broken = this.#plugins;
        this.#plugins = undefined;
        await broken?.close().catch(() => undefined);
      }
      throw error;
    }
  }

  async #ensurePlugins(): Promise<SessionPlugins> {
    if (this.#plugins === undefined) this.#plugins = await this.#createPlugins();
    return this.#plugins;
  }

  async #stream(
    model: ChatModel,
    routing: ModelRouting,
    question: string,
    context: ReturnType<typeof guardContext>,
    sink: TokenSink,
  ): Promise<string> {
    const guard = new StreamGuard(this.#deps.scope.tenantId, this.#deps.canaryOwner);
    let answer = '';
    const stream = model.stream({
      ...routing,
      messages: context.messages,
      question,
      chunks: context.used.map(({ chunkId, docId, title, text }) => ({ chunkId, docId, title, text })),
      signal: this.#aborter.signal,
    });
    for await (const token of stream) {
      answer += token;
      const safe = guard.push(token);
      if (safe.length > 0) sink(safe);
    }
    const rest = guard.flush();
    if (rest.length > 0) sink(rest);
    return answer;
  }

  #remember(askId: string, question: string, result: Omit<AskResult, 'timings'>): void {
    this.#history.push({ role: 'user', content: question }, { role: 'assistant', content: result.answer });
    while (this.#history.length > LIMITS.historyTurnsMax * 2) this.#history.shift();
    this.#answered.set(askId, { question, answer: result.answer, sources: result.sources });
    // Feedback can name any of the recent answers; older ones are forgotten with the history.
    for (const key of this.#answered.keys()) {
      if (this.#answered.size <= LIMITS.historyTurnsMax) break;
      this.#answered.delete(key);
    }
  }

  /**
   * Stores a rating of one of this session's recent answers, with the ask, the answer and its
   * sources, in the tenant's own feedback table.
   * @throws {HostError} PROTOCOL_BAD_FRAME when the id names no recent answer of this session.
   */
  recordFeedback(feedback: { id: string; rating: 1 | -1; comment?: string }): void {
    const answered = this.#answered.get(feedback.id);
    if (answered === undefined) throw new HostError('PROTOCOL_BAD_FRAME', `feedback.id ${JSON.stringify(feedback.id)} names no recent answer of this session`);
    const at = Date.now();
    this.#deps.scope.store.feedback.put(`${at.toString(36).padStart(9, '0')}:${feedback.id}:${Math.random().toString(36).slice(2, 8)}`, {
      askId: feedback.id,
      rating: feedback.rating,
      comment: feedback.comment ?? null,
      ...answered,
      at,
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new HostError('PROTOCOL_BAD_FRAME', 'the session is closed');
  }

  /** Closes the plugin instances, aborts streams in flight and releases the scope. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#aborter.abort(new HostError('MODEL_FAILED', 'the session closed'));
    const plugins = this.#plugins;
    this.#plugins = undefined;
    await this.#phase.catch(() => undefined);
    await plugins?.close().catch(() => undefined);
    this.#deps.scope.release();
  }
}

/**
 * The sources to report: the context chunks the answer cites as `[chunkId]`, in citation order;
 * when it cites none (a model that does not cite, or no answer), every chunk of the context.
 */
function citedSources(answer: string, used: readonly ResolvedChunk[]): ResolvedChunk[] {
  const byId = new Map(used.map((chunk) => [chunk.chunkId, chunk]));
  const cited = new Map<string, ResolvedChunk>();
  for (const match of answer.matchAll(/\[([^\[\]\s]{1,256})\]/g)) {
    const chunk = byId.get(match[1] ?? '');
    if (chunk !== undefined) cited.set(chunk.chunkId, chunk);
  }
  return cited.size > 0 ? [...cited.values()] : [...used];
}

function readChunk(scope: TenantScope, embedder: Embedder, chunkId: string): (ChunkView & { tag: string }) | undefined {
  const chunk = TenantIndex.of(scope.store, embedder).chunk(scope.store, chunkId);
  if (chunk === undefined) return undefined;
  return { chunkId: chunk.chunkId, docId: chunk.docId, title: chunk.title, text: chunk.text, metadata: chunk.metadata, tag: chunk.tag };
}
