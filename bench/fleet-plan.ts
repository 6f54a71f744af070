/**
 * The figures behind the fleet's plan for 1,000 hosts and 1,000,000 tenants (README, Fleet):
 *
 * - the router's map at that size, measured on a real HAProxy through host/fleet/haproxy.ts: the
 *   map file, HAProxy's resident memory with and without it (same 1,000 backends), its start time;
 * - what changing it costs: one `set map` over the admin socket, batches of 100, and rewriting the
 *   map file; the controller's own placement table in memory;
 * - rebalancing when host 1,001 joins: how many tenants move, and how even the load is after, for
 *   the placement chosen (a directory, least-loaded, host/fleet/placement.ts) beside rendezvous
 *   hashing, a consistent-hash ring and modulo hashing.
 *
 * `node --disable-wasm-trap-handler --import tsx bench/fleet-plan.ts` (also part of `npm run
 * bench`); `--quick` simulates 100 hosts and 100,000 tenants. HAProxy's backends point at a closed
 * loopback port and check rarely: nothing is served; it stops by itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Router, type RouterHost } from '../host/fleet/haproxy.ts';
import { freePort } from '../host/fleet/local-fleet.ts';
import { rebalancePlan } from '../host/fleet/placement.ts';
import { heading, line, ms, summarise } from './stats.ts';

/** Runs the plan's simulation and prints its figures. */
export async function runFleetPlan(quick: boolean): Promise<void> {
  const hostCount = quick ? 100 : 1_000;
  const tenantCount = quick ? 100_000 : 1_000_000;
  const hosts = Array.from({ length: hostCount }, (_, index) => `h${index + 1}`);
  const tenants = Array.from({ length: tenantCount }, () => `t_${randomBytes(8).toString('hex')}`);
  const placement = new Map<string, string>();
  // The directory after creating every tenant on the least-loaded host: round robin, in effect.
  tenants.forEach((tenant, index) => placement.set(tenant, hosts[index % hostCount] as string));

  heading(`fleet plan: the router's map with ${tenantCount.toLocaleString('en')} tenants over ${hostCount} hosts (a real HAProxy)`);
  const routerHosts: RouterHost[] = hosts.map((name) => ({ name, address: '127.0.0.1:9' }));
  const empty = await measureRouter(routerHosts, []);
  const full = await measureRouter(routerHosts, [...placement]);
  line('baseline: HAProxy with the backends and an empty map', `RSS ${mib(empty.rssBytes)}, start ${ms(empty.startMs)}`);
  line('with the whole map', `RSS ${mib(full.rssBytes)}, start ${ms(full.startMs)}`);
  line('map files (16 shards by first hex digit)', `${mib(full.mapFileBytes)} (${(full.mapFileBytes / tenantCount).toFixed(1)} bytes per tenant)`);
  line('HAProxy memory per map entry', `${((full.rssBytes - empty.rssBytes) / tenantCount).toFixed(0)} bytes`);
  line('a new tenant: add map over the admin socket (1,000)', `p50 ${ms(full.addMap.p50)}  p99 ${ms(full.addMap.p99)}`);
  line('a move: set map over the admin socket (200)', `p50 ${ms(full.setMap.p50)}  p99 ${ms(full.setMap.p99)}`, `empty map: p50 ${ms(empty.setMap.p50)}`);
  line('rewriting every map file (atomic renames)', ms(full.writeMs));
  line('rewriting the one shard a move changed', ms(full.shardWriteMs));
  const heap = placementTableBytes(placement);
  line("the controller's placement table (tenant → host) in memory", `${mib(heap)} (${(heap / tenantCount).toFixed(0)} bytes per tenant)`);

  heading(`fleet plan: host ${hostCount + 1} joins ${hostCount} hosts of ${tenantCount / hostCount} tenants each`);
  const grown = [...hosts, `h${hostCount + 1}`];
  const started = performance.now();
  const plan = rebalancePlan(placement, grown);
  const planMs = performance.now() - started;
  const directoryLoad = loadAfter(placement, grown, plan);
  line('directory, least-loaded (chosen): tenants moved', `${plan.length} (${pct(plan.length / tenantCount)})`, `max/mean ${directoryLoad.toFixed(3)}; planned in ${ms(planMs)}`);
  const rendezvous = simulateRendezvous(tenants, hostCount);
  line('rendezvous hashing: tenants moved', `${rendezvous.moved} (${pct(rendezvous.moved / tenantCount)})`, `max/mean ${rendezvous.maxOverMean.toFixed(3)} before any move`);
  const ring = simulateRing(tenants, hostCount, 100);
  line('consistent-hash ring, 100 points per host: moved', `${ring.moved} (${pct(ring.moved / tenantCount)})`, `max/mean ${ring.maxOverMean.toFixed(3)}`);
  const modulo = tenants.reduce((moved, tenant) => moved + (hash32(tenant) % hostCount !== hash32(tenant) % (hostCount + 1) ? 1 : 0), 0);
  line('modulo hashing: tenants moved', `${modulo} (${pct(modulo / tenantCount)})`);
}

