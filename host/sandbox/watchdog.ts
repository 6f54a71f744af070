/**
 * The watchdog: runs the synchronous part of a plugin call under a wall-clock limit enforced from
 * OUTSIDE the executing thread. A wasm loop in the foreground blocks the event loop, so no timer
 * of ours could ever fire; Node's `vm` timeout instead arms a watchdog thread that calls V8's
 * TerminateExecution, which interrupts wasm at its next loop or function entry, unwinds to the
 * `vm` boundary below and is cancelled there, so the rest of the process carries on. The caller
 * must then discard the instance: its memory and Extism's call state are mid-call.
 *
 * Why this and not another design (measured on the reference 2-core machine, Node 20):
 * - Fuel metering is the primary guard; this is defense in depth, and the only guard of the
 *   test-only unmetered path.
 * - A worker per call or per session costs ~22 ms and ~9 MiB per instance (host/DESIGN.md,
 *   "The sandbox: measured facts").
 * - A SharedArrayBuffer flag cannot stop wasm that never reads it, and a plugin cannot be given a
 *   second (shared) memory on Node 20 (no multi-memory).
 * - The inspector's `Runtime.terminateExecution` from a watchdog worker unwinds the whole task,
 *   Node's own frames included, with no boundary to catch it; `breakOnSigint` costs ~35 µs per call
 *   and turns every watchdog firing into a process-wide SIGINT race.
 * - `vm` with `timeout` costs ~0.14 ms per call (it starts a thread); that is the price paid here.
 *
 * Termination can land anywhere in JavaScript, a host function included, and an LMDB write
 * transaction left open by it would wedge the tenant's environment. Host functions therefore refuse
 * to start once a call is within LIMITS.pluginHostCallMarginMs of its deadline (host-functions.ts),
 * so the watchdog only ever fires inside wasm or a host function that itself overran the margin.
 */
import vm from 'node:vm';

/** The outcome of {@link runWatched}. */
export type Watched<T> = { ok: true; value: T } | { ok: false; wallMsMax: number };

const script = new vm.Script('invoke()', { filename: 'ctx-plugin-watchdog.vm' });
/**
 * One context for every watched call: creating a context costs ~1 ms. It holds no state between
 * calls: `invoke` is set for one synchronous call and cleared after it, so nothing of one tenant's
 * call is reachable from another's.
 */
let context: vm.Context | undefined;

/**
 * Calls `fn` synchronously; if it is still running after `wallMsMax` ms it is terminated.
 * `null` calls `fn` directly (no watchdog, no cost).
 *
 * @example
 * ```ts
 * const watched = runWatched(() => exports.retrieve(), 2000);
 * if (!watched.ok) discardInstance();
 * ```
 * @throws whatever `fn` throws.
 */
export function runWatched<T>(fn: () => T, wallMsMax: number | null): Watched<T> {
  if (wallMsMax === null) return { ok: true, value: fn() };
  context ??= vm.createContext(Object.create(null) as object);
  const sandbox = context as { invoke?: () => T };
  sandbox.invoke = fn;
  try {
    return { ok: true, value: script.runInContext(context, { timeout: wallMsMax }) as T };
  } catch (error: unknown) {
    if ((error as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return { ok: false, wallMsMax };
    throw error;
  } finally {
    delete sandbox.invoke;
  }
}
