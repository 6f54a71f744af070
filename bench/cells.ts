/**
 * The cells figures (issue: one tenant can no longer take the host), each against a baseline
 * measured in the same run, with the host in child processes (`host/main.ts`, as `npm start` runs
 * it) and the clients here, in another process:
 *
 * - fairness: a normal tenant's connect+ask p50/p99 alone, then while a neighbour on the same cell
 *   burns its whole budget from 4 sessions — scheduler only (quarantine off) and as shipped — and
 *   the slowest /healthz meanwhile;
 * - throughput: full asks per second with 1 cell and with N cells (32 tenants, two clients each),
 *   with the cores the host and the clients kept busy meanwhile;
 * - the cache-hit round trip through the handed-over socket (no extra hop);
 * - crash recovery: kill -9 of a cell until its tenant answers again;
 * - memory: resident memory of the host's processes with 200 sessions of a tenant whose plugins
 *   touch 16 MiB each at start (the budget refuses what does not fit);
 * - ingest: the slowest ask of another tenant while 8 documents of ~1M characters are ingested,
 *   and while the tenant posts 8 MB bodies that are not documents.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { rendezvousSlot } from '../host/cells/placement.ts';
import { compileWat } from '../test/sandbox/wat.ts';
import { fixturePlugin } from '../test/sandbox/harness.ts';
import { BENCH_OPERATOR_KEY, startHostProcess, type HostProcess } from './host-process.ts';
import { heading, line, ms, summarise } from './stats.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const DOC = { id: 'hours', title: 'Opening hours', text: 'The shop opens at nine in the morning and closes at six in the evening.' };

/** A raw chat connection: msgpack frames, nothing of the SDK's bookkeeping in the figures. */
interface Chat {
  ask(text: string): Promise<{ type: string; code?: string; cache?: string }>;
  close(): void;
}

function openChat(url: string, apiKey: string): Promise<Chat> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/v1/chat`, { headers: { authorization: `Bearer ${apiKey}` }, perMessageDeflate: false });
    let waiting: ((frame: { type: string; id?: string }) => void) | undefined;
    let closed = false;
    let next = 0;
    socket.on('error', reject);
    socket.on('message', (data: Buffer) => {
      const frame = packr.unpack(data) as { type: string; id?: string };
      if (frame.type === 'ready') {
        resolve({
          ask: (text) =>
            new Promise((done) => {
              if (closed) return done({ type: 'error' });
              const id = `q${(next += 1)}`;
              waiting = (answer) => {
                if (answer.id === undefined || (answer.id === id && (answer.type === 'done' || answer.type === 'error'))) done(answer);
              };
              socket.send(packr.pack({ type: 'ask', id, text }));
            }),
          close: () => socket.terminate(),
        });
        return;
      }
      if (frame.type === 'error' && frame.id === undefined) reject(new Error(`session refused: ${JSON.stringify(frame)}`));
      waiting?.(frame);
    });
    // A closed connection (a quarantine move closes it with 1012) ends the ask waiting on it.
    socket.on('close', () => {
      closed = true;
      waiting?.({ type: 'error' });
    });
  });
}

async function request(url: string, method: string, path: string, key: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': type }) },
    ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** Creates tenants until one hashes to `slot` of `slots`. */
async function tenantOnSlot(host: HostProcess, slot: number, slots: number, name: string): Promise<{ id: string; apiKey: string }> {
  for (let made = 0; made < 64; made += 1) {
    const tenant = await host.createTenant(`${name} ${made}`);
    if (rendezvousSlot(tenant.id, slots) === slot) return tenant;
  }
  throw new Error(`no tenant hashed to slot ${slot}`);
}

async function connectAndAsk(url: string, apiKey: string, samples: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const started = performance.now();
    const chat = await openChat(url, apiKey);
    const answer = await chat.ask('When does the shop open?');
    times.push(performance.now() - started);
    chat.close();
    if (answer.type !== 'done') throw new Error(`the normal tenant's ask failed: ${JSON.stringify(answer)}`);
  }
  return times;
}

