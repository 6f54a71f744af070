/**
 * A tenant's uploaded plugins, in that tenant's own environment (invariant 2): per slot, the
 * versions kept (the active one and its rollback history) with their vetting reports, and the
 * metered module bytes of each. Every change is one transaction, so a slot never points at a
 * module that is not stored. The host keeps at most LIMITS.pluginVersionsPerSlotMax versions per
 * slot (the oldest inactive one is dropped first) and LIMITS.pluginStoreBytesPerTenantMax bytes.
 */
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { TenantStore } from './tenant-store.ts';

/** The two slots, as the store names them. */
export type StoredSlot = 'retrieval' | 'prompt';

/** One stored version of a slot's plugin. */
export interface PluginVersion {
  /** 1, 2, 3, … per slot; never reused. */
  version: number;
  /** SHA-256 of the upload as sent. */
  sha256: string;
  /** SHA-256 of the stored (metered) module. */
  moduleSha256: string;
  moduleBytes: number;
  uploadedAt: number;
  /** The vetting report returned at upload (sandbox/vetting.ts owns its shape). */
  report: unknown;
}

/** A slot's record. `active: null` = the built-in default. */
export interface PluginSlotRecord {
  active: number | null;
  /** Oldest first. */
  versions: PluginVersion[];
  nextVersion: number;
}

/** The module a slot runs when it runs an upload. */
export interface ActivePluginModule {
  version: PluginVersion;
  /** Reads the module bytes (only needed when the compiled module is not cached). */
  load(): Uint8Array;
}

const SLOTS: readonly StoredSlot[] = ['retrieval', 'prompt'];
const EMPTY: PluginSlotRecord = { active: null, versions: [], nextVersion: 1 };

function moduleKey(slot: StoredSlot, version: number): string {
  return `${slot}\u0000${version}`;
}

/**
 * The slot's record (an empty one when nothing was ever uploaded).
 *
 * @example
 * ```ts
 * const { active, versions } = readPluginSlot(scope.store, 'retrieval');
 * ```
 */
export function readPluginSlot(store: TenantStore, slot: StoredSlot): PluginSlotRecord {
  const stored = store.plugins.get(slot) as PluginSlotRecord | undefined;
  return stored === undefined ? { ...EMPTY, versions: [] } : stored;
}

/**
 * Stores a vetted module as the slot's new active version, dropping the oldest inactive versions
 * beyond the version limit, all in one transaction.
 *
 * @example
 * ```ts
 * const version = storePluginVersion(scope.store, 'retrieval', { sha256, moduleSha256, report }, module);
 * ```
 * @throws {HostError} STORAGE_QUOTA when the tenant's stored plugin bytes would exceed the quota.
 */
export function storePluginVersion(
  store: TenantStore,
  slot: StoredSlot,
  upload: { sha256: string; moduleSha256: string; report: unknown },
  module: Uint8Array,
): PluginVersion {
  return store.transaction(() => {
    const record = readPluginSlot(store, slot);
    const version: PluginVersion = {
      version: record.nextVersion,
      sha256: upload.sha256,
      moduleSha256: upload.moduleSha256,
      moduleBytes: module.byteLength,
      uploadedAt: Date.now(),
      report: upload.report,
    };
    const kept = [...record.versions];
    // Make room: drop the oldest versions that are not active (the new one becomes active).
    while (kept.length >= LIMITS.pluginVersionsPerSlotMax) {
      const dropped = kept.shift() as PluginVersion;
      store.pluginModules.remove(moduleKey(slot, dropped.version));
    }
    assertWithinQuota(store, slot, kept, module.byteLength);
    store.pluginModules.put(moduleKey(slot, version.version), module);
    store.plugins.put(slot, { active: version.version, versions: [...kept, version], nextVersion: record.nextVersion + 1 } satisfies PluginSlotRecord);
    return version;
  });
}

