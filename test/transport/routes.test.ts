/**
 * The router under malformed paths: a path parameter that is not valid percent-encoded UTF-8 is a
 * clear 400 naming the segment, before any key is checked, and nothing is logged as an unexpected
 * error (no stack trace for a bad request).
 */
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';

const lines: string[] = [];
let host: TestHost;
let apiKey = '';

test.before(async () => {
  host = await startTestHost({ logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) }) });
  apiKey = (await host.createTenant('Paths')).apiKey;
});
test.after(async () => {
  await host.close();
});

test('a malformed percent-encoding in a path is HTTP_PATH_INVALID (400) with or without a key, and logs nothing', async () => {
  for (const [method, path, key] of [
    ['DELETE', '/v1/documents/%E0%A4%A', undefined],
    ['DELETE', '/v1/documents/%E0%A4%A', apiKey],
    ['DELETE', '/v1/documents/%ZZ', apiKey],
    ['DELETE', '/v1/tenants/%C0%80', OPERATOR_KEY],
  ] as const) {
    const response = await host.request(method, path, key);
    assert.is(response.status, 400, `${method} ${path}`);
    assert.is(response.body.error.code, 'HTTP_PATH_INVALID');
    assert.match(response.body.error.message, /^path segment "[^"]+" is not valid percent-encoded UTF-8$/);
  }
  assert.equal(lines, [], 'nothing logged at warn or above');
});

test('a well-formed encoded segment still reaches its route', async () => {
  const response = await host.request('DELETE', '/v1/documents/no%2Dsuch', apiKey);
  assert.is(response.status, 404);
  assert.is(response.body.error.code, 'DOCUMENT_NOT_FOUND');
  assert.match(response.body.error.message, /no-such/);
});

test.run();
