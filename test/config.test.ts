/**
 * Host configuration: defaults, a JSON file, the environment on top; every bad value stops the
 * start with a message naming the setting and where it came from.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONFIG_DEFAULTS, loadConfig } from '../host/config.ts';
import { HostError } from '../host/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'ctx-config-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function refused(env: Record<string, string>, message: RegExp): void {
  try {
    loadConfig(env);
    assert.unreachable('must refuse');
  } catch (error) {
    assert.instance(error, HostError);
    assert.equal((error as HostError).code, 'CONFIG_INVALID');
    assert.match((error as HostError).message, message);
  }
}

test('defaults: port 8787 on 127.0.0.1 with data in ./data and the local model', () => {
  const config = loadConfig({});
  assert.equal([config.port, config.host, config.dataDir, config.modelProvider], [8787, '127.0.0.1', './data', 'local']);
  assert.equal(config, CONFIG_DEFAULTS);
});

test('a config file sets values and the environment wins over it', () => {
  const file = join(dir, 'ctx.json');
  writeFileSync(file, JSON.stringify({ port: 9001, host: '0.0.0.0', modelName: 'from-file' }));
  const config = loadConfig({ CTX_CONFIG: file, PORT: '9002' });
  assert.equal([config.port, config.host, config.modelName], [9002, '0.0.0.0', 'from-file']);
});

test('bad values name the setting and its source', () => {
  refused({ PORT: '70000' }, /^PORT: must be an integer in 0\.\.65535, got "70000"$/);
  refused({ MODEL_PROVIDER: 'gpt' }, /^MODEL_PROVIDER: must be one of local, openai, got "gpt"$/);
  refused({ MODEL_PROVIDER: 'openai' }, /^MODEL_PROVIDER: openai needs MODEL_URL$/);
  refused({ MODEL_URL: 'ftp://x' }, /^MODEL_URL: must be an http\(s\) URL/);
  refused({ CTX_DEMO: 'maybe' }, /^CTX_DEMO: must be true or false, got "maybe"$/);
  refused({ CTX_OPERATOR_KEY: 'short' }, /^CTX_OPERATOR_KEY: must be at least 16 characters$/);
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ prot: 1 }));
  refused({ CTX_CONFIG: file }, /unknown setting "prot"; known: port, host/);
  writeFileSync(file, JSON.stringify({ port: 'x' }));
  refused({ CTX_CONFIG: file }, /bad\.json: port: must be an integer/);
  writeFileSync(file, '{');
  refused({ CTX_CONFIG: file }, /is not valid JSON/);
  refused({ CTX_CONFIG: join(dir, 'missing.json') }, /CTX_CONFIG: no file at/);
});

test.run();
