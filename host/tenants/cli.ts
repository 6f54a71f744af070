/**
 * The operator CLI: `npm run tenant -- <command>`. It opens the registry in DATA_DIR with the master
 * key directly (holding both is what makes the caller the operator). LMDB allows a second process,
 * so it works beside a running host; to delete a tenant whose sessions are live, prefer
 * `DELETE /v1/tenants/:id`, which also ends those sessions.
 */
import { Command } from 'commander';
import { join } from 'node:path';
import { loadConfig } from '../config.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { TenantEnvironments } from '../storage/environments.ts';
import { loadMasterKey } from '../storage/keys.ts';
import { Registry } from '../storage/registry.ts';
import { createTenant, deleteTenant } from './lifecycle.ts';
import { operatorFromLocalAccess, type TenantAuthority } from './scope.ts';

async function withAuthority<T>(action: (authority: TenantAuthority) => Promise<T> | T): Promise<T> {
  const config = loadConfig();
  const { key } = loadMasterKey({ fromEnv: config.masterKey, keyFile: join(config.dataDir, 'master.key') });
  const registry = Registry.open(config.dataDir, key);
  const environments = new TenantEnvironments({ dataDir: config.dataDir, registry, openMax: LIMITS.openEnvironmentsMax });
  try {
    return await action({ registry, environments });
  } finally {
    await environments.close();
    await registry.close();
  }
}

const program = new Command('tenant').description('manage tenants of a ctx-host data directory (DATA_DIR, default ./data)');

program
  .command('create <name>')
  .description('create a tenant and print its first API key (shown once)')
  .action((name: string) =>
    withAuthority((authority) => {
      const { tenant, apiKey } = createTenant(authority, operatorFromLocalAccess(), name);
      process.stdout.write(`tenant ${tenant.id} "${tenant.name}" created\napi key (shown once): ${apiKey}\n`);
    }),
  );

program
  .command('list')
  .description('list tenants and their keys (ids only)')
  .action(() =>
    withAuthority(({ registry }) => {
      for (const tenant of registry.listTenants()) {
        const keys = registry.listApiKeys(tenant).map((key) => `${key.keyId}${key.revokedAt === null ? '' : ' (revoked)'}`);
        process.stdout.write(`${tenant.id}  ${tenant.name}  created ${new Date(tenant.createdAt).toISOString()}  keys: ${keys.join(', ')}\n`);
      }
    }),
  );

program
  .command('issue-key <tenantId>')
  .description('issue an additional API key for a tenant (for rotation: issue, switch, revoke the old one)')
  .action((tenantId: string) =>
    withAuthority(({ registry }) => {
      const tenant = registry.findTenant(tenantId);
      if (tenant === undefined) throw new HostError('TENANT_NOT_FOUND', `no tenant has id ${JSON.stringify(tenantId)}`);
      process.stdout.write(`api key (shown once): ${registry.issueApiKey(tenant)}\n`);
    }),
  );

program
  .command('revoke-key <keyId>')
  .description('revoke an API key, given its id (the 16 hex characters after "ctx_") or the whole key')
  .action((keyId: string) =>
    withAuthority(({ registry }) => {
      const revoked = registry.revokeApiKey(keyId);
      if (revoked === undefined) throw new HostError('AUTH_INVALID_KEY', `no API key has id ${JSON.stringify(keyId)}`);
      process.stdout.write(`key ${revoked.keyId} of tenant ${revoked.tenantId} revoked\n`);
    }),
  );

program
  .command('delete <tenantId>')
  .description('delete a tenant: destroy its wrapped key and API keys, then its data directory')
  .action((tenantId: string) =>
    withAuthority(async (authority) => {
      const deleted = await deleteTenant(authority, operatorFromLocalAccess(), tenantId);
      if (!deleted) throw new HostError('TENANT_NOT_FOUND', `no tenant has id ${JSON.stringify(tenantId)}`);
      process.stdout.write(`tenant ${tenantId} deleted (key destroyed, directory removed)\n`);
    }),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof HostError) process.stderr.write(`tenant: [${error.code}] ${error.message}\n`);
  else process.stderr.write(`tenant: ${(error as Error).message}\n`);
  process.exit(1);
});
