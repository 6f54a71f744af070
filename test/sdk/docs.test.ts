/**
 * sdk/README.md and the code say the same thing (the fastify rule, as test/errors.test.ts applies
 * it to the host): the CLI's and the client's error tables match their catalogs row for row, the
 * limits table matches host/limits.ts, every SDK function the README lists exists, and every export
 * of the plugin library carries an example in its doc comment.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { CLIENT_ERROR_CATALOG } from '../../sdk/client/errors.ts';
import { CLI_ERROR_CATALOG } from '../../sdk/cli/errors.ts';

const readme = readFileSync('sdk/README.md', 'utf8');
const sdkSource = readFileSync('sdk/as/index.ts', 'utf8');

function section(name: string): string {
  const start = readme.indexOf(`<!-- ${name}:start -->`);
  const end = readme.indexOf(`<!-- ${name}:end -->`);
  assert.ok(start >= 0 && end > start, `sdk/README.md has a ${name} section`);
  return readme.slice(start, end);
}

test('the CLI error table matches CLI_ERROR_CATALOG', () => {
  const rows = [...section('cli-error-table').matchAll(/^\| `([A-Z_]+)` \| (\d) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
  assert.equal(rows, Object.entries(CLI_ERROR_CATALOG).map(([code, spec]) => [code, spec.exit, spec.doc]));
});

test('the client error table matches CLIENT_ERROR_CATALOG', () => {
  const rows = [...section('client-error-table').matchAll(/^\| `([A-Z_]+)` \| (yes|no) \| (.+) \|$/gm)].map((m) => [m[1], m[2] === 'yes', m[3]]);
  assert.equal(rows, Object.entries(CLIENT_ERROR_CATALOG).map(([code, spec]) => [code, spec.retryable, spec.doc]));
});

test('the limits table matches host/limits.ts', () => {
  const rows = [...section('limits-table').matchAll(/^\| `(\w+)` \| ([\d,]+) \|/gm)];
  assert.ok(rows.length >= 15);
  for (const [, name, value] of rows) {
    assert.is(Number(value?.replaceAll(',', '')), LIMITS[name as keyof typeof LIMITS], `${name} in sdk/README.md`);
  }
});

test('every SDK function the README lists is exported by sdk/as/index.ts', () => {
  const table = readme.slice(readme.indexOf('### The plugin library'), readme.indexOf('### ABI reference'));
  // The first cell of each row; a cell may hold escaped pipes (`Hit[] \\| null`).
  const firstCells = table.split('\n').filter((line) => line.startsWith('| `')).map((line) => line.split(/(?<!\\)\|/)[1] ?? '');
  const names = firstCells.flatMap((cell) => [...cell.matchAll(/`(?:new )?(\w+)/g)].map((m) => m[1] as string));
  assert.ok(names.length >= 14, names.join(', '));
  for (const name of names) {
    const exported = new RegExp(`export (?:function|class|enum) ${name}\\b|export \\{[^}]*\\b${name}\\b`).test(sdkSource);
    assert.ok(exported, `${name} is listed in sdk/README.md but not exported by sdk/as/index.ts`);
  }
});

test('every export of the plugin library has an @example', () => {
  const exports = [...sdkSource.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*export (?:function|class|enum) (\w+)/g)];
  const all = [...sdkSource.matchAll(/^export (?:function|class|enum) (\w+)/gm)].map((m) => m[1]);
  assert.equal(exports.map((m) => m[2]), all, 'every export has a doc comment right above it');
  for (const [, doc, name] of exports) assert.match(doc ?? '', /@example/, `${name} has no @example`);
});

test.run();
