/**
 * What a fuzz target is, and the checks every target shares. A target opens whatever it needs
 * (a storage directory, a metering worker), then checks one property over generated inputs with
 * fast-check; `npm test` runs each for a fixed number of executions from a fixed seed
 * (test/fuzz/fuzz.test.ts), `npm run fuzz` for as long as it is given (scripts/fuzz.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { HostError, type ErrorCode } from '../../host/errors.ts';
import { isKnownFinding } from './known-findings.ts';

/** How one check run is driven. */
export interface CheckParams {
  seed: number;
  /** Executions at most. */
  numRuns: number;
  /** Replays the failure at this fast-check path (with the seed that found it). */
  path?: string;
  /** Stops generating new inputs after this long (the long fuzz run only; a test never does). */
  timeLimitMs?: number;
  /** Fails an execution that has not finished after this long, as a hang (the long fuzz run only). */
  executionMsMax?: number;
}

/** The outcome of one check run. */
export interface CheckResult {
  failed: boolean;
  /** Executions done (including, on a failure, the failing one; not the shrinking). */
  numRuns: number;
  seed: number;
  path: string | null;
  /** The shrunk failing input. */
  counterexample: unknown;
  error: unknown;
}

/** An opened target: check it any number of times, then close it. */
export interface OpenTarget {
  check(params: CheckParams): Promise<CheckResult>;
  close(): Promise<void>;
}

/** A fuzz target. */
export interface FuzzTarget {
  readonly name: string;
  /** What is fuzzed and what must hold. */
  readonly summary: string;
  /** Executions in `npm test`: a few seconds' worth on the reference machine. */
  readonly testRuns: number;
  open(): Promise<OpenTarget>;
}

/**
 * Runs `property` under `params` and reports the outcome in the shared shape.
 */
export async function runCheck<Ts>(property: fc.IAsyncProperty<Ts>, params: CheckParams): Promise<CheckResult> {
  const details = await fc.check(property, {
    seed: params.seed,
    numRuns: params.numRuns,
    ...(params.path === undefined ? {} : { path: params.path }),
    ...(params.timeLimitMs === undefined ? {} : { plugins: [fc.interruptAfterTimeLimit(params.timeLimitMs)] }),
    ...(params.executionMsMax === undefined ? {} : { timeout: params.executionMsMax }),
  });
  return {
    failed: details.failed && !(details.interrupted && details.counterexample === null),
    numRuns: details.numRuns,
    seed: details.seed,
    path: details.counterexamplePath,
    counterexample: details.counterexample,
    error: details.errorInstance,
  };
}

/**
 * Writes the input about to run to `$FUZZ_CRASH_DIR/<target>.bin` (and `note`, if any, to
 * `<target>.txt`) when that variable is set (the long fuzz run sets it): a crash of the whole process
 * (a segmentation fault in native code) records nothing else, and these are then what crashed it.
 */
export function recordInput(target: string, bytes: Uint8Array, note = ''): void {
  const dir = process.env['FUZZ_CRASH_DIR'];
  if (dir === undefined || dir === '') return;
  writeFileSync(join(dir, `${target}.bin`), bytes);
  writeFileSync(join(dir, `${target}.txt`), note);
}

/** One line naming an error: its class, its code when it has one, and its message. */
export function describeError(error: unknown): string {
  if (error instanceof HostError) return `HostError ${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return `a thrown ${typeof error}: ${String(error)}`;
}

/** A property violated by an input: what was expected and what happened instead. */
export class PropertyViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PropertyViolation';
  }
}

/**
 * Accepts `error` if it is a HostError with one of `codes` (or a known finding of `target`, which is
 * counted); otherwise fails the property naming what was thrown.
 * @returns the HostError, or undefined for a known finding.
 */
export function expectHostError(target: string, error: unknown, codes: readonly ErrorCode[]): HostError | undefined {
  if (error instanceof HostError && codes.includes(error.code)) return error;
  if (isKnownFinding(target, error)) return undefined;
  throw new PropertyViolation(`expected a HostError ${codes.join(' or ')}, got ${describeError(error)}${error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : ''}`);
}

/**
 * Accepts `error` if it is an instance of `type` (or a known finding of `target`); otherwise fails
 * the property naming what was thrown.
 */
export function expectErrorOf(target: string, error: unknown, type: abstract new (...args: never[]) => Error): void {
  if (error instanceof type) return;
  if (isKnownFinding(target, error)) return;
  throw new PropertyViolation(`expected a ${type.name}, got ${describeError(error)}${error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : ''}`);
}

/** Fails the property unless `condition` holds. */
export function ensure(condition: boolean, message: string): asserts condition {
  if (!condition) throw new PropertyViolation(message);
}

/** Fails the property unless `actual` deeply equals `expected` (a round trip). */
export function requireEqual(actual: unknown, expected: unknown, what: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new PropertyViolation(`${what}: got ${preview(actual)}, expected ${preview(expected)}`);
  }
}

/** A short rendering of a value for a failure message. */
export function preview(value: unknown, chars = 300): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_key, inner: unknown) => (inner instanceof Uint8Array ? `<${inner.byteLength} bytes: ${Buffer.from(inner.subarray(0, 48)).toString('hex')}…>` : typeof inner === 'bigint' ? `${inner}n` : inner)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > chars ? `${text.slice(0, chars)}… (${text.length} chars)` : text;
}