interface RouterFigures {
  rssBytes: number;
  startMs: number;
  mapFileBytes: number;
  addMap: { p50: number; p99: number };
  setMap: { p50: number; p99: number };
  writeMs: number;
  shardWriteMs: number;
}

async function measureRouter(hosts: RouterHost[], entries: [string, string][]): Promise<RouterFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-bench-plan-'));
  // Checks every minute: the backends point at a closed port, and nothing here is served.
  const router = new Router({ dir, bindHost: '127.0.0.1', bindPort: await freePort(), checkIntervalMs: 60_000, maxConnections: 1_000 });
  try {
    const started = performance.now();
    await router.start(hosts, entries, []);
    const startMs = performance.now() - started;
    const rssBytes = residentBytes(router.pid ?? 0);
    const mapFileBytes = router.tenantsMapPaths.reduce((sum, path) => sum + statSync(path).size, 0);
    const timed = async (count: number, action: (index: number) => Promise<void>): Promise<{ p50: number; p99: number }> => {
      const samples: number[] = [];
      for (let index = 0; index < count; index += 1) {
        const begun = performance.now();
        await action(index);
        samples.push(performance.now() - begun);
      }
      const { p50, p99 } = summarise(samples);
      return { p50, p99 };
    };
    const hostNames = hosts.map((host) => host.name);
    const addMap = await timed(1_000, (index) => router.routeNewTenant(`t_${randomBytes(8).toString('hex')}`, hostNames[index % hostNames.length] as string));
    // A move re-points an entry the map has (with an empty map, one added just before).
    const moving = entries.length > 0 ? entries : [[`t_${randomBytes(8).toString('hex')}`, hostNames[0] as string] as [string, string]];
    if (entries.length === 0) await router.routeNewTenant(moving[0]?.[0] as string, hostNames[0] as string);
    const setMap = await timed(200, (index) => {
      const [tenant] = moving[(index * 4_999) % moving.length] as [string, string];
      return router.routeTenant(tenant, hostNames[(index + 1) % hostNames.length] as string);
    });
    const writeStarted = performance.now();
    router.saveMaps(entries, [], true);
    router.flushMaps();
    const writeMs = performance.now() - writeStarted;
    await router.routeTenant(moving[0]?.[0] as string, hostNames[0] as string);
    const shardStarted = performance.now();
    router.saveMaps(entries, []);
    router.flushMaps();
    const shardWriteMs = performance.now() - shardStarted;
    return { rssBytes, startMs, mapFileBytes, addMap, setMap, writeMs, shardWriteMs };
  } finally {
    await router.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Heap bytes of a placement table like the controller's (its own id strings, host names shared),
 * measured between two full collections.
 */
function placementTableBytes(placement: Map<string, string>): number {
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  collect();
  const before = process.memoryUsage().heapUsed;
  const table = new Map<string, string>();
  for (const [tenant, host] of placement) table.set(Buffer.from(tenant).toString('latin1'), host);
  collect();
  const bytes = process.memoryUsage().heapUsed - before;
  return table.size > 0 ? bytes : 0;
}

/** Load of the busiest host over the mean, once `moves` are applied. */
function loadAfter(placement: Map<string, string>, hosts: string[], moves: { tenant: string; to: string }[]): number {
  const counts = new Map<string, number>(hosts.map((host) => [host, 0]));
  const moved = new Map(moves.map((move) => [move.tenant, move.to]));
  for (const [tenant, host] of placement) {
    const at = moved.get(tenant) ?? host;
    counts.set(at, (counts.get(at) ?? 0) + 1);
  }
  return Math.max(...counts.values()) / (placement.size / hosts.length);
}

/** Rendezvous (highest random weight): each tenant on the host with the highest hash of (tenant, host). */
function simulateRendezvous(tenants: string[], hostCount: number): { moved: number; maxOverMean: number } {
  const hostSeeds = Array.from({ length: hostCount + 1 }, (_, index) => hash32(`host-${index}`));
  const counts = new Array<number>(hostCount).fill(0);
  let moved = 0;
  for (const tenant of tenants) {
    const seed = hash32(tenant);
    let best = 0;
    let bestWeight = -1;
    for (let host = 0; host < hostCount; host += 1) {
      const weight = mix32(seed ^ (hostSeeds[host] as number));
      if (weight > bestWeight) {
        bestWeight = weight;
        best = host;
      }
    }
    counts[best] = (counts[best] ?? 0) + 1;
    if (mix32(seed ^ (hostSeeds[hostCount] as number)) > bestWeight) moved += 1;
  }
  return { moved, maxOverMean: Math.max(...counts) / (tenants.length / hostCount) };
}

/** A consistent-hash ring with `points` points per host: each tenant on the next point clockwise. */
function simulateRing(tenants: string[], hostCount: number, points: number): { moved: number; maxOverMean: number } {
  const ring = (hostsOnRing: number): { at: Uint32Array; host: Uint32Array } => {
    const entries: [number, number][] = [];
    for (let host = 0; host < hostsOnRing; host += 1) for (let point = 0; point < points; point += 1) entries.push([hash32(`host-${host}#${point}`), host]);
    entries.sort((a, b) => a[0] - b[0]);
    return { at: Uint32Array.from(entries.map((entry) => entry[0])), host: Uint32Array.from(entries.map((entry) => entry[1])) };
  };
  const owner = (table: { at: Uint32Array; host: Uint32Array }, key: number): number => {
    let low = 0;
    let high = table.at.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((table.at[middle] as number) < key) low = middle + 1;
      else high = middle;
    }
    return table.host[low === table.at.length ? 0 : low] as number;
  };
  const before = ring(hostCount);
  const after = ring(hostCount + 1);
  const counts = new Array<number>(hostCount).fill(0);
  let moved = 0;
  for (const tenant of tenants) {
    const key = hash32(tenant);
    const host = owner(before, key);
    counts[host] = (counts[host] ?? 0) + 1;
    if (owner(after, key) !== host) moved += 1;
  }
  return { moved, maxOverMean: Math.max(...counts) / (tenants.length / hostCount) };
}

/** FNV-1a of a string, mixed: a fast 32-bit hash for the simulation (not for anything secret). */
function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193);
  return mix32(hash);
}

function mix32(value: number): number {
  let x = value >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

function residentBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(match?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const pct = (share: number): string => `${(share * 100).toFixed(2)}%`;

if (import.meta.url === `file://${process.argv[1]}`) {
  runFleetPlan(process.argv.includes('--quick')).catch((error: unknown) => {
    process.stderr.write(`fleet plan failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