/** The slowest /healthz answer while `during` runs, polled every 20 ms. */
async function slowestHealth(url: string, during: Promise<unknown>): Promise<number> {
  let worst = 0;
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    const started = performance.now();
    await fetch(`${url}/healthz`).then((response) => response.text());
    worst = Math.max(worst, performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return worst;
}

async function fairness(quick: boolean, quarantine: boolean): Promise<void> {
  const host = await startHostProcess({ WORKERS: '2', CTX_QUARANTINE: String(quarantine) });
  try {
    const normal = await tenantOnSlot(host, 0, 2, 'normal');
    const burner = await tenantOnSlot(host, 0, 2, 'burner');
    await request(host.url, 'POST', '/v1/documents', normal.apiKey, { documents: [DOC] });
    await request(host.url, 'PATCH', '/v1/config', normal.apiKey, { cache: { enabled: false } });
    const samples = quick ? 60 : 300;
    await connectAndAsk(host.url, normal.apiKey, 20);
    const alone = summarise(await connectAndAsk(host.url, normal.apiKey, samples));
    const upload = await request(host.url, 'PUT', '/v1/plugins/retrieval', burner.apiKey, await fixturePlugin('cpu-and-memory'), 'application/wasm');
    if (upload.status !== 201) throw new Error(`burner upload failed: ${JSON.stringify(upload.body)}`);
    const ceiling = (await request(host.url, 'GET', '/v1/config', burner.apiKey)).body.pluginFuelPerCall as number;
    let burning = true;
    let spent = 0;
    const burners = await Promise.all(Array.from({ length: 4 }, () => openChat(host.url, burner.apiKey)));
    const burns = burners.map(async (first) => {
      let chat = first;
      while (burning) {
        const answer = await chat.ask('spin');
        if (answer.code === 'PLUGIN_FUEL_EXHAUSTED') spent += 1;
        // A quarantine move closes the session (1012): the burner reconnects, as its SDK client would.
        if (answer.type === 'error' && answer.code === undefined && burning) chat = await openChat(host.url, burner.apiKey).catch(() => chat);
      }
      chat.close();
    });
    // The burner gets two seconds to show what it is (and, as shipped, to be moved).
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const measuring = connectAndAsk(host.url, normal.apiKey, samples);
    const worstHealth = await slowestHealth(host.url, measuring);
    const busy = summarise(await measuring);
    burning = false;
    await Promise.all(burns);
    const label = quarantine ? 'as shipped (scheduler + quarantine cell)' : 'scheduler only (CTX_QUARANTINE=false)';
    heading(`fairness, ${label}: a neighbour on the same cell burns ${ceiling.toLocaleString('en')} fuel per call from 4 sessions`);
    line('normal tenant connect+ask, alone', `p50 ${ms(alone.p50)}  p99 ${ms(alone.p99)}`);
    line('same, neighbour burning', `p50 ${ms(busy.p50)}  p99 ${ms(busy.p99)}`, `ratio p50 ${(busy.p50 / alone.p50).toFixed(2)}x  p99 ${(busy.p99 / alone.p99).toFixed(2)}x  (target <= 2x)`);
    line('slowest /healthz while burning', ms(worstHealth), worstHealth <= 100 ? 'target <= 100 ms: met' : 'target <= 100 ms: MISSED');
    line('burner calls that spent their whole budget', String(spent));
    const health = (await (await fetch(`${host.url}/healthz`)).json()) as { quarantinedTenants: number };
    line('tenants in quarantine at the end', String(health.quarantinedTenants));
  } finally {
    await host.stop();
  }
}

/**
 * Full asks per second: 64 clients, two on each of 32 tenants (the ask quota is per tenant, 6,000 a
 * minute, and a session may send 200 frames per 10 s: the load is spread below both), counting
 * answered asks only.
 */
/** The machine's CPU counters (clock ticks: user, nice, system, idle, ...), from /proc/stat. */
function machineTicks(): number[] {
  return (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
}

async function throughput(cells: number, perClient: number): Promise<{ rate: number; failed: number; hostCores: number; clientCores: number; idleCores: number }> {
  const host = await startHostProcess({ WORKERS: String(cells), CTX_QUARANTINE: 'false' });
  try {
    const chats: Chat[] = [];
    for (let i = 0; i < 32; i += 1) {
      const tenant = await host.createTenant(`load ${i}`);
      await request(host.url, 'POST', '/v1/documents', tenant.apiKey, { documents: [DOC, { id: 'returns', title: 'Returns', text: 'Bikes can be returned within 30 days for a full refund.' }] });
      await request(host.url, 'PATCH', '/v1/config', tenant.apiKey, { cache: { enabled: false } });
      chats.push(await openChat(host.url, tenant.apiKey), await openChat(host.url, tenant.apiKey));
    }
    for (const chat of chats) await chat.ask('warm up');
    let answered = 0;
    let failed = 0;
    const started = performance.now();
    const hostCpu = host.cpuSeconds();
    const clientCpu = process.cpuUsage();
    const ticks = machineTicks();
    await Promise.all(
      chats.map(async (chat, i) => {
        for (let sent = 0; sent < perClient; sent += 1) {
          const answer = await chat.ask(i % 2 === 0 ? 'When does the shop open?' : 'Can I return a bike?');
          if (answer.type === 'done') answered += 1;
          else failed += 1;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const rate = answered / seconds;
    // Cores busy meanwhile: the host's processes (supervisor and cells) and this client process.
    const hostCores = (host.cpuSeconds() - hostCpu) / seconds;
    const used = process.cpuUsage(clientCpu);
    const clientCores = (used.user + used.system) / 1e6 / seconds;
    // Cores the whole machine left idle meanwhile (idle + iowait over all ticks, times the cores).
    const spent = machineTicks().map((tick, index) => tick - (ticks[index] ?? 0));
    const idleCores = (((spent[3] ?? 0) + (spent[4] ?? 0)) / spent.reduce((sum, tick) => sum + tick, 0)) * availableParallelism();
    for (const chat of chats) chat.close();
    return { rate, failed, hostCores, clientCores, idleCores };
  } finally {
    await host.stop();
  }
}

async function cacheHit(quick: boolean): Promise<void> {
  const host = await startHostProcess({ WORKERS: '2' });
  try {
    const tenant = await tenantOnSlot(host, 0, 2, 'cached');
    await request(host.url, 'POST', '/v1/documents', tenant.apiKey, { documents: [DOC] });
    // The cache answers first turns: each timed ask is the first of a session opened beforehand.
    const first = await openChat(host.url, tenant.apiKey);
    await first.ask('When does the shop open?');
    first.close();
    const sessions = await Promise.all(Array.from({ length: quick ? 300 : 1000 }, () => openChat(host.url, tenant.apiKey)));
    const trips: number[] = [];
    for (const chat of sessions) {
      const started = performance.now();
      const answer = await chat.ask('When does the shop open?');
      trips.push(performance.now() - started);
      if (answer.cache !== 'hit') throw new Error('expected a cache hit');
      chat.close();
    }
    const hit = summarise(trips);
    const echo = await crossProcessEcho(quick ? 500 : 3000);
    heading('cache hit through a handed-over socket (chat frames go kernel -> cell, no supervisor hop), client in another process');
    line('floor: bare ws echo, server in another process', `p50 ${ms(echo.p50)}  p99 ${ms(echo.p99)}`);
    line('exact cache hit round trip', `p50 ${ms(hit.p50)}  p99 ${ms(hit.p99)}`, `${(hit.p50 / echo.p50).toFixed(1)}x the floor (one process, client beside the host: 83 µs, 4.75x its floor)`);
  } finally {
    await host.stop();
  }
}

/** A bare `ws` echo round trip with the server in a child process: the floor for cross-process figures. */
async function crossProcessEcho(samples: number): Promise<ReturnType<typeof summarise>> {
  const server = spawn(process.execPath, ['-e', "const { WebSocketServer } = require('ws'); const s = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false }); s.on('connection', (c) => c.on('message', (d) => c.send(d))); s.on('listening', () => console.log(s.address().port));"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve) => server.stdout?.once('data', (data: Buffer) => resolve(Number(data.toString().trim()))));
    const socket = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    await new Promise((resolve) => socket.once('open', resolve));
    const frame = packr.pack({ type: 'token', id: 'q1', text: 'The shop opens at nine in the morning.' });
    const times: number[] = [];
    for (let i = 0; i < samples; i += 1) {
      const started = performance.now();
      await new Promise<void>((resolve) => {
        socket.once('message', () => resolve());
        socket.send(frame);
      });
      times.push(performance.now() - started);
    }
    socket.terminate();
    return summarise(times);
  } finally {
    server.kill();
  }
}

/** Resolves like `promise`, or rejects after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), ms)))]).finally(() => clearTimeout(timer));
}

async function recovery(): Promise<void> {
  const host = await startHostProcess({ WORKERS: '2' });
  try {
    const tenant = await tenantOnSlot(host, 0, 2, 'recovering');
    await request(host.url, 'POST', '/v1/documents', tenant.apiKey, { documents: [DOC] });
    const warm = await openChat(host.url, tenant.apiKey);
    await warm.ask('When does the shop open?');
    warm.close();
    const health = (await (await fetch(`${host.url}/healthz`)).json()) as { cells: { pid: number }[] };
    const victim = health.cells[0]?.pid as number;
    const killed = performance.now();
    process.kill(victim, 'SIGKILL');
    let back = Number.NaN;
    for (let tries = 0; tries < 500 && Number.isNaN(back); tries += 1) {
      const again = await within(openChat(host.url, tenant.apiKey), 2_000).catch(() => undefined);
      const answer = again === undefined ? undefined : await within(again.ask('When does the shop open?'), 2_000).catch(() => undefined);
      again?.close();
      if (answer?.type === 'done') back = performance.now() - killed;
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    heading('crash isolation: kill -9 of the cell serving a tenant');
    line('from the kill until the tenant answers again', ms(back), back <= 1000 ? 'target <= 1 s: met' : 'target <= 1 s: MISSED');
  } finally {
    await host.stop();
  }
}

/** A retrieval plugin whose start function touches every page of its 16 MiB memory. */
function memoryHog(): Promise<Uint8Array> {
  return compileWat(`(module
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (memory (export "memory") 256 256)
    (func $touch (local $at i32)
      (block $done (loop $page
        (br_if $done (i32.ge_u (local.get $at) (i32.const 16777216)))
        (i32.store8 (local.get $at) (i32.const 1))
        (local.set $at (i32.add (local.get $at) (i32.const 4096)))
        (br $page))))
    (start $touch)
    (func (export "retrieve") (result i32)
      (call $output_set (call $alloc (i64.const 4)) (i64.const 4))
      (i32.const 0)))`);
}

async function memory(quick: boolean): Promise<void> {
  const sessions = quick ? 60 : 200;
  const host = await startHostProcess({ WORKERS: '2' });
  try {
    const hog = await host.createTenant('memory hog');
    const upload = await request(host.url, 'PUT', '/v1/plugins/retrieval', hog.apiKey, await memoryHog(), 'application/wasm');
    if (upload.status !== 201) throw new Error(`hog upload failed: ${JSON.stringify(upload.body)}`);
    const neighbour = await host.createTenant('neighbour');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = host.residentBytes();
    const open: Chat[] = [];
    let refused = 0;
    for (let i = 0; i < sessions; i += 1) {
      const chat = await openChat(host.url, hog.apiKey).catch(() => undefined);
      if (chat === undefined) refused += 1;
      else open.push(chat);
    }
    const neighbourChat = await openChat(host.url, neighbour.apiKey).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = host.residentBytes();
    heading(`memory: ${sessions} sessions of a tenant whose plugin touches 16 MiB at start (PLUGIN_MEMORY_MB default: a quarter of RAM)`);
    line('sessions admitted / refused (TENANT_MEMORY_LIMIT)', `${open.length} / ${refused}`);
    line('a neighbour tenant still opens a session', neighbourChat === undefined ? 'NO' : 'yes');
    line('resident memory of the host processes, before / after', `${(before / 2 ** 20).toFixed(0)} / ${(after / 2 ** 20).toFixed(0)} MiB`, 'one process before cells: 286 MiB -> 6.7 GiB, nothing refused');
    for (const chat of open) chat.close();
    neighbourChat?.close();
  } finally {
    await host.stop();
  }
}

async function ingestStall(): Promise<void> {
  const host = await startHostProcess({ WORKERS: '2' });
  try {
    const writer = await tenantOnSlot(host, 0, 2, 'writer');
    const reader = await tenantOnSlot(host, 0, 2, 'reader');
    await request(host.url, 'POST', '/v1/documents', reader.apiKey, { documents: [DOC] });
    await request(host.url, 'PATCH', '/v1/config', reader.apiKey, { cache: { enabled: false } });
    const words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu'.split(' ');
    const documents = Array.from({ length: 8 }, (_, d) => ({
      id: `big${d}`,
      text: Array.from({ length: 160_000 }, (_, k) => `${words[(k * 7 + d) % words.length]}${k % 12 === 11 ? '.' : ''}`).join(' ').slice(0, 999_000),
    }));
    const chat = await openChat(host.url, reader.apiKey);
    await chat.ask('When does the shop open?');
    const started = performance.now();
    const ingest = request(host.url, 'POST', '/v1/documents', writer.apiKey, { documents });
    let done = false;
    void ingest.finally(() => (done = true));
    // Paced under the flood limit (200 frames per 10 s per session): one ask every 60 ms at most.
    const asks: number[] = [];
    let failedAsks = 0;
    while (!done) {
      const asked = performance.now();
      const answer = await chat.ask('When does the shop open?');
      if (answer.type === 'done') asks.push(performance.now() - asked);
      else failedAsks += 1;
      if (failedAsks > 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 60 - (performance.now() - asked))));
    }
    if (failedAsks > 0) throw new Error('an ask of the other tenant failed during the ingest');
    const result = await ingest;
    const took = performance.now() - started;
    const during = summarise(asks);
    heading('ingest: 8 documents of ~1M characters into one tenant; another tenant on the same cell asks meanwhile');
    line('the ingest', `${ms(took)}, ${result.body.chunks} chunks`);
    line('the other tenant\'s asks meanwhile', `${during.n} asks, p50 ${ms(during.p50)}  max ${ms(Math.max(...asks))}`, 'one process before cells: the loop held for seconds');

    // Bodies that are not documents cost no ingest quota (nothing is ingested): 8 MB of a million
    // small objects each, posted one after another, while the other tenant asks.
    const hostile = Buffer.from(`{"documents":[${Array.from({ length: 1_000_000 }, () => '{"a":1}').join(',')}]}`);
    const refusals: number[] = [];
    const posting = (async () => {
      for (let n = 0; n < 16; n += 1) refusals.push((await request(host.url, 'POST', '/v1/documents', writer.apiKey, hostile)).status);
    })();
    let posted = false;
    void posting.finally(() => (posted = true));
    const hostileAsks: number[] = [];
    while (!posted) {
      const asked = performance.now();
      const answer = await chat.ask('When does the shop open?');
      if (answer.type !== 'done') throw new Error('an ask of the other tenant failed during the hostile posts');
      hostileAsks.push(performance.now() - asked);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 60 - (performance.now() - asked))));
    }
    await posting;
    chat.close();
    const hostileSummary = summarise(hostileAsks);
    line(
      `the same while it posts 16 bodies of ${(hostile.length / 1e6).toFixed(1)} MB that are not documents`,
      `${hostileSummary.n} asks, p50 ${ms(hostileSummary.p50)}  max ${ms(Math.max(...hostileAsks))}  (answers: ${[...new Set(refusals)].join(', ')})`,
    );
  } finally {
    await host.stop();
  }
}

