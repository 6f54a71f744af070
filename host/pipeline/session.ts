/**
 * A chat session: one per WebSocket connection. It owns the session's TenantScope, its fresh plugin
 * instances (created for this session, closed with it, never reused: invariant 3) and its history.
 * Each ask runs the pipeline: semantic cache (first turns) → embed → retrieval plugin → prompt plugin
 * → guard → model → stream, and stores a first-turn answer the prompt plugin marked cacheable.
 * The context of every ask starts empty: this session's history plus chunks resolved during this ask
 * from this tenant's index (invariant 4).
 */
import { askCacheFor, type AskCache } from '../cache/ask-cache.ts';
import { embedTexts, prepareIndexVectors } from '../cache/embedding-cache.ts';
import type { CacheHit, SemanticCache } from '../cache/semantic-cache.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { HostLogger } from '../log.ts';
import { modelIdFor, type ChatModel, type ModelRouting } from '../models/model.ts';
import type { AskResult } from '../protocol.ts';
import type { Embedder } from '../retrieval/embedder.ts';
import { TenantIndex } from '../retrieval/tenant-index.ts';
import type { PluginCapabilities } from '../sandbox/capabilities.ts';
import type { PluginModules, SessionPluginOptions, SessionPlugins, SliceRunner } from '../sandbox/session-plugins.ts';
import { openSessionPlugins } from '../sandbox/session-plugins.ts';
import { readSettings, type TenantSettings } from '../tenants/settings.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { readChunk, resolveRanked, tenantCapabilities, type AskScratch } from './capabilities.ts';
import { guardContext, StreamGuard, type AssembledMessage, type CanaryOwner, type ResolvedChunk } from './guard.ts';
import { sourceSnippet } from './snippet.ts';
import { storeFeedback } from '../training/feedback.ts';

/** A history turn. */
export interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

/** Where an ask's tokens go while it streams. */
export type TokenSink = (text: string) => void;

/** The outcome of an ask's cache lookup; a miss carries the question's vector for retrieval. */
type Lookup =
  | { kind: 'hit'; hit: CacheHit; cache: SemanticCache; timings: { embedMs: number; cacheMs: number } }
  | { kind: 'miss'; vector: Float32Array; timings: { embedMs: number; cacheMs: number } };

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
  /**
   * Runs one slice of plugin work (a start, a call) when the cell's scheduler gives the tenant a
   * turn (cells/scheduler.ts); without it, at once.
   */
  slice?: SliceRunner;
  /**
   * The session's share of the cell's plugin memory budget (cells/memory-budget.ts): told the bytes
   * the plugins hold after they start and after each ask; false means they do not fit, and they are
   * let go (TENANT_MEMORY_LIMIT at start; at the next ask after growing).
   */
  memory?: { fits(bytes: number): boolean };
  canaryOwner: CanaryOwner;
  /** The session's logger (it carries the tenant and session ids). */
  logger: HostLogger;
  /**
   * Receives the plugins' own log lines. Their text is plugin output and may quote tenant data,
   * so it goes here (to the tenant's console), and the host log records only that a line was written.
   */
  onPluginLog?: (slot: 'retrieval' | 'prompt', level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string) => void;
  /** Told of every ask the guard blocked (LEAK_BLOCKED), before the error reaches the client: audit, log. */
  onLeakBlocked?: (askId: string, error: HostError) => void;
  /** Epoch milliseconds, for cache expiry (tests move it); default Date.now. */
  clock?: () => number;
  /**
   * A fault point for tests: runs after the retrieval plugin's chunks are resolved and may add
   * chunks to them (and to the resolved set), as if a bug had put foreign material there.
   */
  faultInjectResolved?: (resolved: Map<string, ResolvedChunk>, chunks: ResolvedChunk[]) => void;
  /**
   * A fault point for tests: runs after the prompt plugin returned and may change its messages (add
   * a reference to a chunk this ask never resolved, say) before the guard sees them.
   */
  faultInjectAssembled?: (messages: AssembledMessage[]) => void;
}

