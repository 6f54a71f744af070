/**
 * A host's side of moving a tenant to another host (the fleet controller, host/fleet/, drives the
 * steps; transport/fleet-routes.ts serves them). Each step checks the tenant's fleet state on this
 * host (storage/registry.ts, TenantFleetState), changes it in one registry write, and is idempotent,
 * so a controller that lost track of a move can repeat any step:
 *
 * 1. source `export` as a pre-copy (the tenant still writes) → target `import`: the copy lands as
 *    `incoming`, which serves nothing, and is marked complete only once the whole file imported.
 * 2. source `freeze`: writes are refused (TENANT_FROZEN); reads and chats go on. If the tenant's
 *    write mark is the pre-copy's, the copy is already whole; otherwise the frozen tenant is
 *    exported again and that copy replaces the incoming one.
 * 3. source `retire`: the tombstone (`moved`, naming the target) refuses every credential with
 *    TENANT_MOVED, and the tenant's sessions here close with 1012 (clients reconnect).
 * 4. target `activate`: the complete copy serves.
 * 5. source `shred`: the data key and directory go (crypto-shred); the tombstone stays.
 *
 * At every moment at most one copy serves: the source until step 3, the target from step 4.
 * Rolling back before step 3 is target `shred` (of the incoming copy) and source `unfreeze`.
 */
import type { MeteringService } from '../sandbox/metering-service.ts';
import { HostError } from '../errors.ts';
import { isTenantId, type Registry, type TenantFleetState } from '../storage/registry.ts';
import { deleteTenant } from './lifecycle.ts';
import { mintScopeForOperator, type OperatorCredential, type TenantAuthority } from './scope.ts';
import { importTenantFile, startTenantExport } from './tenant-file.ts';

/** A tenant's standing on this host, as the fleet controller reads it. */
export interface FleetTenantStatus {
  tenant: string;
  /** `absent`: no data and no tombstone here. `serving` has data and no fleet state. */
  state: 'serving' | TenantFleetState['state'] | 'absent';
  /** Whether the tenant's data (record, key, directory) is still on this host. */
  hasData: boolean;
  /** For `moved`: where it went. */
  to?: string;
  /** For `incoming`: where it comes from, and whether the whole file imported. */
  from?: string | null;
  complete?: boolean;
}

/**
 * The tenant's standing here.
 * @throws {HostError} TENANT_INVALID for a malformed id.
 */
export function fleetStatus(registry: Registry, tenantId: string): FleetTenantStatus {
  assertTenantId(tenantId);
  const state = registry.fleetState(tenantId);
  const hasData = registry.findTenant(tenantId) !== undefined;
  if (state === undefined) return { tenant: tenantId, state: hasData ? 'serving' : 'absent', hasData };
  if (state.state === 'moved') return { tenant: tenantId, state: 'moved', hasData, to: state.to };
  if (state.state === 'incoming') return { tenant: tenantId, state: 'incoming', hasData, from: state.from, complete: state.complete };
  return { tenant: tenantId, state: state.state, hasData };
}

/**
 * Freezes a serving tenant's writes (idempotent for a frozen one).
 * @throws {HostError} TENANT_NOT_FOUND when the tenant is not here; TENANT_STATE_CONFLICT when it is
 *   arriving or has moved away.
 */
export function freezeTenant(registry: Registry, tenantId: string, now = Date.now()): FleetTenantStatus {
  const status = fleetStatus(registry, tenantId);
  if (status.state === 'frozen') return status;
  if (status.state !== 'serving') throw conflict(status, 'freeze', 'only a tenant that serves here can be frozen');
  registry.setFleetState(tenantId, { state: 'frozen', since: now });
  return fleetStatus(registry, tenantId);
}

/**
 * Lets a frozen tenant write again (a move rolled back; idempotent for a serving one). A tenant
 * retired here whose data is still here serves again too: the rollback of a move whose target lost
 * its copy before it served.
 * @throws {HostError} TENANT_NOT_FOUND when the tenant is not here; TENANT_STATE_CONFLICT when it is
 *   arriving, or moved away and already shredded.
 */
export function unfreezeTenant(registry: Registry, tenantId: string): FleetTenantStatus {
  const status = fleetStatus(registry, tenantId);
  if (status.state === 'serving') return status;
  const reinstate = status.state === 'moved' && status.hasData;
  if (status.state !== 'frozen' && !reinstate) throw conflict(status, 'unfreeze', 'only a frozen tenant, or one retired here whose data is still here, can serve again');
  if (reinstate) {
    const tenant = registry.findTenant(tenantId);
    if (tenant !== undefined) registry.forgetMovedKeys(registry.listApiKeys(tenant).map((key) => key.keyId));
  }
  registry.setFleetState(tenantId, undefined);
  return fleetStatus(registry, tenantId);
}

