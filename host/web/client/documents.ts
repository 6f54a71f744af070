/**
 * Turning dropped files into `POST /v1/documents` batches (the console's upload). Plain functions
 * of names and text, with no DOM, so they are tested in Node like the host's own code.
 *
 * - `.json`: `{documents: [...]}`, an array of documents, or one document object;
 * - `.jsonl` / `.ndjson`: one document object per line;
 * - anything else (`.txt`, `.md`, …): one document, its id from the file name and its title from
 *   the first Markdown heading (else the file name).
 *
 * Batches stay within the host's limits (documents per request, body bytes) so a large drop is
 * several requests, each validated and stored whole, and the progress bar can move between them.
 */
import { LIMITS } from '../../limits.ts';

/** A document as the API takes it. */
export interface DocumentInput {
  id?: string;
  title?: string;
  text: string;
  metadata?: Record<string, string>;
}

/** A file that could not be read as documents: the message names it. */
export class DocumentFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentFileError';
  }
}

/** One request's worth of documents, with its JSON body. */
export interface DocumentBatch {
  documents: DocumentInput[];
  body: string;
  bytes: number;
}

/** Bytes per batch: half the host's body limit, so escaping and headers never tip one over. */
export const BATCH_BYTES_MAX = LIMITS.httpBodyBytesMax / 2;

/**
 * Reads one file's documents.
 * @throws {DocumentFileError} naming the file when JSON does not parse or holds no documents.
 */
export function documentsFromFile(name: string, text: string): DocumentInput[] {
  const extension = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase() ?? '';
  if (extension === 'json') return fromJson(name, parse(name, text));
  if (extension === 'jsonl' || extension === 'ndjson') {
    return text
      .split('\n')
      .map((line, index) => ({ line: line.trim(), index }))
      .filter(({ line }) => line !== '')
      .flatMap(({ line, index }) => fromJson(`${name} line ${index + 1}`, parse(`${name} line ${index + 1}`, line)));
  }
  const title = /^#{1,6}\s+(.+?)\s*#*\s*$/m.exec(text)?.[1] ?? name.replace(/\.[^.]*$/, '');
  const id = documentId(name);
  return [{ ...(id === undefined ? {} : { id }), title: title.slice(0, LIMITS.documentTitleCharsMax), text }];
}

/**
 * A document id from a file name: the name without its extension, other characters than
 * `[A-Za-z0-9._:-]` replaced by `-`; undefined when nothing usable is left (the host then makes one).
 */
export function documentId(fileName: string): string | undefined {
  const base = fileName.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '');
  const id = base.replace(/[^A-Za-z0-9._:-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, LIMITS.documentIdCharsMax);
  return id === '' ? undefined : id;
}

/**
 * Splits documents into batches of at most `maxDocuments` and (but for a single document that is
 * larger on its own, which the host then judges) `maxBytes` of JSON body each.
 */
export function planBatches(documents: readonly DocumentInput[], maxDocuments: number = LIMITS.documentsPerRequestMax, maxBytes: number = BATCH_BYTES_MAX): DocumentBatch[] {
  const batches: DocumentBatch[] = [];
  let current: DocumentInput[] = [];
  let bytes = 0;
  const encoder = new TextEncoder();
  // The body is `{"documents":[` + the documents joined by commas + `]}`.
  const frame = '{"documents":[]}'.length;
  for (const document of documents) {
    const size = encoder.encode(JSON.stringify(document)).length;
    if (current.length > 0 && (current.length >= maxDocuments || frame + bytes + 1 + size > maxBytes)) {
      batches.push(batchOf(current));
      current = [];
      bytes = 0;
    }
    bytes += (current.length > 0 ? 1 : 0) + size;
    current.push(document);
  }
  if (current.length > 0) batches.push(batchOf(current));
  return batches;
}

function batchOf(documents: DocumentInput[]): DocumentBatch {
  const body = JSON.stringify({ documents });
  return { documents, body, bytes: new TextEncoder().encode(body).length };
}

function parse(where: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DocumentFileError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
}

function fromJson(where: string, value: unknown): DocumentInput[] {
  const list = Array.isArray(value) ? value : isObject(value) && Array.isArray(value['documents']) ? value['documents'] : [value];
  if (list.length === 0) throw new DocumentFileError(`${where} holds no documents`);
  return list.map((item: unknown, index) => {
    if (!isObject(item) || typeof item['text'] !== 'string') {
      throw new DocumentFileError(`${where}${list.length > 1 ? ` item ${index + 1}` : ''} is not a document: it needs a "text" string`);
    }
    // The host validates the fields; passing them on unchanged lets its message name the problem.
    return item as unknown as DocumentInput;
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
