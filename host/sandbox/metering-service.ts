/**
 * The host side of metering: a worker thread that runs binaryen, so that rewriting a 4 MiB upload
 * (seconds of CPU) never stalls the event loop that every session shares. Jobs run one at a time
 * with a wall-clock limit; a job over it, or a worker that dies (binaryen aborts on some inputs
 * and is unusable afterwards), costs that worker, and the next job starts a fresh one. Tenants take
 * turns (one job of each waiting tenant before a second of any) and each may have only a few jobs
 * waiting or running, so one tenant sending large modules cannot keep the others' uploads out.
 */
import { Worker } from 'node:worker_threads';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { MeteringRefusal, type MeteringResult } from './metering.ts';

/** Meters modules off the event loop. A stateful resource: call `close()`. */
export interface MeteringService {
  /**
   * Meters one module (see metering.ts).
   * @throws {MeteringRefusal} when the module cannot be metered or took longer than the job limit.
   * @throws {HostError} PLUGIN_BUSY when too many modules are waiting (host-wide, or of this tenant).
   */
  meter(bytes: Uint8Array, options?: { memoryPagesMax?: number; tenantId?: string }): Promise<MeteringResult>;
  /** Stops the worker; pending jobs fail. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createMeteringService} (tests lower them). */
export interface MeteringServiceOptions {
  /** Wall-clock time per job (default LIMITS.pluginMeteringMsMax). */
  jobMsMax?: number;
  /** Jobs waiting or running (default LIMITS.pluginMeteringQueueMax). */
  queueMax?: number;
  /** Jobs of one tenant waiting or running (default LIMITS.pluginMeteringPerTenantMax). */
  perTenantMax?: number;
}

type Reply = { id: number; ok: true; result: MeteringResult } | { id: number; ok: false; refusal?: string; internal?: string };

interface Job {
  owner: string;
  bytes: Uint8Array;
  memoryPagesMax: number;
  resolve(result: MeteringResult): void;
  reject(error: unknown): void;
}

const PAGE_BYTES = 64 * 1024;

/**
 * Creates the service; the worker starts with the first job.
 *
 * @example
 * ```ts
 * const metering = createMeteringService();
 * const { bytes } = await metering.meter(upload);
 * await metering.close();
 * ```
 */
export function createMeteringService(options: MeteringServiceOptions = {}): MeteringService {
  const jobMsMax = options.jobMsMax ?? LIMITS.pluginMeteringMsMax;
  const queueMax = options.queueMax ?? LIMITS.pluginMeteringQueueMax;
  const perTenantMax = options.perTenantMax ?? LIMITS.pluginMeteringPerTenantMax;
  /** Waiting jobs per owner, owners in turn order. */
  const queues = new Map<string, Job[]>();
  const held = new Map<string, number>();
  let waiting = 0;
  let worker: Worker | null = null;
  let running: { job: Job; id: number; timer: NodeJS.Timeout } | null = null;
  let nextId = 1;
  let closed = false;

  const discardWorker = (): void => {
    const dead = worker;
    worker = null;
    void dead?.terminate();
  };
  const finish = (id: number, settle: (job: Job) => void): void => {
    if (running === null || running.id !== id) return;
    const { job, timer } = running;
    clearTimeout(timer);
    running = null;
    const left = (held.get(job.owner) ?? 1) - 1;
    if (left > 0) held.set(job.owner, left);
    else held.delete(job.owner);
    settle(job);
    pump();
  };
  const startWorker = (): Worker => {
    const started = new Worker(new URL('./metering-bootstrap.mjs', import.meta.url), { execArgv: [] });
    started.unref();
    started.on('message', (reply: Reply) => {
      finish(reply.id, (job) => {
        if (reply.ok) job.resolve(reply.result);
        else if (reply.refusal !== undefined) job.reject(new MeteringRefusal(reply.refusal));
        else job.reject(new Error(`metering failed: ${reply.internal ?? 'unknown error'}`));
      });
    });
    const fail = (why: string) => {
      if (worker === started) worker = null;
      if (running !== null) finish(running.id, (job) => job.reject(new Error(`the metering worker ${why}`)));
    };
    started.on('error', (error) => fail(`failed: ${error.message}`));
    started.on('exit', (code) => fail(`exited with code ${code}`));
    return started;
  };
  const pump = (): void => {
    if (running !== null || closed) return;
    const turn = queues.entries().next();
    if (turn.done === true) return;
    const [owner, waitingJobs] = turn.value;
    const job = waitingJobs.shift() as Job;
    waiting -= 1;
    // The owner goes to the back of the turn order (or leaves it, with nothing left waiting).
    queues.delete(owner);
    if (waitingJobs.length > 0) queues.set(owner, waitingJobs);
    worker ??= startWorker();
    const id = nextId++;
    const timer = setTimeout(() => {
      discardWorker();
      finish(id, (stuck) => stuck.reject(new MeteringRefusal(`metering the module took longer than ${jobMsMax} ms`)));
    }, jobMsMax);
    running = { job, id, timer };
    // A copy goes to the worker: the caller keeps its bytes (it stores or hashes them).
    worker.postMessage({ id, bytes: job.bytes.slice(), memoryPagesMax: job.memoryPagesMax });
  };

  return {
    meter(bytes, meterOptions = {}) {
      if (closed) return Promise.reject(new HostError('PLUGIN_BUSY', 'the metering service is closed'));
      const owner = meterOptions.tenantId ?? '';
      const mine = held.get(owner) ?? 0;
      if (mine >= perTenantMax) {
        return Promise.reject(new HostError('PLUGIN_BUSY', `this tenant already has ${mine} plugin modules being metered, limit ${perTenantMax}; wait for them`));
      }
      if (waiting + (running === null ? 0 : 1) >= queueMax) {
        return Promise.reject(new HostError('PLUGIN_BUSY', `${queueMax} plugin modules are already waiting to be metered; try again shortly`));
      }
      const memoryPagesMax = meterOptions.memoryPagesMax ?? LIMITS.pluginMemoryBytesMax / PAGE_BYTES;
      held.set(owner, mine + 1);
      return new Promise<MeteringResult>((resolve, reject) => {
        const jobs = queues.get(owner) ?? [];
        jobs.push({ owner, bytes, memoryPagesMax, resolve, reject });
        if (!queues.has(owner)) queues.set(owner, jobs);
        waiting += 1;
        pump();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const jobs of queues.values()) for (const job of jobs) job.reject(new HostError('PLUGIN_BUSY', 'the metering service closed'));
      queues.clear();
      if (running !== null) finish(running.id, (job) => job.reject(new HostError('PLUGIN_BUSY', 'the metering service closed')));
      const last = worker;
      worker = null;
      await last?.terminate();
    },
  };
}