/** One live chat session. A stateful resource: call `close()`. */
export class Session {
  readonly #deps: SessionDependencies;
  readonly #history: Turn[] = [];
  readonly #aborter = new AbortController();
  readonly #answered = new Map<string, { question: string; answer: string; sources: AskResult['sources'] }>();
  #plugins: SessionPlugins | undefined;
  #current: AskScratch | undefined;
  /** The plugin phase of asks runs one at a time: plugins are not reentrant and #current is shared. */
  #phase: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(deps: SessionDependencies) {
    this.#deps = deps;
  }

  /** Creates a session and its fresh plugin instances. */
  static async open(deps: SessionDependencies): Promise<Session> {
    // A remote embedder cannot re-embed synchronously when the tenant's index loads; do it first.
    await prepareIndexVectors(deps.scope, deps.embedder);
    // The host functions read the index synchronously: load it in steps first, if it is not yet.
    await TenantIndex.ready(deps.scope.store, deps.embedder);
    const session = new Session(deps);
    session.#plugins = await session.#createPlugins();
    return session;
  }

  /** The plugin hashes this session runs, for the `ready` frame. */
  get pluginInfo(): { retrieval: string; prompt: string } {
    return { retrieval: this.#deps.modules.retrieval.sha256, prompt: this.#deps.modules.prompt.sha256 };
  }

  async #createPlugins(): Promise<SessionPlugins> {
    const plugins = await openSessionPlugins(
      this.#deps.modules,
      { retrieval: this.#capabilities('retrieval'), prompt: this.#capabilities('prompt') },
      this.#deps.pluginOptions,
      this.#slice,
    );
    const bytes = plugins.memoryBytes;
    if (this.#deps.memory?.fits(bytes) === false) {
      await plugins.close();
      this.#deps.memory.fits(0);
      throw new HostError('TENANT_MEMORY_LIMIT', `this session's plugins hold ${bytes} bytes, and the host's plugin memory budget has no room for them for this tenant now`);
    }
    return plugins;
  }

  /** Runs one slice of plugin work through the cell's scheduler (at once without one). */
  readonly #slice: SliceRunner = (work) => (this.#deps.slice === undefined ? work() : this.#deps.slice(work));

  /** After an ask: plugins that grew past what the budget lets this tenant hold are let go. */
  async #checkMemory(): Promise<void> {
    const plugins = this.#plugins;
    if (plugins === undefined || this.#deps.memory === undefined) return;
    if (this.#deps.memory.fits(plugins.memoryBytes)) return;
    this.#plugins = undefined;
    await plugins.close().catch(() => undefined);
    this.#deps.memory.fits(0);
  }

  /** The host functions for one plugin slot: closures over this session's scope, nothing else. */
  #capabilities(slot: 'retrieval' | 'prompt'): PluginCapabilities {
    const { scope, embedder, logger } = this.#deps;
    return tenantCapabilities({
      scope,
      embedder,
      slot,
      current: () => this.#current,
      log: (level, message) => {
        logger[level]({ slot, plugin: true, chars: message.length }, 'plugin log line');
        this.#deps.onPluginLog?.(slot, level, message);
      },
    });
  }

  /**
   * Answers one question, streaming tokens to `sink`.
   * @throws {HostError} PLUGIN_* when a plugin fails (its instance is replaced for the next ask),
   *   LEAK_BLOCKED when the guard blocks the context or the answer (reported to `onLeakBlocked`
   *   first), MODEL_* from the provider.
   */
  async ask(askId: string, question: string, sink: TokenSink): Promise<AskResult> {
    try {
      return await this.#ask(askId, question, sink);
    } catch (error) {
      if (error instanceof HostError && error.code === 'LEAK_BLOCKED') this.#deps.onLeakBlocked?.(askId, error);
      throw error;
    }
  }

  async #ask(askId: string, question: string, sink: TokenSink): Promise<AskResult> {
    this.#deps.admitAsk?.();
    const started = performance.now();
    const settings = readSettings(this.#deps.scope);
    const { model, routing } = this.#deps.modelFor(settings);
    const cached = askCacheFor({
      scope: this.#deps.scope,
      embedder: this.#deps.embedder,
      settings,
      modelId: modelIdFor(model, routing),
      plugins: this.pluginInfo,
      firstTurn: this.#history.length === 0,
      now: this.#now(),
    });
    const exactStarted = performance.now();
    const exact = this.#lookupExact(question, cached);
    if (exact !== undefined) return this.#serveCached(askId, question, exact, sink, started);
    const lookup = await this.#lookupSimilar(question, cached, performance.now() - exactStarted);
    if (lookup.kind === 'hit') return this.#serveCached(askId, question, lookup, sink, started);
    const prepared = this.#phase.then(() => this.#prepare(question, lookup.vector, settings)).finally(() => this.#checkMemory());
    this.#phase = prepared.catch(() => undefined);
    const { context, timings, cacheable } = await prepared;
    const modelStarted = performance.now();
    const answer = await this.#stream(model, routing, question, context, sink);
    const modelMs = performance.now() - modelStarted;
    const cited = citedSources(answer, context.used);
    const sources = cited.map((chunk) => ({ docId: chunk.docId, chunkId: chunk.chunkId, score: chunk.score, title: chunk.title, snippet: sourceSnippet(chunk.text) }));
    this.#remember(askId, question, { answer, sources, cache: 'miss' });
    if (cached !== undefined) this.#storeAnswer(cached, { question, vector: lookup.vector, answer, cited, cacheable });
    return { answer, sources, cache: 'miss', timings: { ...lookup.timings, ...timings, modelMs, totalMs: performance.now() - started } };
  }

  /** The exact path: no embedding needed, and nothing awaited, so a hit is answered in the same turn. */
  #lookupExact(question: string, cached: AskCache | undefined): Extract<Lookup, { kind: 'hit' }> | undefined {
    if (cached === undefined) return undefined;
    const started = performance.now();
    const hit = cached.cache.lookupExact(cached.namespace, question, cached.policy);
    return hit === undefined ? undefined : { kind: 'hit', hit, cache: cached.cache, timings: { embedMs: 0, cacheMs: performance.now() - started } };
  }

  /**
   * The question's embedding (retrieval needs it anyway), then the similarity path. Without a cache
   * handle it only embeds. A miss carries the vector on to retrieval. `exactMs` is the exact path's
   * time, reported in `cacheMs` with this path's.
   */
  async #lookupSimilar(question: string, cached: AskCache | undefined, exactMs: number): Promise<Lookup> {
    const t1 = performance.now();
    const [vector] = await embedTexts(this.#deps.scope, this.#deps.embedder, [question], this.#aborter.signal);
    const t2 = performance.now();
    const similar = cached?.cache.lookupSimilar(cached.namespace, { question, vector: vector as Float32Array }, cached.policy);
    const timings = { embedMs: t2 - t1, cacheMs: exactMs + (performance.now() - t2) };
    if (cached !== undefined && similar !== undefined) return { kind: 'hit', hit: similar, cache: cached.cache, timings };
    return { kind: 'miss', vector: vector as Float32Array, timings };
  }

  /** Answers from a cache hit: streamed like a model's answer, then remembered like one. */
  #serveCached(askId: string, question: string, found: Extract<Lookup, { kind: 'hit' }>, sink: TokenSink, started: number): AskResult {
    const { hit, cache, timings } = found;
    const guardStarted = performance.now();
    try {
      this.#replay(hit.answer, sink);
    } catch (error) {
      cache.discard(hit.entry);
      throw error;
    }
    const guardMs = performance.now() - guardStarted;
    // The hit's sources were re-validated against the current index, so each chunk resolves.
    const sources = hit.sources.map((source) => ({ ...source, snippet: sourceSnippet(readChunk(this.#deps.scope, this.#deps.embedder, source.chunkId)?.text ?? '') }));
    this.#remember(askId, question, { answer: hit.answer, sources, cache: 'hit' });
    return {
      answer: hit.answer,
      sources,
      cache: 'hit',
      similarity: hit.similarity,
      cacheMatch: hit.match,
      timings: { ...timings, retrievalMs: 0, promptMs: 0, guardMs, modelMs: 0, totalMs: performance.now() - started },
    };
  }

  /**
   * Streams a cached answer through a fresh StreamGuard: it is tenant data like any model output
   * and is scanned for foreign canaries the same way. Pushed whole, so the guard has scanned all of
   * it before anything leaves; then sent as one token frame (a frame costs a socket write on each
   * side, and the answer is complete), followed by `done` as for a model's answer.
   */
  #replay(answer: string, sink: TokenSink): void {
    const guard = new StreamGuard(this.#deps.scope.tenantId, this.#deps.canaryOwner, 'cache');
    const text = guard.push(answer) + guard.flush();
    if (text.length > 0) sink(text);
  }

  /**
   * Stores a first-turn answer the prompt plugin marked cacheable, with its sources' provenance
   * tags (checked again on every hit); counts one it did not mark. A failed write only loses the entry.
   */
  #storeAnswer(cached: AskCache, made: { question: string; vector: Float32Array; answer: string; cited: ResolvedChunk[]; cacheable: boolean }): void {
    if (!made.cacheable || made.answer.trim().length === 0) {
      cached.cache.noteOptOut();
      return;
    }
    const sources = made.cited.map(({ docId, chunkId, score, title, tag }) => ({ docId, chunkId, score, title, tag }));
    try {
      cached.cache.store({ namespace: cached.namespace, question: made.question, vector: made.vector, answer: made.answer, sources }, { ...cached.policy, now: this.#now() });
    } catch (error) {
      this.#deps.logger.warn({ err: error }, 'semantic cache write failed');
    }
  }

  #now(): number {
    return (this.#deps.clock ?? Date.now)();
  }

  async #prepare(question: string, vector: Float32Array, settings: TenantSettings) {
    this.#assertOpen();
    const plugins = await this.#ensurePlugins();
    const state: AskScratch = { question, vector, resolved: new Map() };
    const t1 = performance.now();
    this.#current = state;
    try {
      const history = this.#history.map((turn) => ({ role: turn.role, content: turn.content }));
      const ranked = await this.#guardPlugin(this.#slice(() => plugins.retrieve({ query: question, k: settings.topK, history })));
      const chunks = resolveRanked(this.#deps.scope, this.#deps.embedder, ranked, state);
      this.#deps.faultInjectResolved?.(state.resolved, chunks);
      const t2 = performance.now();
      const assembled = await this.#guardPlugin(
        this.#slice(() => plugins.assemble({ systemPrompt: settings.systemPrompt, query: question, tokenBudget: settings.tokenBudget, history, chunks })),
      );
      const t3 = performance.now();
      this.#deps.faultInjectAssembled?.(assembled.messages);
      const store = this.#deps.scope.store;
      const context = guardContext(assembled.messages, state.resolved, {
        id: this.#deps.scope.tenantId,
        owner: this.#deps.canaryOwner,
        tagOf: (chunkId, text) => store.provenanceTag(chunkId, text),
      });
      const t4 = performance.now();
      // The cache key holds no history, so only an answer made without any may be stored.
      const cacheable = assembled.cacheable && history.length === 0;
      return { context, cacheable, timings: { retrievalMs: t2 - t1, promptMs: t3 - t2, guardMs: t4 - t3 } };
    } finally {
      this.#current = undefined;
    }
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
   * sources, in the tenant's own feedback table — when the tenant retains feedback (training/feedback.ts).
   * @throws {HostError} PROTOCOL_BAD_FRAME when the id names no recent answer of this session.
   */
  recordFeedback(feedback: { id: string; rating: 1 | -1; comment?: string }): void {
    const answered = this.#answered.get(feedback.id);
    if (answered === undefined) throw new HostError('PROTOCOL_BAD_FRAME', `feedback.id ${JSON.stringify(feedback.id)} names no recent answer of this session`);
    const sources = answered.sources.map(({ docId, chunkId, title, score }) => ({ docId, chunkId, title, score }));
    storeFeedback(this.#deps.scope, { askId: feedback.id, rating: feedback.rating, ...(feedback.comment === undefined ? {} : { comment: feedback.comment }), question: answered.question, answer: answered.answer, sources });
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

