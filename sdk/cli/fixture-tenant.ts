/**
 * A throw-away tenant for `ctx-plugin test`: a real registry and a real encrypted LMDB environment
 * in a fresh temp directory, under a random master key, with the fixture documents ingested by the
 * host's own ingest (chunker, lexical index, the local embedder). A plugin under test therefore
 * searches, reads chunks and keeps kv state exactly as it would on a host; closing the tenant
 * removes the directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIMITS } from '../../host/limits.ts';
import type { CanaryOwner } from '../../host/pipeline/guard.ts';
import { createLocalEmbedder, type Embedder } from '../../host/retrieval/embedder.ts';
import { ingestDocuments, type DocumentInput } from '../../host/retrieval/ingest.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { parseMasterKey, randomHex } from '../../host/storage/keys.ts';
import { Registry } from '../../host/storage/registry.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantScope } from '../../host/tenants/scope.ts';
import { patchSettings, type TenantSettings } from '../../host/tenants/settings.ts';
import type { FixtureSettings } from './project.ts';

/** A fixture tenant. A stateful resource: call `close()`. */
export interface FixtureTenant {
  readonly scope: TenantScope;
  readonly embedder: Embedder;
  /** Who owns a canary token (the guard's lookup). */
  readonly canaryOwner: CanaryOwner;
  /** The tenant's settings after the fixture's settings were applied. */
  readonly settings: TenantSettings;
  readonly documents: number;
  readonly chunks: number;
  /** Releases the scope, closes the environments and deletes the temp directory. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates the tenant, applies `settings` (validated by the host's own rules) and ingests `documents`.
 *
 * @example
 * ```ts
 * const tenant = await openFixtureTenant(loadFixture('fixture/documents.json'), { topK: 4 });
 * try { ... } finally { await tenant.close(); }
 * ```
 * @throws {HostError} CONFIG_INVALID naming a bad setting; DOCUMENT_INVALID for a bad document.
 */
export async function openFixtureTenant(documents: DocumentInput[], settings: FixtureSettings = {}): Promise<FixtureTenant> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-plugin-test-'));
  const registry = Registry.open(dataDir, parseMasterKey(randomHex(32), 'ctx-plugin test'));
  const environments = new TenantEnvironments({ dataDir, registry, openMax: LIMITS.openEnvironmentsMax });
  let scope: TenantScope | undefined;
  const close = async (): Promise<void> => {
    scope?.release();
    scope = undefined;
    await environments.close();
    await registry.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const { apiKey } = createTenant({ registry, environments }, operatorFromLocalAccess(), 'ctx-plugin fixture');
    scope = mintScopeFromApiKey({ registry, environments }, apiKey);
    const applied = patchSettings(scope, settings);
    const embedder = createLocalEmbedder();
    const ingested = await ingestDocuments(scope, embedder, documents);
    const opened = scope;
    let closing: Promise<void> | undefined;
    return {
      scope: opened,
      embedder,
      canaryOwner: (token) => registry.canaryOwner(token),
      settings: applied,
      documents: documents.length,
      chunks: ingested.chunks,
      close: () => (closing ??= close()),
    };
  } catch (error) {
    await close();
    throw error;
  }
}
