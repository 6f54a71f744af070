/**
 * The host side of the ingest worker (ingest-worker.ts): documents are chunked, tokenized and (with
 * the local embedder) embedded in a worker thread, so a million-character document costs the cell's
 * event loop nothing but the writes. One job runs at a time; tenants take turns (one job of each
 * waiting tenant before a second of any), each tenant may have only a few jobs queued or running,
 * and a job over its time limit costs the worker, not the cell (the next job starts a fresh one).
 */
import { Worker } from 'node:worker_threads';
import { HostError, type ErrorCode } from '../errors.ts';
import type { DocumentInput } from './document-input.ts';
import type { PreparedText } from './prepare-text.ts';

/** Prepares documents off the event loop. A stateful resource: call `close()`. */
export interface IngestService {
  /**
   * Prepares `documents` for `tenantId`; `localDim` asks for local-embedder vectors of that size.
   * @throws {HostError} TENANT_INGEST_RATE_LIMIT when the tenant already has its most jobs waiting
   *   or running; STORAGE_FAILED when the job ran past its time limit or the worker failed.
   */
  prepare(tenantId: string, documents: readonly { title: string; text: string }[], localDim: number | null): Promise<PreparedText[]>;
  /**
   * Parses and validates a `POST /v1/documents` body for `tenantId` (document-input.ts), as a job
   * of the same queue: the tenant's turn and its job limit apply.
   * @throws {HostError} HTTP_BODY_INVALID, DOCUMENT_INVALID as parseDocumentsBody throws them;
   *   TENANT_INGEST_RATE_LIMIT and STORAGE_FAILED as {@link prepare}.
   */
  parseDocuments(tenantId: string, body: Uint8Array): Promise<DocumentInput[]>;
  /** Stops the worker; waiting jobs fail. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createIngestService}. */
export interface IngestServiceOptions {
  /** Wall-clock time per job. */
  jobMsMax: number;
  /** Jobs one tenant may have waiting or running. */
  perTenantMax: number;
}

/** What the worker is asked to do (its message, without the job id). */
type Work = { kind: 'prepare'; documents: readonly { title: string; text: string }[]; localDim: number | null } | { kind: 'parse'; body: Uint8Array };

interface Job {
  tenantId: string;
  work: Work;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type Reply =
  | { id: number; ok: true; document: number; part: PreparedText }
  | { id: number; ok: true; done: true }
  | { id: number; ok: true; documents: DocumentInput[] }
  | { id: number; ok: false; message: string; code?: ErrorCode };

/** Creates the service; the worker starts with the first job. */
export function createIngestService(options: IngestServiceOptions): IngestService {
  /** Waiting jobs per tenant, tenants in turn order (a Map keeps insertion order). */
  const queues = new Map<string, Job[]>();
  const active = new Map<string, number>();
  let worker: Worker | null = null;
  /** The job in the worker, with the parts of its documents received so far. */
  let running: { job: Job; id: number; timer: NodeJS.Timeout; parts: PreparedText[][] } | null = null;
  let nextId = 1;
  let closed = false;

  const finish = (id: number, settle: (job: Job) => void): void => {
    if (running === null || running.id !== id) return;
    const { job, timer } = running;
    clearTimeout(timer);
    running = null;
    const left = (active.get(job.tenantId) ?? 1) - 1;
    if (left > 0) active.set(job.tenantId, left);
    else active.delete(job.tenantId);
    settle(job);
    pump();
  };
  const startWorker = (): Worker => {
    const started = new Worker(new URL('./ingest-bootstrap.mjs', import.meta.url), { execArgv: [] });
    started.unref();
    started.on('message', (reply: Reply) => {
      if (!reply.ok) {
        // A code is the body's own fault (parse jobs); anything else is the worker's.
        const error = reply.code !== undefined ? new HostError(reply.code, reply.message) : new HostError('STORAGE_FAILED', `the documents could not be prepared: ${reply.message}`);
        return finish(reply.id, (job) => job.reject(error));
      }
      if (running === null || running.id !== reply.id) return;
      if ('part' in reply) return void (running.parts[reply.document] ??= []).push(reply.part);
      if ('documents' in reply) return finish(reply.id, (job) => job.resolve(reply.documents));
      const parts = running.parts;
      finish(reply.id, (job) => job.resolve(job.work.kind === 'prepare' ? job.work.documents.map((_, index) => joinParts(parts[index] ?? [])) : []));
    });
    const fail = (why: string): void => {
      if (worker === started) worker = null;
      if (running !== null) finish(running.id, (job) => job.reject(new HostError('STORAGE_FAILED', `the ingest worker ${why}`)));
    };
    started.on('error', (error) => fail(`failed: ${error.message}`));
    started.on('exit', (code) => fail(`exited with code ${code}`));
    return started;
  };
  const pump = (): void => {
    if (running !== null || closed) return;
    const turn = queues.entries().next();
    if (turn.done === true) return;
    const [tenantId, queue] = turn.value;
    const job = queue.shift() as Job;
    // The tenant goes to the back of the turn order (or leaves it, with nothing left waiting).
    queues.delete(tenantId);
    if (queue.length > 0) queues.set(tenantId, queue);
    worker ??= startWorker();
    const id = nextId++;
    const timer = setTimeout(() => {
      const stuck = worker;
      worker = null;
      void stuck?.terminate();
      finish(id, (late) => late.reject(new HostError('STORAGE_FAILED', `preparing the documents took longer than ${options.jobMsMax} ms`)));
    }, options.jobMsMax);
    running = { job, id, timer, parts: [] };
    worker.postMessage({ id, ...job.work });
  };
  const submit = <T>(tenantId: string, work: Work): Promise<T> => {
    if (closed) return Promise.reject(new HostError('STORAGE_FAILED', 'the ingest service is closed'));
    const held = active.get(tenantId) ?? 0;
    if (held >= options.perTenantMax) {
      return Promise.reject(new HostError('TENANT_INGEST_RATE_LIMIT', `the tenant already has ${held} document batches being ingested, limit ${options.perTenantMax}; wait for them`));
    }
    active.set(tenantId, held + 1);
    return new Promise<T>((resolve, reject) => {
      const queue = queues.get(tenantId) ?? [];
      queue.push({ tenantId, work, resolve: resolve as (value: unknown) => void, reject });
      if (!queues.has(tenantId)) queues.set(tenantId, queue);
      pump();
    });
  };

  return {
    prepare: (tenantId, documents, localDim) => submit<PreparedText[]>(tenantId, { kind: 'prepare', documents, localDim }),
    parseDocuments: (tenantId, body) => submit<DocumentInput[]>(tenantId, { kind: 'parse', body }),
    async close() {
      if (closed) return;
      closed = true;
      const failure = new HostError('STORAGE_FAILED', 'the ingest service closed');
      for (const queue of queues.values()) for (const job of queue) job.reject(failure);
      queues.clear();
      if (running !== null) finish(running.id, (job) => job.reject(failure));
      const last = worker;
      worker = null;
      await last?.terminate();
    },
  };
}

/** One document's parts as the worker sent them, joined again. */
function joinParts(parts: readonly PreparedText[]): PreparedText {
  if (parts.length === 1) return parts[0] as PreparedText;
  const withVectors = parts.filter((part) => part.vectors !== null);
  let vectors: Float32Array | null = null;
  if (withVectors.length > 0) {
    vectors = new Float32Array(withVectors.reduce((sum, part) => sum + (part.vectors as Float32Array).length, 0));
    let at = 0;
    for (const part of withVectors) {
      vectors.set(part.vectors as Float32Array, at);
      at += (part.vectors as Float32Array).length;
    }
  }
  return { pieces: parts.flatMap((part) => part.pieces), terms: parts.flatMap((part) => part.terms), vectors };
}