/**
 * Writes the tenant's sealed export to `path` (see tenant-file.ts) from one LMDB read snapshot. A
 * move's export is of a frozen tenant (nothing written after it can be lost), except its pre-copy:
 * a copy taken while the tenant still writes, which the move keeps only if the tenant's write mark
 * is the same once it is frozen (see TenantEnvironments.writeMark). The export's own audit entry
 * passes a freeze, and is part of the snapshot and of the mark returned.
 * @returns entries written per table, and the write mark the snapshot corresponds to.
 * @throws {HostError} TENANT_STATE_CONFLICT unless the tenant is frozen here (or serves, for a
 *   pre-copy); TENANT_NOT_FOUND.
 */
export async function exportTenantForMove(
  authority: TenantAuthority,
  operator: OperatorCredential,
  tenantId: string,
  path: string,
  exportKey: Buffer,
  precopy = false,
): Promise<{ counts: Record<string, number>; writeMark: string }> {
  const status = fleetStatus(authority.registry, tenantId);
  const allowed = status.state === 'frozen' || (precopy && status.state === 'serving');
  if (!allowed) throw conflict(status, 'export', precopy ? 'a pre-copy is of a tenant that serves here' : 'freeze it first, so that nothing written after the export is lost');
  const scope = mintScopeForOperator(authority, operator, tenantId);
  try {
    // Synchronous from here to the mark: no write can come between the snapshot and the mark. The
    // rest of the file comes from that snapshot, in steps (writes after it are not in the file,
    // and move the mark on).
    const pending = authority.environments.allowWritesDuring(tenantId, () => startTenantExport(scope, authority.registry, path, exportKey));
    const writeMark = authority.environments.writeMark(tenantId) ?? '';
    const counts = await pending.finish();
    return { counts, writeMark };
  } finally {
    scope.release();
  }
}

/** Tenants being imported, per host (registry). */
const importsRunning = new WeakMap<Registry, Set<string>>();

/**
 * Imports a tenant's export as an `incoming` copy that serves nothing until {@link activateTenant}.
 * The file goes through the same import (and validation) as the operator CLI's. A leftover incoming
 * copy (an import cut short by a crash, or repeated by a resumed move) is discarded first.
 * @returns the entries imported per table.
 * @throws {HostError} TENANT_EXISTS when the tenant serves (or is frozen) here;
 *   TENANT_EXPORT_INVALID for a bad file or key, or a file of another tenant; TENANT_INVALID;
 *   TENANT_STATE_CONFLICT while another import of the tenant runs here.
 */
export async function importIncomingTenant(
  authority: TenantAuthority,
  operator: OperatorCredential,
  tenantId: string,
  from: string | null,
  path: string,
  exportKey: Buffer,
  metering: MeteringService,
  now = Date.now(),
): Promise<{ counts: Record<string, number>; status: FleetTenantStatus }> {
  // An import works in steps: a second one of the same tenant meanwhile (a controller that resumed
  // a move while the first still ran) would discard the copy the first is writing.
  const running = importsRunning.get(authority.registry) ?? new Set<string>();
  importsRunning.set(authority.registry, running);
  if (running.has(tenantId)) throw new HostError('TENANT_STATE_CONFLICT', `an import of tenant ${tenantId} is already running on this host; retry once it has ended`);
  running.add(tenantId);
  try {
    const { registry } = authority;
    let status = fleetStatus(registry, tenantId);
    if (status.state === 'serving' || status.state === 'frozen') throw new HostError('TENANT_EXISTS', `tenant ${tenantId} already serves on this host; nothing was imported`);
    if (status.state === 'incoming' && status.hasData) await discardIncoming(authority, operator, tenantId);
    status = fleetStatus(registry, tenantId);
    if (status.hasData) throw conflict(status, 'import', 'the tenant still has data here: shred it first');
    const state = registry.fleetState(tenantId);
    const previous = state?.state === 'moved' ? { to: state.to, since: state.since } : null;
    // Incoming before the first byte lands: the copy must not serve until the controller activates it.
    registry.setFleetState(tenantId, { state: 'incoming', since: now, from, complete: false, previous });
    let imported: Awaited<ReturnType<typeof importTenantFile>>;
    try {
      imported = await importTenantFile(authority, operator, path, exportKey, metering, now);
    } catch (error) {
      restorePrevious(registry, tenantId, previous);
      throw error;
    }
    if (imported.tenant.id !== tenantId) {
      await deleteTenant(authority, operator, imported.tenant.id);
      restorePrevious(registry, tenantId, previous);
      throw new HostError('TENANT_EXPORT_INVALID', `the file holds tenant ${imported.tenant.id}, not ${tenantId}; nothing was imported`);
    }
    registry.setFleetState(tenantId, { state: 'incoming', since: now, from, complete: true, previous });
    return { counts: imported.counts, status: fleetStatus(registry, tenantId) };
  } finally {
    running.delete(tenantId);
  }
}

