/**
 * The operator CLI: `npm run tenant -- <command>`. It opens the registry in DATA_DIR with the master
 * key directly (holding both is what makes the caller the operator). LMDB allows a second process,
 * so it works beside a running host — except `rotate-master-key`, which swaps the registry's
 * directory and so needs the host stopped (with it running, use `POST /v1/master-key/rotate`). To
 * delete a tenant whose sessions are live, prefer `DELETE /v1/tenants/:id`, which also ends them.
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../config.ts';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { TenantEnvironments } from '../storage/environments.ts';
import { createMeteringService } from '../sandbox/metering-service.ts';
import { runningHostPid } from '../storage/host-marker.ts';
import { openRegistry, rotateMasterKey, type MasterKeySource } from '../storage/master-rotation.ts';
import { createTenant, deleteTenant, issueApiKey, revokeApiKey } from './lifecycle.ts';
import { operatorFromLocalAccess, withOperatorScope, type TenantAuthority, type TenantScope } from './scope.ts';
import { exportTenantFile, importTenantFile, newExportKey, parseExportKey } from './tenant-file.ts';

async function withAuthority<T>(action: (authority: TenantAuthority, source: MasterKeySource) => Promise<T> | T): Promise<T> {
  const config = loadConfig();
  const { registry, source } = openRegistry(config.dataDir, config.masterKey);
  const environments = new TenantEnvironments({ dataDir: config.dataDir, registry, openMax: LIMITS.openEnvironmentsMax });
  try {
    return await action({ registry, environments }, source);
  } finally {
    await environments.close();
    await registry.close();
  }
}

/** Runs `action` with an operator scope for the tenant, released afterwards. */
function withTenant<T>(authority: TenantAuthority, tenantId: string, action: (scope: TenantScope) => T): T {
  return withOperatorScope(authority, operatorFromLocalAccess(), tenantId, action);
}

/** The export key from --key-file or CTX_EXPORT_KEY; undefined when neither is given. */
function exportKeyFrom(keyFile: string | undefined): Buffer | undefined {
  if (keyFile !== undefined) return parseExportKey(readFileSync(keyFile, 'utf8'), keyFile);
  const fromEnv = process.env['CTX_EXPORT_KEY'];
  return fromEnv === undefined || fromEnv === '' ? undefined : parseExportKey(fromEnv, 'CTX_EXPORT_KEY');
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
    withAuthority((authority) => {
      const { apiKey } = withTenant(authority, tenantId, (scope) => issueApiKey(authority, scope, 'operator'));
      process.stdout.write(`api key (shown once): ${apiKey}\n`);
    }),
  );

program
  .command('revoke-key <keyId>')
  .description('revoke an API key, given its id (the 16 hex characters before the secret) or the whole key')
  .action((keyId: string) =>
    withAuthority((authority) => {
      const tenantId = authority.registry.apiKeyOwner(keyId);
      if (tenantId === undefined) throw new HostError('AUTH_INVALID_KEY', `no API key has id ${JSON.stringify(keyId)}`);
      const revoked = withTenant(authority, tenantId, (scope) => revokeApiKey(authority, scope, keyId, 'operator'));
      process.stdout.write(`key ${revoked.keyId} of tenant ${tenantId} revoked\n`);
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

program
  .command('export <tenantId> <file>')
  .description('write the tenant\'s whole data to one encrypted file (key from --key-file or CTX_EXPORT_KEY; else a new one is printed once)')
  .option('--key-file <path>', 'file holding the 64-hex-character export key')
  .action((tenantId: string, file: string, options: { keyFile?: string }) =>
    withAuthority(async (authority) => {
      const given = exportKeyFrom(options.keyFile);
      const generated = given === undefined ? newExportKey() : undefined;
      const key = given ?? Buffer.from(generated as string, 'hex');
      const counts = await withTenant(authority, tenantId, (scope) => exportTenantFile(scope, authority.registry, file, key));
      const entries = Object.values(counts).reduce((sum, count) => sum + count, 0);
      process.stdout.write(`tenant ${tenantId} exported to ${file} (${entries} entries)\n`);
      if (generated !== undefined) process.stdout.write(`export key (shown once; the import needs it): ${generated}\n`);
    }),
  );

program
  .command('import <file>')
  .description('import a tenant from an export file under its own id, with its API keys (key from --key-file or CTX_EXPORT_KEY)')
  .option('--key-file <path>', 'file holding the 64-hex-character export key')
  .action((file: string, options: { keyFile?: string }) =>
    withAuthority(async (authority) => {
      const key = exportKeyFrom(options.keyFile);
      if (key === undefined) throw new HostError('TENANT_EXPORT_INVALID', 'give the export key with --key-file or CTX_EXPORT_KEY');
      // Plugin modules in the file are vetted and metered again, like uploads.
      const metering = createMeteringService();
      try {
        const { tenant, counts } = await importTenantFile(authority, operatorFromLocalAccess(), file, key, metering);
        const entries = Object.values(counts).reduce((sum, count) => sum + count, 0);
        process.stdout.write(`tenant ${tenant.id} "${tenant.name}" imported (${entries} entries)\n`);
      } finally {
        await metering.close();
      }
    }),
  );

program
  .command('rotate-master-key')
  .description('re-encrypt the registry under a new master key (host stopped; with it running use POST /v1/master-key/rotate)')
  .option('--new-key-file <path>', 'file holding the new key (required with CTX_MASTER_KEY; else a new key goes into DATA_DIR/master.key)')
  .action((options: { newKeyFile?: string }) => {
    const pid = runningHostPid(loadConfig().dataDir);
    if (pid !== undefined) {
      throw new HostError('STORAGE_HOST_RUNNING', `a host (pid ${pid}) has this data directory open: rotate through it with POST /v1/master-key/rotate, or stop it first`);
    }
    return withAuthority(({ registry }, source) => {
      const newKey = options.newKeyFile === undefined ? undefined : readFileSync(options.newKeyFile, 'utf8').trim();
      const result = rotateMasterKey(registry, source, newKey);
      const where = result.keySource === 'file' ? 'the new key is in DATA_DIR/master.key' : 'set CTX_MASTER_KEY to the new key before the next start';
      process.stdout.write(`master key rotated: ${result.tenants} tenant keys re-wrapped in ${result.durationMs.toFixed(0)} ms; ${where}\n`);
    });
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof HostError) process.stderr.write(`tenant: [${error.code}] ${error.message}\n`);
  else process.stderr.write(`tenant: ${(error as Error).message}\n`);
  process.exit(1);
});
