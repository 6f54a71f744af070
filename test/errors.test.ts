/**
 * The error catalog and the README's error table say the same thing (fastify's rule: a code that
 * exists is documented, a documented code exists), and unknown errors never reach the wire.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_CATALOG, HostError, toWireError } from '../host/errors.ts';

test('README error table matches the catalog row for row', () => {
  const readme = readFileSync('README.md', 'utf8');
  const table = readme.slice(readme.indexOf('<!-- error-table:start -->'), readme.indexOf('<!-- error-table:end -->'));
  const rows = [...table.matchAll(/^\| `([A-Z_]+)` \| (\d+) \| ([^|]+) \| (.+) \|$/gm)].map((match) => [
    match[1],
    Number(match[2]),
    match[3]?.trim() === '—' ? null : Number(match[3]),
    match[4]?.trim(),
  ]);
  const catalog = Object.entries(ERROR_CATALOG).map(([code, spec]) => [code, spec.http, spec.close, spec.doc]);
  assert.equal(rows, catalog);
});

test('an unknown error becomes INTERNAL and is handed to the logger, not the wire', () => {
  let logged: unknown;
  const { wire } = toWireError(new Error('secret detail /etc/passwd'), (error) => (logged = error));
  assert.equal(wire.code, 'INTERNAL');
  assert.not.match(wire.message, /secret/);
  assert.instance(logged, Error);
});

test('a HostError keeps its code, message and detail on the wire', () => {
  const { wire } = toWireError(new HostError('CONFIG_INVALID', 'topK: must be an integer', { setting: 'topK' }));
  assert.equal(wire, { code: 'CONFIG_INVALID', message: 'topK: must be an integer', detail: { setting: 'topK' } });
});

test.run();
