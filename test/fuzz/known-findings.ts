/**
 * Findings of the fuzz targets that are known and not fixed yet, because the file at fault is being
 * reworked by someone else: each has a failing regression test (skipped, marked FINDING) in
 * test/fuzz/findings.test.ts. A target that meets one counts it instead of failing, so `npm test`
 * stays green and `npm run fuzz` reports it apart from new findings. When the fix lands, remove
 * the entry here and un-skip its test: the targets then fail on it again if it comes back.
 */
import { HostError } from '../../host/errors.ts';

/** A known, reported finding. */
export interface KnownFinding {
  readonly id: string;
  /** The target that finds it. */
  readonly target: string;
  /** The file at fault. */
  readonly file: string;
  readonly summary: string;
  /** Whether `error`, thrown for an input of the target, is this finding. */
  matches(error: unknown): boolean;
}

/**
 * The known findings, by id. Empty: the three the first runs found (a frame type that is not a
 * primitive, an export header that is `null`, authentic records the importer trusted) are fixed, and
 * their tests in findings.test.ts are regression tests now.
 */
export const KNOWN_FINDINGS: readonly KnownFinding[] = [];

/** Messages of the errors each known finding matched, a few per finding, for the fuzz report. */
export const knownFindingSamples = new Map<string, Set<string>>();

/** How often each known finding was met in this process, by id. */
export const knownFindingHits = new Map<string, number>();

/**
 * Whether `error` is a known finding of `target`; if so, counts it.
 */
export function isKnownFinding(target: string, error: unknown): boolean {
  const finding = KNOWN_FINDINGS.find((candidate) => candidate.target === target && candidate.matches(error));
  if (finding === undefined) return false;
  knownFindingHits.set(finding.id, (knownFindingHits.get(finding.id) ?? 0) + 1);
  const samples = knownFindingSamples.get(finding.id) ?? new Set<string>();
  if (samples.size < 8) samples.add(`${error instanceof HostError ? `HostError ${error.code}` : (error as Error).constructor.name}: ${(error as Error).message}`.slice(0, 160));
  knownFindingSamples.set(finding.id, samples);
  return true;
}
