/**
 * The CPU scheduler of one cell: every slice of CPU work a tenant causes on the cell's event loop —
 * a plugin call, a plugin start, an ingest step — runs through it, one at a time, and when several
 * tenants are waiting the one that has used the least CPU recently goes first (virtual time, as in
 * fair queuing: each tenant's clock advances by the time its slices took). A tenant that keeps
 * spending its whole budget is charged double for it, so it falls behind everyone else; when it does
 * that often enough it is a burner: each of its slices is followed by a pause (it may hold at most
 * `burnerDutyShare` of the loop, however idle the rest is), it is reported, and the supervisor moves
 * it to the quarantine cell. A burner that stops burning sheds the pause when its exhaustions age
 * out of the window.
 *
 * Slices are short by construction (a plugin call is bounded by its fuel, an ingest step by its
 * size), and between two slices the loop turns (`setImmediate`), so other tenants' sockets are read
 * and their slices queued before the next one runs — also between two slices of the same tenant, so
 * a tenant whose slices follow one another (an ingest) cannot keep the loop from reading sockets.
 * With nothing waiting and the loop turned since the last slice, a slice runs at once: the
 * scheduler costs nothing when there is no contention.
 */

/** What a slice's outcome says about its tenant. */
export type SliceVerdict = 'ok' | 'exhausted';

/** Options of {@link createScheduler}. */
export interface SchedulerOptions {
  /** Budget exhaustions within `burnerWindowMs` that make a tenant a burner. */
  burnerExhaustionsMin: number;
  burnerWindowMs: number;
  /** Told once per window when a tenant keeps exhausting its budget. */
  onBurner(tenantId: string): void;
  /** The most of the loop's time a burner's slices may take (0..1): after a slice of `t` ms it waits `t / share - t`. */
  burnerDutyShare: number;
  /** Classifies a slice's failure: 'exhausted' when the tenant spent its whole budget. */
  verdictOf(error: unknown): SliceVerdict;
  /** Milliseconds clock (tests). */
  now?: () => number;
}

/** A cell's scheduler. */
export interface Scheduler {
  /** Runs `slice` for `tenantId` when its turn comes; settles as the slice does. */
  run<T>(tenantId: string, slice: () => Promise<T> | T): Promise<T>;
  /** Slices waiting, all tenants together. */
  readonly waiting: number;
  /** CPU milliseconds each tenant's slices took since the cell started. */
  usage(): Map<string, number>;
}

interface Waiting {
  slice: () => unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface TenantState {
  vtime: number;
  queue: Waiting[];
  usedMs: number;
  exhaustions: number[];
  reportedAt: number;
  /** A burner's next slice does not start before this (its pause after the last one). */
  notBefore: number;
}

/** Creates a cell's scheduler. */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const now = options.now ?? (() => performance.now());
  const tenants = new Map<string, TenantState>();
  let running = false;
  let waiting = 0;
  let drainScheduled = false;
  // Whether the loop has turned since the last slice ended. A tenant whose slices follow one
  // another without I/O between them (an ingest's steps) would otherwise chain them through
  // promise callbacks alone, and the loop would never read another tenant's socket meanwhile.
  let turnedSinceSlice = true;
  let turnWatched = false;
  const sliceEnded = (): void => {
    turnedSinceSlice = false;
    if (turnWatched) return;
    turnWatched = true;
    setImmediate(() => {
      turnWatched = false;
      turnedSinceSlice = true;
    });
  };
  let pauseTimer: NodeJS.Timeout | undefined;

  const stateOf = (tenantId: string): TenantState => {
    let state = tenants.get(tenantId);
    if (state === undefined) {
      state = { vtime: 0, queue: [], usedMs: 0, exhaustions: [], reportedAt: Number.NEGATIVE_INFINITY, notBefore: Number.NEGATIVE_INFINITY };
      tenants.set(tenantId, state);
    }
    return state;
  };
  /** The least virtual time among tenants with slices waiting: a tenant that was idle starts there, not behind. */
  const floor = (): number => {
    let least = Number.POSITIVE_INFINITY;
    for (const state of tenants.values()) if (state.queue.length > 0 && state.vtime < least) least = state.vtime;
    return Number.isFinite(least) ? least : 0;
  };

