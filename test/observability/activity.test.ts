/**
 * The activity log behind the consoles: a tenant's recent asks are read only with that tenant's
 * scope, carry ids and timings but no text, and every bound holds on both sides (asks per tenant,
 * tenants kept, incidents kept host-wide and per tenant).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { createActivityLog, type ActivityLimits } from '../../host/observability/activity.ts';
import type { AskOutcome } from '../../host/observability/ask-outcome.ts';
import { TenantEnvironments } from '../../host/storage/environments.ts';
import { parseMasterKey } from '../../host/storage/keys.ts';
import { Registry } from '../../host/storage/registry.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantAuthority, type TenantScope } from '../../host/tenants/scope.ts';

const dir = mkdtempSync(join(tmpdir(), 'ctx-activity-'));
const registry = Registry.open(dir, parseMasterKey('22'.repeat(32), 'test'));
const environments = new TenantEnvironments({ dataDir: dir, registry, openMax: 16 });
const authority: TenantAuthority = { registry, environments };
const operator = operatorFromLocalAccess();
const scopes: TenantScope[] = [];

function tenant(name: string): TenantScope {
  const { apiKey } = createTenant(authority, operator, name);
  const scope = mintScopeFromApiKey(authority, apiKey);
  scopes.push(scope);
  return scope;
}

const timings = { embedMs: 1, cacheMs: 0.1, retrievalMs: 2, promptMs: 1, guardMs: 0.2, modelMs: 5, totalMs: 9.3 };
const answered = (tenantId: string, askId: string): AskOutcome => ({ kind: 'answered', tenantId, sessionId: 's1', askId, at: 1, cache: 'miss', sources: 2, timings });
const failed = (tenantId: string, askId: string, code: 'LEAK_BLOCKED' | 'PLUGIN_FAILED' | 'MODEL_FAILED'): AskOutcome => ({ kind: 'failed', tenantId, sessionId: 's1', askId, at: 2, code });
const limits: ActivityLimits = {
  recentAsksPerTenantMax: LIMITS.recentAsksPerTenantMax,
  recentAsksTenantsMax: 3,
  incidentsKeptMax: LIMITS.incidentsKeptMax,
  incidentsPerTenantMax: LIMITS.incidentsPerTenantMax,
  pluginLogLinesPerTenantMax: LIMITS.pluginLogLinesPerTenantMax,
};

test.after(async () => {
  for (const scope of scopes) scope.release();
  await environments.close();
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a tenant sees its own asks, newest first, with timings and no text; another tenant sees none', () => {
  const log = createActivityLog(limits);
  const a = tenant('Alpha');
  const b = tenant('Beta');
  log.askEnded(answered(a.tenantId, 'a1'));
  log.askEnded(failed(a.tenantId, 'a2', 'MODEL_FAILED'));
  const asks = log.recentAsks(a);
  assert.equal(asks.map((ask) => [ask.id, ask.outcome, ask.code]), [['a2', 'failed', 'MODEL_FAILED'], ['a1', 'answered', undefined]]);
  assert.equal(asks[1]?.timings, timings);
  assert.equal(Object.keys(asks[1] ?? {}).sort(), ['at', 'cache', 'id', 'outcome', 'session', 'sources', 'timings']);
  assert.equal(log.recentAsks(b), []);
  assert.throws(() => log.recentAsks({ tenantId: a.tenantId } as TenantScope), /needs a TenantScope/);
  assert.throws(() => log.pluginLog({ tenantId: a.tenantId } as TenantScope), /needs a TenantScope/);
});

test(`recentAsksPerTenantMax (${LIMITS.recentAsksPerTenantMax}) asks are kept; one more drops the oldest`, () => {
  const log = createActivityLog(limits);
  const a = tenant('Gamma');
  for (let index = 0; index < LIMITS.recentAsksPerTenantMax; index += 1) log.askEnded(answered(a.tenantId, `q${index}`));
  assert.is(log.recentAsks(a).length, LIMITS.recentAsksPerTenantMax);
  assert.is(log.recentAsks(a).at(-1)?.id, 'q0');
  log.askEnded(answered(a.tenantId, 'over'));
  assert.is(log.recentAsks(a).length, LIMITS.recentAsksPerTenantMax);
  assert.is(log.recentAsks(a)[0]?.id, 'over');
  assert.is(log.recentAsks(a).at(-1)?.id, 'q1');
});

test('recentAsksTenantsMax tenants are kept; one more drops the least recently asking', () => {
  const log = createActivityLog(limits);
  const [t1, t2, t3, t4] = [tenant('T1'), tenant('T2'), tenant('T3'), tenant('T4')];
  for (const scope of [t1, t2, t3]) log.askEnded(answered(scope.tenantId, 'x'));
  log.askEnded(answered(t1.tenantId, 'again'));
  assert.ok([t1, t2, t3].every((scope) => log.recentAsks(scope).length > 0), 'at the limit all are kept');
  log.askEnded(answered(t4.tenantId, 'x'));
  assert.is(log.recentAsks(t2).length, 0, 't2 asked least recently');
  assert.ok([t1, t3, t4].every((scope) => log.recentAsks(scope).length > 0));
});

test(`incidents: leak blocks and plugin failures only, newest first, incidentsKeptMax (${LIMITS.incidentsKeptMax}) kept host-wide`, () => {
  const log = createActivityLog(limits);
  // Enough tenants, each within its own cap, to fill the host-wide list exactly.
  const perTenant = LIMITS.incidentsPerTenantMax;
  const tenants = Array.from({ length: LIMITS.incidentsKeptMax / perTenant }, (_, index) => `t_delta${index}`);
  log.askEnded(failed(tenants[0] as string, 'not-an-incident', 'MODEL_FAILED'));
  let serial = 0;
  for (let round = 0; round < perTenant; round += 1) {
    for (const tenantId of tenants) {
      log.askEnded(failed(tenantId, `i${serial}`, serial % 2 === 0 ? 'LEAK_BLOCKED' : 'PLUGIN_FAILED'));
      serial += 1;
    }
  }
  let { incidents, totals } = log.overview(operator);
  assert.is(incidents.length, LIMITS.incidentsKeptMax);
  assert.is(incidents.at(-1)?.askId, 'i0');
  const newcomer = 't_newcomer';
  log.sessionFailed({ tenantId: newcomer, sessionId: 's9', code: 'PLUGIN_LOAD_FAILED' });
  ({ incidents, totals } = log.overview(operator));
  assert.is(incidents.length, LIMITS.incidentsKeptMax);
  assert.equal([incidents[0]?.tenantId, incidents[0]?.code, incidents[0]?.askId], [newcomer, 'PLUGIN_LOAD_FAILED', undefined]);
  assert.is(incidents.at(-1)?.askId, 'i1');
  assert.equal(totals.get(tenants[0] as string), { asks: perTenant + 1, answered: 0, failed: perTenant + 1, cacheHits: 0, leakBlocks: perTenant, pluginFailures: 0 });
  assert.throws(() => log.overview({} as never), /needs an OperatorCredential/);
});

test(`incidentsPerTenantMax (${LIMITS.incidentsPerTenantMax}): a tenant keeps that many incidents, its newest; one more drops its own oldest, never another tenant's`, () => {
  const log = createActivityLog(limits);
  log.askEnded(failed('t_quiet', 'quiet-1', 'LEAK_BLOCKED'));
  for (let index = 0; index < LIMITS.incidentsPerTenantMax; index += 1) log.askEnded(failed('t_noisy', `n${index}`, 'LEAK_BLOCKED'));
  let noisy = log.overview(operator).incidents.filter((incident) => incident.tenantId === 't_noisy');
  assert.is(noisy.length, LIMITS.incidentsPerTenantMax, 'at the limit all are kept');
  assert.is(noisy.at(-1)?.askId, 'n0');
  // A flood far past both caps: the quiet tenant's incident stays.
  for (let index = LIMITS.incidentsPerTenantMax; index < 10 * LIMITS.incidentsKeptMax; index += 1) log.askEnded(failed('t_noisy', `n${index}`, 'LEAK_BLOCKED'));
  const { incidents, totals } = log.overview(operator);
  noisy = incidents.filter((incident) => incident.tenantId === 't_noisy');
  assert.is(noisy.length, LIMITS.incidentsPerTenantMax);
  assert.is(noisy[0]?.askId, `n${10 * LIMITS.incidentsKeptMax - 1}`, 'the newest are kept');
  assert.is(noisy.at(-1)?.askId, `n${10 * LIMITS.incidentsKeptMax - LIMITS.incidentsPerTenantMax}`);
  assert.equal(incidents.filter((incident) => incident.tenantId === 't_quiet').map((incident) => incident.askId), ['quiet-1']);
  assert.is(totals.get('t_noisy')?.leakBlocks, 10 * LIMITS.incidentsKeptMax, 'the totals still count every block');
});

test(`plugin log: the tenant's own lines, pluginLogLinesPerTenantMax (${LIMITS.pluginLogLinesPerTenantMax}) kept, each cut to pluginLogLineCharsMax`, () => {
  const log = createActivityLog(limits);
  const a = tenant('Zeta');
  const b = tenant('Eta');
  const line = (message: string) => ({ at: 1, session: 's', slot: 'retrieval' as const, level: 'info' as const, message });
  for (let index = 0; index < LIMITS.pluginLogLinesPerTenantMax; index += 1) log.pluginLogged(a.tenantId, line(`line ${index}`));
  assert.is(log.pluginLog(a).length, LIMITS.pluginLogLinesPerTenantMax);
  assert.is(log.pluginLog(a).at(-1)?.message, 'line 0');
  log.pluginLogged(a.tenantId, line('x'.repeat(LIMITS.pluginLogLineCharsMax)));
  assert.is(log.pluginLog(a).length, LIMITS.pluginLogLinesPerTenantMax);
  assert.is(log.pluginLog(a).at(-1)?.message, 'line 1');
  assert.is(log.pluginLog(a)[0]?.message.length, LIMITS.pluginLogLineCharsMax, 'a line of exactly the limit is kept whole');
  log.pluginLogged(a.tenantId, line('y'.repeat(LIMITS.pluginLogLineCharsMax + 1)));
  assert.is(log.pluginLog(a)[0]?.message, `${'y'.repeat(LIMITS.pluginLogLineCharsMax - 1)}…`);
  assert.equal(log.pluginLog(b), []);
});

test('forgetting a deleted tenant drops its asks, plugin log and totals', () => {
  const log = createActivityLog(limits);
  const a = tenant('Epsilon');
  log.askEnded(answered(a.tenantId, 'x'));
  log.pluginLogged(a.tenantId, { at: 1, session: 's', slot: 'prompt', level: 'warn', message: 'm' });
  log.forgetTenant(a.tenantId);
  assert.equal(log.recentAsks(a), []);
  assert.equal(log.pluginLog(a), []);
  assert.is(log.overview(operator).totals.has(a.tenantId), false);
});

test.run();
