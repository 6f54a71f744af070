/**
 * The pair of plugin instances one session runs: a retrieval instance and a prompt instance,
 * created fresh for the session from the tenant's compiled modules, each bound to its own
 * slot's capabilities, and closed together.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostError } from '../errors.ts';
import type { PluginCapabilities } from './capabilities.ts';
import { createPluginInstance, type PluginInstanceOptions } from './instance.ts';
import type { MeteringService } from './metering-service.ts';
import { compilePlugin, type CompiledPlugin } from './module-cache.ts';
import type { AssembleInput, AssembleOutput, PluginSlot, RankedChunk, RetrieveInput } from './slots.ts';

/** The compiled module each slot runs. */
export interface PluginModules {
  retrieval: CompiledPlugin;
  prompt: CompiledPlugin;
}

/** A session's two plugin instances. A stateful resource: call `close()`. */
export interface SessionPlugins {
  /** @throws {HostError} PLUGIN_* (see RetrievalPluginInstance.retrieve). */
  retrieve(input: RetrieveInput): Promise<RankedChunk[]>;
  /** @throws {HostError} PLUGIN_* (see PromptPluginInstance.assemble). */
  assemble(input: AssembleInput): Promise<AssembleOutput>;
  /** Closes both instances. Idempotent. */
  close(): Promise<void>;
}

/** Options shared by both instances (limits may only be lowered; guards for fuel and memory). */
export type SessionPluginOptions = Omit<PluginInstanceOptions, 'slot' | 'capabilities'>;

/**
 * Creates fresh instances of both slots for one session.
 *
 * @example
 * ```ts
 * const plugins = await openSessionPlugins(modules, { retrieval: retrievalCapabilities, prompt: promptCapabilities });
 * try { await plugins.retrieve({ query, k: 5, history: [] }); } finally { await plugins.close(); }
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED when either module cannot be instantiated.
 */
export async function openSessionPlugins(
  modules: PluginModules,
  capabilities: Readonly<Record<PluginSlot, PluginCapabilities>>,
  options: SessionPluginOptions = {},
): Promise<SessionPlugins> {
  const [retrieval, prompt] = await Promise.allSettled([
    createPluginInstance(modules.retrieval, { ...options, slot: 'retrieval', capabilities: capabilities.retrieval }),
    createPluginInstance(modules.prompt, { ...options, slot: 'prompt', capabilities: capabilities.prompt }),
  ]);
  if (retrieval.status === 'rejected' || prompt.status === 'rejected') {
    if (retrieval.status === 'fulfilled') await retrieval.value.close();
    if (prompt.status === 'fulfilled') await prompt.value.close();
    throw retrieval.status === 'rejected' ? retrieval.reason : (prompt as PromiseRejectedResult).reason;
  }
  return {
    retrieve: (input) => retrieval.value.retrieve(input),
    assemble: (input) => prompt.value.assemble(input),
    close: async () => {
      await Promise.all([retrieval.value.close(), prompt.value.close()]);
    },
  };
}

/** Where `npm run build` writes the built-in plugins. */
export const BUILTIN_PLUGINS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'plugins');

/**
 * Metered built-in modules by the SHA-256 of their source module: code only, the same for every
 * host in the process, so a second host (tests start many) does not meter them again.
 */
const meteredBuiltins = new Map<string, Promise<Uint8Array>>();

/**
 * Loads and compiles the built-in default plugins (`build/plugins/{retrieval,prompt}.wasm`). With
 * `metering` they are metered exactly as uploads are, so they run under the same fuel and memory
 * limits; without it they run as built (benchmark baselines and unit tests).
 *
 * @example
 * ```ts
 * const modules = await loadBuiltinModules(BUILTIN_PLUGINS_DIR, metering);
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED when a module is missing (run `npm run build`) or invalid.
 */
export async function loadBuiltinModules(dir: string = BUILTIN_PLUGINS_DIR, metering?: MeteringService): Promise<PluginModules> {
  const load = async (slot: PluginSlot): Promise<CompiledPlugin> => {
    const path = join(dir, `${slot}.wasm`);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch {
      throw new HostError('PLUGIN_LOAD_FAILED', `the built-in ${slot} plugin is missing at ${path}; run \`npm run build\``);
    }
    if (metering === undefined) return { ...(await compilePlugin(bytes)), builtin: true };
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let metered = meteredBuiltins.get(sha256);
    if (metered === undefined) {
      metered = metering.meter(bytes).then((result) => result.bytes);
      meteredBuiltins.set(sha256, metered);
      metered.catch(() => meteredBuiltins.delete(sha256));
    }
    return { ...(await compilePlugin(await metered)), builtin: true };
  };
  const [retrieval, prompt] = await Promise.all([load('retrieval'), load('prompt')]);
  return { retrieval, prompt };
}