/** Runs the cells benchmarks. */
export async function runCellsBenchmarks(quick: boolean, only?: readonly string[]): Promise<void> {
  const runs = (stage: string): boolean => only === undefined || only.includes(stage);
  if (runs('fairness')) {
    await fairness(quick, false);
    await fairness(quick, true);
  }
  if (runs('throughput')) {
    const perClient = quick ? 60 : 150;
    const one = await throughput(1, perClient);
    const two = await throughput(2, perClient);
    heading(`throughput: full asks with the local model, 32 tenants with 2 clients each (${perClient} asks per client: under the flood limit), clients in another process`);
    const cores = availableParallelism();
    const busy = (run: typeof one): string => `cores: host ${run.hostCores.toFixed(2)}, clients ${run.clientCores.toFixed(2)}, idle ${run.idleCores.toFixed(2)} of ${cores}`;
    line('1 cell', `${one.rate.toFixed(0)} asks/s`, `${busy(one)}${one.failed > 0 ? `; ${one.failed} failed` : ''}`);
    line('2 cells', `${two.rate.toFixed(0)} asks/s`, `${busy(two)}${two.failed > 0 ? `; ${two.failed} failed` : ''}`);
    line('2 cells / 1 cell', `${(two.rate / one.rate).toFixed(2)}x`, `target >= ${(0.8 * 2).toFixed(1)}x`);
    // Where the clients share the machine, the cells get only what the clients leave: the same
    // ratio per CPU second the host spent shows whether the cells scale, apart from the clients.
    const perCore = (run: typeof one): number => run.rate / run.hostCores;
    line('asks per host CPU second, 1 cell / 2 cells', `${perCore(one).toFixed(0)} / ${perCore(two).toFixed(0)}`, `${(perCore(two) / perCore(one)).toFixed(2)}x (1.0 = no loss to a second cell)`);
  }
  if (runs('cache')) await cacheHit(quick);
  if (runs('recovery')) await recovery();
  if (runs('memory')) await memory(quick);
  if (runs('ingest')) await ingestStall();
}

export { BENCH_OPERATOR_KEY };

// Run alone: `node --disable-wasm-trap-handler --import tsx bench/cells.ts [--quick] [--only=fairness,throughput,cache,recovery,memory,ingest]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
  runCellsBenchmarks(process.argv.includes('--quick'), only).catch((error: unknown) => {
    process.stderr.write(`cells bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
