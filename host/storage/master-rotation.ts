/**
 * Master key rotation as the operator runs it: the running host (`POST /v1/master-key/rotate`) or,
 * with the host stopped, the CLI (`npm run tenant -- rotate-master-key`). The registry does the
 * re-encryption ({@link Registry.rotateMasterKey}); this module keeps the key file in step with it.
 *
 * With the key in `DATA_DIR/master.key`, the new key is written beside it first
 * (`master.key.next`), the registry is rotated, and the new key is renamed over the old: a crash in
 * between leaves the new registry and the pending key, and the next start opens with that and
 * finishes the rename (storage/keys.ts). With the key in CTX_MASTER_KEY the host cannot store the
 * new key: the operator supplies it, and must set CTX_MASTER_KEY to it before the next restart (a
 * start with the old one is refused before anything is written).
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostError } from '../errors.ts';
import { loadMasterKey, loadPendingMasterKey, parseMasterKey, pendingKeyFile, randomHex, settleMasterKeyFile } from './keys.ts';
import { Registry } from './registry.ts';

/** Where the host's master key comes from. */
export type MasterKeySource = { kind: 'env' } | { kind: 'file'; keyFile: string };

/** What a rotation did. */
export interface RotationResult {
  /** Tenants whose data key was re-wrapped. */
  tenants: number;
  /** Where the new key now is (or must be put, for CTX_MASTER_KEY). */
  keySource: 'CTX_MASTER_KEY' | 'file';
  /** Milliseconds the registry swap held the event loop. */
  durationMs: number;
}

/**
 * Rotates to `newKey` (64 hex characters or base64 of 32 bytes), or, with a key file, to a fresh
 * random key when none is given (it is never returned: it lives in the key file).
 * @throws {HostError} STORAGE_MASTER_KEY when the new key is malformed, is the current one, or is
 *   missing while the key comes from CTX_MASTER_KEY.
 */
export function rotateMasterKey(registry: Registry, source: MasterKeySource, newKey: string | undefined): RotationResult {
  if (source.kind === 'env' && newKey === undefined) {
    throw new HostError('STORAGE_MASTER_KEY', 'newKey is required when the master key comes from CTX_MASTER_KEY: the host cannot store it for you');
  }
  const text = newKey ?? randomHex(32);
  const started = performance.now();
  if (source.kind === 'env') {
    const { tenants } = registry.rotateMasterKey(parseMasterKey(text, 'newKey'));
    return { tenants, keySource: 'CTX_MASTER_KEY', durationMs: performance.now() - started };
  }
  const pending = pendingKeyFile(source.keyFile);
  const next = parseMasterKey(text, pending);
  writeFileSync(pending, `${next.bytes.toString('hex')}\n`, { mode: 0o600 });
  let tenants: number;
  try {
    tenants = registry.rotateMasterKey(next).tenants;
  } catch (error) {
    rmSync(pending, { force: true });
    throw error;
  }
  renameSync(pending, source.keyFile);
  return { tenants, keySource: 'file', durationMs: performance.now() - started };
}

/**
 * Loads the master key (CTX_MASTER_KEY, else DATA_DIR/master.key, made on first start) and opens the
 * registry with it — or with the pending key a cut-short rotation left, finishing that rotation.
 * @throws {HostError} STORAGE_MASTER_KEY when neither key opens the registry; nothing is written then.
 */
export function openRegistry(dataDir: string, fromEnv: string | undefined): { registry: Registry; source: MasterKeySource } {
  const keyFile = join(dataDir, 'master.key');
  const { key } = loadMasterKey({ fromEnv, keyFile });
  const fromFile = fromEnv === undefined || fromEnv === '';
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const registry = Registry.open(dataDir, key, fromFile ? loadPendingMasterKey(keyFile) : undefined);
  if (fromFile) settleMasterKeyFile(keyFile, registry.masterKey);
  return { registry, source: fromFile ? { kind: 'file', keyFile } : { kind: 'env' } };
}
