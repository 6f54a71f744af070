/**
 * The local harness behind `ctx-plugin test`: runs one question through a project's plugin in the
 * host's own sandbox (createPluginInstance: the metered module, the per-call caps, the watchdog,
 * fuel), against a fixture tenant, the way a session's ask does — retrieval, chunk resolution,
 * then for prompt plugins assembly and the guard that builds the model's context. It records what
 * the plugins returned, how long each call took, the fuel it spent, its host calls and its log.
 *
 * The host functions are the session's own (host/pipeline/capabilities.ts) over the fixture
 * tenant's scope, wrapped only to count calls and keep the log.
 */
import { embedTexts } from '../../host/cache/embedding-cache.ts';
import { HostError } from '../../host/errors.ts';
import { resolveRanked, tenantCapabilities, type AskScratch } from '../../host/pipeline/capabilities.ts';
import { guardContext, type ContextMessage, type ResolvedChunk } from '../../host/pipeline/guard.ts';
import type { PluginCapabilities } from '../../host/sandbox/capabilities.ts';
import { createPluginInstance, type CallGuards } from '../../host/sandbox/instance.ts';
import { FUEL_EXPORT } from '../../host/sandbox/metering.ts';
import type { PluginModules } from '../../host/sandbox/session-plugins.ts';
import type { HistoryTurn, PluginSlot } from '../../host/sandbox/slots.ts';
import { checkExpectations, type Check } from './expectations.ts';
import type { FixtureTenant } from './fixture-tenant.ts';
import type { TestCase } from './project.ts';

/** What one plugin call cost. */
export interface CallStats {
  ms: number;
  /** Fuel spent, or `null` for an unmetered module (or a call that failed before it ended). */
  fuel: number | null;
  /** Host function calls by ABI name. */
  hostCalls: Record<string, number>;
}

/** A chunk the retrieval plugin ranked, resolved in the tenant's store. */
export interface RankedView {
  chunkId: string;
  docId: string;
  title: string;
  text: string;
  score: number;
}

/** The prompt plugin's part of a case. */
export interface PromptRun extends CallStats {
  cacheable: boolean;
  /** The messages as the model would receive them (chunk references resolved by the guard). */
  messages: ContextMessage[];
  /** Chunk ids the messages reference, in order of first reference. */
  references: string[];
  /** Estimated tokens of the whole context (UTF-8 bytes / 4, as the built-in prompt plugin counts). */
  contextTokens: number;
}

/** One line a plugin logged. */
export interface PluginLogLine {
  slot: PluginSlot;
  level: string;
  message: string;
}

/** The outcome of one test case. */
export interface CaseResult {
  question: string;
  /** Which slot the project's plugin fills: the one whose output the checks judge. */
  slot: PluginSlot;
  ranked: RankedView[];
  retrieval: CallStats | null;
  prompt: PromptRun | null;
  logs: PluginLogLine[];
  /** The error that stopped the case (a plugin call, the guard), with its host error code. */
  failure: { code: string; message: string } | null;
  checks: Check[];
  passed: boolean;
}

/** Per-ask state the host functions close over, as in a session. */
/**
 * Runs one test case: fresh instances of both slots (as a new session gets), one ask, then the
 * expectations. Plugin failures are part of the result, not thrown.
 *
 * @example
 * ```ts
 * const result = await runCase(tenant, { retrieval: mine, prompt: builtins.prompt }, testCase, 'retrieval');
 * if (!result.passed) process.exitCode = 1;
 * ```
 */
export async function runCase(tenant: FixtureTenant, modules: PluginModules, testCase: TestCase, slot: PluginSlot): Promise<CaseResult> {
  const result: CaseResult = { question: testCase.question, slot, ranked: [], retrieval: null, prompt: null, logs: [], failure: null, checks: [], passed: false };
  const [vector] = await embedTexts(tenant.scope, tenant.embedder, [testCase.question]);
  const state: AskScratch = { question: testCase.question, vector: vector as Float32Array, resolved: new Map() };
  const history: HistoryTurn[] = testCase.history.map((turn) => ({ role: turn.role, content: turn.content }));
  try {
    const chunks = await runRetrieval(tenant, modules, state, history, result);
    if (slot === 'prompt') await runPrompt(tenant, modules, state, { history, chunks }, result);
  } catch (error: unknown) {
    if (!(error instanceof HostError)) throw error;
    result.failure = { code: error.code, message: error.message };
  }
  result.checks = checkExpectations(result, testCase.expect);
  result.passed = result.failure === null && result.checks.every((check) => check.ok);
  return result;
}

