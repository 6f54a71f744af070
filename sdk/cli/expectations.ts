/**
 * Judging a test case's result against its `expect` block. Each expectation becomes one named
 * check that says what it saw when it fails, so a red test explains itself.
 */
import type { CaseResult } from './harness.ts';
import type { Expectation } from './project.ts';

/** One judged expectation. */
export interface Check {
  /** e.g. `first shipping#0`. */
  name: string;
  ok: boolean;
  /** What was observed, for a failed check. */
  detail: string;
}

/**
 * The checks of `expect` against `result`; none when the case failed before its plugin produced
 * output (the failure is the reason then).
 *
 * @example
 * ```ts
 * const failed = checkExpectations(result, { first: 'shipping#0' }).filter((check) => !check.ok);
 * ```
 */
export function checkExpectations(result: CaseResult, expect: Expectation): Check[] {
  const output = observed(result);
  if (output === null) return [];
  const checks: Check[] = [];
  const shown = output.chunks.length === 0 ? 'none' : output.chunks.join(', ');
  if (expect.first !== undefined) {
    checks.push({ name: `first ${expect.first}`, ok: output.chunks[0] === expect.first, detail: `the result starts with ${output.chunks[0] ?? 'nothing'}` });
  }
  for (const chunkId of expect.chunks ?? []) {
    checks.push({ name: `contains ${chunkId}`, ok: output.chunks.includes(chunkId), detail: `the result holds ${shown}` });
  }
  for (const chunkId of expect.absent ?? []) {
    checks.push({ name: `lacks ${chunkId}`, ok: !output.chunks.includes(chunkId), detail: `the result holds ${shown}` });
  }
  for (const text of expect.text ?? []) {
    checks.push({ name: `text ${JSON.stringify(text)}`, ok: output.text.includes(text), detail: 'not found in the result' });
  }
  if (expect.cacheable !== undefined) {
    const cacheable = result.prompt?.cacheable;
    checks.push({ name: `cacheable ${expect.cacheable}`, ok: cacheable === expect.cacheable, detail: `the output says cacheable ${String(cacheable ?? 'n/a (not a prompt plugin)')}` });
  }
  if (expect.fuelMax !== undefined) {
    checks.push({ name: `fuel ≤ ${expect.fuelMax}`, ok: output.fuel !== null && output.fuel <= expect.fuelMax, detail: `spent ${output.fuel ?? 'unknown (unmetered)'}` });
  }
  return checks;
}

/** The parts of the result the project's own plugin is judged by. */
function observed(result: CaseResult): { chunks: string[]; text: string; fuel: number | null } | null {
  if (result.slot === 'retrieval') {
    if (result.retrieval === null || result.failure !== null) return null;
    return { chunks: result.ranked.map((chunk) => chunk.chunkId), text: result.ranked.map((chunk) => chunk.text).join('\n'), fuel: result.retrieval.fuel };
  }
  if (result.prompt === null) return null;
  return { chunks: result.prompt.references, text: result.prompt.messages.map((message) => message.content).join('\n'), fuel: result.prompt.fuel };
}
