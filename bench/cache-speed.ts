/**
 * Speed of answers served from the semantic cache, beside a bare `ws` echo measured in the same run.
 *
 *   npx tsx bench/cache-speed.ts [--quick]            (server and clients in one process)
 *   taskset -c 0 npx tsx bench/cache-speed.ts         (the same, pinned to one core)
 *
 * The cache answers first turns only (the key holds no conversation), so every measured ask is the
 * first ask of a session. Sessions are opened before the clock starts — opening one (WebSocket
 * upgrade, key check, two fresh plugin instances) is measured separately — and each then asks once:
 * - hit round trip: one ask at a time, client send to `done` received, exact path and semantic path,
 *   and the server's own time in the cache for each hit (`timings.cacheMs`: namespace, lookups, the
 *   verifier and source re-validation), which the network and the client do not blur;
 * - cached asks per second: every pre-opened session asks at once, at most 64 in flight, with the
 *   server and all clients sharing one process (one JavaScript thread).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../host/config.ts';
import { startServer, type HostServer } from '../host/server.ts';
import { connect, type ChatClient } from '../sdk/client/node.ts';
import { measureEcho } from './echo.ts';
import { heading, line, ms, summarise, type LatencySummary } from './stats.ts';

const OPERATOR_KEY = 'bench-operator-key-0123456789';
const QUESTION = 'How much does express delivery cost?';
const PARAPHRASE = 'How much does the express delivery cost?';
const IN_FLIGHT_MAX = 64;

/** The figures this benchmark prints. */
export interface CacheSpeed {
  echo: LatencySummary;
  exactHit: LatencySummary;
  semanticHit: LatencySummary;
  /** Server-side `timings.cacheMs` of the same hits. */
  exactHitCache: LatencySummary;
  semanticHitCache: LatencySummary;
  miss: LatencySummary;
  cachedAsksPerSecond: number;
  sessionsOpenedPerSecond: number;
}