/**
 * Checks, before an upload is metered (seconds of a shared worker), that a module of at least
 * `bytes` could be stored in `slot` at all: metering only adds code, so an upload that does not fit
 * now never will, and it is refused without taking its turn in the metering worker.
 * @throws {HostError} STORAGE_QUOTA when it would not fit the tenant's plugin quota.
 */
export function assertPluginRoom(store: TenantStore, slot: StoredSlot, bytes: number): void {
  const kept = [...readPluginSlot(store, slot).versions];
  while (kept.length >= LIMITS.pluginVersionsPerSlotMax) kept.shift();
  assertWithinQuota(store, slot, kept, bytes);
}

function assertWithinQuota(store: TenantStore, slot: StoredSlot, kept: readonly PluginVersion[], bytes: number): void {
  const otherBytes = SLOTS.filter((other) => other !== slot).flatMap((other) => readPluginSlot(store, other).versions).reduce((sum, v) => sum + v.moduleBytes, 0);
  const total = otherBytes + kept.reduce((sum, v) => sum + v.moduleBytes, 0) + bytes;
  if (total > LIMITS.pluginStoreBytesPerTenantMax) {
    throw new HostError('STORAGE_QUOTA', `plugin modules would take ${total} bytes, over the tenant's quota of ${LIMITS.pluginStoreBytesPerTenantMax}; delete or replace older versions`);
  }
}

/**
 * Makes the version before the active one active again (from the built-in default: the newest).
 *
 * @example
 * ```ts
 * const { active } = rollbackPlugin(scope.store, 'prompt');
 * ```
 * @throws {HostError} PLUGIN_NOT_FOUND when there is no earlier version to return to.
 */
export function rollbackPlugin(store: TenantStore, slot: StoredSlot): PluginSlotRecord {
  return store.transaction(() => {
    const record = readPluginSlot(store, slot);
    const at = record.active === null ? record.versions.length : record.versions.findIndex((v) => v.version === record.active);
    const previous = record.versions[at - 1];
    if (previous === undefined) {
      throw new HostError('PLUGIN_NOT_FOUND', `the ${slot} slot has no version before ${record.active === null ? 'the built-in default' : `version ${record.active}`} to roll back to`);
    }
    const next = { ...record, active: previous.version };
    store.plugins.put(slot, next);
    return next;
  });
}

/**
 * Puts the slot back on the built-in default; the stored versions stay for a rollback.
 *
 * @example
 * ```ts
 * useBuiltinPlugin(scope.store, 'retrieval');
 * ```
 * @throws {HostError} PLUGIN_NOT_FOUND when the slot already runs the built-in default.
 */
export function useBuiltinPlugin(store: TenantStore, slot: StoredSlot): PluginSlotRecord {
  return store.transaction(() => {
    const record = readPluginSlot(store, slot);
    if (record.active === null) throw new HostError('PLUGIN_NOT_FOUND', `the ${slot} slot already runs the built-in plugin`);
    const next = { ...record, active: null };
    store.plugins.put(slot, next);
    return next;
  });
}

/**
 * The slot's active upload, or `null` when it runs the built-in default.
 *
 * @example
 * ```ts
 * const active = activePluginModule(scope.store, 'retrieval');
 * const compiled = active === null ? builtin : await compileKnown(active.version.moduleSha256, active.load);
 * ```
 * @throws {HostError} STORAGE_FAILED when the record names a module that is not stored.
 */
export function activePluginModule(store: TenantStore, slot: StoredSlot): ActivePluginModule | null {
  const record = readPluginSlot(store, slot);
  if (record.active === null) return null;
  const version = record.versions.find((v) => v.version === record.active);
  if (version === undefined) throw new HostError('STORAGE_FAILED', `the ${slot} slot's active version ${record.active} has no record`);
  return {
    version,
    load: () => {
      const bytes = store.pluginModules.get(moduleKey(slot, version.version));
      if (bytes === undefined) throw new HostError('STORAGE_FAILED', `the ${slot} slot's module of version ${version.version} is missing`);
      return bytes;
    },
  };
}
