/**
 * The plugin issue's figures (`npm run bench` runs them after the core ones; `tsx bench/plugins.ts`
 * alone): metered versus unmetered call time of the default plugins in the same run, the
 * watchdog's cost per call, session start with metered modules, and the p99 of a normal tenant's
 * asks while a neighbour's plugin burns its whole fuel budget on every ask, against the same
 * asks without the neighbour. Printed, never asserted.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../host/config.ts';
import type { PluginCapabilities } from '../host/sandbox/capabilities.ts';
import { createPluginInstance } from '../host/sandbox/instance.ts';
import { createMeteringService } from '../host/sandbox/metering-service.ts';
import { compilePlugin, type CompiledPlugin } from '../host/sandbox/module-cache.ts';
import { BUILTIN_PLUGINS_DIR, openSessionPlugins, type PluginModules } from '../host/sandbox/session-plugins.ts';
import type { ContextChunk } from '../host/sandbox/slots.ts';
import { startServer } from '../host/server.ts';
import { buildPlugin } from '../scripts/build-plugins.ts';
import { connect } from '../sdk/client/node.ts';
import { heading, line, ms, summarise, verdict } from './stats.ts';

const OPERATOR_KEY = 'bench-operator-key-0123456789';

/** A tenant of 40 chunks in memory: enough for both plugins to do their real work. */
function benchCapabilities(): PluginCapabilities {
  const ids = Array.from({ length: 40 }, (_, i) => `doc${i}#0`);
  return {
    indexSearch: (request) => ids.slice(0, request.k).map((chunkId, rank) => ({ chunkId, docId: chunkId.slice(0, -2), score: 1 / (rank + 1), via: request.mode.vector ? 1 : 2 })),
    chunkGet: (chunkId) => ({ chunkId, docId: chunkId.slice(0, -2), title: 'Title', text: 'Some text of the chunk. '.repeat(20), metadata: {} }),
    kvGet: () => undefined,
    kvSet: () => undefined,
    embed: () => new Float32Array(256),
    log: () => undefined,
  };
}

const CHUNKS: ContextChunk[] = Array.from({ length: 8 }, (_, i) => ({
  chunkId: `doc${i}#0`, docId: `doc${i}`, title: `Title ${i}`, text: 'A sentence of context that the prompt plugin places. '.repeat(12), score: 1 / (i + 1),
}));

/** Times `calls` retrieve + assemble pairs on fresh instances of `modules`; returns per-pair ms. */
async function timeCalls(modules: PluginModules, calls: number, watchdogMs: number | null): Promise<number[]> {
  const capabilities = benchCapabilities();
  const retrieval = await createPluginInstance(modules.retrieval, { slot: 'retrieval', capabilities, watchdogMs });
  const prompt = await createPluginInstance(modules.prompt, { slot: 'prompt', capabilities, watchdogMs });
  const samples: number[] = [];
  for (let i = 0; i < calls; i += 1) {
    const started = performance.now();
    await retrieval.retrieve({ query: `refund policy ${i % 7}`, k: 8, history: [] });
    await prompt.assemble({ systemPrompt: 'Answer from the context.', query: 'refund policy?', tokenBudget: 1500, history: [], chunks: CHUNKS });
    samples.push(performance.now() - started);
  }
  await Promise.all([retrieval.close(), prompt.close()]);
  return samples;
}

async function sessionStarts(modules: PluginModules, rounds: number): Promise<number[]> {
  const capabilities = benchCapabilities();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i += 1) {
    const started = performance.now();
    const plugins = await openSessionPlugins(modules, { retrieval: capabilities, prompt: capabilities });
    samples.push(performance.now() - started);
    await plugins.close();
  }
  return samples;
}

