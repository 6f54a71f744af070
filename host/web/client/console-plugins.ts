/**
 * The console's plugins panel: per slot (retrieval, prompt) what runs now and its history, an
 * upload that shows the vetting report (or why vetting refused the module), a rollback and a
 * return to the built-in default.
 */
import { api } from './api.ts';
import { byId, formatBytes, h, icon, replace, timeCell } from './dom.ts';
import type { PanelContext } from './console-documents.ts';
import { confirmButton, errorNotice } from './notice.ts';

type Slot = 'retrieval' | 'prompt';

interface SlotState {
  active: 'builtin' | number;
  sha256: string;
  moduleSha256: string;
  history: { version: number; sha256: string; moduleBytes: number; uploadedAt: number }[];
}

/** The vetting report of an upload (host/sandbox/vetting.ts), as the page shows it. */
interface VettingReport {
  slot: Slot;
  sha256: string;
  bytes: number;
  version: number;
  imports: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string }[];
  module: { sha256: string; bytes: number };
  memory: { initialPages: number; declaredMaxPages: number | null; maxPages: number };
  metering: { functions: number; loops: number; dynamic: number; startFunction: boolean };
  limits: Record<string, number>;
}

const SLOTS: readonly Slot[] = ['retrieval', 'prompt'];

/** Loads both slots. */
export async function loadPlugins(context: PanelContext): Promise<void> {
  const container = byId('plugins');
  try {
    const state = await api<Record<Slot, SlotState>>('/v1/plugins', { key: context.key });
    replace(container, ...SLOTS.map((slot) => slotCard(context, slot, state[slot])));
  } catch (error) {
    replace(container, errorNotice(error, 'Plugins'));
  }
}

function slotCard(context: PanelContext, slot: Slot, state: SlotState): HTMLElement {
  const input = h('input', { type: 'file', accept: '.wasm,application/wasm', hidden: true, 'data-slot': slot });
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    input.value = '';
    if (file !== undefined) void uploadPlugin(context, slot, file);
  });
  const act = (path: string, method: string) => async (): Promise<void> => {
    try {
      await api(path, { method, key: context.key });
      await loadPlugins(context);
    } catch (error) {
      replace(byId('plugin-report'), errorNotice(error, `${slot} plugin`));
    }
  };
  const uploaded = state.history.length > 0;
  return h(
    'div',
    { class: 'slot', 'data-slot': slot },
    h('div', { class: 'slot-head' }, h('h3', {}, slot), h('span', { class: state.active === 'builtin' ? 'badge' : 'badge hit' }, state.active === 'builtin' ? 'built-in' : `version ${state.active}`)),
    h('p', { class: 'hash' }, 'sha256 ', h('code', { title: state.sha256 }, state.sha256.slice(0, 16)), '…'),
    uploaded
      ? h('ul', { class: 'history' }, ...state.history.map((entry) => h('li', {}, `v${entry.version} · `, h('code', {}, entry.sha256.slice(0, 12)), ` · ${formatBytes(entry.moduleBytes)} · `, timeCell(entry.uploadedAt))))
      : h('p', { class: 'hint' }, 'No uploads: the built-in default runs.'),
    h(
      'div',
      { class: 'row' },
      h('label', { class: 'button' }, icon('upload'), ' Upload .wasm', input),
      uploaded ? h('button', { type: 'button', class: 'ghost', onclick: () => void act(`/v1/plugins/${slot}/rollback`, 'POST')() }, 'Roll back') : null,
      state.active === 'builtin' ? null : confirmButton('Use built-in', 'Use built-in?', act(`/v1/plugins/${slot}`, 'DELETE')),
    ),
  );
}

async function uploadPlugin(context: PanelContext, slot: Slot, file: File): Promise<void> {
  const target = byId('plugin-report');
  replace(target, h('p', { class: 'hint' }, `Vetting and metering ${file.name}…`));
  try {
    const report = await api<VettingReport>(`/v1/plugins/${slot}`, { method: 'PUT', key: context.key, body: await file.arrayBuffer(), contentType: 'application/wasm' });
    replace(target, reportView(file.name, report));
    await loadPlugins(context);
  } catch (error) {
    replace(target, errorNotice(error, `Upload of ${file.name}`));
  }
}

/** The vetting report: what the module imports and exports, its memory, its metering, its limits. */
function reportView(name: string, report: VettingReport): HTMLElement {
  const row = (label: string, value: Node | string): HTMLElement[] => [h('dt', {}, label), h('dd', {}, value)];
  const list = (items: string[]): string => (items.length === 0 ? 'none' : items.join(', '));
  const pages = (count: number | null): string => (count === null ? 'none' : `${count} pages (${formatBytes(count * 65536)})`);
  return h(
    'div',
    { class: 'report', 'data-slot': report.slot },
    h('h3', {}, `Vetting report: ${name} → ${report.slot} v${report.version}`),
    h(
      'dl',
      { class: 'stats wide' },
      ...row('upload', h('span', {}, h('code', {}, report.sha256.slice(0, 16)), `… · ${formatBytes(report.bytes)}`)),
      ...row('stored and run', h('span', {}, h('code', {}, report.module.sha256.slice(0, 16)), `… · ${formatBytes(report.module.bytes)} (metered)`)),
      ...row('imports', list(report.imports.map((entry) => `${entry.module}.${entry.name}`))),
      ...row('exports', list(report.exports.map((entry) => `${entry.name} (${entry.kind})`))),
      ...row('memory', `starts at ${pages(report.memory.initialPages)}; declared max ${pages(report.memory.declaredMaxPages)}; capped at ${pages(report.memory.maxPages)}`),
      ...row('fuel metering', `${report.metering.functions} functions, ${report.metering.loops} loops, ${report.metering.dynamic} dynamic sites${report.metering.startFunction ? ', start function' : ''}`),
      ...row('limits per call', list(Object.entries(report.limits).map(([limit, value]) => `${limit} ${value.toLocaleString('en')}`))),
    ),
  );
}

interface PluginLogLine {
  at: number;
  session: string;
  slot: Slot;
  level: string;
  message: string;
}

/** Loads the lines the tenant's plugins logged (kept for the tenant, never in the host's log). */
export async function loadPluginLog(context: PanelContext): Promise<void> {
  const target = byId('plugin-log');
  try {
    const { lines } = await api<{ lines: PluginLogLine[] }>('/v1/plugins/log', { key: context.key });
    if (lines.length === 0) replace(target, h('li', { class: 'empty' }, 'Nothing logged since the host started.'));
    else replace(target, ...lines.map((line) => h('li', { 'data-level': line.level }, timeCell(line.at), ' ', h('span', { class: `badge ${line.level === 'error' ? 'bad' : line.level === 'warn' ? 'warn' : ''}` }, `${line.slot} ${line.level}`), ' ', h('code', {}, line.message))));
  } catch (error) {
    replace(target, h('li', {}, errorNotice(error, 'Plugin log')));
  }
}
