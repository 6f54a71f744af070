/**
 * The fleet controller: knows the hosts, where each tenant lives, and drives moves. It holds no
 * tenant data and is not in any request's path — clients go through the router (HAProxy), which
 * the controller steers through its map. What it knows it can rebuild: the hosts' registries are
 * the truth of where tenants are (each lists its tenants with their fleet state), the router's map
 * is a copy, and the move journal (journal.ts) is the only state of its own.
 *
 * A move (see tenants/fleet-ops.ts for each host's side):
 *   planned → a pre-copy streamed from the source (still writing) into the target's import →
 *   precopied → (if the source wrote during it, and fewer than fleetPrecopyRoundsMax were made:
 *   planned again, another pre-copy →) source freeze → (if the source wrote since the last
 *   pre-copy: frozen → export streamed into the target's import again →) imported
 *   → source retire (TENANT_MOVED from now on; its sessions close with 1012) → retired
 *   → target activate → activated → router map flipped → routed → source shred → done.
 * Each step is recorded in the journal once it has succeeded, and every step is idempotent, so a
 * move cut short anywhere — a host or the controller killed — is driven on from its last recorded
 * step (`resume`), or, before `retired`, undone (`rollback`: source unfreeze, target copy
 * discarded). The host side only ever lets one copy serve: the source until it is retired, the
 * target once it is activated, so at every point there is at most one serving copy, and once a
 * move is resumed or rolled back there is exactly one.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isFleetHostName } from '../config.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { HostLogger } from '../log.ts';
import { isTenantId } from '../storage/registry.ts';
import { newExportKey } from '../tenants/tenant-file.ts';
import type { RouterHost, RouterServerState } from './haproxy.ts';
import { HostClient, type HostAddress, type HostListing } from './host-client.ts';
import { MOVE_STEPS, MoveJournal, type MoveRecord, type MoveStep } from './journal.ts';
import { leastLoaded, rebalancePlan } from './placement.ts';

/** What the controller needs of the router (host/fleet/haproxy.ts's Router). */
export interface RouterControl {
  routeTenant(tenantId: string, host: string): Promise<void>;
  routeNewTenant(tenantId: string, host: string): Promise<void>;
  routeTenants(entries: Iterable<[string, string]>): Promise<void>;
  routeLegacyKeys(keyIds: readonly string[], host: string): Promise<void>;
  saveMaps(tenants: Iterable<[string, string]>, legacy: Iterable<[string, string]>, all?: boolean): void;
  tenantRoutes(): Promise<Map<string, string>>;
  serverStates(): Promise<RouterServerState[]>;
  reload(hosts: readonly RouterHost[]): Promise<void>;
}

/** What opening a controller needs. */
export interface ControllerOptions {
  /** Where the journal and the host list live. */
  stateDir: string;
  /** The hosts (more may be added later; they are remembered in `stateDir/hosts.json`). */
  hosts: readonly HostAddress[];
  /** The hosts' operator key (the controller's own API takes the same key). */
  operatorKey: string;
  router: RouterControl;
  logger?: HostLogger;
  /**
   * Test hook: awaited after each step of a move is recorded, so a test can kill a host (or throw,
   * which is the controller dying: the journal keeps the move where it stood).
   */
  afterStep?: (move: MoveRecord) => Promise<void>;
}

/** The operator's view of the fleet. */
export interface FleetView {
  hosts: {
    name: string;
    url: string;
    healthy: boolean;
    /** The router's health-check state of the host's own backend (`UP`, `DOWN`, …). */
    router: string;
    tenants: number;
    sessions: number | null;
  }[];
  tenants: number;
  moves: MoveRecord[];
  recentMoves: MoveRecord[];
}

/** What a refresh found. */
export interface RefreshReport {
  tenants: number;
  unreachable: string[];
  /** Tenants that more than one host claims to serve (never expected: reported, not guessed at). */
  conflicts: { tenant: string; hosts: string[] }[];
  /** Router map entries corrected. */
  corrected: number;
}

/** The fleet controller. A stateful resource: call `close()`. */
export class FleetController {
  readonly #options: ControllerOptions;
  readonly #journal: MoveJournal;
  readonly #hosts = new Map<string, HostClient>();
  /** Tenant → host serving it. */
  readonly #placement = new Map<string, string>();
  /** Tenant → ids of its keys that may be of the legacy shape (routed by key id). */
  readonly #legacyKeys = new Map<string, string[]>();
  /** Moves being driven by this controller now (ids). */
  readonly #driving = new Set<string>();

