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
import { LIMITS } from '../host/limits.ts';
import { createOpenAIModel } from '../host/models/openai.ts';

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

test('provider timeouts come from LIMITS: at the limit the setting starts the model; one over is refused naming the variable', () => {
  const model = loadConfig({ MODEL_TIMEOUT_MS: String(LIMITS.modelTimeoutMsMax) });
  assert.is(model.modelTimeoutMs, LIMITS.modelTimeoutMsMax);
  // What the config accepts, the model accepts too (it used to refuse what MODEL_TIMEOUT_MS let through).
  createOpenAIModel({ url: 'http://127.0.0.1:1/v1', model: model.modelName, timeoutMs: model.modelTimeoutMs });
  refused({ MODEL_TIMEOUT_MS: String(LIMITS.modelTimeoutMsMax + 1) }, new RegExp(`^MODEL_TIMEOUT_MS: must be an integer in 100\\.\\.${LIMITS.modelTimeoutMsMax}, got "${LIMITS.modelTimeoutMsMax + 1}"$`));
  assert.is(loadConfig({ EMBED_TIMEOUT_MS: String(LIMITS.embedTimeoutMsMax) }).embedTimeoutMs, LIMITS.embedTimeoutMsMax);
  refused({ EMBED_TIMEOUT_MS: String(LIMITS.embedTimeoutMsMax + 1) }, new RegExp(`^EMBED_TIMEOUT_MS: must be an integer in 100\\.\\.${LIMITS.embedTimeoutMsMax}, got`));
});

test('provider settings the model or embedder would refuse at start are refused here, naming the variable', () => {
  refused({ MODEL_NAME: 'two words' }, /^MODEL_NAME: must be 1 to 256 characters without spaces, control characters or '@'$/);
  refused({ MODEL_NAME: 'base@adapter' }, /^MODEL_NAME: must be 1 to 256/);
  refused({ MODEL_NAME: 'm'.repeat(257) }, /^MODEL_NAME: must be 1 to 256/);
  assert.is(loadConfig({ MODEL_NAME: 'm'.repeat(256) }).modelName, 'm'.repeat(256));
  refused({ EMBED_MODEL: 'two words' }, /^EMBED_MODEL: must be 1 to 256 characters/);
  refused({ MODEL_URL: 'http://user:secret@127.0.0.1:8000/v1' }, /^MODEL_URL: must not contain credentials; use MODEL_API_KEY$/);
  refused({ EMBED_URL: 'http://user:secret@127.0.0.1:8000/v1' }, /^EMBED_URL: must not contain credentials; use EMBED_API_KEY$/);
  refused({ MODEL_API_KEY: 'sk has spaces' }, /^MODEL_API_KEY: must be 1 to 1024 printable ASCII characters without spaces$/);
  refused({ EMBED_API_KEY: 'sk\u00e9' }, /^EMBED_API_KEY: must be 1 to 1024 printable ASCII characters without spaces$/);
});

test.run();
