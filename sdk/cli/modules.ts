/**
 * Turning module bytes into what a host would run: the host's own vetting and metering (so `check`
 * prints the report an upload would return, and `test` runs the metered module, fuel counter and
 * memory cap included), and the built-in plugins a project is paired with.
 */
import { readFile } from 'node:fs/promises';
import { compilePlugin, type CompiledPlugin } from '../../host/sandbox/module-cache.ts';
import { createMeteringService, type MeteringService } from '../../host/sandbox/metering-service.ts';
import { BUILTIN_PLUGINS_DIR, loadBuiltinModules, type PluginModules } from '../../host/sandbox/session-plugins.ts';
import type { PluginSlot } from '../../host/sandbox/slots.ts';
import { vetPlugin, type VettingReport } from '../../host/sandbox/vetting.ts';
import { buildAllPlugins } from '../../scripts/build-plugins.ts';
import { CliError } from './errors.ts';

/** A vetted module, ready to instantiate. */
export interface VettedModule {
  /** The report an upload of the same bytes returns. */
  report: VettingReport;
  /** The metered module, compiled. */
  compiled: CompiledPlugin;
}

/**
 * Reads a module file.
 *
 * @example
 * ```ts
 * const bytes = await readModule('build/plugin.wasm');
 * ```
 * @throws {CliError} CLI_WASM_NOT_FOUND when the file cannot be read.
 */
export async function readModule(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch {
    throw new CliError('CLI_WASM_NOT_FOUND', `cannot read the module ${path}`, 'build it first (`ctx-plugin build`), or check the --wasm path');
  }
}

/**
 * Vets and meters `bytes` for `slot` exactly as `PUT /v1/plugins/:slot` does, then compiles the
 * metered module.
 *
 * @example
 * ```ts
 * const { report, compiled } = await vetModule(bytes, 'retrieval', metering);
 * ```
 * @throws {HostError} PLUGIN_INVALID naming what vetting refused.
 */
export async function vetModule(bytes: Uint8Array, slot: PluginSlot, metering: MeteringService): Promise<VettedModule> {
  const { report, module } = await vetPlugin(bytes, slot, metering);
  return { report, compiled: await compilePlugin(module) };
}

/**
 * The built-in plugins, compiled from source when `npm run build` has not done it yet, and metered
 * like a host meters them at start.
 *
 * @example
 * ```ts
 * const builtins = await builtinModules(metering);
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED when a built-in cannot be loaded.
 */
export async function builtinModules(metering: MeteringService): Promise<PluginModules> {
  await buildAllPlugins();
  return loadBuiltinModules(BUILTIN_PLUGINS_DIR, metering);
}

/**
 * Runs `work` with a metering service and closes it afterwards (its worker thread would otherwise
 * keep the process alive).
 *
 * @example
 * ```ts
 * const vetted = await withMetering((metering) => vetModule(bytes, 'prompt', metering));
 * ```
 */
export async function withMetering<T>(work: (metering: MeteringService) => Promise<T>): Promise<T> {
  const metering = createMeteringService();
  try {
    return await work(metering);
  } finally {
    await metering.close();
  }
}