  private constructor(options: ControllerOptions) {
    this.#options = options;
    this.#journal = MoveJournal.open(join(options.stateDir, 'moves.jsonl'));
    for (const address of [...options.hosts, ...savedHosts(options.stateDir)]) this.#addClient(address);
  }

  /**
   * Opens the controller: reads its journal and host list, and learns the placement from the hosts
   * (those that answer; the router's map stands in for the others).
   * @throws {HostError} FLEET_INVALID for a malformed host.
   */
  static async open(options: ControllerOptions): Promise<FleetController> {
    const controller = new FleetController(options);
    await controller.refresh();
    return controller;
  }

  /** The hosts by name. */
  get hosts(): readonly HostAddress[] {
    return [...this.#hosts.values()].map((host) => ({ name: host.name, url: host.url }));
  }

  /** The host serving a tenant, as the controller knows it. */
  hostOf(tenantId: string): string | undefined {
    return this.#placement.get(tenantId);
  }

  /** A move by id. */
  move(id: string): MoveRecord | undefined {
    return this.#journal.get(id);
  }

  /** Moves not ended (in progress, or cut short and waiting to be resumed or rolled back). */
  activeMoves(): MoveRecord[] {
    return this.#journal.active();
  }

  /**
   * Relearns the placement from every host and puts the router's map in step with it. A tenant is
   * placed where it serves (or is frozen); a host that does not answer keeps the router's entries.
   */
  async refresh(): Promise<RefreshReport> {
    const routes = await this.#options.router.tenantRoutes().catch(() => new Map<string, string>());
    const listings = await mapBounded([...this.#hosts.values()], async (host) => ({ host, listing: await host.listing().catch((error: unknown) => error as HostError) }));
    const unreachable = listings.filter(({ listing }) => listing instanceof Error).map(({ host }) => host.name);
    const reached = listings.filter((entry): entry is { host: HostClient; listing: HostListing } => !(entry.listing instanceof Error));
    const claims = new Map<string, string[]>();
    // Keys created before the last host of the fleet issued keys naming their tenant may be legacy.
    const legacyBefore = Math.max(0, ...reached.map(({ listing }) => listing.keyFormatSince));
    this.#legacyKeys.clear();
    for (const { host, listing } of reached) {
      for (const tenant of listing.tenants) {
        if (tenant.state !== 'serving' && tenant.state !== 'frozen') continue;
        claims.set(tenant.id, [...(claims.get(tenant.id) ?? []), host.name]);
        const legacy = tenant.keys.filter((key) => key.createdAt < legacyBefore).map((key) => key.id);
        if (legacy.length > 0) this.#legacyKeys.set(tenant.id, legacy);
      }
    }
    this.#placement.clear();
    for (const [tenant, host] of routes) if (unreachable.includes(host)) this.#placement.set(tenant, host);
    const conflicts: RefreshReport['conflicts'] = [];
    for (const [tenant, hosts] of claims) {
      if (hosts.length > 1) conflicts.push({ tenant, hosts });
      this.#placement.set(tenant, hosts[0] as string);
    }
    const corrections = [...this.#placement].filter(([tenant, host]) => routes.get(tenant) !== host);
    await this.#options.router.routeTenants(corrections);
    const corrected = corrections.length;
    for (const [tenant, keyIds] of this.#legacyKeys) await this.#options.router.routeLegacyKeys(keyIds, this.#placement.get(tenant) as string);
    this.#saveMaps(true);
    if (conflicts.length > 0) this.#options.logger?.error({ conflicts }, 'tenants claimed by more than one host');
    return { tenants: this.#placement.size, unreachable, conflicts, corrected };
  }

  /**
   * Creates a tenant on the least-loaded healthy host and routes it there.
   * @returns the tenant, its first API key (shown once) and its host.
   * @throws {HostError} FLEET_HOST_UNAVAILABLE when no host is healthy; the host's TENANT_INVALID.
   */
  async createTenant(name: string): Promise<{ tenant: { id: string; name: string; createdAt: number }; apiKey: string; host: string }> {
    const healthy = await this.#healthy();
    const counts = this.#counts();
    const chosen = leastLoaded([...this.#hosts.keys()].map((host) => ({ name: host, tenants: counts.get(host) ?? 0, healthy: healthy.has(host) })));
    if (chosen === undefined) throw new HostError('FLEET_HOST_UNAVAILABLE', 'no host of the fleet is healthy: no tenant can be created');
    const created = await this.#client(chosen).createTenant(name);
    this.#placement.set(created.tenant.id, chosen);
    await this.#options.router.routeNewTenant(created.tenant.id, chosen);
    this.#saveMaps();
    this.#options.logger?.info({ tenant: created.tenant.id, host: chosen }, 'tenant created on the least-loaded host');
    return { ...created, host: chosen };
  }

  /**
   * Moves a tenant to another host with nothing lost: writes are frozen on the source for the time
   * of the export and import only; reads and chats go on; the tenant's clients reconnect (through
   * the router) to the target. Resolves with the finished move.
   * @throws {HostError} FLEET_INVALID for an unknown tenant or host, or a move to where it is;
   *   FLEET_MOVE_CONFLICT when the tenant is already moving or the fleet moves its maximum at once;
   *   FLEET_HOST_UNAVAILABLE (or a host's refusal) when a step fails: the move then stays in the
   *   journal, to be resumed or rolled back.
   */
  async moveTenant(tenantId: string, to: string): Promise<MoveRecord> {
    if (!isTenantId(tenantId)) throw new HostError('FLEET_INVALID', `tenant id must be t_ and 16 hex characters, got ${JSON.stringify(tenantId.slice(0, 40))}`);
    const target = this.#client(to);
    const pending = this.#journal.activeFor(tenantId);
    if (pending !== undefined) throw new HostError('FLEET_MOVE_CONFLICT', `tenant ${tenantId} has move ${pending.id} at step ${pending.step}; resume or roll it back first`, { move: pending.id });
    const from = this.#placement.get(tenantId);
    if (from === undefined) throw new HostError('FLEET_INVALID', `no host of the fleet serves tenant ${tenantId}`);
    if (from === to) throw new HostError('FLEET_INVALID', `tenant ${tenantId} is already on host ${to}`);
    if (this.#driving.size >= LIMITS.fleetMovesInFlightMax) {
      throw new HostError('FLEET_MOVE_CONFLICT', `${LIMITS.fleetMovesInFlightMax} moves run already; try again when one has finished`);
    }
    if ((await target.health()) === undefined) throw new HostError('FLEET_HOST_UNAVAILABLE', `host ${to} does not answer its health check; nothing was changed`);
    const now = Date.now();
    const move = this.#journal.record({ id: `mv_${randomBytes(6).toString('hex')}`, tenant: tenantId, from, to, step: 'planned', startedAt: now, updatedAt: now });
    this.#options.logger?.info({ move: move.id, tenant: tenantId, from, to }, 'move planned');
    return this.#drive(move);
  }

  /**
   * Drives a move on from its last recorded step (a move cut short by a failure, a killed host or a
   * killed controller); finishes the clean-up of a rollback whose target was down.
   * @throws {HostError} FLEET_INVALID for an unknown move; as {@link moveTenant} for a failing step.
   */
  async resume(moveId: string): Promise<MoveRecord> {
    const move = this.#known(moveId);
    if (move.step === 'done') return move;
    if (move.step === 'rolled-back') return this.#cleanUp(move);
    return this.#drive(move);
  }

  /**
   * Undoes a move that has not retired its source yet: the source serves and writes again (first:
   * the target's copy serves nothing meanwhile), the router points at it, and the target's copy is
   * discarded (or, with the target down, listed for a later `resume`).
   * @throws {HostError} FLEET_MOVE_CONFLICT once the source is retired (the move can only go on);
   *   FLEET_HOST_UNAVAILABLE when the source does not answer.
   */
  async rollback(moveId: string): Promise<MoveRecord> {
    let move = this.#known(moveId);
    if (move.step === 'rolled-back') return this.#cleanUp(move);
    if (stepIndex(move.step) > stepIndex('imported')) {
      throw new HostError('FLEET_MOVE_CONFLICT', `move ${move.id} is at step ${move.step}: the source is retired and the target holds the whole tenant; resume it instead`, { move: move.id });
    }
    return this.#exclusively(move, async () => {
      const source = this.#client(move.from);
      // The journal may lag one step behind the hosts: `imported` may already be retired on the
      // source (its data still there); unfreeze serves it again either way.
      await source.step(move.tenant, 'unfreeze');
      this.#placement.set(move.tenant, move.from);
      await this.#options.router.routeTenant(move.tenant, move.from);
      await this.#options.router.routeLegacyKeys(this.#legacyKeys.get(move.tenant) ?? [], move.from);
      this.#saveMaps();
      move = this.#journal.record({ ...withoutError(move), step: 'rolled-back', cleanup: [move.to] });
      this.#options.logger?.warn({ move: move.id, tenant: move.tenant }, 'move rolled back: the source serves again');
      return this.#cleanUp(move);
    });
  }

  /**
   * Drives every unfinished move that is past the point of no return (its source retired): until it
   * is, the tenant has no serving copy. Earlier ones wait for the operator (the source serves them).
   * @returns the moves driven, with their outcome.
   */
  async recover(): Promise<{ id: string; step: MoveStep; error?: string }[]> {
    const driven: { id: string; step: MoveStep; error?: string }[] = [];
    for (const move of this.#journal.active()) {
      if (move.step === 'rolled-back' || stepIndex(move.step) < stepIndex('retired')) continue;
      try {
        driven.push({ id: move.id, step: (await this.resume(move.id)).step });
      } catch (error) {
        driven.push({ id: move.id, step: move.step, error: (error as Error).message });
      }
    }
    return driven;
  }

  /**
   * Evens the fleet out (after a host was added, say): the fewest moves that leave no two hosts more
   * than one tenant apart (placement.ts, rebalancePlan), run one after another. With `dryRun`, only
   * the plan. A move that fails stops the run; it stays in the journal like any other.
   * @returns the planned moves and, unless a dry run, the finished ones.
   * @throws {HostError} as {@link moveTenant}.
   */
  async rebalance(dryRun = false): Promise<{ planned: { tenant: string; from: string; to: string }[]; moved: MoveRecord[] }> {
    const planned = rebalancePlan(this.#placement, [...this.#hosts.keys()]);
    const moved: MoveRecord[] = [];
    if (!dryRun) for (const move of planned) moved.push(await this.moveTenant(move.tenant, move.to));
    return { planned, moved };
  }

  /**
   * Adds a host to the fleet (it takes new tenants at once; rebalancing moves some to it) and
   * reloads the router with it.
   * @throws {HostError} FLEET_INVALID for a malformed or taken name or URL, or past fleetHostsMax;
   *   FLEET_HOST_UNAVAILABLE when it does not answer or reports another fleet name.
   */
  async addHost(address: HostAddress): Promise<void> {
    if (this.#hosts.has(address.name)) throw new HostError('FLEET_INVALID', `the fleet already has a host named ${address.name}`);
    if (this.#hosts.size >= LIMITS.fleetHostsMax) throw new HostError('FLEET_INVALID', `a fleet has at most ${LIMITS.fleetHostsMax} hosts`);
    const client = this.#addClient(address);
    try {
      const health = await client.health();
      if (health === undefined) throw new HostError('FLEET_HOST_UNAVAILABLE', `host ${address.name} at ${address.url} does not answer /healthz`);
      if (health['fleetHost'] !== address.name) {
        throw new HostError('FLEET_HOST_UNAVAILABLE', `the host at ${address.url} calls itself ${JSON.stringify(health['fleetHost'] ?? null)}, not ${address.name} (set FLEET_HOST)`);
      }
      await this.#options.router.reload(this.routerHosts());
    } catch (error) {
      this.#hosts.delete(address.name);
      throw error;
    }
    saveHosts(this.#options.stateDir, this.hosts);
    await this.refresh();
  }

  /** The hosts as the router configuration lists them. */
  routerHosts(): RouterHost[] {
    return [...this.#hosts.values()].map((host) => ({ name: host.name, address: new URL(host.url).host }));
  }

  /** Tenants per host, health, moves in progress: the operator's view. */
  async view(): Promise<FleetView> {
    const states = await this.#options.router.serverStates().catch(() => [] as RouterServerState[]);
    const counts = this.#counts();
    const hosts = await mapBounded(
      [...this.#hosts.values()], async (host) => {
        const health = await host.health();
        return {
          name: host.name,
          url: host.url,
          healthy: health?.['ok'] === true,
          router: states.find((state) => state.backend === `host_${host.name}`)?.status ?? 'unknown',
          tenants: counts.get(host.name) ?? 0,
          sessions: typeof health?.['sessions'] === 'number' ? health['sessions'] : null,
        };
      },
    );
    return { hosts, tenants: this.#placement.size, moves: this.#journal.active(), recentMoves: this.#journal.recent(20) };
  }

  close(): void {
    this.#journal.close();
  }

  async #drive(start: MoveRecord): Promise<MoveRecord> {
    return this.#exclusively(start, async () => {
      let move: MoveRecord = start.error === undefined ? start : this.#journal.record(withoutError(start));
      const source = this.#client(move.from);
      const target = this.#client(move.to);
      const { tenant } = move;
      try {
        while (move.step !== 'done') {
          move = await this.#step(move, source, target, tenant);
          this.#options.logger?.info({ move: move.id, tenant, step: move.step }, 'move step done');
          await this.#options.afterStep?.(move);
        }
      } catch (error) {
        const known = this.#journal.get(move.id) ?? move;
        if (!(error instanceof ControllerStopped)) this.#journal.record({ ...known, error: (error as Error).message });
        this.#options.logger?.warn({ move: move.id, tenant, step: known.step, err: error }, 'move step failed; the move waits to be resumed or rolled back');
        throw error;
      }
      return move;
    });
  }

  /** Runs the step after `move.step` and records it. */
  async #step(move: MoveRecord, source: HostClient, target: HostClient, tenant: string): Promise<MoveRecord> {
    switch (move.step) {
      case 'planned': {
        // A fresh export key per transfer, held in memory only: the bytes the controller relays
        // cannot be read by anyone who did not see this move happen.
        const copied = await source.transferTo(target, tenant, newExportKey(), true);
        return this.#journal.record({ ...move, step: 'precopied', entries: copied.entries, bytes: copied.bytes, precopyMark: copied.writeMark, precopyRounds: (move.precopyRounds ?? 0) + 1 });
      }
      case 'precopied': {
        if ((move.precopyRounds ?? 1) < LIMITS.fleetPrecopyRoundsMax) {
          const now = await source.status(tenant);
          // Written during the pre-copy: copy again while it still takes writes, so a writer that
          // paused is caught up and the freeze finds the copy whole.
          if (now.writeMark !== move.precopyMark) return this.#journal.record({ ...move, step: 'planned' });
        }
        const frozen = await source.step(tenant, 'freeze');
        const kept = typeof frozen.writeMark === 'string' && frozen.writeMark !== '' && frozen.writeMark === move.precopyMark;
        // Nothing written since the pre-copy: it is the whole tenant, and the freeze lasts only the
        // steps that follow. Otherwise it is copied again, frozen.
        return this.#journal.record({ ...move, step: kept ? 'imported' : 'frozen', frozenAt: Date.now(), precopyKept: kept });
      }
      case 'frozen': {
        const imported = await source.transferTo(target, tenant, newExportKey());
        return this.#journal.record({ ...move, step: 'imported', entries: imported.entries, bytes: imported.bytes });
      }
      case 'imported': {
        // Past this step only the target can serve the tenant: check it still holds the whole copy.
        const arrived = await target.status(tenant);
        if (arrived.state !== 'serving' && !(arrived.state === 'incoming' && arrived.complete === true)) {
          // The target lost its copy (a restart cut an import short, say): copy again, frozen.
          this.#options.logger?.warn({ move: move.id, tenant, state: arrived.state }, 'the target holds no complete copy; copying again');
          return this.#journal.record({ ...move, step: 'frozen' });
        }
        await source.step(tenant, 'retire', { to: target.name });
        return this.#journal.record({ ...move, step: 'retired' });
      }
      case 'retired':
        await target.step(tenant, 'activate');
        return this.#journal.record({ ...move, step: 'activated' });
      case 'activated':
        this.#placement.set(tenant, target.name);
        await this.#options.router.routeTenant(tenant, target.name);
        await this.#options.router.routeLegacyKeys(this.#legacyKeys.get(tenant) ?? [], target.name);
        this.#saveMaps();
        return this.#journal.record({ ...move, step: 'routed', writableAt: Date.now() });
      case 'routed':
        await source.step(tenant, 'shred');
        return this.#journal.record({ ...move, step: 'done' });
      default:
        return move;
    }
  }

  /** Discards incoming copies a rollback left on hosts that were down; the move ends once none is left. */
  async #cleanUp(move: MoveRecord): Promise<MoveRecord> {
    const left: string[] = [];
    for (const host of move.cleanup ?? []) {
      try {
        await this.#client(host).step(move.tenant, 'shred');
      } catch (error) {
        if (error instanceof HostError && error.code !== 'FLEET_HOST_UNAVAILABLE') throw error;
        left.push(host);
      }
    }
    return this.#journal.record({ ...move, cleanup: left });
  }

  async #exclusively<T>(move: MoveRecord, action: () => Promise<T>): Promise<T> {
    if (this.#driving.has(move.id)) throw new HostError('FLEET_MOVE_CONFLICT', `move ${move.id} is being driven already`, { move: move.id });
    if (this.#driving.size >= LIMITS.fleetMovesInFlightMax) {
      throw new HostError('FLEET_MOVE_CONFLICT', `${LIMITS.fleetMovesInFlightMax} moves run already; try again when one has finished`, { move: move.id });
    }
    this.#driving.add(move.id);
    try {
      return await action();
    } finally {
      this.#driving.delete(move.id);
    }
  }

  #known(moveId: string): MoveRecord {
    const move = this.#journal.get(moveId);
    if (move === undefined) throw new HostError('FLEET_INVALID', `no move has id ${JSON.stringify(moveId.slice(0, 40))}`);
    return move;
  }

  /** @throws {HostError} FLEET_INVALID for a host the fleet does not have. */
  #client(name: string): HostClient {
    const client = this.#hosts.get(name);
    if (client === undefined) throw new HostError('FLEET_INVALID', `the fleet has no host named ${JSON.stringify(name.slice(0, 40))}`);
    return client;
  }

  #addClient(address: HostAddress): HostClient {
    if (!isFleetHostName(address.name)) throw new HostError('FLEET_INVALID', `host name must be 1..${LIMITS.fleetHostNameCharsMax} characters of a-z, 0-9 and "-", got ${JSON.stringify(address.name.slice(0, 40))}`);
    if (!/^https?:\/\/[^/]+\/?$/.test(address.url)) throw new HostError('FLEET_INVALID', `host ${address.name}: url must be http(s)://host:port, got ${JSON.stringify(address.url.slice(0, 80))}`);
    const existing = this.#hosts.get(address.name);
    if (existing !== undefined) return existing;
    const client = new HostClient(address, this.#options.operatorKey);
    this.#hosts.set(address.name, client);
    return client;
  }

  async #healthy(): Promise<Set<string>> {
    const answers = await mapBounded([...this.#hosts.values()], async (host) => ({ name: host.name, health: await host.health() }));
    return new Set(answers.filter(({ health }) => health?.['ok'] === true).map(({ name }) => name));
  }

  #counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const host of this.#placement.values()) counts.set(host, (counts.get(host) ?? 0) + 1);
    return counts;
  }

  #saveMaps(all = false): void {
    const legacy: [string, string][] = [];
    for (const [tenant, keyIds] of this.#legacyKeys) {
      const host = this.#placement.get(tenant);
      if (host !== undefined) for (const keyId of keyIds) legacy.push([keyId, host]);
    }
    this.#options.router.saveMaps([...this.#placement], legacy, all);
  }
}

/** Thrown by a test's `afterStep` hook to stand for the controller dying: the journal is left as it is. */
export class ControllerStopped extends Error {
  constructor() {
    super('the controller stopped (test)');
    this.name = 'ControllerStopped';
  }
}

/** Calls to hosts at once when the controller asks every host (a fleet may have thousands). */
const HOST_CALLS_AT_ONCE = 32;

/** `Promise.all(items.map(action))` with at most HOST_CALLS_AT_ONCE actions running, results in order. */
async function mapBounded<T, R>(items: readonly T[], action: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await action(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HOST_CALLS_AT_ONCE, items.length) }, worker));
  return results;
}

function withoutError(move: MoveRecord): MoveRecord {
  const { error: _error, ...rest } = move;
  return rest;
}

function stepIndex(step: MoveStep): number {
  return MOVE_STEPS.indexOf(step);
}

function savedHosts(stateDir: string): HostAddress[] {
  const path = join(stateDir, 'hosts.json');
  if (!existsSync(path)) return [];
  return JSON.parse(readFileSync(path, 'utf8')) as HostAddress[];
}

function saveHosts(stateDir: string, hosts: readonly HostAddress[]): void {
  const path = join(stateDir, 'hosts.json');
  writeFileSync(`${path}.next`, `${JSON.stringify(hosts, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.next`, path);
}
