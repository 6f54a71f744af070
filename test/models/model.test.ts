import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LOCAL_MODEL_ID } from '../../host/models/local.ts';
import { type ChatModel, type ModelOptions, createModel, modelIdFor } from '../../host/models/model.ts';

function assertConfigInvalid(options: unknown, setting: string, message: RegExp): void {
  try {
    createModel(options as ModelOptions);
    assert.unreachable(`expected ${setting} to be refused`);
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'CONFIG_INVALID');
    assert.match((error as HostError).message, message);
    assert.equal((error as HostError).detail, { setting });
  }
}

test('the local provider is the default', () => {
  assert.is(createModel().id, LOCAL_MODEL_ID);
  assert.is(createModel({ provider: 'local' }).id, LOCAL_MODEL_ID);
});

test('the openai provider is chosen by name and validated', () => {
  const model = createModel({ provider: 'openai', url: 'http://127.0.0.1:8000/v1', model: 'llama3', timeoutMs: 1_000 });
  assert.is(model.id, 'openai:llama3');
  assertConfigInvalid({ provider: 'openai', url: 'http://127.0.0.1:8000/v1', model: 'llama3', timeoutMs: 0 }, 'timeoutMs', /^timeoutMs must be/);
});

test('an unknown provider or option is refused, never a silent fallback', () => {
  assertConfigInvalid({ provider: 'anthropic' }, 'provider', /^model provider must be 'local' or 'openai', got "anthropic"$/);
  assertConfigInvalid({ provider: 'local', url: 'http://x' }, 'url', /^unknown option 'url' for model provider 'local'$/);
});

test('modelIdFor: a routing always changes the id, even for a model that cannot name it', () => {
  const opaque: ChatModel = { id: 'fake:m', stream: () => [] as unknown as AsyncIterable<string> };
  assert.is(modelIdFor(opaque, {}), 'fake:m');
  const routed = [modelIdFor(opaque, { model: 'a' }), modelIdFor(opaque, { adapter: 'a' }), modelIdFor(opaque, { model: 'a', adapter: 'b' })];
  assert.is(new Set([...routed, 'fake:m']).size, 4, routed.join(', '));
  const openai = createModel({ provider: 'openai', url: 'http://127.0.0.1:8000/v1', model: 'llama3', timeoutMs: 1_000 });
  assert.is(modelIdFor(openai, { adapter: 'support' }), 'openai:llama3@support');
  assert.is(modelIdFor(createModel(), { adapter: 'support' }), LOCAL_MODEL_ID);
});

test.run();
