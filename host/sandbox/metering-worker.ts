/**
 * The metering worker: runs {@link meterModule} off the host's event loop, one job at a time.
 * Messages in: `{ id, bytes, memoryPagesMax }`; out: `{ id, ok: true, result }` or
 * `{ id, ok: false, refusal }` (the module cannot be metered) or `{ id, ok: false, internal }`.
 */
import { parentPort } from 'node:worker_threads';
import { meterModule, MeteringRefusal } from './metering.ts';

/** A job as the service posts it. */
interface MeteringJob {
  id: number;
  bytes: Uint8Array;
  memoryPagesMax: number;
}

const port = parentPort;
if (port === null) throw new Error('metering-worker.ts runs only as a worker thread');
port.on('message', (job: MeteringJob) => {
  meterModule(job.bytes, { memoryPagesMax: job.memoryPagesMax }).then(
    (result) => port.postMessage({ id: job.id, ok: true, result }, [result.bytes.buffer as ArrayBuffer]),
    (error: unknown) => {
      if (error instanceof MeteringRefusal) port.postMessage({ id: job.id, ok: false, refusal: error.message });
      else port.postMessage({ id: job.id, ok: false, internal: error instanceof Error ? error.message : String(error) });
    },
  );
});
