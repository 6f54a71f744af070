/**
 * A client's documents, as `POST /v1/documents` sends them: parsed and validated completely before
 * anything is stored. No storage here, so that a cell's ingest worker can parse and validate a
 * large body (`parseDocumentsBody`) off the cell's event loop: JSON.parse of an 8 MB body of a
 * million small objects held the loop ~180 ms, and a refused body costs no ingest quota.
 */
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';

/** One document as a client sends it. */
export interface DocumentInput {
  id?: string;
  title?: string;
  text: string;
  metadata?: Record<string, string>;
}

const DOC_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
/**
 * Metadata keys refused outright: assigning `__proto__` to a plain object changes its prototype
 * instead of adding the key (it was dropped silently), and `constructor` / `prototype` shadow what
 * code reading the metadata object later may expect to find there.
 */
const RESERVED_METADATA_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Validates a request body `{documents: [...]}` completely before anything is stored.
 * @throws {HostError} DOCUMENT_INVALID naming the document index and field.
 */
export function validateDocuments(body: unknown): DocumentInput[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HostError('DOCUMENT_INVALID', 'body must be an object {documents: [...]}');
  }
  const unknownKeys = Object.keys(body).filter((key) => key !== 'documents');
  if (unknownKeys.length > 0) throw new HostError('DOCUMENT_INVALID', `unknown body key ${JSON.stringify(unknownKeys[0])}`);
  const documents = (body as { documents?: unknown }).documents;
  if (!Array.isArray(documents)) throw new HostError('DOCUMENT_INVALID', 'documents must be an array');
  if (documents.length === 0 || documents.length > LIMITS.documentsPerRequestMax) {
    throw new HostError('DOCUMENT_INVALID', `documents must hold 1..${LIMITS.documentsPerRequestMax} items, got ${documents.length}`);
  }
  const seen = new Set<string>();
  return documents.map((item: unknown, index) => {
    const document = validateDocument(item, `documents[${index}]`);
    if (document.id !== undefined) {
      if (seen.has(document.id)) throw new HostError('DOCUMENT_INVALID', `documents[${index}].id ${JSON.stringify(document.id)} repeats an earlier id in this batch`);
      seen.add(document.id);
    }
    return document;
  });
}

function validateDocument(item: unknown, where: string): DocumentInput {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new HostError('DOCUMENT_INVALID', `${where} must be an object`);
  const record = item as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!['id', 'title', 'text', 'metadata'].includes(key)) throw new HostError('DOCUMENT_INVALID', `${where} has unknown key ${JSON.stringify(key)}`);
  }
  const { id, title, text, metadata } = record;
  if (typeof text !== 'string' || text.trim().length === 0) throw new HostError('DOCUMENT_INVALID', `${where}.text must be a non-empty string`);
  if (text.length > LIMITS.documentCharsMax) {
    throw new HostError('DOCUMENT_INVALID', `${where}.text is ${text.length} characters, limit ${LIMITS.documentCharsMax}`);
  }
  const document: DocumentInput = { text };
  if (id !== undefined) {
    if (typeof id !== 'string' || id.length > LIMITS.documentIdCharsMax || !DOC_ID_PATTERN.test(id)) {
      throw new HostError('DOCUMENT_INVALID', `${where}.id must be 1..${LIMITS.documentIdCharsMax} characters of [A-Za-z0-9._:-], starting with a letter or digit`);
    }
    document.id = id;
  }
  if (title !== undefined) {
    if (typeof title !== 'string' || title.length > LIMITS.documentTitleCharsMax) {
      throw new HostError('DOCUMENT_INVALID', `${where}.title must be a string of at most ${LIMITS.documentTitleCharsMax} characters`);
    }
    document.title = title;
  }
  if (metadata !== undefined) document.metadata = validateMetadata(metadata, `${where}.metadata`);
  return document;
}

function validateMetadata(metadata: unknown, where: string): Record<string, string> {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new HostError('DOCUMENT_INVALID', `${where} must be an object of strings`);
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataEntriesMax) {
    throw new HostError('DOCUMENT_INVALID', `${where} has ${entries.length} entries, limit ${LIMITS.metadataEntriesMax}`);
  }
  const clean: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (RESERVED_METADATA_KEYS.has(key)) throw new HostError('DOCUMENT_INVALID', `${where} has the key ${JSON.stringify(key)}, which is reserved`);
    if (typeof value !== 'string') throw new HostError('DOCUMENT_INVALID', `${where}.${key} must be a string, got ${typeof value}`);
    if (key.length === 0 || key.length > LIMITS.metadataValueCharsMax || value.length > LIMITS.metadataValueCharsMax) {
      throw new HostError('DOCUMENT_INVALID', `${where}.${key}: keys and values are limited to ${LIMITS.metadataValueCharsMax} characters`);
    }
    clean[key] = value;
  }
  return clean;
}

/**
 * Parses a request body (UTF-8 JSON) and validates it as {@link validateDocuments} does.
 * @throws {HostError} HTTP_BODY_INVALID when the body is not JSON; DOCUMENT_INVALID as
 *   {@link validateDocuments}.
 */
export function parseDocumentsBody(body: Uint8Array): DocumentInput[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (error) {
    throw new HostError('HTTP_BODY_INVALID', `body is not valid JSON: ${(error as Error).message.slice(0, 120)}`);
  }
  return validateDocuments(parsed);
}