/**
 * Lets a completely imported copy serve (idempotent for a serving tenant).
 * @throws {HostError} TENANT_STATE_CONFLICT unless the tenant is a complete incoming copy here.
 */
export function activateTenant(registry: Registry, tenantId: string): FleetTenantStatus {
  const status = fleetStatus(registry, tenantId);
  if (status.state === 'serving') return status;
  if (status.state !== 'incoming' || status.complete !== true || !status.hasData) throw conflict(status, 'activate', 'only a completely imported copy can serve');
  const tenant = registry.findTenant(tenantId);
  if (tenant !== undefined) registry.forgetMovedKeys(registry.listApiKeys(tenant).map((key) => key.keyId));
  registry.setFleetState(tenantId, undefined);
  return fleetStatus(registry, tenantId);
}

/**
 * Retires a frozen tenant that now lives on `to`: from this moment every credential naming it gets
 * TENANT_MOVED (naming `to`), and `release` ends what it still has open here (its sessions close
 * with 1012, so their clients reconnect through the router). Idempotent for a tenant already
 * retired to the same host.
 * @throws {HostError} TENANT_STATE_CONFLICT unless the tenant is frozen here (or retired to `to`).
 */
export async function retireTenant(registry: Registry, tenantId: string, to: string, release: (tenantId: string) => Promise<void>, now = Date.now()): Promise<FleetTenantStatus> {
  const status = fleetStatus(registry, tenantId);
  if (status.state === 'moved' && status.to === to) {
    if (status.hasData) await release(tenantId);
    return status;
  }
  if (status.state !== 'frozen') throw conflict(status, 'retire', 'only a frozen tenant can be retired (freeze and export it first)');
  registry.setFleetState(tenantId, { state: 'moved', since: now, to });
  await release(tenantId);
  return fleetStatus(registry, tenantId);
}

/**
 * Crypto-shreds the tenant's copy here: its wrapped data key, API keys and canary in one registry
 * transaction, then its directory. A retired tenant keeps its tombstone (stale routes get
 * TENANT_MOVED) and the ids of its keys (a legacy key names no tenant); a discarded incoming copy
 * gives back the tombstone an earlier move out had left. Idempotent once the data is gone.
 * @throws {HostError} TENANT_STATE_CONFLICT for a tenant that serves (or is frozen) here.
 */
export async function shredTenant(
  authority: TenantAuthority,
  operator: OperatorCredential,
  tenantId: string,
  release: (tenantId: string) => Promise<void>,
): Promise<FleetTenantStatus> {
  const { registry } = authority;
  const status = fleetStatus(registry, tenantId);
  if (!status.hasData) return status;
  if (status.state === 'incoming') {
    await discardIncoming(authority, operator, tenantId);
    return fleetStatus(registry, tenantId);
  }
  if (status.state !== 'moved') throw conflict(status, 'shred', 'only a copy retired here (or an incoming one) can be shredded; a serving tenant is deleted instead');
  const tenant = registry.findTenant(tenantId);
  if (tenant !== undefined) registry.rememberMovedKeys(tenantId, registry.listApiKeys(tenant).map((key) => key.keyId));
  await deleteTenant(authority, operator, tenantId, (gone) => release(gone.id));
  return fleetStatus(registry, tenantId);
}

/** Removes an incoming copy and gives back the tombstone it replaced, if any. */
async function discardIncoming(authority: TenantAuthority, operator: OperatorCredential, tenantId: string): Promise<void> {
  const state = authority.registry.fleetState(tenantId);
  const previous = state?.state === 'incoming' ? state.previous : null;
  await deleteTenant(authority, operator, tenantId);
  restorePrevious(authority.registry, tenantId, previous);
}

function restorePrevious(registry: Registry, tenantId: string, previous: { to: string; since: number } | null): void {
  registry.setFleetState(tenantId, previous === null ? undefined : { state: 'moved', since: previous.since, to: previous.to });
}

function assertTenantId(tenantId: string): void {
  if (!isTenantId(tenantId)) throw new HostError('TENANT_INVALID', `tenant id must be t_ and 16 hex characters, got ${JSON.stringify(tenantId.slice(0, 40))}`);
}

/** The refusal of a step that does not fit the tenant's state here; a tenant with nothing here is TENANT_NOT_FOUND. */
function conflict(status: FleetTenantStatus, step: string, why: string): HostError {
  if (status.state === 'absent') return new HostError('TENANT_NOT_FOUND', `no tenant has id ${JSON.stringify(status.tenant)} on this host`);
  return new HostError('TENANT_STATE_CONFLICT', `cannot ${step} tenant ${status.tenant}: it is ${status.state}${status.to === undefined ? '' : ` (to ${status.to})`} here; ${why}`, { ...status });
}