/** Runs the plugin figures. */
export async function runPluginBenchmarks(quick: boolean): Promise<void> {
  const metering = createMeteringService();
  const bytes = (slot: string) => readFileSync(join(BUILTIN_PLUGINS_DIR, `${slot}.wasm`));
  const meter = async (slot: string): Promise<CompiledPlugin> => compilePlugin((await metering.meter(bytes(slot))).bytes);
  const plain: PluginModules = { retrieval: await compilePlugin(bytes('retrieval')), prompt: await compilePlugin(bytes('prompt')) };
  const metered: PluginModules = { retrieval: await meter('retrieval'), prompt: await meter('prompt') };
  await metering.close();

  heading('plugins: default plugins, one retrieve + one assemble per sample (8 chunks), same run');
  const calls = quick ? 2_000 : 10_000;
  // Interleaved rounds so drift (JIT tiers, GC, frequency) hits both sides alike.
  const results = { plain: [] as number[], metered: [] as number[], watched: [] as number[] };
  for (let round = 0; round < 4; round += 1) {
    results.plain.push(...(await timeCalls(plain, calls / 4, null)));
    results.metered.push(...(await timeCalls(metered, calls / 4, null)));
    results.watched.push(...(await timeCalls(metered, calls / 4, 2_000)));
  }
  const p = summarise(results.plain);
  const m = summarise(results.metered);
  const w = summarise(results.watched);
  line('unmetered (as built)', `p50 ${ms(p.p50)}  mean ${ms(p.mean)}`);
  line('metered (fuel + memory cap), no watchdog', `p50 ${ms(m.p50)}  mean ${ms(m.mean)}`);
  line('ratio metered / unmetered (mean)', `${(m.mean / p.mean).toFixed(2)}x`, verdict(m.mean / p.mean, 1.3));
  line('metered with the watchdog (2 calls per sample)', `p50 ${ms(w.p50)}  mean ${ms(w.mean)}`, `+${ms((w.mean - m.mean) / 2)} per call`);

  heading('plugins: session start (both default plugins, fresh instances)');
  const rounds = quick ? 300 : 2_000;
  const startPlain = summarise((await sessionStarts(plain, rounds)).slice(50));
  const startMetered = summarise((await sessionStarts(metered, rounds)).slice(50));
  line('unmetered', `p50 ${ms(startPlain.p50)}  p99 ${ms(startPlain.p99)}`);
  line('metered (runs the start function as a metered call)', `p50 ${ms(startMetered.p50)}  p99 ${ms(startMetered.p99)}`, verdict(startMetered.p50, 1));

  await neighbourP99(quick);
}

/** p99 of a calm tenant's asks without and with a neighbour burning its budget on every ask. */
async function neighbourP99(quick: boolean): Promise<void> {
  heading('plugins: a normal tenant\'s asks while a neighbour burns its whole fuel budget on every ask');
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-bench-plugins-'));
  const config = loadConfig({}, { port: 0, dataDir, operatorKey: OPERATOR_KEY, demo: false, logLevel: 'silent' });
  const server = await startServer(config, { logger: pino({ level: 'silent' }), limits: { framesPerWindowMax: 1_000_000, asksPerTenantPerMinuteMax: 1_000_000 } });
  try {
    const calm = await api(server.url, 'POST', '/v1/tenants', OPERATOR_KEY, { name: 'calm' });
    const burner = await api(server.url, 'POST', '/v1/tenants', OPERATOR_KEY, { name: 'burner' });
    const documents = Array.from({ length: 200 }, (_, i) => ({ id: `d${i}`, title: `Doc ${i}`, text: `Topic ${i} covers shipping, refunds and opening hours number ${i}. `.repeat(4) }));
    await api(server.url, 'POST', '/v1/documents', calm.apiKey, { documents });
    const { outFile } = await buildPlugin('test/fixtures/plugins/cpu-and-memory.ts', 'build/test/plugins/cpu-and-memory.wasm');
    await fetch(`${server.url}/v1/plugins/retrieval`, { method: 'PUT', headers: { authorization: `Bearer ${burner.apiKey}`, 'content-type': 'application/wasm' }, body: readFileSync(outFile) });
    const client = await connect({ url: server.url, apiKey: calm.apiKey });
    const asks = quick ? 200 : 1_000;
    const measure = async (): Promise<number[]> => {
      const samples: number[] = [];
      for (let i = 0; i < asks; i += 1) {
        const started = performance.now();
        await client.ask(`What about refunds for topic ${i % 200}?`).result;
        samples.push(performance.now() - started);
      }
      return samples;
    };
    await measure();
    const alone = summarise(await measure());
    const hog = await connect({ url: server.url, apiKey: burner.apiKey });
    let burning = true;
    let burns = 0;
    const burnLoop = (async () => {
      while (burning) {
        await hog.ask('spin').result.catch(() => undefined);
        burns += 1;
      }
    })();
    const crowded = summarise(await measure());
    burning = false;
    await burnLoop;
    line('asks without the neighbour', `p50 ${ms(alone.p50)}  p99 ${ms(alone.p99)}`);
    line(`asks while the neighbour burns (${burns} burnt asks meanwhile)`, `p50 ${ms(crowded.p50)}  p99 ${ms(crowded.p99)}`);
    line('ratio p99 with / without', `${(crowded.p99 / alone.p99).toFixed(2)}x`, verdict(crowded.p99 / alone.p99, 2));
    client.close();
    hog.close();
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function api(url: string, method: string, path: string, key: string, body: unknown): Promise<{ apiKey: string }> {
  const response = await fetch(url + path, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return (await response.json()) as { apiKey: string };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runPluginBenchmarks(process.argv.includes('--quick')).catch((error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
