/**
 * Long passes over a tenant's data (an export, an import, an index load) run in steps between which
 * the event loop turns, so that the other tenants of a cell are not held for the whole pass: a
 * step ends once about {@link LOOP_STEP_MS} of work is spent. Work that already comes in bounded
 * pieces (a page of chunks, one tenant of many) just turns the loop between them with
 * {@link loopTurn}.
 */

/** How long a step of a long pass works before it lets the event loop turn. */
export const LOOP_STEP_MS = 8;

/** Lets the event loop turn: I/O, timers and other tenants' work run before this settles. */
export function loopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The steps of one long pass: after each unit of work, `if (steps.due) await steps.next()`. The
 * check is a clock read, so it costs nothing per entry; only a step's end awaits.
 */
export class LoopSteps {
  readonly #ms: number;
  #started = performance.now();

  constructor(ms: number = LOOP_STEP_MS) {
    this.#ms = ms;
  }

  /** Whether this step's time is spent. */
  get due(): boolean {
    return performance.now() - this.#started >= this.#ms;
  }

  /** Lets the loop turn, then starts the next step. */
  async next(): Promise<void> {
    await loopTurn();
    this.#started = performance.now();
  }
}
