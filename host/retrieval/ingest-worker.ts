/**
 * The ingest worker: prepares documents (prepare-text.ts: chunks, lexical entries and, with the
 * local embedder, vectors) off the cell's event loop. Chunking and tokenizing a million characters
 * takes a few hundred milliseconds; here it holds up no chat. Pure computation: the worker holds no
 * tenant storage and keeps nothing between jobs.
 *
 * Messages in: `{ id, documents: [{ title, text }], localDim }` (`localDim` null: no vectors, the
 * host embeds through a remote embedder); out: `{ id, ok: true, documents: PreparedText[] }` or
 * `{ id, ok: false, message }`.
 */
import { parentPort } from 'node:worker_threads';
import { createLocalEmbedder, type Embedder } from './embedder.ts';
import { prepareText } from './prepare-text.ts';

interface Job {
  id: number;
  documents: { title: string; text: string }[];
  localDim: number | null;
}

const port = parentPort;
if (port === null) throw new Error('ingest-worker.ts runs only as a worker thread');
let embedder: Embedder | undefined;
port.on('message', (job: Job) => {
  try {
    if (job.localDim !== null && embedder?.dim !== job.localDim) embedder = createLocalEmbedder({ dim: job.localDim });
    const documents = job.documents.map((document) => prepareText(document, job.localDim === null ? undefined : embedder));
    port.postMessage({ id: job.id, ok: true, documents }, documents.flatMap((document) => (document.vectors === null ? [] : [document.vectors.buffer as ArrayBuffer])));
  } catch (error) {
    port.postMessage({ id: job.id, ok: false, message: error instanceof Error ? error.message : String(error) });
  }
});
