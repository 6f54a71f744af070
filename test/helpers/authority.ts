/**
 * A registry and tenant environments in a fresh temp directory, for tests that work below the HTTP
 * server (storage, lifecycle, training). Close it to remove the directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { parseMasterKey, type MasterKey } from '../../host/storage/keys.ts';
import { Registry } from '../../host/storage/registry.ts';
import type { TenantAuthority } from '../../host/tenants/scope.ts';

/** An open authority over a temp data directory. */
export interface TestAuthority {
  dir: string;
  master: MasterKey;
  authority: TenantAuthority;
  close(): Promise<void>;
}

/** Opens a registry (master key `hexByte` × 32) and its environments in a new temp directory. */
export function openTestAuthority(options: { hexByte?: string; openMax?: number; dir?: string } = {}): TestAuthority {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ctx-authority-'));
  const master = parseMasterKey((options.hexByte ?? '44').repeat(32), 'test');
  const registry = Registry.open(dir, master);
  const environments = new TenantEnvironments({ dataDir: dir, registry, openMax: options.openMax ?? 16 });
  return {
    dir,
    master,
    authority: { registry, environments },
    close: async () => {
      await environments.close();
      await registry.close();
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
