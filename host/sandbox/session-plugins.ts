/**
 * The pair of plugin instances one session runs: a retrieval instance and a prompt instance,
 * created fresh for the session from the tenant's compiled modules, each bound to its own
 * slot's capabilities, and closed together.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LIMITS } from '../limits.ts';
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
  /** Bytes both instances hold now (for the memory budget). */
  readonly memoryBytes: number;
  /** Closes both instances. Idempotent. */
  close(): Promise<void>;
}

/** Runs one slice of CPU work for the session's tenant when the cell's scheduler gives it a turn. */
export type SliceRunner = <T>(work: () => Promise<T>) => Promise<T>;

/** Options shared by both instances (limits may only be lowered; guards for fuel and memory). */
export type SessionPluginOptions = Omit<PluginInstanceOptions, 'slot' | 'capabilities'>;

/**
 * Creates fresh instances of both slots for one session.
 *
 * @example
 * ```ts
 * const plugins = await openSessionPlugins(modules, { retrieval: retrievalCapabilities, prompt: promptCapabilities });
 * // In a cell, each instance starts in a scheduler slice: openSessionPlugins(modules, capabilities, options, slice)
 * try { await plugins.retrieve({ query, k: 5, history: [] }); } finally { await plugins.close(); }
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED when either module cannot be instantiated.
 */
export async function openSessionPlugins(
  modules: PluginModules,
  capabilities: Readonly<Record<PluginSlot, PluginCapabilities>>,
  options: SessionPluginOptions = {},
  slice: SliceRunner = (work) => work(),
): Promise<SessionPlugins> {
  // Each instance starts in a slice of its own: a start function may spend a whole call's fuel.
  const [retrieval, prompt] = await Promise.allSettled([
    slice(() => createPluginInstance(modules.retrieval, { ...options, slot: 'retrieval', capabilities: capabilities.retrieval })),
    slice(() => createPluginInstance(modules.prompt, { ...options, slot: 'prompt', capabilities: capabilities.prompt })),
  ]);
  if (retrieval.status === 'rejected' || prompt.status === 'rejected') {
    if (retrieval.status === 'fulfilled') await retrieval.value.close();
    if (prompt.status === 'fulfilled') await prompt.value.close();
    throw retrieval.status === 'rejected' ? retrieval.reason : (prompt as PromiseRejectedResult).reason;
  }
  return {
    retrieve: (input) => retrieval.value.retrieve(input),
    assemble: (input) => prompt.value.assemble(input),
    get memoryBytes() {
      return retrieval.value.memoryBytes + prompt.value.memoryBytes;
    },
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

/** What `npm run build` records beside a built-in it metered ahead of time (`<slot>.metered.json`). */
export interface MeteredBuiltinManifest {
  /** SHA-256 of the module that was metered (`<slot>.wasm`). */
  sourceSha256: string;
  /** SHA-256 of the metering code that did it (host/sandbox/metering.ts). */
  meteringSha256: string;
  /** The memory cap compiled in, in 64 KiB pages. */
  memoryPagesMax: number;
}

const METERING_SOURCE = new URL('./metering.ts', import.meta.url);
const PAGE_BYTES = 64 * 1024;

/** The manifest a metered copy of `source` must carry to be used as it is: same module, same metering, same cap. */
export async function expectedBuiltinManifest(source: Uint8Array): Promise<MeteredBuiltinManifest> {
  return {
    sourceSha256: createHash('sha256').update(source).digest('hex'),
    meteringSha256: createHash('sha256').update(await readFile(METERING_SOURCE)).digest('hex'),
    memoryPagesMax: LIMITS.pluginMemoryBytesMax / PAGE_BYTES,
  };
}

/**
 * The metered copy `npm run build` made of a built-in, when its manifest matches the module and the
 * metering code of this checkout; undefined otherwise (the host then meters it itself). Metering
 * takes binaryen seconds of CPU, and a cell that replaces a crashed one must be serving in far less.
 */
async function prebuiltMetered(dir: string, slot: PluginSlot, source: Uint8Array): Promise<Uint8Array | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, `${slot}.metered.json`), 'utf8')) as MeteredBuiltinManifest;
    const expected = await expectedBuiltinManifest(source);
    if (manifest.sourceSha256 !== expected.sourceSha256 || manifest.meteringSha256 !== expected.meteringSha256 || manifest.memoryPagesMax !== expected.memoryPagesMax) {
      return undefined;
    }
    return await readFile(join(dir, `${slot}.metered.wasm`));
  } catch {
    return undefined;
  }
}

/**
 * Loads and compiles the built-in default plugins (`build/plugins/{retrieval,prompt}.wasm`). With
 * `metering` they are metered exactly as uploads are, so they run under the same fuel and memory
 * limits (from the copies `npm run build` metered ahead of time when those are current); without
 * it they run as built (benchmark baselines and unit tests).
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
      const prebuilt = await prebuiltMetered(dir, slot, bytes);
      metered = prebuilt === undefined ? metering.meter(bytes).then((result) => result.bytes) : Promise.resolve(prebuilt);
      meteredBuiltins.set(sha256, metered);
      metered.catch(() => meteredBuiltins.delete(sha256));
    }
    return { ...(await compilePlugin(await metered)), builtin: true };
  };
  // Both load at once; when both fail, the error is the retrieval slot's either way (Promise.all
  // would reject with whichever read failed first, so the message changed from run to run).
  const [retrieval, prompt] = await Promise.allSettled([load('retrieval'), load('prompt')]);
  if (retrieval.status === 'rejected') throw retrieval.reason;
  if (prompt.status === 'rejected') throw prompt.reason;
  return { retrieval: retrieval.value, prompt: prompt.value };
}
