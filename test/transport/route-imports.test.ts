/**
 * Each route module loads when it is the first module a process imports. The area route files
 * and the router once imported each other at run time, so importing `page-routes.ts` first threw a
 * ReferenceError (a binding read before its module had run); the shared types now live in
 * `route-types.ts`, which imports neither side. Each file is imported in a fresh process, since in
 * one process only the first import would see the order.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const transport = join(root, 'host', 'transport');
const files = readdirSync(transport)
  .filter((name) => name.endsWith('-routes.ts') || name === 'router.ts' || name === 'route-types.ts')
  .sort();

/** Imports `file` as a fresh process's first module; resolves with the process's output. */
function importFirst(file: string): Promise<{ code: number; output: string }> {
  const url = pathToFileURL(join(transport, file)).href;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--disable-wasm-trap-handler', '--import', 'tsx', '--input-type=module', '-e', `await import(${JSON.stringify(url)}); console.log('loaded');`],
      { cwd: root, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, output: `${stdout}${stderr}` }),
    );
  });
}

test('the router and every area route file are found', () => {
  assert.ok(files.includes('router.ts'));
  assert.ok(files.includes('page-routes.ts'));
  assert.ok(files.filter((name) => name.endsWith('-routes.ts')).length >= 8, files.join(', '));
});

test('each route module loads as the first module of a process', async () => {
  const failures: string[] = [];
  // Four processes at a time: the suite runs on two cores beside other work.
  for (let start = 0; start < files.length; start += 4) {
    const batch = files.slice(start, start + 4);
    const results = await Promise.all(batch.map(importFirst));
    results.forEach((result, index) => {
      if (result.code !== 0 || !result.output.includes('loaded')) failures.push(`${batch[index]}: exit ${result.code}\n${result.output.slice(-800)}`);
    });
  }
  assert.equal(failures, []);
});

test.run();
