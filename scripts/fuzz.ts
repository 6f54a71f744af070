/**
 * `npm run fuzz`: every fuzz target of test/fuzz/targets/ for a bounded time each, with fresh
 * seeds, reporting executions and findings per target. `npm test` runs the same targets briefly
 * from a fixed seed; this is the long run that looks further.
 *
 *   npm run fuzz                                  every target, FUZZ_SECONDS (default 30) each
 *   npm run fuzz -- --target frames --target vetting
 *   npm run fuzz -- --target frames --seed 42           starts from seed 42 (42, 43, … after each run)
 *   npm run fuzz -- --target frames --seed 42 --path 3:0:1   replays one failure and prints it
 *
 * A finding is a failure with a distinct error (numbers in its message aside): after one, the
 * target goes on with the next seed until its time is up. Known findings (test/fuzz/known-findings.ts)
 * are counted apart. An execution still running after FUZZ_EXECUTION_MS (default 60,000) is a
 * finding (a hang); a synchronous hang cannot be interrupted and shows as a run that does not end.
 * A crash of the whole process (native code) can report nothing, so the targets that reach native
 * code keep the input they are running in FUZZ_CRASH_DIR (a fresh temporary folder by default,
 * printed at the start): after a crash, `<target>.bin` there is the input that caused it.
 * Exit code 1 when there is a new finding.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KNOWN_FINDINGS, knownFindingHits, knownFindingSamples } from '../test/fuzz/known-findings.ts';
import { describeError, preview, type CheckResult } from '../test/fuzz/target.ts';
import { FUZZ_TARGETS } from '../test/fuzz/targets/index.ts';

interface Finding {
  signature: string;
  count: number;
  first: CheckResult;
}

interface TargetReport {
  name: string;
  executions: number;
  seconds: number;
  findings: Finding[];
  known: { id: string; hits: number }[];
}

const { values } = parseArgs({
  options: {
    target: { type: 'string', multiple: true },
    seed: { type: 'string' },
    path: { type: 'string' },
  },
});

const seconds = Number(process.env['FUZZ_SECONDS'] ?? 30);
const executionMsMax = Number(process.env['FUZZ_EXECUTION_MS'] ?? 60_000);
if (!(seconds > 0) || !(executionMsMax > 0)) throw new Error('FUZZ_SECONDS and FUZZ_EXECUTION_MS must be positive numbers');
const unknown = (values.target ?? []).filter((name) => !FUZZ_TARGETS.some((target) => target.name === name));
if (unknown.length > 0) throw new Error(`unknown target ${unknown.join(', ')}; known: ${FUZZ_TARGETS.map((target) => target.name).join(', ')}`);
const selected = values.target === undefined ? FUZZ_TARGETS : FUZZ_TARGETS.filter((target) => values.target?.includes(target.name));

/** A failure's identity: its error with numbers (sizes, offsets, ids) blanked. */
function signatureOf(error: unknown): string {
  return describeError(error).split('\n')[0]?.replace(/0x[0-9a-f]+|\d+/gi, 'N').slice(0, 200) ?? '';
}

function printFinding(target: string, finding: Finding): void {
  const { first } = finding;
  process.stdout.write(
    [
      `  finding (${finding.count}×): ${finding.signature}`,
      `    first error: ${describeError(first.error).split('\n')[0]}`,
      `    input (shrunk): ${preview(first.counterexample, 600)}`,
      `    reproduce: npm run fuzz -- --target ${target} --seed ${first.seed}${first.path === null ? '' : ` --path ${first.path}`}`,
      '',
    ].join('\n'),
  );
}

async function replay(): Promise<void> {
  const target = selected[0];
  if (selected.length !== 1 || target === undefined || values.seed === undefined) throw new Error('a replay (--path) needs exactly one --target and a --seed');
  const opened = await target.open();
  try {
    const result = await opened.check({ seed: Number(values.seed), numRuns: 1, path: values.path ?? '' });
    if (!result.failed) {
      process.stdout.write(`${target.name}: no failure with seed ${values.seed} at path ${values.path ?? ''}\n`);
      return;
    }
    printFinding(target.name, { signature: signatureOf(result.error), count: 1, first: result });
    process.stdout.write(`${describeError(result.error)}\n`);
    process.exitCode = 1;
  } finally {
    await opened.close();
  }
}

async function fuzz(): Promise<void> {
  const reports: TargetReport[] = [];
  let seed = values.seed === undefined ? Math.floor(Math.random() * 0x7fff_ffff) : Number(values.seed);
  process.env['FUZZ_CRASH_DIR'] ??= mkdtempSync(join(tmpdir(), 'ctx-fuzz-'));
  process.stdout.write(`fuzzing ${selected.length} targets, ${seconds} s each, from seed ${seed}; inputs in flight kept in ${process.env['FUZZ_CRASH_DIR']}\n`);
  for (const target of selected) {
    process.stdout.write(`${target.name}: ${target.summary}\n`);
    const opened = await target.open();
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const findings = new Map<string, Finding>();
    let executions = 0;
    try {
      while (performance.now() < deadline) {
        const result = await opened.check({ seed, numRuns: Number.MAX_SAFE_INTEGER, timeLimitMs: Math.max(1, deadline - performance.now()), executionMsMax });
        executions += result.numRuns;
        seed = (seed + 1) % 0x7fff_ffff;
        if (!result.failed) continue;
        const signature = signatureOf(result.error);
        const seen = findings.get(signature);
        if (seen === undefined) findings.set(signature, { signature, count: 1, first: result });
        else seen.count += 1;
      }
    } finally {
      await opened.close();
    }
    const known = KNOWN_FINDINGS.filter((finding) => finding.target === target.name).map((finding) => ({ id: finding.id, hits: knownFindingHits.get(finding.id) ?? 0 }));
    const report = { name: target.name, executions, seconds: (performance.now() - started) / 1000, findings: [...findings.values()], known };
    reports.push(report);
    process.stdout.write(`  ${executions} executions in ${report.seconds.toFixed(1)} s, ${report.findings.length} new findings, known: ${known.map((entry) => `${entry.id} ×${entry.hits}`).join(', ') || 'none'}\n`);
    for (const finding of report.findings) printFinding(target.name, finding);
    for (const entry of known) {
      for (const sample of knownFindingSamples.get(entry.id) ?? []) process.stdout.write(`    known ${entry.id}: ${sample}\n`);
    }
  }
  process.stdout.write('\ntarget                executions   exec/s   new findings   known findings (hits)\n');
  for (const report of reports) {
    const known = report.known.filter((entry) => entry.hits > 0);
    process.stdout.write(
      `${report.name.padEnd(20)} ${String(report.executions).padStart(11)} ${(report.executions / report.seconds).toFixed(0).padStart(8)} ${String(report.findings.length).padStart(14)}   ${known.map((entry) => `${entry.id} (${entry.hits})`).join(', ') || '-'}\n`,
    );
  }
  if (reports.some((report) => report.findings.length > 0)) process.exitCode = 1;
}

await (values.path === undefined ? fuzz() : replay());
