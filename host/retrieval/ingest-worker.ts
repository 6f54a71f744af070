/**
 * The ingest worker: prepares documents (prepare-text.ts: chunks, lexical entries and, with the
 * local embedder, vectors) off the cell's event loop. Chunking and tokenizing a million characters
 * takes a few hundred milliseconds; here it holds up no chat. Pure computation: the worker holds no
 * tenant storage and keeps nothing between jobs.
 *
 * Messages in: `{ id, kind: 'prepare', documents: [{ title, text }], localDim }` (`localDim` null:
 * no vectors, the host embeds through a remote embedder); out: each document in parts of at most
 * {@link PART_PIECES} chunks, `{ id, ok: true, document, part: PreparedText }` (every document has
 * at least one part), then `{ id, ok: true, done: true }`; or `{ id, ok: false, message }`. Parts,
 * because the cell's loop decodes each message in one go: a million characters' chunks and
 * lexical entries in one message held it for a few hundred milliseconds.
 *
 * Or `{ id, kind: 'parse', body }`: a `POST /v1/documents` body parsed and validated
 * (document-input.ts); out `{ id, ok: true, documents }`, or `{ id, ok: false, code, message }` with
 * the host error code the body earned (HTTP_BODY_INVALID, DOCUMENT_INVALID).
 */
import { parentPort } from 'node:worker_threads';
import { HostError } from '../errors.ts';
import { parseDocumentsBody } from './document-input.ts';
import { createLocalEmbedder, type Embedder } from './embedder.ts';
import { prepareText, type PreparedText } from './prepare-text.ts';

/** Chunks per message. */
const PART_PIECES = 256;

type Job = { id: number; kind: 'prepare'; documents: { title: string; text: string }[]; localDim: number | null } | { id: number; kind: 'parse'; body: Uint8Array };

const port = parentPort;
if (port === null) throw new Error('ingest-worker.ts runs only as a worker thread');
let embedder: Embedder | undefined;
port.on('message', (job: Job) => {
  if (job.kind === 'parse') {
    try {
      port.postMessage({ id: job.id, ok: true, documents: parseDocumentsBody(job.body) });
    } catch (error) {
      const code = error instanceof HostError ? error.code : undefined;
      port.postMessage({ id: job.id, ok: false, message: error instanceof Error ? error.message : String(error), ...(code === undefined ? {} : { code }) });
    }
    return;
  }
  try {
    if (job.localDim !== null && embedder?.dim !== job.localDim) embedder = createLocalEmbedder({ dim: job.localDim });
    for (const [index, document] of job.documents.entries()) {
      const prepared = prepareText(document, job.localDim === null ? undefined : embedder);
      const dim = job.localDim ?? 0;
      for (let from = 0; from === 0 || from < prepared.pieces.length; from += PART_PIECES) {
        const to = from + PART_PIECES;
        const part: PreparedText = {
          pieces: prepared.pieces.slice(from, to),
          terms: prepared.terms.slice(from, to),
          vectors: prepared.vectors === null ? null : prepared.vectors.slice(from * dim, to * dim),
        };
        port.postMessage({ id: job.id, ok: true, document: index, part }, part.vectors === null ? [] : [part.vectors.buffer as ArrayBuffer]);
      }
    }
    port.postMessage({ id: job.id, ok: true, done: true });
  } catch (error) {
    port.postMessage({ id: job.id, ok: false, message: error instanceof Error ? error.message : String(error) });
  }
});
