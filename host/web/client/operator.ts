/**
 * The operator view (`/operator`): sign in with the operator key, then see every tenant with its
 * live sessions and its counts since the host started (asks, cache hits, blocked leaks, plugin
 * failures), and the recent incidents. Refreshes every few seconds while visible.
 */
import { api } from './api.ts';
import { forget, remember, wireSignIn } from './credentials.ts';
import { describeError } from './describe.ts';
import { byId, h, replace, timeCell } from './dom.ts';
import { errorNotice } from './notice.ts';

const KEY_STORE = 'ctx.operator.key';
const REFRESH_MS = 5000;

interface TenantRow {
  id: string;
  name: string;
  createdAt: number;
  liveSessions: number;
  asks: number;
  answered: number;
  failed: number;
  cacheHits: number;
  leakBlocks: number;
  pluginFailures: number;
}

interface Incident {
  at: number;
  tenantId: string;
  sessionId: string;
  askId?: string;
  code: string;
  /** For a leak block: the guard layer that caught it. */
  layer?: string;
}

interface Overview {
  tenants: TenantRow[];
  liveSessions: number;
  incidents: Incident[];
}

/** Loads the overview; on a refused key, back to the sign-in form. */
async function load(key: string): Promise<boolean> {
  let overview: Overview;
  try {
    overview = await api<Overview>('/v1/operator/overview', { key });
  } catch (error) {
    replace(byId('overview-status'), errorNotice(error, 'Overview'));
    return false;
  }
  replace(byId('overview-status'));
  const sum = (field: 'leakBlocks' | 'pluginFailures' | 'asks'): number => overview.tenants.reduce((total, tenant) => total + tenant[field], 0);
  const tiles: [string, number, string][] = [
    ['tenants', overview.tenants.length, ''],
    ['live sessions', overview.liveSessions, ''],
    ['asks', sum('asks'), ''],
    ['blocked leaks', sum('leakBlocks'), sum('leakBlocks') > 0 ? 'alert' : ''],
    ['plugin failures', sum('pluginFailures'), sum('pluginFailures') > 0 ? 'warn' : ''],
  ];
  replace(byId('tiles'), ...tiles.map(([label, value, tone]) => h('div', { class: `tile ${tone}`, 'data-tile': label }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label))));
  const names = new Map(overview.tenants.map((tenant) => [tenant.id, tenant.name]));
  const tenantBody = byId('tenants').querySelector('tbody') as HTMLTableSectionElement;
  replace(tenantBody, ...overview.tenants.map(tenantRow));
  if (overview.tenants.length === 0) tenantBody.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No tenants yet.')));
  const incidentBody = byId('incidents').querySelector('tbody') as HTMLTableSectionElement;
  replace(incidentBody, ...overview.incidents.map((incident) => incidentRow(incident, names)));
  if (overview.incidents.length === 0) incidentBody.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No blocked leaks or plugin failures since the host started.')));
  return true;
}

function tenantRow(tenant: TenantRow): HTMLTableRowElement {
  const count = (value: number, tone: string): HTMLElement => h('td', { class: `num ${value > 0 ? tone : ''}` }, value);
  return h(
    'tr',
    { 'data-tenant': tenant.id },
    h('td', {}, tenant.name),
    h('td', {}, h('code', {}, tenant.id)),
    h('td', { class: 'num' }, tenant.liveSessions),
    h('td', { class: 'num' }, tenant.asks),
    h('td', { class: 'num' }, tenant.cacheHits),
    count(tenant.leakBlocks, 'alert'),
    count(tenant.pluginFailures, 'warn'),
    h('td', {}, timeCell(tenant.createdAt)),
  );
}

function incidentRow(incident: Incident, names: ReadonlyMap<string, string>): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-code': incident.code },
    h('td', {}, timeCell(incident.at)),
    h('td', {}, names.get(incident.tenantId) ?? 'deleted tenant', ' ', h('code', {}, incident.tenantId)),
    h('td', {}, h('span', { class: incident.code === 'LEAK_BLOCKED' ? 'badge bad' : 'badge warn' }, incident.code)),
    h('td', {}, describeError(incident.code).title, incident.layer === undefined ? null : h('span', { class: 'hint' }, ` · ${incident.layer} layer`)),
    h('td', {}, h('code', { title: `session ${incident.sessionId}` }, incident.askId ?? 'session start')),
  );
}

async function open(key: string): Promise<void> {
  if (!(await load(key))) {
    forget(KEY_STORE);
    byId('sign-in').hidden = false;
    return;
  }
  remember(KEY_STORE, key);
  byId('sign-in').hidden = true;
  byId('panels').hidden = false;
  byId('sign-out').hidden = false;
  setInterval(() => {
    if (document.visibilityState === 'visible') void load(key);
  }, REFRESH_MS);
}

wireSignIn({ storeKey: KEY_STORE, path: '/operator', open, whenSignedOut: () => { byId('sign-in').hidden = false; } });
