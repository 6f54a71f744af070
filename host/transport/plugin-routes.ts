/**
 * The plugin API (tenant key): upload a retrieval or prompt plugin (vetted and metered before
 * anything is stored), list what each slot runs with its history, roll back, and return to the
 * built-in default. New sessions pick up a change; live sessions keep the instances they have.
 */
import type { IncomingMessage } from 'node:http';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { HostLogger } from '../log.ts';
import type { MeteringService } from '../sandbox/metering-service.ts';
import type { PluginModules } from '../sandbox/session-plugins.ts';
import { vetPlugin } from '../sandbox/vetting.ts';
import { assertPluginRoom, readPluginSlot, rollbackPlugin, storePluginVersion, useBuiltinPlugin, type PluginSlotRecord, type StoredSlot } from '../storage/plugin-store.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { appendAudit } from '../tenants/audit.ts';
import { readBody } from './http.ts';
import type { Route } from './route-types.ts';

const SLOT = '(retrieval|prompt)';

/** What the plugin routes need. */
export interface PluginRouteServices {
  /** Meters uploads off the event loop. */
  metering: MeteringService;
  /** The built-in defaults, reported for a slot without an upload. */
  builtins: PluginModules;
  logger: HostLogger;
}

/** The plugin routes. */
export function pluginRoutes(services: PluginRouteServices): Route[] {
  return [
    { method: 'GET', pattern: /^\/v1\/plugins$/, auth: 'tenant', handle: (scope) => listPlugins(services, scope) },
    { method: 'PUT', pattern: new RegExp(`^/v1/plugins/${SLOT}$`), auth: 'tenant', status: 201, handle: (scope, request, params) => putPlugin(services, scope, request, params) },
    { method: 'DELETE', pattern: new RegExp(`^/v1/plugins/${SLOT}$`), auth: 'tenant', handle: (scope, _request, params) => deletePlugin(services, scope, params) },
    { method: 'POST', pattern: new RegExp(`^/v1/plugins/${SLOT}/rollback$`), auth: 'tenant', handle: (scope, _request, params) => rollback(services, scope, params) },
  ];
}

async function putPlugin(services: PluginRouteServices, scope: TenantScope, request: IncomingMessage, params: string[]): Promise<unknown> {
  const slot = params[0] as StoredSlot;
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/wasm\b/i.test(type)) {
    throw new HostError('HTTP_UNSUPPORTED_MEDIA', `content-type must be application/wasm, got ${JSON.stringify(type).slice(0, 60)}`);
  }
  const body = await readBody(request, LIMITS.pluginUploadBytesMax);
  // An upload that cannot be stored is refused before it takes a turn in the metering worker.
  assertPluginRoom(scope.store, slot, body.byteLength);
  const { report, module } = await vetPlugin(body, slot, services.metering, scope.tenantId);
  const version = storePluginVersion(scope.store, slot, { sha256: report.sha256, moduleSha256: report.module.sha256, report }, module);
  services.logger.info({ tenant: scope.tenantId, slot, version: version.version, sha256: report.sha256 }, 'plugin uploaded');
  appendAudit(scope, { kind: 'plugin.uploaded', actor: 'tenant', detail: { slot, version: version.version, sha256: report.sha256 } });
  return { ...report, version: version.version, active: true };
}

function describeSlot(builtins: PluginModules, slot: StoredSlot, record: PluginSlotRecord): unknown {
  const active = record.versions.find((v) => v.version === record.active);
  return {
    active: active === undefined ? 'builtin' : active.version,
    sha256: active === undefined ? builtins[slot].sha256 : active.sha256,
    moduleSha256: active === undefined ? builtins[slot].sha256 : active.moduleSha256,
    history: record.versions.map((v) => ({ version: v.version, sha256: v.sha256, moduleSha256: v.moduleSha256, moduleBytes: v.moduleBytes, uploadedAt: v.uploadedAt })),
  };
}

function listPlugins(services: PluginRouteServices, scope: TenantScope): unknown {
  return {
    retrieval: describeSlot(services.builtins, 'retrieval', readPluginSlot(scope.store, 'retrieval')),
    prompt: describeSlot(services.builtins, 'prompt', readPluginSlot(scope.store, 'prompt')),
  };
}

function deletePlugin(services: PluginRouteServices, scope: TenantScope, params: string[]): unknown {
  const slot = params[0] as StoredSlot;
  return { [slot]: describeActivated(services.builtins, scope, slot, useBuiltinPlugin(scope.store, slot)) };
}

function rollback(services: PluginRouteServices, scope: TenantScope, params: string[]): unknown {
  const slot = params[0] as StoredSlot;
  return { [slot]: describeActivated(services.builtins, scope, slot, rollbackPlugin(scope.store, slot)) };
}

/** Audits which version a rollback or reset made active, and describes the slot. */
function describeActivated(builtins: PluginModules, scope: TenantScope, slot: StoredSlot, record: PluginSlotRecord): unknown {
  const described = describeSlot(builtins, slot, record) as { active: number | 'builtin'; sha256: string };
  appendAudit(scope, { kind: 'plugin.activated', actor: 'tenant', detail: { slot, active: described.active, sha256: described.sha256 } });
  return described;
}
