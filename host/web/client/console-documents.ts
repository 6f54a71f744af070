/**
 * The console's documents panel: drop (or choose) files to upload them in batches with a progress
 * bar, and the corpus listed page by page with a delete button per document.
 */
import { api, postWithProgress } from './api.ts';
import { byId, h, replace, timeCell } from './dom.ts';
import { DocumentFileError, documentsFromFile, planBatches, type DocumentInput } from './documents.ts';
import { confirmButton, errorNotice, okNotice } from './notice.ts';

/** What a panel needs from the console. */
export interface PanelContext {
  readonly key: string;
  /** Reloads the other panels (an upload changes the cache and the index generation). */
  refreshAll(): void;
}

interface DocumentRow {
  id: string;
  title: string;
  chunks: number;
  chars: number;
  updatedAt: number;
}

interface IngestResult {
  inserted: number;
  updated: number;
  unchanged: number;
  chunks: number;
}

const PAGE_SIZE = 50;

/** Wires the drop zone and loads the first page of the corpus; returns the corpus reload. */
export function setupDocuments(context: PanelContext): () => Promise<void> {
  const drop = byId('drop');
  const input = byId<HTMLInputElement>('file-input');
  const onFiles = (files: FileList | null | undefined): void => {
    if (files !== null && files !== undefined && files.length > 0) void upload(context, [...files]);
  };
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    onFiles(event.dataTransfer?.files);
  });
  input.addEventListener('change', () => {
    onFiles(input.files);
    input.value = '';
  });
  const reload = (): Promise<void> => loadCorpus(context, undefined);
  byId('corpus-more').addEventListener('click', (event) => void loadCorpus(context, (event.currentTarget as HTMLElement).dataset['after']));
  return reload;
}

/** Reads the files, plans batches within the host's limits and posts them one after another. */
async function upload(context: PanelContext, files: File[]): Promise<void> {
  const status = byId('upload-status');
  const bar = byId<HTMLProgressElement>('upload-progress');
  const text = byId('upload-text');
  const result = byId('upload-result');
  replace(result);
  status.hidden = false;
  bar.value = 0;
  let documents: DocumentInput[];
  try {
    const read = await Promise.all(files.map(async (file) => documentsFromFile(file.name, await file.text())));
    documents = read.flat();
  } catch (error) {
    status.hidden = true;
    replace(result, errorNotice(error instanceof DocumentFileError ? error : new Error(String(error)), 'Upload'));
    return;
  }
  const batches = planBatches(documents);
  const total = batches.reduce((sum, batch) => sum + batch.bytes, 0);
  const counts: IngestResult = { inserted: 0, updated: 0, unchanged: 0, chunks: 0 };
  let done = 0;
  for (const [index, batch] of batches.entries()) {
    const label = `${documents.length} document${documents.length === 1 ? '' : 's'}, batch ${index + 1} of ${batches.length}`;
    text.textContent = `Uploading ${label}…`;
    try {
      const stored = await postWithProgress<IngestResult>('/v1/documents', context.key, batch.body, (sent) => {
        bar.value = Math.min(100, ((done + sent) / total) * 100);
        if (sent >= batch.bytes) text.textContent = `Indexing ${label}…`;
      });
      for (const name of ['inserted', 'updated', 'unchanged', 'chunks'] as const) counts[name] += stored[name];
    } catch (error) {
      status.hidden = true;
      const before = index === 0 ? '' : ` (the ${index} batch${index === 1 ? '' : 'es'} before it were stored)`;
      replace(result, errorNotice(error, `Batch ${index + 1} of ${batches.length} was refused${before}`));
      context.refreshAll();
      return;
    }
    done += batch.bytes;
    bar.value = (done / total) * 100;
  }
  text.textContent = `Uploaded ${documents.length} document${documents.length === 1 ? '' : 's'}.`;
  replace(result, okNotice(`Stored ${counts.inserted} new, ${counts.updated} updated, ${counts.unchanged} unchanged — ${counts.chunks} chunks indexed.`));
  context.refreshAll();
}

/** Loads a page of the corpus: the first (replacing the table) or the one after `after`. */
async function loadCorpus(context: PanelContext, after: string | undefined): Promise<void> {
  const body = byId('corpus').querySelector('tbody') as HTMLTableSectionElement;
  const more = byId<HTMLButtonElement>('corpus-more');
  const summary = byId('corpus-summary');
  try {
    const query = `?limit=${PAGE_SIZE}${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`;
    const page = await api<{ documents: DocumentRow[]; chunks: number; generation: number }>(`/v1/documents${query}`, { key: context.key });
    if (after === undefined) replace(body);
    body.append(...page.documents.map((row) => documentRow(context, row)));
    summary.textContent = `${page.chunks} chunks indexed · index generation ${page.generation}`;
    const last = page.documents.at(-1);
    more.hidden = page.documents.length < PAGE_SIZE || last === undefined;
    if (last !== undefined) more.dataset['after'] = last.id;
    if (after === undefined && page.documents.length === 0) body.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No documents yet: drop some files above.')));
  } catch (error) {
    replace(summary, errorNotice(error, 'Documents'));
  }
}

function documentRow(context: PanelContext, row: DocumentRow): HTMLTableRowElement {
  const remove = confirmButton('Delete', 'Delete?', async () => {
    try {
      await api(`/v1/documents/${encodeURIComponent(row.id)}`, { method: 'DELETE', key: context.key });
      context.refreshAll();
    } catch (error) {
      byId('upload-result').replaceChildren(errorNotice(error, `Deleting ${row.id}`));
    }
  });
  return h(
    'tr',
    { 'data-doc': row.id },
    h('td', {}, row.title === '' ? h('em', {}, 'untitled') : row.title),
    h('td', {}, h('code', {}, row.id)),
    h('td', { class: 'num' }, row.chunks),
    h('td', { class: 'num' }, row.chars.toLocaleString('en')),
    h('td', {}, timeCell(row.updatedAt)),
    h('td', { class: 'actions' }, remove),
  );
}