async function runRetrieval(tenant: FixtureTenant, modules: PluginModules, state: AskScratch, history: HistoryTurn[], result: CaseResult): Promise<ResolvedChunk[]> {
  const stats: CallStats = { ms: 0, fuel: null, hostCalls: {} };
  result.retrieval = stats;
  const meter = fuelMeter(tenant.settings.pluginFuelPerCall);
  const instance = await createPluginInstance(modules.retrieval, {
    slot: 'retrieval',
    capabilities: fixtureCapabilities(tenant, 'retrieval', state, stats, result.logs),
    fuelPerCall: tenant.settings.pluginFuelPerCall,
    guards: meter.guards,
  });
  try {
    const started = performance.now();
    const ranked = await instance.retrieve({ query: state.question, k: tenant.settings.topK, history }).finally(() => {
      stats.ms = performance.now() - started;
      stats.fuel = meter.spent();
    });
    const chunks = resolveRanked(tenant.scope, tenant.embedder, ranked, state);
    result.ranked = chunks.map(({ chunkId, docId, title, text, score }) => ({ chunkId, docId, title, text, score }));
    return chunks;
  } finally {
    await instance.close();
  }
}

async function runPrompt(
  tenant: FixtureTenant,
  modules: PluginModules,
  state: AskScratch,
  input: { history: HistoryTurn[]; chunks: ResolvedChunk[] },
  result: CaseResult,
): Promise<void> {
  const stats: CallStats = { ms: 0, fuel: null, hostCalls: {} };
  const meter = fuelMeter(tenant.settings.pluginFuelPerCall);
  const instance = await createPluginInstance(modules.prompt, {
    slot: 'prompt',
    capabilities: fixtureCapabilities(tenant, 'prompt', state, stats, result.logs),
    fuelPerCall: tenant.settings.pluginFuelPerCall,
    guards: meter.guards,
  });
  try {
    const { systemPrompt, tokenBudget } = tenant.settings;
    const started = performance.now();
    const assembled = await instance
      .assemble({ systemPrompt, query: state.question, tokenBudget, history: input.history, chunks: input.chunks })
      .finally(() => {
        stats.ms = performance.now() - started;
        stats.fuel = meter.spent();
      });
    const store = tenant.scope.store;
    const context = guardContext(assembled.messages, state.resolved, {
      id: tenant.scope.tenantId,
      owner: tenant.canaryOwner,
      tagOf: (chunkId, text) => store.provenanceTag(chunkId, text),
    });
    const bytes = context.messages.reduce((sum, message) => sum + Buffer.byteLength(message.content), 0);
    result.prompt = {
      ...stats,
      cacheable: assembled.cacheable,
      messages: context.messages,
      references: context.used.map((chunk) => chunk.chunkId),
      contextTokens: Math.ceil(bytes / 4),
    };
  } finally {
    await instance.close();
  }
}

/** Reads the fuel a metered module has left after each call; spent = budget − remaining. */
function fuelMeter(fuelPerCall: number): { guards: CallGuards; spent(): number | null } {
  let remaining: bigint | null = null;
  return {
    guards: {
      beforeCall: () => {
        remaining = null;
      },
      afterCall: (exports) => {
        // An unmetered module (a test double) has no fuel global: then nothing is measured.
        const value = (exports[FUEL_EXPORT] as { value?: unknown } | undefined)?.value;
        remaining = typeof value === 'bigint' ? value : null;
        return null;
      },
    },
    spent: () => (remaining === null ? null : fuelPerCall - Number(remaining)),
  };
}

/** The session's own host functions over the fixture tenant, counting calls and keeping log lines. */
function fixtureCapabilities(tenant: FixtureTenant, slot: PluginSlot, state: AskScratch, stats: CallStats, logs: PluginLogLine[]): PluginCapabilities {
  const host = tenantCapabilities({
    scope: tenant.scope,
    embedder: tenant.embedder,
    slot,
    current: () => state,
    log: (level, message) => {
      logs.push({ slot, level, message });
    },
  });
  const count = (name: string): void => {
    stats.hostCalls[name] = (stats.hostCalls[name] ?? 0) + 1;
  };
  return {
    indexSearch: (request) => (count('index_search'), host.indexSearch(request)),
    chunkGet: (chunkId) => (count('chunk_get'), host.chunkGet(chunkId)),
    kvGet: (key) => (count('kv_get'), host.kvGet(key)),
    kvSet: (key, value) => (count('kv_set'), host.kvSet(key, value)),
    embed: (text) => (count('embed'), host.embed(text)),
    log: host.log,
  };
}
