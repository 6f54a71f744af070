/**
 * The move journal: the fleet controller's memory of every move, so that a move cut short at any
 * step — a host killed, the controller killed — is resumed or rolled back from where it stood, never
 * guessed. One JSON line per change of a move, appended and fsynced before the controller acts on
 * the next step; the latest line of a move is its state. A torn last line (a crash while writing)
 * is ignored: the step it would have recorded is repeated, and every step is idempotent.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * How far a move got; each is recorded once its step has succeeded:
 * `planned` → `precopied` (the target holds a copy taken while the source still wrote) → `frozen`
 * (source writes refused; the pre-copy is stale) → `imported` (the target holds a complete copy;
 * straight from `precopied` when the source wrote nothing since) → `retired` (source answers
 * TENANT_MOVED) → `activated` (target serves) → `routed` (the router sends the tenant to the
 * target) → `done` (source copy shredded). `rolled-back`: the source serves and writes again, and
 * the target's copy is gone (or listed in `cleanup`).
 */
export type MoveStep = 'planned' | 'precopied' | 'frozen' | 'imported' | 'retired' | 'activated' | 'routed' | 'done' | 'rolled-back';

/** The steps in order, for comparisons. */
export const MOVE_STEPS: readonly MoveStep[] = ['planned', 'precopied', 'frozen', 'imported', 'retired', 'activated', 'routed', 'done'];

/** One move as the journal holds it. */
export interface MoveRecord {
  id: string;
  tenant: string;
  from: string;
  to: string;
  step: MoveStep;
  startedAt: number;
  updatedAt: number;
  /** When the source stopped taking writes, and when the router began sending the tenant to the target, which takes them (the frozen window). */
  frozenAt?: number;
  writableAt?: number;
  /** Entries and bytes the (last) transfer carried. */
  entries?: number;
  bytes?: number;
  /** The source's write mark at the (last) pre-copy's snapshot. */
  precopyMark?: string;
  /** Pre-copies made so far (fleetPrecopyRoundsMax at most): more than one when the tenant wrote during one. */
  precopyRounds?: number;
  /** Whether the pre-copy was whole at the freeze (no second transfer under the freeze). */
  precopyKept?: boolean;
  /** The last failure, while the move waits to be resumed or rolled back. */
  error?: string;
  /** Hosts still holding a discarded incoming copy (they were down during the rollback). */
  cleanup?: string[];
}

/** Whether a move has ended (done or rolled back). */
export function finished(move: MoveRecord): boolean {
  return move.step === 'done' || (move.step === 'rolled-back' && (move.cleanup ?? []).length === 0);
}

/** Finished moves kept when the journal is compacted at open. */
const FINISHED_KEPT = 1_000;

/** The journal file. A stateful resource: call `close()`. */
export class MoveJournal {
  readonly path: string;
  readonly #moves = new Map<string, MoveRecord>();
  #fd: number;

  private constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let lines = 0;
    if (existsSync(path)) {
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        lines += 1;
        let move: MoveRecord;
        try {
          move = JSON.parse(line) as MoveRecord;
        } catch {
          continue;
        }
        if (typeof move.id === 'string' && typeof move.step === 'string') this.#moves.set(move.id, move);
      }
    }
    if (lines > 2 * this.#moves.size + 100) this.#compact();
    this.#fd = openSync(path, 'a', 0o600);
  }

  /** Opens (or creates) the journal at `path`. */
  static open(path: string): MoveJournal {
    return new MoveJournal(path);
  }

  /** Records a move's new state durably (appended and fsynced) before the caller goes on. */
  record(move: MoveRecord): MoveRecord {
    const stamped = { ...move, updatedAt: Date.now() };
    writeSync(this.#fd, `${JSON.stringify(stamped)}\n`);
    fsyncSync(this.#fd);
    this.#moves.set(stamped.id, stamped);
    return stamped;
  }

  /** A move by id. */
  get(id: string): MoveRecord | undefined {
    return this.#moves.get(id);
  }

  /** Moves that have not ended, oldest first. */
  active(): MoveRecord[] {
    return [...this.#moves.values()].filter((move) => !finished(move)).sort((a, b) => a.startedAt - b.startedAt);
  }

  /** The most recent finished moves, newest first. */
  recent(count: number): MoveRecord[] {
    return [...this.#moves.values()].filter(finished).sort((a, b) => b.updatedAt - a.updatedAt).slice(0, count);
  }

  /** The unfinished move of a tenant, if any. */
  activeFor(tenantId: string): MoveRecord | undefined {
    return this.active().find((move) => move.tenant === tenantId);
  }

  close(): void {
    closeSync(this.#fd);
  }

  /** Rewrites the file with the latest line of every unfinished move and of the newest finished ones. */
  #compact(): void {
    const keep = [...this.active(), ...this.recent(FINISHED_KEPT)].sort((a, b) => a.updatedAt - b.updatedAt);
    this.#moves.clear();
    for (const move of keep) this.#moves.set(move.id, move);
    const next = `${this.path}.next`;
    writeFileSync(next, keep.map((move) => `${JSON.stringify(move)}\n`).join(''), { mode: 0o600 });
    renameSync(next, this.path);
  }
}
