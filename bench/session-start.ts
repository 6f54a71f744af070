/**
 * Session start: what every new connection pays for its sandbox — fresh instances of both default
 * plugins from their compiled, metered modules — against the same two modules in Extism's worker mode.
 */
import { loadWorkerPluginForBenchmark } from '../host/sandbox/extism.ts';
import type { PluginCapabilities } from '../host/sandbox/capabilities.ts';
import { HOST_FUNCTION_NAMES, HOST_NAMESPACE } from '../host/sandbox/module-cache.ts';
import { createMeteringService } from '../host/sandbox/metering-service.ts';
import { BUILTIN_PLUGINS_DIR, loadBuiltinModules, openSessionPlugins } from '../host/sandbox/session-plugins.ts';
import { summarise, type LatencySummary } from './stats.ts';

const NO_DATA: PluginCapabilities = {
  indexSearch: () => [],
  chunkGet: () => undefined,
  kvGet: () => undefined,
  kvSet: () => undefined,
  embed: () => new Float32Array(0),
  log: () => undefined,
};

/** Measures `rounds` foreground session starts and `workerRounds` worker-mode starts. */
export async function measureSessionStart(rounds: number, workerRounds: number): Promise<{ foreground: LatencySummary; worker: LatencySummary }> {
  // Metered, as the host runs them: the metered start function runs as a call of its own.
  const metering = createMeteringService();
  const modules = await loadBuiltinModules(BUILTIN_PLUGINS_DIR, metering);
  await metering.close();
  const foreground: number[] = [];
  for (let i = 0; i < rounds + 50; i += 1) {
    const started = performance.now();
    const plugins = await openSessionPlugins(modules, { retrieval: NO_DATA, prompt: NO_DATA });
    const elapsed = performance.now() - started;
    await plugins.close();
    if (i >= 50) foreground.push(elapsed);
  }
  const worker: number[] = [];
  for (let i = 0; i < workerRounds; i += 1) {
    const started = performance.now();
    const pair = await Promise.all([
      loadWorkerPluginForBenchmark(modules.retrieval.module, HOST_NAMESPACE, HOST_FUNCTION_NAMES),
      loadWorkerPluginForBenchmark(modules.prompt.module, HOST_NAMESPACE, HOST_FUNCTION_NAMES),
    ]);
    worker.push(performance.now() - started);
    await Promise.all(pair.map((plugin) => plugin.close()));
  }
  return { foreground: summarise(foreground), worker: summarise(worker) };
}
