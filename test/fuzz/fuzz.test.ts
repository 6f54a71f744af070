/**
 * The fuzz targets (test/fuzz/targets/), each for a fixed number of executions from a fixed seed,
 * so every run of the suite checks the same inputs whatever the machine's speed. A failure prints
 * the seed and fast-check path that reproduce it, and the shrunk input. `FUZZ_SEED` picks another
 * seed; `npm run fuzz` runs the same targets for as long as it is given (scripts/fuzz.ts).
 */
import { test } from 'uvu';
import { describeError, preview } from './target.ts';
import { FUZZ_TARGETS } from './targets/index.ts';

/** The suite's seed: fixed, so that a failure here is a failure of the code, reproducible anywhere. */
const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_206);

for (const target of FUZZ_TARGETS) {
  test(`${target.name}: ${target.summary}`, async () => {
    const opened = await target.open();
    try {
      const result = await opened.check({ seed: SEED, numRuns: target.testRuns });
      if (result.failed) {
        throw new Error(
          [
            `fuzz target ${target.name} failed after ${result.numRuns} executions: ${describeError(result.error)}`,
            `input (shrunk): ${preview(result.counterexample, 600)}`,
            `reproduce: npm run fuzz -- --target ${target.name} --seed ${result.seed}${result.path === null ? '' : ` --path ${result.path}`}`,
          ].join('\n'),
        );
      }
    } finally {
      await opened.close();
    }
  });
}

test.run();
