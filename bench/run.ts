/**
 * `npm run bench`: the core issue's figures, each printed beside a floor measured in the same run.
 * Everything targets 127.0.0.1 only, runs a bounded number of iterations and stops by itself.
 *
 * - floor: a bare `ws` echo round trip (same machine, same client);
 * - session start: both default plugins instantiated fresh (what every connection pays), p50/p99,
 *   and the same with Extism's `runInWorker: true` for the ratio;
 * - ask without the model (embed, both plugins, guard) on a tenant holding 10,000 chunks, k = 8;
 * - full asks per second with the local model over WebSocket (server and clients share this process);
 * - semantic cache: hit round trips (exact and semantic path) and cached asks per second, and the
 *   similarity path's correct hits on the paraphrase set and wrong hits on the hard-negative set,
 *   before and after the verifier (bench/cache-*.ts);
 * - resident memory per idle live session at 1,000 and 10,000 sessions (server in a child process);
 * - the leak guard per ask with 10,000 tenants, master key rotation and the leak audit (bench/guard.ts);
 * - a soak of connections reset during the WebSocket upgrade: the host stays up (bench/resets.ts);
 * - cells (bench/cells.ts): fairness under a burning neighbour, asks/s with 1 and N cells, the cache
 *   hit through a handed-over socket, crash recovery, memory under a memory-heavy tenant, ingest.
 * - the fleet: moving a tenant of 10,000 chunks between hosts, asks per second through HAProxy
 *   beside direct (bench/fleet.ts), and the 1,000-host plan's simulation (bench/fleet-plan.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../host/config.ts';
import { startServer } from '../host/server.ts';
import type { AskTimings } from '../host/protocol.ts';
import { connect } from '../sdk/client/node.ts';
import { createLocalEmbedder } from '../host/retrieval/embedder.ts';
import { measureAuthTiming } from './auth.ts';
import { measureCacheQuality, printCacheQuality } from './cache-quality.ts';
import { measureCacheSpeed, printCacheSpeed } from './cache-speed.ts';
import { measureEcho } from './echo.ts';
import { runFleetBenchmarks } from './fleet.ts';
import { runFleetPlan } from './fleet-plan.ts';
import { runGuardBenchmarks } from './guard.ts';
import { measureSessionMemory } from './memory.ts';
import { runPluginBenchmarks } from './plugins.ts';
import { runResetSoak } from './resets.ts';
import { runCellsBenchmarks } from './cells.ts';
import { measureSessionStart } from './session-start.ts';
import { heading, line, ms, summarise, verdict } from './stats.ts';
import { syntheticDocuments } from './synthetic.ts';

const OPERATOR_KEY = 'bench-operator-key-0123456789';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  process.stdout.write(`ctx-host benchmarks (${new Date().toISOString()}, node ${process.version}${quick ? ', --quick' : ''})\n`);

  heading('floor: bare ws echo round trip (msgpack-sized frame, 127.0.0.1)');
  const echo = await measureEcho(quick ? 500 : 3000);
  line('ws echo round trip', `p50 ${ms(echo.p50)}  p99 ${ms(echo.p99)}`);

  heading('authentication: time to check a key, by reason of refusal (no timing shortcut)');
  for (const [kind, summary] of Object.entries(await measureAuthTiming(quick ? 2_000 : 20_000))) {
    line(`  ${kind}`, `p50 ${ms(summary.p50)}  p99 ${ms(summary.p99)}`);
  }

  heading('session start: both default plugins (metered, as the host runs them), fresh instances');
  const start = await measureSessionStart(quick ? 200 : 2000, quick ? 10 : 40);
  line('foreground (what the host does)', `p50 ${ms(start.foreground.p50)}  p99 ${ms(start.foreground.p99)}`, verdict(start.foreground.p50, 1));
  line('runInWorker: true (baseline)', `p50 ${ms(start.worker.p50)}  p99 ${ms(start.worker.p99)}`);
  line('ratio worker / foreground (p50)', `${(start.worker.p50 / start.foreground.p50).toFixed(0)}x`);

  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-bench-'));
  const config = loadConfig({}, { port: 0, dataDir, operatorKey: OPERATOR_KEY, demo: false, logLevel: 'silent' });
  const server = await startServer(config, { logger: pino({ level: 'silent' }), limits: { framesPerWindowMax: 1_000_000, asksPerTenantPerMinuteMax: 1_000_000 } });
  try {
    const tenant = await createTenant(server.url);
    // These figures are for the full pipeline: the cache, measured on its own below, stays out.
    await fetch(`${server.url}/v1/config`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cache: { enabled: false } }),
    });
    const chunks = await ingest(server.url, tenant.apiKey, quick ? 2_000 : 10_000);
    heading(`ask pipeline on a tenant holding ${chunks} chunks, k = 8 (server-side timings)`);
    const client = await connect({ url: server.url, apiKey: tenant.apiKey });
    const questions = syntheticQuestions(quick ? 200 : 2000);
    const withoutModel: number[] = [];
    const stages: Partial<Record<keyof AskTimings, number[]>> = { embedMs: [], retrievalMs: [], promptMs: [], guardMs: [], modelMs: [] };
    const full: number[] = [];
    const roundTrips: number[] = [];
    for (const question of questions) {
      const started = performance.now();
      const result = await client.ask(question).result;
      roundTrips.push(performance.now() - started);
      const t = result.timings;
      for (const [stage, samples] of Object.entries(stages) as [keyof AskTimings, number[]][]) samples.push(t[stage]);
      withoutModel.push(t.embedMs + t.retrievalMs + t.promptMs + t.guardMs);
      full.push(t.totalMs);
    }
    for (const [stage, samples] of Object.entries(stages)) {
      const summary = summarise(samples);
      line(`  stage ${stage.replace('Ms', '')}`, `p50 ${ms(summary.p50)}  p99 ${ms(summary.p99)}`);
    }
    const prep = summarise(withoutModel);
    line('ask without model (embed+plugins+guard) p50', ms(prep.p50), verdict(prep.p50, 1));
    line('ask without model (embed+plugins+guard) p99', ms(prep.p99), verdict(prep.p99, 5));
    const whole = summarise(full);
    line('ask with local model, server side', `p50 ${ms(whole.p50)}  p99 ${ms(whole.p99)}`);
    const trip = summarise(roundTrips);
    line('ask round trip over WebSocket', `p50 ${ms(trip.p50)}  p99 ${ms(trip.p99)}`, `${(trip.p50 / echo.p50).toFixed(1)}x the echo floor`);
    client.close();

    heading('throughput: full asks with the local model, 16 clients, one process (server and clients share a core)');
    const rate = await asksPerSecond(server.url, tenant.apiKey, questions, quick ? 1_000 : 5_000);
    line('asks per second', rate.toFixed(0));
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  heading('semantic cache: first-turn asks answered from the cache, sessions opened beforehand (bench/cache-speed.ts)');
  printCacheSpeed(await measureCacheSpeed({ quick, echo }));
  heading('semantic cache: similarity path before and after the verifier, paraphrases and hard negatives, beside GPTCache (bench/cache-quality.ts)');
  printCacheQuality(await measureCacheQuality(createLocalEmbedder()));

  heading('memory: resident bytes per idle live session (server in a child process)');
  for (const sessions of quick ? [200, 1000] : [1000, 10000]) {
    const perSession = await measureSessionMemory(sessions);
    line(`${sessions} sessions open`, `${(perSession / 1024).toFixed(0)} KiB per session`, verdict(perSession / 1024, 512));
  }

  await runPluginBenchmarks(quick);
  await runGuardBenchmarks(quick);
  await runResetSoak(quick ? 1_000 : 5_000);
  await runCellsBenchmarks(quick);
  await runFleetBenchmarks(quick);
  await runFleetPlan(quick);
}

async function createTenant(url: string): Promise<{ apiKey: string }> {
  const response = await fetch(`${url}/v1/tenants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench' }),
  });
  return (await response.json()) as { apiKey: string };
}

async function ingest(url: string, apiKey: string, count: number): Promise<number> {
  let chunks = 0;
  const documents = syntheticDocuments(count);
  for (let start = 0; start < documents.length; start += 1000) {
    const response = await fetch(`${url}/v1/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ documents: documents.slice(start, start + 1000) }),
    });
    const body = (await response.json()) as { chunks: number };
    chunks += body.chunks;
  }
  return chunks;
}

function syntheticQuestions(count: number): string[] {
  const documents = syntheticDocuments(Math.min(count, 500));
  return Array.from({ length: count }, (_, i) => {
    const text = documents[i % documents.length]?.text ?? '';
    const words = text.split(' ');
    return `What about ${words.slice(3 + (i % 5), 9 + (i % 5)).join(' ')}?`;
  });
}

async function asksPerSecond(url: string, apiKey: string, questions: string[], total: number): Promise<number> {
  const clients = await Promise.all(Array.from({ length: 16 }, () => connect({ url, apiKey })));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      while (next < total) {
        const question = questions[next % questions.length] as string;
        next += 1;
        await client.ask(question).result;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const client of clients) client.close();
  return total / seconds;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
