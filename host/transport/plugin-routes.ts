/**
 * The plugin API (tenant key): upload a retrieval or prompt plugin (vetted and metered before
 * anything is stored), list what each slot runs with its history, roll back, and return to the
 * built-in default. New sessions pick up a change; live sessions keep the instances they have.
 */
import type { IncomingMessage } from 'node:http';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { HostContext } from '../server.ts';
import { vetPlugin } from '../sandbox/vetting.ts';
import { readPluginSlot, rollbackPlugin, storePluginVersion, useBuiltinPlugin, type PluginSlotRecord, type StoredSlot } from '../storage/plugin-store.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { appendAudit } from '../tenants/audit.ts';
import { readBody } from './http.ts';
import type { Route, TenantHandler } from './routes.ts';

const SLOT = '(retrieval|prompt)';

/** The plugin routes, listed in routes.ts. */
export const PLUGIN_ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/v1\/plugins$/, auth: 'tenant', handle: listPlugins as TenantHandler },
  { method: 'PUT', pattern: new RegExp(`^/v1/plugins/${SLOT}$`), auth: 'tenant', status: 201, handle: putPlugin as TenantHandler },
  { method: 'DELETE', pattern: new RegExp(`^/v1/plugins/${SLOT}$`), auth: 'tenant', handle: deletePlugin as TenantHandler },
  { method: 'POST', pattern: new RegExp(`^/v1/plugins/${SLOT}/rollback$`), auth: 'tenant', handle: rollback as TenantHandler },
];

async function putPlugin(context: HostContext, scope: TenantScope, request: IncomingMessage, params: string[]): Promise<unknown> {
  const slot = params[0] as StoredSlot;
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/wasm\b/i.test(type)) {
    throw new HostError('HTTP_UNSUPPORTED_MEDIA', `content-type must be application/wasm, got ${JSON.stringify(type).slice(0, 60)}`);
  }
  const body = await readBody(request, LIMITS.pluginUploadBytesMax);
  const { report, module } = await vetPlugin(body, slot, context.metering);
  const version = storePluginVersion(scope.store, slot, { sha256: report.sha256, moduleSha256: report.module.sha256, report }, module);
  context.logger.info({ tenant: scope.tenantId, slot, version: version.version, sha256: report.sha256 }, 'plugin uploaded');
  appendAudit(scope, { kind: 'plugin.uploaded', actor: 'tenant', detail: { slot, version: version.version, sha256: report.sha256 } });
  return { ...report, version: version.version, active: true };
}

function describeSlot(context: HostContext, slot: StoredSlot, record: PluginSlotRecord): unknown {
  const active = record.versions.find((v) => v.version === record.active);
  return {
    active: active === undefined ? 'builtin' : active.version,
    sha256: active === undefined ? context.modules[slot].sha256 : active.sha256,
    moduleSha256: active === undefined ? context.modules[slot].sha256 : active.moduleSha256,
    history: record.versions.map((v) => ({ version: v.version, sha256: v.sha256, moduleSha256: v.moduleSha256, moduleBytes: v.moduleBytes, uploadedAt: v.uploadedAt })),
  };
}

function listPlugins(context: HostContext, scope: TenantScope): unknown {
  return {
    retrieval: describeSlot(context, 'retrieval', readPluginSlot(scope.store, 'retrieval')),
    prompt: describeSlot(context, 'prompt', readPluginSlot(scope.store, 'prompt')),
  };
}

function deletePlugin(context: HostContext, scope: TenantScope, _request: IncomingMessage, params: string[]): unknown {
  const slot = params[0] as StoredSlot;
  return { [slot]: describeActivated(context, scope, slot, useBuiltinPlugin(scope.store, slot)) };
}

function rollback(context: HostContext, scope: TenantScope, _request: IncomingMessage, params: string[]): unknown {
  const slot = params[0] as StoredSlot;
  return { [slot]: describeActivated(context, scope, slot, rollbackPlugin(scope.store, slot)) };
}

/** Audits which version a rollback or reset made active, and describes the slot. */
function describeActivated(context: HostContext, scope: TenantScope, slot: StoredSlot, record: PluginSlotRecord): unknown {
  const described = describeSlot(context, slot, record) as { active: number | 'builtin'; sha256: string };
  appendAudit(scope, { kind: 'plugin.activated', actor: 'tenant', detail: { slot, active: described.active, sha256: described.sha256 } });
  return described;
}