/** Runs the benchmark against a host started in this process; `echo` reuses a floor measured by the caller. */
export async function measureCacheSpeed(options: { quick: boolean; echo?: LatencySummary }): Promise<CacheSpeed> {
  const echo = options.echo ?? (await measureEcho(options.quick ? 500 : 3000));
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-bench-cache-'));
  const config = loadConfig({}, { port: 0, dataDir, operatorKey: OPERATOR_KEY, demo: false, logLevel: 'silent' });
  // The per-tenant ask quota (6,000 a minute) would cap a throughput benchmark of one tenant.
  const server = await startServer(config, { logger: pino({ level: 'silent' }), limits: { asksPerTenantPerMinuteMax: 1_000_000_000 } });
  try {
    const apiKey = await setUpTenant(server);
    const rounds = options.quick ? 300 : 2000;
    const exact = await roundTrips(server, apiKey, QUESTION, rounds, 'hit');
    const semantic = await roundTrips(server, apiKey, PARAPHRASE, rounds, 'hit');
    const miss = (await roundTrips(server, apiKey, null, options.quick ? 100 : 500, 'miss')).trip;
    const { asksPerSecond, sessionsPerSecond } = await cachedThroughput(server, apiKey, options.quick ? 1 : 3, options.quick ? 1000 : 2500);
    return {
      echo,
      exactHit: exact.trip,
      semanticHit: semantic.trip,
      exactHitCache: exact.cacheWork,
      semanticHitCache: semantic.cacheWork,
      miss,
      cachedAsksPerSecond: asksPerSecond,
      sessionsOpenedPerSecond: sessionsPerSecond,
    };
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Prints the figures with their targets. */
export function printCacheSpeed(figures: CacheSpeed): void {
  const ratio = (summary: LatencySummary): string => `${(summary.p50 / figures.echo.p50).toFixed(2)}x the echo floor (p50)`;
  line('ws echo round trip (floor, same run)', `p50 ${ms(figures.echo.p50)}  p99 ${ms(figures.echo.p99)}`);
  line('cache hit round trip, exact path', `p50 ${ms(figures.exactHit.p50)}  p99 ${ms(figures.exactHit.p99)}`, `${ratio(figures.exactHit)}; target <= 2x: ${figures.exactHit.p50 <= 2 * figures.echo.p50 ? 'met' : 'MISSED'}`);
  line('cache hit round trip, semantic path', `p50 ${ms(figures.semanticHit.p50)}  p99 ${ms(figures.semanticHit.p99)}`, ratio(figures.semanticHit));
  line('server time in the cache per hit, exact / semantic', `p50 ${ms(figures.exactHitCache.p50)} / ${ms(figures.semanticHitCache.p50)}`, 'timings.cacheMs (semantic: with the verifier)');
  line('cache miss round trip (local model, for scale)', `p50 ${ms(figures.miss.p50)}  p99 ${ms(figures.miss.p99)}`, ratio(figures.miss));
  line('cached asks per second (one process, 64 in flight)', figures.cachedAsksPerSecond.toFixed(0), `target >= 5000: ${figures.cachedAsksPerSecond >= 5000 ? 'met' : 'MISSED'}`);
  line('sessions opened per second (not in the figure above)', figures.sessionsOpenedPerSecond.toFixed(0));
}

async function setUpTenant(server: HostServer): Promise<string> {
  const post = async (path: string, key: string, body: unknown): Promise<any> => {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return response.json();
  };
  const { apiKey } = await post('/v1/tenants', OPERATOR_KEY, { name: 'bench-cache' });
  await post('/v1/documents', apiKey, {
    documents: [
      { id: 'shipping', title: 'Shipping', text: 'Express delivery costs 15 euros and arrives the next working day. Standard delivery is free and takes three to five working days.' },
      { id: 'returns', title: 'Returns', text: 'Bikes can be returned within 30 days if they have not been ridden. Accessories can be returned within 60 days.' },
      { id: 'hours', title: 'Opening hours', text: 'Stores are open Monday to Saturday from 9 am to 6 pm, and on Sunday from 11 am to 4 pm.' },
    ],
  });
  const warm = await connect({ url: server.url, apiKey });
  await warm.ask(QUESTION).result;
  warm.close();
  return apiKey;
}

/** Opens `count` sessions, 64 handshakes at a time. */
async function openSessions(server: HostServer, apiKey: string, count: number): Promise<ChatClient[]> {
  const clients: ChatClient[] = [];
  for (let start = 0; start < count; start += IN_FLIGHT_MAX) {
    const batch = Math.min(IN_FLIGHT_MAX, count - start);
    clients.push(...(await Promise.all(Array.from({ length: batch }, () => connect({ url: server.url, apiKey })))));
  }
  return clients;
}

/**
 * One ask per fresh session, one at a time. `question` null asks distinct real questions (the
 * paraphrase set's origins) and times only those that miss: the set holds near-duplicates.
 */
async function roundTrips(server: HostServer, apiKey: string, question: string | null, rounds: number, expected: 'hit' | 'miss'): Promise<{ trip: LatencySummary; cacheWork: LatencySummary }> {
  const warmUp = Math.min(100, Math.floor(rounds / 5));
  const clients = await openSessions(server, apiKey, rounds + warmUp);
  const distinct = question === null ? distinctQuestions() : [];
  const samples: number[] = [];
  const cacheWork: number[] = [];
  for (const [i, client] of clients.entries()) {
    const text = question ?? (distinct[i % distinct.length] as string);
    const started = performance.now();
    const result = await client.ask(text).result;
    const elapsed = performance.now() - started;
    if (question !== null && result.cache !== expected) throw new Error(`expected a cache ${expected} for ${JSON.stringify(text)}, got ${result.cache}`);
    if (i >= warmUp && result.cache === expected) {
      samples.push(elapsed);
      cacheWork.push(result.timings['cacheMs'] ?? 0);
    }
  }
  for (const client of clients) client.close();
  return { trip: summarise(samples), cacheWork: summarise(cacheWork) };
}

function distinctQuestions(): string[] {
  const pairs = JSON.parse(readFileSync(new URL('../test/fixtures/data/paraphrase-pairs.json', import.meta.url), 'utf8')) as { origin: string }[];
  return [...new Set(pairs.map((pair) => pair.origin))];
}

/** Rounds of: open `perRound` sessions (untimed), then every one asks the cached question at once. */
async function cachedThroughput(server: HostServer, apiKey: string, roundsCount: number, perRound: number): Promise<{ asksPerSecond: number; sessionsPerSecond: number }> {
  let asks = 0;
  let askSeconds = 0;
  let openSeconds = 0;
  for (let round = 0; round < roundsCount; round++) {
    const opening = performance.now();
    const clients = await openSessions(server, apiKey, perRound);
    openSeconds += (performance.now() - opening) / 1000;
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT_MAX }, async () => {
        while (next < clients.length) {
          const client = clients[next++] as ChatClient;
          const result = await client.ask(QUESTION).result;
          if (result.cache !== 'hit') throw new Error('expected a cache hit');
        }
      }),
    );
    askSeconds += (performance.now() - started) / 1000;
    asks += clients.length;
    for (const client of clients) client.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { asksPerSecond: asks / askSeconds, sessionsPerSecond: asks / openSeconds };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  heading(`semantic cache speed (${new Date().toISOString()}, node ${process.version}${quick ? ', --quick' : ''})`);
  measureCacheSpeed({ quick })
    .then(printCacheSpeed)
    .catch((error: unknown) => {
      process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    });
}
