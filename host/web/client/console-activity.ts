/**
 * The console's activity panels: recent asks with their time per pipeline stage, the semantic
 * cache's counters (and a button to clear the caches), and the tenant's settings as editable JSON.
 */
import { api } from './api.ts';
import type { PanelContext } from './console-documents.ts';
import { byId, formatBytes, formatMs, h, replace, timeCell } from './dom.ts';
import { confirmButton, errorNotice, okNotice } from './notice.ts';

/** The stages of an ask, in pipeline order, with the `timings` field of each. */
export const STAGES = [
  ['embed', 'embedMs'],
  ['cache', 'cacheMs'],
  ['retrieval', 'retrievalMs'],
  ['prompt', 'promptMs'],
  ['guard', 'guardMs'],
  ['model', 'modelMs'],
] as const;

interface RecentAsk {
  at: number;
  session: string;
  id: string;
  outcome: 'answered' | 'failed' | 'abandoned';
  code?: string;
  cache?: 'hit' | 'miss';
  cacheMatch?: 'exact' | 'semantic';
  similarity?: number;
  timings?: Record<string, number>;
}

/** Loads the recent asks table. */
export async function loadAsks(context: PanelContext): Promise<void> {
  const body = byId('asks').querySelector('tbody') as HTMLTableSectionElement;
  try {
    const { asks } = await api<{ asks: RecentAsk[] }>('/v1/asks', { key: context.key });
    if (asks.length === 0) replace(body, h('tr', {}, h('td', { colspan: 11, class: 'empty' }, 'No asks since the host started.')));
    else replace(body, ...asks.map(askRow));
  } catch (error) {
    replace(body, h('tr', {}, h('td', { colspan: 11 }, errorNotice(error, 'Recent asks'))));
  }
}

function askRow(ask: RecentAsk): HTMLTableRowElement {
  const outcome =
    ask.outcome === 'answered'
      ? h('span', { class: ask.cache === 'hit' ? 'badge hit' : 'badge' }, ask.cache === 'hit' ? `cache hit${ask.similarity === undefined ? '' : ` ${ask.similarity.toFixed(2)}`}` : 'answered')
      : h('span', { class: ask.outcome === 'failed' ? 'badge bad' : 'badge' }, ask.code ?? ask.outcome);
  const timings = ask.timings;
  return h(
    'tr',
    { 'data-ask': ask.id, 'data-outcome': ask.outcome },
    h('td', {}, timeCell(ask.at)),
    h('td', {}, h('code', { title: `session ${ask.session}` }, ask.id)),
    h('td', {}, outcome),
    ...STAGES.map(([stage, field]) => h('td', { class: 'num', 'data-stage': stage }, timings === undefined ? '' : formatMs(timings[field] ?? 0))),
    h('td', { class: 'num total' }, timings === undefined ? '' : formatMs(timings['totalMs'] ?? 0)),
    h('td', { class: 'bar-cell' }, timings === undefined ? null : stageBar(timings)),
  );
}

/** A bar split by stage, each part as wide as the stage's share of the ask's time. */
function stageBar(timings: Record<string, number>): HTMLElement {
  const parts = STAGES.map(([stage, field]) => [stage, timings[field] ?? 0] as const);
  const sum = parts.reduce((total, [, ms]) => total + ms, 0);
  const bar = h('div', { class: 'stage-bar', role: 'img', 'aria-label': parts.map(([stage, ms]) => `${stage} ${formatMs(ms)}`).join(', ') });
  for (const [stage, ms] of parts) {
    if (sum <= 0 || ms <= 0) continue;
    const part = h('span', { class: `stage ${stage}`, title: `${stage} ${formatMs(ms)}` });
    // Width is set through the CSSOM: the page's CSP allows no inline style attributes.
    part.style.width = `${((ms / sum) * 100).toFixed(2)}%`;
    bar.append(part);
  }
  return bar;
}

/** Loads the cache counters. */
export async function loadCache(context: PanelContext): Promise<void> {
  const target = byId('cache-stats');
  try {
    const stats = await api<Record<string, number | boolean | string>>('/v1/cache/stats', { key: context.key });
    const number = (name: string): number => Number(stats[name] ?? 0);
    const lookups = number('hits') + number('misses');
    const rows: [string, string][] = [
      ['status', stats['enabled'] === false ? 'disabled' : `on, one cache per ${String(stats['scope'] ?? 'tenant')}`],
      ['entries', `${number('entries')} · ${formatBytes(number('bytes'))} of ${formatBytes(number('quotaBytes'))}`],
      ['hit rate', lookups === 0 ? '—' : `${((number('hits') / lookups) * 100).toFixed(1)}% of ${lookups} lookups`],
      ['hits', `${number('hits')} (${number('exactHits')} exact, ${number('semanticHits')} similar)`],
      ['misses', String(number('misses'))],
      ['not cacheable', `${number('bypassed')} bypassed, ${number('optedOut')} opted out by the prompt plugin`],
      ['dropped', `${number('evicted')} evicted, ${number('expired')} expired, ${number('invalidated')} invalidated, ${number('rejected')} rejected`],
      ['embeddings cached', String(number('embeddingCacheEntries'))],
    ];
    replace(target, ...rows.flatMap(([label, value]) => [h('dt', {}, label), h('dd', { 'data-stat': label }, value)]));
  } catch (error) {
    replace(target, errorNotice(error, 'Cache'));
  }
}

/** Wires the clear-caches button. */
export function setupCache(context: PanelContext): void {
  const clear = confirmButton('Clear caches', 'Clear all cached answers?', async () => {
    try {
      const result = await api<{ deleted: { entries: number; embeddings: number } }>('/v1/cache', { method: 'DELETE', key: context.key });
      byId('cache-result').replaceChildren(okNotice(`Deleted ${result.deleted.entries} cached answers and ${result.deleted.embeddings} embeddings.`));
      await loadCache(context);
    } catch (error) {
      byId('cache-result').replaceChildren(errorNotice(error, 'Clear caches'));
    }
  });
  byId('cache-actions').replaceChildren(clear);
}

/** Loads the settings into the editor and wires its save button. */
export async function loadSettings(context: PanelContext): Promise<void> {
  const editor = byId<HTMLTextAreaElement>('settings');
  const status = byId('settings-status');
  try {
    editor.value = JSON.stringify(await api('/v1/config', { key: context.key }), null, 2);
    editor.rows = Math.max(8, editor.value.split('\n').length + 1);
  } catch (error) {
    replace(status, errorNotice(error, 'Settings'));
  }
}

/** Wires the settings form: the JSON is sent as a patch; the host names any setting it refuses. */
export function setupSettings(context: PanelContext): void {
  byId<HTMLFormElement>('settings-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const status = byId('settings-status');
    let patch: unknown;
    try {
      patch = JSON.parse(byId<HTMLTextAreaElement>('settings').value);
    } catch (error) {
      replace(status, errorNotice(new Error(`the settings are not valid JSON: ${(error as Error).message}`), 'Settings'));
      return;
    }
    void api('/v1/config', { method: 'PATCH', key: context.key, json: patch })
      .then((saved) => {
        byId<HTMLTextAreaElement>('settings').value = JSON.stringify(saved, null, 2);
        replace(status, okNotice('Saved. New asks use these settings.'));
        context.refreshAll();
      })
      .catch((error: unknown) => replace(status, errorNotice(error, 'Settings')));
  });
}