  /** The waiting tenant to run next (least virtual time, fewer exhaustions on a tie), or when the earliest paused one may run. */
  const next = (): { run: [string, TenantState] } | { wakeAt: number } | undefined => {
    let best: [string, TenantState] | undefined;
    let wakeAt = Number.POSITIVE_INFINITY;
    const at = now();
    for (const entry of tenants) {
      const state = entry[1];
      if (state.queue.length === 0) continue;
      if (state.notBefore > at) {
        wakeAt = Math.min(wakeAt, state.notBefore);
        continue;
      }
      if (best === undefined || state.vtime < best[1].vtime || (state.vtime === best[1].vtime && state.exhaustions.length < best[1].exhaustions.length)) best = entry;
    }
    if (best !== undefined) return { run: best };
    return Number.isFinite(wakeAt) ? { wakeAt } : undefined;
  };

  const settle = (tenantId: string, state: TenantState, started: number, verdict: SliceVerdict): void => {
    const took = now() - started;
    state.usedMs += took;
    // A tenant that spent its whole budget is charged double: it falls behind those that did not.
    state.vtime += verdict === 'exhausted' ? took * 2 : took;
    const at = now();
    if (verdict === 'exhausted') state.exhaustions.push(at);
    while (state.exhaustions.length > 0 && (state.exhaustions[0] as number) < at - options.burnerWindowMs) state.exhaustions.shift();
    if (state.exhaustions.length < options.burnerExhaustionsMin) return;
    state.notBefore = at + took * (1 / options.burnerDutyShare - 1);
    if (verdict === 'exhausted' && at - state.reportedAt >= options.burnerWindowMs) {
      state.reportedAt = at;
      options.onBurner(tenantId);
    }
  };

  const execute = async (tenantId: string, state: TenantState, slice: () => unknown): Promise<unknown> => {
    running = true;
    const started = now();
    try {
      const value = await slice();
      settle(tenantId, state, started, 'ok');
      return value;
    } catch (error) {
      settle(tenantId, state, started, options.verdictOf(error));
      throw error;
    } finally {
      running = false;
      sliceEnded();
      if (waiting > 0) scheduleDrain();
      else if (tenants.size > TENANTS_KEPT_MAX) prune();
    }
  };

  const scheduleDrain = (): void => {
    if (drainScheduled) return;
    drainScheduled = true;
    // Let the loop turn first: sockets are read and other tenants' slices queued before the next runs.
    setImmediate(() => {
      drainScheduled = false;
      if (running) return;
      const chosen = next();
      if (chosen === undefined) return;
      if ('wakeAt' in chosen) {
        // Only paused burners wait: the loop idles until the first may run.
        pauseTimer ??= setTimeout(() => {
          pauseTimer = undefined;
          scheduleDrain();
        }, Math.max(1, chosen.wakeAt - now()));
        return;
      }
      const [tenantId, state] = chosen.run;
      const waiter = state.queue.shift() as Waiting;
      waiting -= 1;
      execute(tenantId, state, waiter.slice).then(waiter.resolve, waiter.reject);
    });
  };

  /** Forgets idle tenants' states (keeping their virtual time would only matter against a backlog). */
  const prune = (): void => {
    for (const [tenantId, state] of tenants) if (state.queue.length === 0 && state.exhaustions.length === 0) tenants.delete(tenantId);
  };

  return {
    run<T>(tenantId: string, slice: () => Promise<T> | T): Promise<T> {
      const state = stateOf(tenantId);
      if (!running && waiting === 0 && turnedSinceSlice && state.notBefore <= now()) {
        state.vtime = Math.max(state.vtime, floor());
        return execute(tenantId, state, slice) as Promise<T>;
      }
      if (state.queue.length === 0) state.vtime = Math.max(state.vtime, floor());
      return new Promise<T>((resolve, reject) => {
        state.queue.push({ slice, resolve: resolve as (value: unknown) => void, reject });
        waiting += 1;
        if (!running) scheduleDrain();
      });
    },
    get waiting() {
      return waiting;
    },
    usage: () => new Map([...tenants].map(([tenantId, state]) => [tenantId, state.usedMs])),
  };
}

/** Tenant states kept when the cell is idle: above this, idle tenants' states are dropped. */
const TENANTS_KEPT_MAX = 10_000;
